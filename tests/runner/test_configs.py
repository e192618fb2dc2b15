"""The config groups compose: every dataset/eval/pretrain_data file, and every paper recipe whose method exists."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
REAL_TASKS = {
    "ptbxl_super",
    "ptbxl_sub",
    "ptbxl_form",
    "ptbxl_rhythm",
    "ptbxl_all",
    "cpsc2018",
    "cpsc2018_full",
    "csn",
    "csn_exact",
    "g12ec",
    "code15",
    "code_test",
}
SYNTH_TASKS = {
    "synth_ptbxl_super",
    "synth_ptbxl_sub",
    "synth_ptbxl_form",
    "synth_ptbxl_rhythm",
    "synth_ptbxl_all",
    "synth_cpsc2018",
}


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml")))
def test_dataset_sets_list_known_tasks_of_one_suite(name, compose_cfg):
    cfg = compose_cfg(["method=toy", f"dataset={name}"])
    tasks = set(cfg.dataset.tasks)
    assert tasks and cfg.dataset.suite in ("synthetic", "real")
    assert tasks <= (SYNTH_TASKS if cfg.dataset.suite == "synthetic" else REAL_TASKS)


#: registered tasks without a configs/dataset/ file, each with the reason
NO_DATASET_CONFIG = {
    "mimic_iv_ecg": "a pretraining corpus: configs/pretrain_data/mimic_iv_ecg.yaml (retrieval and report generation "
    "score its held-out split)",
    "synth_mimic": "the synthetic pretraining corpus: configs/pretrain_data/synth_mimic.yaml",
}


def test_every_registered_task_has_a_dataset_config():
    """``dataset=<name>`` exists for every task of ``ecg_data.tasks.TASKS`` (in a file's tasks or transfer pairs),
    or the task is a pretraining corpus with its own pretrain_data file."""
    import yaml

    from ecg_data.tasks import TASKS

    covered: set[str] = set()
    for path in (CONFIGS / "dataset").glob("*.yaml"):
        cfg = yaml.safe_load(path.read_text())
        covered |= set(cfg.get("tasks") or [])
        covered |= {t for pair in cfg.get("transfer_pairs") or [] for t in str(pair).split(":")}
    pretrain = {yaml.safe_load(p.read_text())["task"] for p in (CONFIGS / "pretrain_data").glob("*.yaml")}
    for name in TASKS.names():
        if name in NO_DATASET_CONFIG:
            assert name in pretrain and name not in covered, name
        else:
            assert name in covered, f"task {name}: no configs/dataset/*.yaml lists it"
    for name in ("g12ec", "code15", "code_test"):
        assert yaml.safe_load((CONFIGS / "dataset" / f"{name}.yaml").read_text())["tasks"] == [name]


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


def test_no_dead_text_encoder_group(compose_cfg):
    """Issue 16: the text tower is part of each method's stage config; there is no top-level group that no
    stage reads (``text_encoder=...`` used to appear in --help and only change the run-store hash)."""
    from hydra.errors import ConfigCompositionException

    from benchmarks.pipeline.store import run_address

    assert not (CONFIGS / "text_encoder").exists()
    with pytest.raises(ConfigCompositionException):
        compose_cfg(["method=toy", "text_encoder=medcpt"])
    # '+key=value' only adds a plain value, which no stage reads and which is not part of the run address
    assert run_address(compose_cfg(["method=toy", "+text_encoder=medcpt"])) == run_address(compose_cfg(["method=toy"]))


def _specs(node, where=""):
    """Every mapping in a config that names a component (has a key ending in 'target' or an ECG-encoder name)."""
    if isinstance(node, dict):
        yield where, node
        for k, v in node.items():
            yield from _specs(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _specs(v, f"{where}[{i}]")


@pytest.mark.parametrize("path", sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.yaml")))
def test_components_are_named_by_target_only(path):
    """One component convention: ``_target_: dotted.path`` (no ``target: "m:attr"``, no registry ``name:`` spec)."""
    import yaml

    cfg = yaml.safe_load((CONFIGS / path).read_text())
    for where, d in _specs(cfg):
        assert "target" not in d, f"{path}{where}: 'target:' -- use _target_"
        assert ":" not in str(d.get("_target_", "")), f"{path}{where}: _target_ is a dotted path, not module:attr"
        if where.endswith(("ecg_encoder", "ecg_tower", "tower", "text_encoder")):
            assert "_target_" in d, f"{path}{where}: a component spec needs _target_"
