"""Golden-file test of the leaderboard on fixed result files written here (set UPDATE_GOLDEN=1 to refresh)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecg_data.paths import atomic_write_json
from ecg_eval.leaderboard import publish
from ecg_eval.results import result_path

GOLDEN = Path(__file__).parent / "golden" / "leaderboard.md"
REPO = Path(__file__).resolve().parents[2]


def _result(suite, method, task, mode, fraction, seed, macro, ci, status="ok", seen=False) -> dict:
    return {
        "schema_version": 1,
        "status": status,
        "method": method,
        "checkpoint_hash": "h",
        "task": task,
        "suite": suite,
        "mode": mode,
        "fraction": fraction,
        "seed": seed,
        "fraction_percent": None if fraction is None else f"{fraction * 100:g}",
        "scores": None if status != "ok" else {"macro_auroc": macro, "per_class_auroc": {}},
        "ci": None if status != "ok" else {"macro_auroc": list(ci)},
        "seen_in_pretraining": seen,
        # real-data cells scored on the whole published test split (partial coverage: test_published_section.py)
        **({"coverage": {"test": {"present": 100, "published": 100}}} if suite == "real" else {}),
    }


def write_fixture(root: Path) -> None:
    rows = [
        # real suite: two methods, zero-shot and 1% probe (three seeds), one ECG-only method
        ("real", "melp", "ptbxl_super", "zero_shot", None, 0, 0.800, (0.780, 0.820)),
        ("real", "melp", "cpsc2018", "zero_shot", None, 0, 0.700, (0.660, 0.740)),
        ("real", "merl", "ptbxl_super", "zero_shot", None, 0, 0.750, (0.730, 0.770)),
        ("real", "merl", "cpsc2018", "zero_shot", None, 0, 0.720, (0.700, 0.740)),
        ("real", "melp", "ptbxl_super", "linear_probe", 0.01, 0, 0.850, (0.830, 0.870)),
        ("real", "melp", "ptbxl_super", "linear_probe", 0.01, 1, 0.860, (0.840, 0.880)),
        ("real", "melp", "ptbxl_super", "linear_probe", 0.01, 2, 0.870, (0.850, 0.890)),
        ("real", "heartlang", "ptbxl_super", "linear_probe", 0.01, 0, 0.880, (0.860, 0.900)),
        ("real", "heartlang", "ptbxl_super", "linear_probe_paper", 0.01, 0, 0.840, (0.820, 0.860)),
        # our corrected tasks: their own section, never beside reported numbers
        ("real", "melp", "csn_exact", "zero_shot", None, 0, 0.690, (0.670, 0.710)),
        ("real", "melp", "cpsc2018_full", "linear_probe", 0.01, 0, 0.650, (0.600, 0.700)),
        ("synthetic", "melp", "synth_ptbxl_super", "linear_probe", 0.1, 0, 0.990, (0.980, 1.000)),
        ("synthetic", "melp", "synth_ptbxl_super", "linear_probe", 1.0, 0, 0.995, (0.990, 1.000)),
    ]
    for suite, m, t, mode, f, s, macro, ci in rows:
        r = _result(suite, m, t, mode, f, s, macro, ci, seen=(m == "melp" and suite == "synthetic"))
        atomic_write_json(result_path(root, suite, m, t, mode, f, s), r)
    atomic_write_json(
        result_path(root, "real", "heartlang", "ptbxl_super", "zero_shot", None, 0),
        _result("real", "heartlang", "ptbxl_super", "zero_shot", None, 0, None, None, status="not_applicable"),
    )


REFERENCE = """\
entries:
  - id: R1
    method: MERL
    source: "Liu et al., ICML 2024 (arXiv:2403.06659), abstract"
    mode: zero_shot
    values: {mean: 0.752}
  - id: R2
    method: HeartLang
    source: "Jin et al., ICLR 2025, Table 1"
    mode: linear_probe_paper
    fraction: 1
    values: {ptbxl_super: 0.7894, cpsc2018: 0.6044}
  - id: R3
    method: ESI
    source: "ESI, TMLR 2024"
    mode: zero_shot
    values: {}
    no_numbers: "no numbers on the published tasks"
"""


def test_golden_leaderboard(tmp_path) -> None:
    write_fixture(tmp_path / "results")
    (tmp_path / "ref.yaml").write_text(REFERENCE)
    out = publish(tmp_path / "results", tmp_path / "README.md", reference=tmp_path / "ref.yaml")
    text = out.read_text()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
    assert (tmp_path / "probe-real.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "probe-synthetic.png").is_file()


def test_bad_result_file_is_named(tmp_path) -> None:
    bad = tmp_path / "results" / "real" / "m" / "t" / "zero_shot-seed0.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=str(bad)):
        publish(tmp_path / "results", tmp_path / "README.md")


def test_publish_cli(tmp_path) -> None:
    write_fixture(tmp_path / "results")
    env = dict(os.environ)
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "publish.py"),
        "--results",
        str(tmp_path / "results"),
        "--out",
        str(tmp_path / "LB.md"),
        "--reference",
        str(tmp_path / "none.yaml"),
        "--no-plot",
    ]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    assert "GENERATED FILE" in (tmp_path / "LB.md").read_text()


def test_reported_numbers_only_in_published_columns(tmp_path) -> None:
    from ecg_eval.leaderboard import load_reference

    write_fixture(tmp_path / "results")
    (tmp_path / "ref.yaml").write_text(REFERENCE)
    text = publish(
        tmp_path / "results", tmp_path / "README.md", reference=tmp_path / "ref.yaml", plot=False
    ).read_text()
    published, corrected = text.split("### Our corrected tasks")
    corrected = corrected.split("## Synthetic")[0]
    assert "(reported" in published and "(reported" not in corrected and "csn_exact" in corrected
    paper_1 = published.split("#### Linear probe, 1% of the training data — papers' probe (AdamW epochs)")[1].split(
        "####"
    )[0]
    assert "_HeartLang_ (reported" in paper_1 and "_78.9_" in paper_1
    ours_1 = published.split("#### Linear probe, 1% of the training data — our L-BFGS probe")[1].split("####")[0]
    assert "(reported" not in ours_1  # never beside our L-BFGS probe
    assert "[R3] ESI: ESI, TMLR 2024 — reports no numbers on this benchmark" in text
    for bad, msg in (
        ("mode: linear_probe\n    fraction: 1", "reported numbers are"),
        ("mode: zero_shot\n    values: {csn_exact: 0.5}", "not a published task"),
    ):
        (tmp_path / "bad.yaml").write_text(
            f"entries:\n  - method: X\n    source: s\n    {bad}\n"
            + ("    values: {ptbxl_super: 0.5}\n" if "values" not in bad else "")
        )
        with pytest.raises(ValueError, match=msg):
            load_reference(tmp_path / "bad.yaml")
