"""The evaluation modes: each declared once, here, and read by everything that needs to know the modes.

Who reads it: ``harness.evaluate`` (which function scores a cell, what goes into its evaluation identity),
``results`` (file names, the score keys a result must have), the leaderboard (which table or section shows a
mode), and the runner (``benchmarks/pipeline/evaluate.py``: the stages, their cells and the ``eval.<mode>`` options
each mode reads) and ``benchmarks/eval_modes.py``.

A mode's function takes one ``ecg_eval.cells.ModeCall`` and returns the cell's result dict (it may write side
files beside ``call.path``: predictions, ranks, reports); the harness stamps the result (evaluation identity,
device, coverage, input preparation) and writes it once. Functions and leaderboard sections are named by dotted
path and imported on first use, so this module imports nothing of ecg-eval (results.py reads it) and adding a
mode from outside the package needs no edit here::

    from ecg_eval.modes import Mode, register_mode
    register_mode(Mode("my_mode", run="my_package.my_mode.score", score_keys=("my_score",)))

This module must stay free of torch, Hydra and OmegaConf (CI's drift environment imports it with ecg-data and
ecg-eval only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ecg_data.registry import UnknownNameError, locate

#: How the runner plans a mode's cells (benchmarks/pipeline/evaluate.py ``plan``):
#: ``per_task``: one cell per task of the dataset and seed of ``eval.zero_shot_seeds``, no fraction;
#: ``per_fraction``: one cell per task, fraction (``eval.<mode>.fractions`` or ``eval.fractions``) and probe seed;
#: ``per_corpus``: one cell (seed 0) on the pretraining corpus' task (its held-out ECG-report pairs);
#: ``per_pair``: one cell per source:target pair, train mode, and fraction/seed as the train mode has them.
PLANS = ("per_task", "per_fraction", "per_corpus", "per_pair")
#: ``eval.<mode>`` keys the runner plans with; every other key of ``eval.<mode>`` is a mode option
PLANNING_KEYS = ("tasks", "fractions", "pairs", "train_modes")


@dataclass(frozen=True)
class Mode:
    """One evaluation mode.

    ``run``: the scoring function (a dotted path ``"pkg.module.func"`` or the function), ``run(call: ModeCall) -> dict``.
    ``fraction``: cells have a training fraction; files are ``<mode>-<percent>-seed<k>.json``, else
    ``<mode>-seed<k>.json`` (``file_name`` overrides both: ``file_name(fraction, seed, options) -> str``).
    ``auroc``: scored by macro AUROC (``scores.macro_auroc``/``per_class_auroc``; the per-class tables show it);
    ``score_keys``: the other ``scores.*`` keys a ``status: ok`` result must have.
    ``table``: shown in the leaderboard's main AUROC tables (zero-shot, the probes); ``section``: dotted path of a
    function ``(results, suite) -> markdown`` rendering its own leaderboard section (None: none).
    ``plan``: how the runner plans its cells (``PLANS``); ``stage``: runnable as a stage of ``benchmarks/run.py``.
    ``runner_options``: ``eval.<mode>`` (a plain dict, planning keys removed) -> the harness's ``mode_options``
    (default: the dict as it is); ``settings``: the evaluation settings the mode adds to its cells' identity,
    ``settings(kw) -> dict`` with ``kw`` the keyword arguments of ``harness.evaluation_settings``.
    ``input_preparation``: the harness records the task's resolved input preparation on an ``ok`` result
    (transfer, with two tasks, records both itself).
    ``title``: the heading of its main-table section (``table`` modes; ``{fraction}`` is replaced by the percent);
    ``reported``: the papers report numbers in this mode, so the reference file (``leaderboard/reference.yaml``)
    may name it; ``references``: the reference rows (oracle, chance: ``ecg_eval.references``) are scored in it
    (False for a mode that trains the encoder, which a reference row does not have).
    ``cli_options``: the options ``benchmarks/eval_modes.py`` offers for it, ``((name, type, default, help), ...)``,
    each becoming ``--<mode>-<name>`` (with ``-`` for ``_``) and the key ``name`` of its ``eval.<mode>`` section;
    ``batch_size``: the encoder batch size that command uses for it where the default (256) does not fit.
    """

    name: str
    run: str | Callable[..., dict]
    fraction: bool = False
    auroc: bool = False
    score_keys: tuple[str, ...] = ()
    table: bool = False
    section: str | None = None
    plan: str = "per_task"
    stage: bool = True
    runner_options: str | Callable[[dict], dict] | None = None
    settings: str | Callable[[dict], dict] | None = None
    file_name: str | Callable[..., str] | None = None
    input_preparation: bool = True
    title: str | None = None
    reported: bool = False
    references: bool = True
    cli_options: tuple[tuple[str, type, Any, str], ...] = ()
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.plan not in PLANS:
            raise ValueError(f"mode {self.name!r}: plan {self.plan!r} not in {PLANS}")

    def function(self) -> Callable[..., dict]:
        return _load(self.run)

    def required_scores(self) -> tuple[str, ...]:
        return (("macro_auroc", "per_class_auroc") if self.auroc else ()) + tuple(self.score_keys)

    def options_from_runner(self, section: dict | None) -> dict:
        """``eval.<mode>`` (plain data) -> the ``mode_options`` the harness passes to this mode."""
        raw = {k: v for k, v in dict(section or {}).items() if k not in PLANNING_KEYS}
        return _load(self.runner_options)(raw) if self.runner_options else raw

    def extra_settings(self, kw: dict) -> dict:
        return _load(self.settings)(kw) if self.settings else {}

    def table_title(self, fraction: str | None) -> str:
        """Its heading in the leaderboard's main tables (the mode's name where it declares no ``title``)."""
        return (self.title or self.name).format(fraction=fraction)


def _load(target: Any) -> Any:
    return locate(target) if isinstance(target, str) else target


_MODES: dict[str, Mode] = {}


def register_mode(mode: Mode, *, overwrite: bool = False) -> Mode:
    """Add a mode (from anywhere: a method's module, a test, a plugin); ``overwrite`` replaces one of that name."""
    if mode.name in _MODES and not overwrite:
        raise ValueError(f"evaluation mode {mode.name!r} is already registered (pass overwrite=True to replace it)")
    _MODES[mode.name] = mode
    return mode


def unregister_mode(name: str) -> None:
    _MODES.pop(name, None)


def get_mode(name: str) -> Mode:
    if name not in _MODES:
        raise UnknownNameError(f"unknown evaluation mode {name!r}; valid modes: {', '.join(_MODES)}")
    return _MODES[name]


def mode_names() -> tuple[str, ...]:
    """Every registered mode, in the order the runner runs them and the leaderboard shows them."""
    return tuple(_MODES)


def all_modes() -> Iterator[Mode]:
    return iter(tuple(_MODES.values()))


def is_fraction_mode(name: str) -> bool:
    return name in _MODES and _MODES[name].fraction


def reported_modes() -> tuple[str, ...]:
    """The modes the papers report numbers in (``Mode.reported``): what a reference file's entries may name."""
    return tuple(m.name for m in _MODES.values() if m.reported)


# --- the project's modes ----------------------------------------------------------------------------------------
for _mode in (
    Mode(
        "zero_shot",
        run="ecg_eval.classification.score_zero_shot",
        auroc=True,
        table=True,
        title="Zero-shot",
        reported=True,  # the papers' zero-shot tables
        section="ecg_eval.leaderboard_modes.zero_shot_threshold_section",
        plan="per_task",
        settings="ecg_eval.classification.zero_shot_settings",
    ),
    Mode(
        "linear_probe",
        run="ecg_eval.classification.score_probe",  # ours: L-BFGS on encode_ecg
        fraction=True,
        auroc=True,
        table=True,
        title="Linear probe, {fraction}% of the training data — our L-BFGS probe",
        plan="per_fraction",
        settings="ecg_eval.classification.probe_settings",
    ),
    Mode(
        "linear_probe_paper",
        run="ecg_eval.classification.score_paper_probe",  # the papers': AdamW epochs on the probe feature
        fraction=True,
        auroc=True,
        table=True,
        title="Linear probe, {fraction}% of the training data — papers' probe (AdamW epochs)",
        reported=True,  # the papers report their own epoch-loop probe
        plan="per_fraction",
        settings="ecg_eval.classification.paper_probe_settings",
    ),
    Mode(
        "finetune",
        run="ecg_eval.finetune.score_finetune",
        fraction=True,
        auroc=True,
        section="ecg_eval.leaderboard_modes.finetune_section",
        plan="per_fraction",
        runner_options="ecg_eval.finetune.runner_options",
        references=False,  # fine-tuning trains an encoder: a reference row has none
    ),
    Mode(
        "transfer",
        run="ecg_eval.transfer.score_transfer",
        auroc=True,
        section="ecg_eval.leaderboard_modes.transfer_section",
        plan="per_pair",
        settings="ecg_eval.transfer.transfer_settings",
        file_name="ecg_eval.transfer.transfer_file_name",
        input_preparation=False,
        reported=True,  # zero-shot under distribution shift (values keyed source->target)
    ),
    Mode(
        "retrieval",
        run="ecg_eval.retrieval.score_retrieval",
        score_keys=("ecg_to_report", "report_to_ecg"),
        section="ecg_eval.leaderboard_modes.retrieval_section",
        plan="per_corpus",
    ),
    Mode(
        "report_generation",
        run="ecg_eval.report_generation.score_report_generation",
        score_keys=("model",),
        section="ecg_eval.leaderboard_modes.report_generation_section",
        plan="per_corpus",
        runner_options="ecg_eval.report_generation.runner_options",
        cli_options=(
            ("beam_size", int, 3, "beam width (ours: 3)"),
            ("max_len", int, 40, "longest generated report, in tokens"),
            ("reference_file", str, None, "published report split (e.g. MELP's ptbxl_test.csv)"),
        ),
        batch_size=32,  # beam search holds a beam per record
    ),
):
    register_mode(_mode)
del _mode
