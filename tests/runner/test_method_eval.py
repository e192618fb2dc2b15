"""A method's evaluation defaults come from its config (``eval:`` in configs/method/<name>.yaml), never from the
row name: runs whose rows are ``merl_paper``, ``heartlang_paper`` or ``melp-pt1`` (``method=melp seed=1``) get their
own method's fine-tuning recipe, and a run's ``eval.finetune.<field>`` still wins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from ecg_eval.finetune import FinetuneConfig

MERL = {"lr": 1e-3, "weight_decay": 1e-4, "batch_size": 16, "max_epochs": 100}  # MERL finetune/sub_script/ptbxl/*.sh
HEARTLANG = {  # HeartLang run_class_finetuning.py defaults
    "lr": 5e-4,
    "layer_decay": 0.9,
    "weight_decay": 0.05,
    "batch_size": 64,
    "max_epochs": 30,
    "warmup_epochs": 5,
}


def _passed_to_harness(cfg: DictConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, cell_options=()):
    """The row name and the ``mode_options`` the runner's backend hands ``ecg_eval.harness.evaluate`` for one cell."""
    import ecg_eval.harness
    from benchmarks.pipeline.evaluate import Cell
    from benchmarks.pipeline.runner import apply_method_eval, build_backend, results_name

    cfg.run_store, cfg.results_dir, cfg.leaderboard_dir = str(tmp_path / "runs"), str(tmp_path / "r"), str(tmp_path)
    apply_method_eval(cfg)
    seen: dict = {}

    def fake_evaluate(encoder, task, mode, fraction, seed, **kw):
        seen.update(kw)
        return {"result_path": str(tmp_path / "out.json")}

    monkeypatch.setattr(ecg_eval.harness, "evaluate", fake_evaluate)
    backend = build_backend(cfg)
    monkeypatch.setattr(backend, "_task", lambda name: name, raising=False)
    backend.evaluate(
        None,
        suite="real",
        method=results_name(cfg),
        cell=Cell("ptbxl_super", mode, 0.01, 0, tuple(cell_options)),
        out_path=tmp_path / "out.json",
    )
    return results_name(cfg), dict(seen.get("mode_options") or {})


@pytest.mark.parametrize(
    ("overrides", "row", "recipe"),
    [
        (["experiment=merl_paper"], "merl_paper", MERL),
        (["experiment=heartlang_paper"], "heartlang_paper", HEARTLANG),
        (["method=melp", "seed=1"], "melp-pt1", {}),  # MELP's recipe is FinetuneConfig()'s defaults
        (["method=merl", "seed=1"], "merl-pt1", MERL),
        (["experiment=heartlang_paper", "results_name=my_row"], "my_row", HEARTLANG),
    ],
)
def test_finetune_recipe_is_the_methods_whatever_the_row(
    compose_cfg: Callable[..., DictConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides, row, recipe
) -> None:
    cfg = compose_cfg([*overrides, "stages=[pretrain,finetune]"])
    name, options = _passed_to_harness(cfg, tmp_path, monkeypatch, "finetune")
    assert name == row
    got = FinetuneConfig.from_option(options.get("finetune_config"))
    assert got == FinetuneConfig(**recipe)


def test_a_run_setting_wins_over_the_methods_recipe(
    compose_cfg: Callable[..., DictConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = compose_cfg(["experiment=heartlang_paper", "+eval.finetune.max_epochs=2", "seed=1"])
    _, options = _passed_to_harness(cfg, tmp_path, monkeypatch, "finetune")
    assert FinetuneConfig.from_option(options["finetune_config"]) == FinetuneConfig(**{**HEARTLANG, "max_epochs": 2})


def test_transfer_finetune_gets_the_methods_recipe(
    compose_cfg: Callable[..., DictConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = compose_cfg(["experiment=merl_paper", "eval.transfer.train_modes=[finetune]", "seed=1"])
    cell = (("source", "ptbxl_all"), ("train_mode", "finetune"))
    name, options = _passed_to_harness(cfg, tmp_path, monkeypatch, "transfer", cell)
    assert name == "merl_paper-pt1"
    assert FinetuneConfig.from_option(options["finetune_config"]) == FinetuneConfig(**MERL)
    # without the finetune train mode the transfer cells' options (and identity) are unchanged
    cfg = compose_cfg(["experiment=merl_paper"])
    _, options = _passed_to_harness(cfg, tmp_path, monkeypatch, "transfer", cell)
    assert "finetune_config" not in options


def test_eval_modes_cli_reads_the_methods_recipe_from_its_yaml() -> None:
    """``benchmarks/eval_modes.py --method-config``: the same recipe, a paper size through its ``defaults:``."""
    from benchmarks.eval_modes import _method_eval

    configs = Path(__file__).resolve().parents[2] / "configs" / "method"
    assert FinetuneConfig.from_option(_method_eval(str(configs / "merl_paper.yaml"))["finetune"]) == FinetuneConfig(
        **MERL
    )
    assert FinetuneConfig.from_option(_method_eval(str(configs / "heartlang.yaml"))["finetune"]) == FinetuneConfig(
        **HEARTLANG
    )
    assert _method_eval(None) == {} and "finetune" not in _method_eval(str(configs / "esi.yaml"))


def test_eval_modes_cli_gives_transfer_the_recipe_as_the_runner_does() -> None:
    """The CLI goes through the runner's ``apply_method_eval``: transfer's cells get the method's recipe only with the
    finetune train mode (without it their options, and so their identity, are unchanged), and the command line's
    options win over the method's."""
    from benchmarks.eval_modes import eval_sections, parser

    yaml = str(Path(__file__).resolve().parents[2] / "configs" / "method" / "merl_paper.yaml")
    base = ["--method", "merl_paper", "--method-config", yaml]
    with_ft = eval_sections(parser().parse_args([*base, "--transfer-train-modes", "finetune,zero_shot"]), ["transfer"])
    assert FinetuneConfig.from_option(with_ft["transfer"]["finetune_config"]) == FinetuneConfig(**MERL)
    without = eval_sections(parser().parse_args(base), ["transfer", "report_generation"])
    assert "finetune_config" not in without["transfer"]
    assert without["report_generation"]["beam_size"] == 3  # a command-line default, as before
    beam = eval_sections(parser().parse_args([*base, "--report-generation-beam-size", "5"]), ["report_generation"])
    assert beam["report_generation"]["beam_size"] == 5
