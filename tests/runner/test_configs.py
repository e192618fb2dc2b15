"""The config groups compose: every dataset/eval/pretrain_data file, and every paper recipe whose method exists."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
REAL_TASKS = {"ptbxl_super", "ptbxl_sub", "ptbxl_form", "ptbxl_rhythm", "ptbxl_all", "cpsc2018", "cpsc2018_full", "csn",
              "csn_exact"}
SYNTH_TASKS = {"synth_ptbxl_super", "synth_ptbxl_sub", "synth_ptbxl_form", "synth_ptbxl_rhythm", "synth_ptbxl_all",
               "synth_cpsc2018"}


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml")))
def test_dataset_sets_list_known_tasks_of_one_suite(name, compose_cfg):
    cfg = compose_cfg(["method=toy", f"dataset={name}"])
    tasks = set(cfg.dataset.tasks)
    assert tasks and cfg.dataset.suite in ("synthetic", "real")
    assert tasks <= (SYNTH_TASKS if cfg.dataset.suite == "synthetic" else REAL_TASKS)


def test_default_is_tiny_melp_on_synthetic_data(compose_cfg):
    if not (CONFIGS / "method" / "melp.yaml").is_file():
        pytest.skip("configs/method/melp.yaml (ecg-text-align) not present")
    cfg = compose_cfg([])
    assert cfg.method.name == "melp" and cfg.dataset.name == "synthetic" and cfg.pretrain_data.task == "synth_mimic"
    assert cfg.trainer.accelerator == "cpu"
    assert list(cfg.eval.fractions) == [0.01, 0.1, 1.0] and len(cfg.eval.probe_seeds) >= 3
    assert cfg.eval.bootstrap == 1000


@pytest.mark.parametrize("recipe", sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml")))
def test_paper_recipes_pretrain_on_mimic_and_score_real_tasks(recipe, compose_cfg):
    method = (CONFIGS / "experiment" / f"{recipe}.yaml").read_text().split("override /method: ")[1].split()[0]
    if not (CONFIGS / "method" / f"{method}.yaml").is_file():
        pytest.skip(f"configs/method/{method}.yaml not present on this branch")
    cfg = compose_cfg([f"experiment={recipe}"])
    assert cfg.dataset.suite == "real" and cfg.eval.bootstrap == 1000
    if cfg.method.stages:
        assert cfg.pretrain_data.task == "mimic_iv_ecg" and cfg.trainer.accelerator == "gpu"
    assert cfg.method.name.endswith("_paper")
