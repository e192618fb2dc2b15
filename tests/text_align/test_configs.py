"""The YAML configs name callables that exist and keyword arguments they accept."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

from ecg_text_align.components import locate
from ecg_text_align.melp import MELP
from ecg_text_align.melp_stage0 import MELPStage0
from ecg_text_align.module import PretrainModule
from ecg_text_align.train import DEFAULTS, OWN_KEYS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
STAGE_KEYS = {"name", "_target_", "data", "zero_shot", "text_from", "ecg_from", "trainer_overrides"}


def _params(cls) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) | set(inspect.signature(PretrainModule.__init__).parameters)


@pytest.mark.parametrize("name", ["melp", "melp_paper", "melp_stage0"])
def test_method_config_targets_and_kwargs(name: str) -> None:
    cfg = yaml.safe_load((CONFIGS / "method" / f"{name}.yaml").read_text())
    assert cfg["name"] == name
    assert cfg["load"]["_target_"] == "ecg_text_align.module.PretrainModule.from_checkpoint"
    for st in cfg["stages"]:
        mod, fn = st["_target_"].rsplit(".", 1)
        assert callable(locate(f"{mod}:{fn}"))
        extra = set(st) - STAGE_KEYS
        if fn == "melp_stage":
            assert extra <= _params(MELP), extra - _params(MELP)
        elif fn == "ecg_stage0":
            assert extra <= _params(MELPStage0), extra - _params(MELPStage0)
        for k in ("text_from", "ecg_from"):
            if k in st:
                assert st[k] in [s["name"] for s in cfg["stages"]]
    melp = next((s for s in cfg["stages"] if s["_target_"].endswith("melp_stage")), None)
    if melp is not None:  # the paper's loss weights and optimiser at every size; the tiny recipe's lr is its own
        assert (melp["clip_weight"], melp["caption_weight"], melp["local_weight"]) == (1.0, 2.0, 0.2)
        assert (melp["betas"], melp["weight_decay"], melp["lead_mask_p"]) == ([0.9, 0.95], 0.2, 0.5)
        # docs/melp.md, "The tiny recipe": 2e-4 left the tiny run's contrastive loss at chance
        assert melp["lr"] == (2e-4 if name == "melp_paper" else 2e-3)


def _trainer(name: str) -> dict:
    """A trainer config with its Hydra ``defaults:`` (files of the same group, then ``_self_``) merged in, as Hydra
    composes it (the keys are flat but ``perf``)."""
    raw = yaml.safe_load((CONFIGS / "trainer" / f"{name}.yaml").read_text())
    out: dict = {}
    for entry in raw.pop("defaults", ["_self_"]):
        part = raw if entry == "_self_" else _trainer(entry)
        out.update({k: {**out.get(k, {}), **v} if isinstance(v, dict) else v for k, v in part.items()})
    return out


@pytest.mark.parametrize("name", ["cpu", "gpu", "ddp", "ddp_multinode"])
def test_trainer_configs_only_use_known_keys(name: str) -> None:
    cfg = _trainer(name)
    assert set(cfg) <= set(DEFAULTS) | OWN_KEYS
    assert cfg["precision"] == ("32-true" if name == "cpu" else "bf16-mixed")
