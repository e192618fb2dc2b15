"""What every mode starts a cell from: the result file's path and common fields, and the call the harness makes.

Why its own module: the harness dispatches to the modes (``ecg_eval.modes``) and every mode starts its result
here, so both import this module and neither imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecg_eval.results import SCHEMA_VERSION, environment, fraction_percent, result_path, seen_in_pretraining

DEFAULT_RESULTS_ROOT = Path("leaderboard") / "results"


def plain(config: Any) -> dict:
    """The caller's config as given: plain JSON data. A Hydra/OmegaConf config is refused (the runner converts its
    config once, ``benchmarks.pipeline.store.plain``; ecg-eval does not depend on omegaconf)."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise TypeError(
            f"config must be a plain dict, got {type(config).__name__} "
            "(convert a Hydra/OmegaConf config first: OmegaConf.to_container(cfg, resolve=True))"
        )
    return dict(config)


def expected_path(
    encoder: Any,
    task: Any,
    mode: str,
    fraction: float | None = None,
    seed: int = 0,
    *,
    results_root: str | Path = DEFAULT_RESULTS_ROOT,
    suite: str | None = None,
    method: str | None = None,
    options: dict | None = None,
) -> Path:
    """Where ``harness.evaluate`` writes this cell's result (``method`` defaults to ``encoder.card.name``)."""
    name = method or encoder.card.name
    return result_path(results_root, suite or task.suite, name, task.name, mode, fraction, seed, options=options)


def card_dict(encoder: Any) -> dict:
    card = encoder.card
    d = asdict(card) if hasattr(card, "__dataclass_fields__") else dict(vars(card))
    d["pretrained_on"] = list(d.get("pretrained_on") or ())
    return d


def base_result(encoder: Any, task: Any, mode: str, fraction: float | None, seed: int, suite: str) -> dict:
    """The fields every result file has (schema: docs/evaluation.md)."""
    from ecg_eval.protocol import declared_task_presets, input_spec_dict

    card = encoder.card
    pretrained = list(getattr(card, "pretrained_on", ()) or ())
    seen = seen_in_pretraining(pretrained, task.name, task.dataset)
    out = {
        "schema_version": SCHEMA_VERSION,
        "status": "ok",
        "method": card.name,
        "checkpoint_hash": card.checkpoint_hash,
        "encoder_card": card_dict(encoder),
        "input_spec": input_spec_dict(encoder.input_spec),
        "task": task.name,
        "dataset": task.dataset,
        "suite": suite,
        "mode": mode,
        "fraction": None if fraction is None else float(fraction),
        "fraction_percent": None if fraction is None else fraction_percent(fraction),
        "seed": int(seed),
        "split": "test",
        "classes": list(task.classes),
        "task_dropped_classes": dict(getattr(task, "dropped", {}) or {}),
        "pretrained_on": pretrained,
        "seen_in_pretraining": bool(seen),
        "seen_in_pretraining_datasets": seen,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": environment(),
    }
    if declared_task_presets(encoder):  # only then: other encoders' result files keep their exact fields
        from ecg_eval.embeddings import input_preparation

        out["input_preparation"] = input_preparation(encoder, task)
    return out


def start_result(
    encoder: Any,
    task: Any,
    mode: str,
    fraction: float | None,
    seed: int,
    *,
    results_root: Any = None,
    suite: str | None = None,
    method: str | None = None,
    options: dict | None = None,
) -> tuple[Path, dict]:
    """(result file path, its common fields) of one cell."""
    suite = suite or task.suite
    root = results_root if results_root is not None else DEFAULT_RESULTS_ROOT
    path = expected_path(
        encoder, task, mode, fraction, seed, results_root=root, suite=suite, method=method, options=options
    )
    result = base_result(encoder, task, mode, fraction, seed, suite)
    if method:
        result["method"] = method
    return path, result


@dataclass
class ModeCall:
    """One cell as the harness hands it to a mode's function (``ecg_eval.modes``): what to score, where its
    result goes, and the harness's settings. ``options`` are the caller's ``mode_options`` (e.g. ``split``,
    ``finetune_config``, ``reference_file``; docs/evaluation.md)."""

    encoder: Any
    task: Any
    mode: str
    fraction: float | None
    seed: int
    path: Path  # the result file; side files (predictions, ranks, reports) go beside it
    suite: str
    method: str | None = None  # the leaderboard row (None: the encoder card's name)
    options: dict = field(default_factory=dict)
    results_root: Any = None
    batch_size: int = 256
    embed_cache: Any = None
    split_loader: Any = None
    config: Any = None  # the caller's config, stored under ``config.caller``
    n_resamples: int = 1000
    bootstrap_seed: int = 0
    device: str = "cpu"  # as requested (``auto``/``cpu``/``cuda[:k]``); ``target`` is the resolved device
    precision: str = "32"
    prompt_file: str | Path | None = None
    templates: Sequence[str] | None = None
    split_commas: bool = False
    lowercase: bool = False
    probe_config: Any = None

    def __post_init__(self) -> None:
        plain(self.config)  # a config that is not plain data is refused before anything is scored

    @property
    def target(self) -> Any:
        from ecg_eval.embeddings import resolve_device

        return resolve_device(self.device)

    @property
    def name(self) -> str:
        """The results name: the leaderboard row."""
        return str(self.method or self.encoder.card.name)

    def start(self) -> dict:
        """The common fields of this cell's result (``base_result``, with the row name)."""
        result = base_result(self.encoder, self.task, self.mode, self.fraction, self.seed, self.suite)
        if self.method:
            result["method"] = self.method
        return result

    def caller_config(self) -> dict:
        return plain(self.config)


def not_applicable(result: dict, reason: str) -> dict:
    """Mark ``result`` as a "not applicable" cell (the encoder lacks what the mode needs): such a cell is written,
    never skipped or faked, so the leaderboard shows ``n/a``."""
    result.update(status="not_applicable", reason=reason, scores=None)
    return result
