"""A contributor's evaluation mode, kept OUTSIDE the repository: one Python file that registers it
(``ecg_eval.modes.register_mode``), scored through the harness and as a stage of the runner (``benchmarks/run.py``'s
``run``, the real ecg-eval backend, the runner tests' toy checkpoint on small synthetic tasks), with its result
files, its leaderboard section, and the count of files the contributor wrote.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "tests" / "runner" / "toy"  # the runner tests' toy method (two tiny stages, a loader)

#: the whole contribution: this one file (docs/architecture.md, "Where a newcomer adds ...")
MODE_FILE = '''
"""Toy mode: the mean L2 norm of the test split's ECG embeddings (a pipeline check, not a metric of merit)."""
import numpy as np

from ecg_eval.embeddings import embed_split
from ecg_eval.modes import Mode, register_mode


def score(call):
    result = call.start()  # the common fields (method, checkpoint, task, seed, ...)
    test = embed_split(call.encoder, call.task, "test", batch_size=call.batch_size, cache_dir=call.embed_cache,
                       split_loader=call.split_loader, device=call.device)
    result["scores"] = {"mean_norm": float(np.linalg.norm(test.features, axis=1).mean())}
    result["n_test"] = len(test.record_ids)
    result["config"] = {"caller": call.caller_config(), "scale": call.options.get("scale", 1.0)}
    return result  # the harness stamps it and writes it


def section(results, suite):
    rows = [r for r in results if r["mode"] == "toy_norm" and r["suite"] == suite and r["status"] == "ok"]
    if not rows:
        return ""
    lines = [f"| {r['method']} | {r['task']} | {r['scores']['mean_norm']:.3f} |" for r in rows]
    return "### Toy norm\\n\\n| method | task | mean norm |\\n| --- | --- | --- |\\n" + "\\n".join(lines) + "\\n"


register_mode(Mode("toy_norm", run=score, score_keys=("mean_norm",), section="my_toy_mode.section"))
'''

SMALL_SYNTH = {"synth-mimic": 96, "synth-ptbxl": 160, "synth-cpsc2018": 120}


@pytest.fixture
def toy_mode_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The contributor's directory with the one file, on sys.path (what ``method_dir=DIR`` does for the CLI);
    the mode is unregistered afterwards."""
    from ecg_eval.modes import unregister_mode

    user = tmp_path / "my_modes"
    user.mkdir()
    (user / "my_toy_mode.py").write_text(MODE_FILE)
    assert REPO not in user.resolve().parents  # really outside the repository
    monkeypatch.syspath_prepend(str(user))
    yield user
    unregister_mode("toy_norm")
    sys.modules.pop("my_toy_mode", None)


@pytest.fixture
def small_synthetic(monkeypatch: pytest.MonkeyPatch) -> None:
    from ecg_data.synthetic import presets

    for name, n in SMALL_SYNTH.items():
        monkeypatch.setitem(presets.PRESETS, name, dataclasses.replace(presets.PRESETS[name], default_n=n))


def test_toy_mode_through_the_harness(toy_mode_dir: Path, tmp_path: Path) -> None:
    """Registered by importing the file; ``harness.evaluate`` runs it, stamps and writes the result once."""
    from ecg_data.synthetic import ensure_preset
    from ecg_data.tasks import get_task
    from ecg_eval.harness import evaluate
    from ecg_eval.leaderboard import load_results, render
    from ecg_eval.modes import mode_names
    from ecg_eval.references import reference_encoder
    from ecg_eval.results import read_result

    importlib.import_module("my_toy_mode")
    assert "toy_norm" in mode_names()
    task = get_task("synth_cpsc2018", root=ensure_preset("synth-cpsc2018", n=120, seed=5))
    enc = reference_encoder("chance", preset="melp")  # an encoder without weights: reads only the record ids
    out = evaluate(
        enc,
        task,
        "toy_norm",
        results_root=tmp_path / "results",
        embed_cache=tmp_path / "emb",
        mode_options={"scale": 2.0},
    )
    path = Path(out["result_path"])
    assert path == tmp_path / "results" / "synthetic" / "chance" / "synth_cpsc2018" / "toy_norm-seed0.json"
    written = read_result(path)  # schema-checked: the mode's score keys are required
    assert written["scores"]["mean_norm"] > 0 and written["config"]["scale"] == 2.0
    assert written["evaluated"]["eval_config_sha256"] and written["config"]["device"] == "cpu"
    assert written["evaluation_settings"]["options"] == {"scale": 2.0}
    assert "### Toy norm" in render(load_results(tmp_path / "results"), [])
    assert sorted(p.name for p in toy_mode_dir.iterdir() if p.is_file()) == ["my_toy_mode.py"]  # <= 2 files


def test_toy_mode_as_a_runner_stage(
    toy_mode_dir: Path, tmp_path: Path, small_synthetic: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``eval.mode_modules=[my_toy_mode] stages=[toy_norm,publish]``: planned, scored, skipped on a rerun, published."""
    import torch
    from hydra import compose, initialize_config_dir

    monkeypatch.syspath_prepend(str(TOY))
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.pipeline import run
    from ecg_eval.results import read_result

    ckpt = tmp_path / "toy.ckpt"
    torch.save({"w": torch.randn(12, 4, generator=torch.Generator().manual_seed(0))}, ckpt)
    over = [
        "method=toy",
        f"ckpt={ckpt}",
        "stages=[toy_norm,publish]",
        "eval.mode_modules=[my_toy_mode]",
        "+eval.toy_norm.scale=3.0",
        "eval.references=[]",
        "dataset.tasks=[synth_ptbxl_super,synth_cpsc2018]",
        "eval.device=cpu",
        f"run_store={tmp_path / 'runs'}",
        f"results_dir={tmp_path / 'results'}",
        f"leaderboard_dir={tmp_path / 'leaderboard'}",
        f"hydra.searchpath=[file://{TOY}]",
    ]
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=over)
    summary = run(cfg)
    assert summary["cells"] == {"toy_norm": 2}
    for task in ("synth_ptbxl_super", "synth_cpsc2018"):
        r = read_result(tmp_path / "results" / "synthetic" / "toy" / task / "toy_norm-seed0.json")
        assert r["status"] == "ok" and r["config"]["scale"] == 3.0  # eval.toy_norm.* reach the mode
    assert "### Toy norm" in (tmp_path / "leaderboard" / "README.md").read_text()
    assert run(cfg)["cells"] == {"toy_norm": 0}  # the cells' identity matches: skipped
    assert sorted(p.name for p in toy_mode_dir.iterdir() if p.is_file()) == ["my_toy_mode.py"]
