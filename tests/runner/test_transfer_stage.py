"""Domain transfer as a runner stage on the synthetic default: ``stages=[transfer,publish]`` scores the dataset's
source:target pairs (configs/dataset/synthetic.yaml ``transfer_pairs``) with each of ``eval.transfer.train_modes``,
for the method and the reference rows; a rerun skips every cell; a malformed pair is a clean config error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

SMALL_SYNTH = {"synth-mimic": 96, "synth-ptbxl": 160, "synth-cpsc2018": 120}


@pytest.fixture
def small_synthetic(monkeypatch: pytest.MonkeyPatch) -> None:
    from ecg_data.synthetic import presets

    for name, n in SMALL_SYNTH.items():
        monkeypatch.setitem(presets.PRESETS, name, dataclasses.replace(presets.PRESETS[name], default_n=n))


def _overrides(tmp: Path, ckpt: Path) -> list[str]:
    return [
        "method=toy",
        f"ckpt={ckpt}",
        "stages=[transfer,publish]",
        "eval=quick",
        "eval.fractions=[1.0]",
        "eval.bootstrap=30",
        "eval.device=cpu",
        f"run_store={tmp / 'runs'}",
        f"results_dir={tmp / 'results'}",
        f"leaderboard_dir={tmp / 'leaderboard'}",
    ]


def test_transfer_stage_on_the_synthetic_default(tmp_path, compose_cfg, small_synthetic) -> None:
    import torch

    from benchmarks.pipeline import run
    from ecg_eval.results import read_result

    ckpt = tmp_path / "toy.ckpt"
    torch.save({"w": torch.randn(12, 4, generator=torch.Generator().manual_seed(0))}, ckpt)
    cfg = compose_cfg(_overrides(tmp_path, ckpt))
    summary = run(cfg)
    assert summary["cells"] == {"transfer": 2}  # zero_shot + linear_probe 100 % on synth_ptbxl_all -> synth_cpsc2018
    base = tmp_path / "results" / "synthetic"
    for row in ("toy", "oracle", "chance"):
        names = sorted(p.name for p in (base / row / "synth_cpsc2018").glob("*.json"))
        assert names == [
            "transfer-linear_probe-100-from-synth_ptbxl_all-seed0.json",
            "transfer-zero_shot-from-synth_ptbxl_all-seed0.json",
        ], row
    probe = read_result(base / "toy" / "synth_cpsc2018" / "transfer-linear_probe-100-from-synth_ptbxl_all-seed0.json")
    assert probe["status"] == "ok" and probe["transfer"]["source"] == "synth_ptbxl_all"
    assert probe["evaluated"]["eval_config_sha256"] and probe["config"]["device"] == "cpu"
    oracle = read_result(
        base / "oracle" / "synth_cpsc2018" / "transfer-linear_probe-100-from-synth_ptbxl_all-seed0.json"
    )
    assert oracle["scores"]["macro_auroc"] > probe["scores"]["macro_auroc"]
    assert "### Domain transfer" in (tmp_path / "leaderboard" / "README.md").read_text()
    assert run(cfg)["cells"] == {"transfer": 0}  # the cells' identity (options included) matches: skipped


def test_malformed_transfer_pair_is_a_config_error(tmp_path, compose_cfg) -> None:
    import torch

    from benchmarks.pipeline import ConfigError, run

    torch.save({"w": torch.zeros(12, 4)}, tmp_path / "toy.ckpt")
    cfg = compose_cfg([*_overrides(tmp_path, tmp_path / "toy.ckpt"), "eval.transfer.pairs=[synth_ptbxl_all]"])
    with pytest.raises(ConfigError, match="not source:target"):
        run(cfg)
