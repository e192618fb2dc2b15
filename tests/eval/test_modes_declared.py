"""What used to be written per mode name is declared once in the mode registry (``ecg_eval.modes``) and read from
there: the probe kind, the leaderboard headings, the reported modes, whether reference rows are scored, and the
options of ``benchmarks/eval_modes.py``, so a mode registered from outside gets them too."""

from __future__ import annotations

import pytest

from ecg_eval import classification
from ecg_eval.leaderboard import Table
from ecg_eval.modes import Mode, get_mode, register_mode, reported_modes, unregister_mode


@pytest.fixture
def toy_mode():
    mode = register_mode(
        Mode(
            "toy_declared",
            run=lambda call: {},
            table=True,
            fraction=True,
            auroc=True,
            title="Toy, {fraction}%",
            reported=True,
            references=False,
            plan="per_fraction",
            cli_options=(("scale", float, 1.0, "a toy option"),),
            batch_size=8,
        )
    )
    yield mode
    unregister_mode(mode.name)


def test_probe_kind_is_the_declared_function() -> None:
    assert get_mode("linear_probe").function() is classification.score_probe
    assert get_mode("linear_probe_paper").function() is classification.score_paper_probe
    ours = get_mode("linear_probe").extra_settings({"probe_config": None})["probe"]
    paper = get_mode("linear_probe_paper").extra_settings({"probe_config": classification.ProbeConfig()})["probe"]
    assert ours["kind"] == "lbfgs" and paper["kind"] == "paper"
    assert paper == classification.PaperProbeConfig().to_dict() | {"kind": "paper"}  # ours' config is not its own


def test_headings_reported_and_references_come_from_the_declarations(toy_mode) -> None:
    assert Table("synthetic", "zero_shot", None).title == "Zero-shot"
    assert Table("synthetic", "linear_probe", "10").title == (
        "Linear probe, 10% of the training data — our L-BFGS probe"
    )
    assert Table("synthetic", "linear_probe_paper", "1").title == (
        "Linear probe, 1% of the training data — papers' probe (AdamW epochs)"
    )
    assert Table("synthetic", "toy_declared", "100").title == "Toy, 100%"
    assert reported_modes() == ("zero_shot", "linear_probe_paper", "transfer", "toy_declared")
    assert [m for m in ("zero_shot", "finetune", "toy_declared") if not get_mode(m).references] == [
        "finetune",
        "toy_declared",
    ]


def test_eval_modes_cli_options_are_derived_from_the_registry(toy_mode) -> None:
    from benchmarks import eval_modes

    args = eval_modes.parser(["--method", "m"]).parse_args(
        ["--method", "m", "--toy-declared-tasks", "a,b", "--toy-declared-scale", "2", "--fractions", "0.1,1.0"]
    )
    spec = get_mode("toy_declared")
    assert eval_modes.mode_options(args, spec) == {"scale": 2.0}
    assert eval_modes.cells(args, spec) == [("a", 0.1, 0, {}), ("a", 1.0, 0, {}), ("b", 0.1, 0, {}), ("b", 1.0, 0, {})]
    assert args.toy_declared__batch_size == 8
    # the project's modes keep the options and defaults the command had
    rg = get_mode("report_generation")
    assert rg.options_from_runner(eval_modes.mode_options(args, rg)) == {"generate_kw": {"beam_size": 3, "max_len": 40}}
    assert args.report_generation__batch_size == 32 and args.retrieval__batch_size == 256
    assert eval_modes.cells(args, get_mode("retrieval")) == [("synth_mimic", None, 0, {})]
    assert eval_modes.cells(args, get_mode("transfer"))[0] == (
        "synth_cpsc2018",
        0.1,
        0,
        {"source": "synth_ptbxl_all", "train_mode": "linear_probe"},
    )
