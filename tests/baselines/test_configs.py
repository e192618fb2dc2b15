"""Method YAMLs, paper recipes and the registry agree with the code they name."""

from __future__ import annotations

import inspect

import pytest
import yaml
from bl_e2e import REPO, compose
from hydra.utils import get_object

from baselines.registry import CONFIG_VARIANTS, METHODS, register_method
from ecg_data.registry import UnknownNameError
from ecg_text_align.components import locate
from ecg_text_align.module import PretrainModule

OURS = ["merl", "esi", "heartlang", "random_init"]
PAPER = {
    "merl_paper": ("merl", "resnet18_1d", "merl"),
    "esi_paper": ("esi", "convnextv2_1d", "base"),
    "heartlang_paper": ("heartlang", "heartlang", "base"),
}
#: stage function -> the model class whose __init__ takes its remaining keyword arguments
MODEL_OF = {
    "baselines.merl.stages.merl_stage": "baselines.merl.model:MERL",
    "baselines.esi.stages.esi_stage": "baselines.esi.model:ESI",
    "baselines.heartlang.stages.vqhbr_stage": "baselines.heartlang.model:HeartLangVQ",
    "baselines.heartlang.stages.msm_stage": "baselines.heartlang.model:HeartLangMSM",
}


def _params(fn) -> set[str]:
    return {p.name for p in inspect.signature(fn).parameters.values() if p.kind is not p.VAR_KEYWORD}


def _check_stage_keys(method_cfg: dict) -> None:
    common = _params(PretrainModule.__init__)
    for st in method_cfg["stages"]:
        target = st["_target_"]
        fn = get_object(target)
        keys = set(st) - {"name", "_target_"}
        accepted = _params(fn)
        if target in MODEL_OF:
            accepted |= _params(locate(MODEL_OF[target]).__init__) | common
        elif "text_lm_stage" in target:
            from ecg_text_align.lm import train_text_lm

            accepted |= _params(train_text_lm)
        unknown = keys - accepted
        assert not unknown, f"{method_cfg['name']} stage {st['name']}: keys {unknown} reach no parameter of {target}"


def test_every_method_yaml_is_registered_or_documented():
    names = sorted(p.stem for p in (REPO / "configs" / "method").glob("*.yaml"))
    assert set(OURS) <= set(names)
    for n in names:
        cfg = yaml.safe_load((REPO / "configs" / "method" / f"{n}.yaml").read_text())
        assert cfg["name"] == n, f"configs/method/{n}.yaml: name {cfg['name']!r} differs from the file name"
        assert n in METHODS or CONFIG_VARIANTS.get(n) in METHODS, f"{n} is neither in METHODS nor a documented variant"
    for n in METHODS:
        assert n in names, f"METHODS has {n} but configs/method/{n}.yaml is missing"
        METHODS.get(n)  # the lazy target imports


def test_register_method_for_users():
    from ecg_data.registry import LazyRegistry

    with pytest.raises(UnknownNameError, match="valid names: .*merl"):
        METHODS.get("nope")
    register_method("user_toy_registry_test", "baselines.merl.model:MERL")
    try:
        assert METHODS.get("user_toy_registry_test") is METHODS.get("merl")
        with pytest.raises(ValueError, match="already registered"):
            register_method("user_toy_registry_test", "x:y")
    finally:
        METHODS._entries.pop("user_toy_registry_test")  # keep the module-level registry clean for other tests
    assert isinstance(METHODS, LazyRegistry)


@pytest.mark.parametrize("name", OURS)
def test_tiny_method_configs_reach_their_code(name):
    cfg = compose([f"method={name}"])
    from omegaconf import OmegaConf

    m = OmegaConf.to_container(cfg.method, resolve=True)
    assert m["zero_shot"] == (name in ("merl", "esi"))
    _check_stage_keys(m)
    assert callable(get_object(m["load"]["_target_"]))


@pytest.mark.parametrize("experiment", sorted(PAPER))
def test_paper_recipes_compose_with_sizes_and_sources(experiment):
    from omegaconf import OmegaConf

    from ecg_encoders.summary import encoder_rows

    cfg = compose([f"experiment={experiment}"])
    m = OmegaConf.to_container(cfg.method, resolve=True)
    base, encoder, preset = PAPER[experiment]
    assert m["name"] == experiment and cfg.pretrain_data.task == "mimic_iv_ecg" and cfg.trainer.strategy == "ddp"
    assert list(cfg.dataset.tasks) == ["ptbxl_super", "ptbxl_sub", "ptbxl_form", "ptbxl_rhythm", "cpsc2018", "csn"]
    _check_stage_keys(m)
    text = (REPO / "configs" / "method" / f"{experiment}.yaml").read_text()  # the method at paper size
    for key in ("lr:", "betas:", "weight_decay:"):  # every optimiser value carries a source comment
        for line in text.splitlines():
            if line.strip().startswith(key):
                assert "#" in line, f"{experiment}: {line.strip()} has no source comment"
    # the paper preset of the ECG tower is what ecg_encoders.summary counts
    rows = {(r["encoder"], r["preset"]): r for r in encoder_rows([encoder], include_tiny=False)}
    assert rows[(encoder, preset)]["status"] == "ok" and rows[(encoder, preset)]["params"] > 1_000_000


def test_summary_cli_lists_the_paper_presets(capsys):
    from ecg_encoders.summary import main

    main(["--no-tiny", "--encoders", "resnet18_1d", "convnextv2_1d", "heartlang"])
    out = capsys.readouterr().out
    for enc, preset, n in [
        ("resnet18_1d", "merl", "4,389,760"),
        ("convnextv2_1d", "base", "85,558,528"),
        ("heartlang", "base", "38,262,528"),
    ]:
        line = next(l for l in out.splitlines() if enc in l and f" {preset} " in l)
        assert n in line or n.replace(",", "") in line, line
