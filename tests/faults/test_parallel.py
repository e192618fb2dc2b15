"""Parallel jobs lose nothing (docs/reliability.md): four ``benchmarks/run.py`` processes started at once share one
``output_dir``, run store and ``$ECG_CACHE`` -- two identical MERL jobs (same run-store address, same cells), a
HeartLang job and a random-init job on two tasks -- while a fifth process publishes the leaderboard in a loop and
this test reads every result file it sees.

At the end: every process exited 0 without a traceback; every expected cell exists exactly once and passes its
checksum; the MERL address was trained once (the second job waited and reused it); each record cache was built
once; every publish in the loop succeeded and every result file read during the run was whole; the final
leaderboard lists every row.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from fault_tools import QUICK, REPO, TINY, run_cmd, run_env

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_four_jobs_share_output_run_store_and_cache(tmp_path: Path) -> None:
    from ecg_eval.results import read_result

    runs, out, cache = tmp_path / "runs", tmp_path / "out", tmp_path / "cache"
    shared = [f"run_store={runs}", f"output_dir={out}"]
    env = run_env({"ECG_CACHE": str(cache)})
    one = ["dataset.tasks=[synth_ptbxl_super]"]
    jobs = {
        "merl-a": [*QUICK, *TINY["merl"], *one, *shared, "stages=[pretrain,zero_shot,linear_probe,publish]"],
        "merl-b": [*QUICK, *TINY["merl"], *one, *shared, "stages=[pretrain,zero_shot,linear_probe,publish]"],
        "heartlang": [*QUICK, *TINY["heartlang"], *one, *shared, "stages=[pretrain,linear_probe,publish]"],
        "random_init": [
            *QUICK,
            *TINY["random_init"],
            "dataset.tasks=[synth_ptbxl_super,synth_cpsc2018]",
            *shared,
            "stages=[pretrain,zero_shot,linear_probe,publish]",
        ],
    }
    logs = {k: open(tmp_path / f"{k}.log", "w") for k in jobs}
    procs = {
        k: subprocess.Popen(run_cmd(a), cwd=tmp_path, env=env, stdout=logs[k], stderr=subprocess.STDOUT)
        for k, a in jobs.items()
    }
    publish = [
        run_cmd([])[0],
        str(REPO / "benchmarks" / "publish.py"),
        "--results",
        str(out / "results"),
        "--out",
        str(out / "README.md"),
        "--no-plot",
    ]
    publishes, reads, deadline = [], 0, time.time() + 1500
    while any(p.poll() is None for p in procs.values()):
        assert time.time() < deadline, "parallel jobs did not finish in 25 minutes"
        if (out / "results").is_dir():
            for f in (out / "results").rglob("*.json"):  # a reader never sees a half-written cell
                try:
                    read_result(f)
                except FileNotFoundError:
                    continue
                reads += 1
            pub = subprocess.run(publish, env=env, capture_output=True, text=True, timeout=300)
            publishes.append((pub.returncode, pub.stderr[-2000:]))
        time.sleep(1.0)
    for f in logs.values():
        f.close()
    text = {k: (tmp_path / f"{k}.log").read_text() for k in jobs}
    for k, p in procs.items():
        assert p.returncode == 0 and "Traceback" not in text[k], f"{k}:\n{text[k][-4000:]}"
    assert publishes and all(rc == 0 for rc, _ in publishes), [e for rc, e in publishes if rc][:1]

    # every expected cell exactly once, each whole
    found = Counter(str(p.relative_to(out / "results")) for p in (out / "results").rglob("*.json"))
    want = {f"synthetic/merl/synth_ptbxl_super/{n}" for n in ("zero_shot-seed0.json", "linear_probe-100-seed0.json")}
    want |= {"synthetic/heartlang/synth_ptbxl_super/linear_probe-100-seed0.json"}
    want |= {
        f"synthetic/random_init/{t}/{n}"
        for t in ("synth_ptbxl_super", "synth_cpsc2018")
        for n in ("zero_shot-seed0.json", "linear_probe-100-seed0.json")
    }
    assert want <= set(found), sorted(want - set(found))
    assert all(n == 1 for n in found.values())
    for rel in want:
        assert read_result(out / "results" / rel)["method"] in {"merl", "heartlang", "random_init"}

    # the MERL address: one run directory, trained once; the other job waited and reused it
    assert len(list((runs / "merl").glob("*-seed0"))) == 1
    events = [json.loads(l) for l in (runs / "events.jsonl").read_text().splitlines() if l.strip()]
    merl = Counter((e["stage"], e["status"]) for e in events if e["run"].startswith("merl/"))
    assert merl[("pretrain/merl", "ran")] == 1 and merl[("pretrain", "skipped")] == 1, merl
    scored = Counter(
        (e["run"], e["stage"])
        for e in events
        if e["stage"] in ("zero_shot", "linear_probe") and e["status"] == "ran" and e["run"].startswith("merl/")
    )
    assert scored and all(n == 1 for n in scored.values()), scored  # no cell scored by both MERL jobs

    # each record cache built once across the four processes
    built = Counter(m.group(1) for t in text.values() for m in re.finditer(r"cache \S+: .* -> (\S+)", t))
    assert built and all(n == 1 for n in built.values()), built

    board = (out / "README.md").read_text()
    for row in ("merl", "heartlang", "random_init"):
        assert f"| {row} " in board, row
    assert reads > 0
