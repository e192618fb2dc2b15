"""The runner wired to the real evaluation (ecg_data tasks + ecg_eval harness/results/leaderboard),
with the toy method, on the real PTB-XL sample in ../shared (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.pipeline import run
from benchmarks.pipeline.store import RunStore


def _overrides(tmp: Path, data_root: Path, stages: str) -> list[str]:
    return [
        "method=toy",
        "dataset=ptbxl_super",
        "eval=quick",
        f"stages={stages}",
        f"data_root={data_root}",
        f"run_store={tmp / 'runs'}",
        f"results_dir={tmp / 'results'}",
        f"leaderboard_dir={tmp / 'leaderboard'}",
    ]


@pytest.fixture
def data_root(tmp_path: Path, ptbxl500: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    (root / "ptbxl").symlink_to(ptbxl500)  # the layout $ECG_DATA_ROOT/ptbxl that ecg_data expects
    monkeypatch.delenv("ECG_DATA_ROOT", raising=False)
    return root


def _events(tmp: Path) -> list[tuple[str, str]]:
    return [(e["stage"], e["status"]) for e in RunStore(tmp / "runs").events()]


def test_zero_shot_result_file_and_leaderboard_through_ecg_eval(tmp_path, data_root, compose_cfg):
    from ecg_eval.results import read_result

    cfg = compose_cfg(_overrides(tmp_path, data_root, "[pretrain,zero_shot,publish]"))
    summary = run(cfg)
    path = tmp_path / "results" / "real" / "toy" / "ptbxl_super" / "zero_shot-seed0.json"
    result = read_result(path)
    assert result["status"] == "ok" and result["checkpoint_hash"] == summary["checkpoint_hash"]
    assert result["pretrained_on"] == ["synth-mimic"] and not result["seen_in_pretraining"]
    assert 0.0 <= result["scores"]["macro_auroc"] <= 1.0
    board = (tmp_path / "leaderboard" / "README.md").read_text()
    assert "Zero-shot" in board and "| toy " in board

    run(cfg)  # nothing new: every stage skipped
    assert _events(tmp_path)[-3:] == [("pretrain", "skipped"), ("zero_shot", "skipped"), ("publish", "skipped")]


@pytest.mark.slow
def test_full_quick_grid_on_ptbxl_sample(tmp_path, data_root, compose_cfg):
    run(compose_cfg(_overrides(tmp_path, data_root, "[pretrain,zero_shot,linear_probe,publish]")))
    names = sorted(p.name for p in (tmp_path / "results").rglob("*.json"))
    assert names == [
        "linear_probe-1-seed0.json",
        "linear_probe-10-seed0.json",
        "linear_probe-100-seed0.json",
        "zero_shot-seed0.json",
    ]


def test_modes_beyond_the_default_run_as_stages_with_identity_device_and_skip(tmp_path, data_root, compose_cfg):
    """retrieval, report generation and the papers' probe as runner stages: result files with the cell's
    evaluation identity and the device the eval config picked; a rerun skips them; the leaderboard has them."""
    from ecg_eval.results import read_result

    stages = "[pretrain,linear_probe_paper,retrieval,report_generation,publish]"
    over = [
        *_overrides(tmp_path, data_root, stages),
        "eval.fractions=[1.0]",
        "eval.device=cpu",
        "eval.retrieval.tasks=[ptbxl_super]",
        "eval.report_generation.tasks=[ptbxl_super]",
    ]
    summary = run(compose_cfg(over))
    assert summary["cells"] == {"linear_probe_paper": 1, "retrieval": 1, "report_generation": 1}
    base = tmp_path / "results" / "real" / "toy" / "ptbxl_super"
    retrieval = read_result(base / "retrieval-seed0.json")
    assert retrieval["status"] == "ok" and retrieval["config"]["device"] == "cpu"
    assert set(retrieval["evaluated"]) >= {"split_sha256", "dataset_fingerprint", "eval_config_sha256"}
    assert 0.0 <= retrieval["scores"]["ecg_to_report"]["recall@1"] <= 1.0
    generation = read_result(base / "report_generation-seed0.json")  # the toy has no decoder
    assert generation["status"] == "not_applicable" and generation["evaluated"]
    paper = read_result(base / "linear_probe_paper-100-seed0.json")
    assert paper["status"] == "ok" and paper["evaluated"]["subset_sha256"]
    board = (tmp_path / "leaderboard" / "README.md").read_text()
    assert "etrieval" in board

    again = run(compose_cfg(over))
    assert again["cells"] == {"linear_probe_paper": 0, "retrieval": 0, "report_generation": 0}
    # another generation option is another evaluation: that cell alone reruns
    third = run(compose_cfg([*over, "eval.report_generation.beam_size=1"]))
    assert third["cells"] == {"linear_probe_paper": 0, "retrieval": 0, "report_generation": 1}
