"""Checkpoints in and out of a run: what ``ckpt=`` names, and the model directory a finished run exports.

``ckpt=`` accepts a project (Lightning) checkpoint, an exported model directory (``save_pretrained``), an
authors' released file or directory (``ecg_encoders.released``) or a hub id ``hf:ORG/NAME`` (resolved from the
local Hugging Face cache when offline). ``classify_ckpt`` says which, before any weights are loaded for
scoring; a released file's row is named ``<method> (released weights)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from benchmarks.pipeline.errors import ConfigError

log = logging.getLogger("ecgbench")
EXPORT_DIR = "model"
PROJECT_SUFFIXES = (".ckpt",)


@dataclass(frozen=True)
class CkptSource:
    kind: str  # "project" | "export" | "released"
    path: Path
    arg: str  # what the user passed
    method: str | None = None  # released: the method the weights belong to (from the format's manifest)
    fmt: str | None = None


def classify_ckpt(arg: str) -> CkptSource:
    """One place that decides what ``ckpt=`` is; bad input -> ``ConfigError`` naming the argument."""
    from ecg_encoders.released import ReleasedFormatError, WeightsNotAvailableError

    s = str(arg)
    if s.startswith("hf:"):
        from ecg_text_align.pretrained import resolve_hub_id

        try:
            path = resolve_hub_id(s)
        except WeightsNotAvailableError as err:
            raise ConfigError(f"ckpt={s}: {err}") from None
    else:
        path = Path(s).expanduser().resolve()
        if not path.exists():
            raise ConfigError(f"ckpt={s}: no such file or directory")
    from ecg_text_align.pretrained import is_export_dir

    if path.is_file() and path.suffix in PROJECT_SUFFIXES:
        return CkptSource("project", path, s)
    if path.is_dir() and is_export_dir(path):
        return CkptSource("export", path, s)
    from ecg_encoders.released import detect_format, load_state, manifest

    try:
        fmt = detect_format(load_state(path), str(path))
    except (ReleasedFormatError, WeightsNotAvailableError, TypeError) as err:
        raise ConfigError(
            f"ckpt={s}: not a project checkpoint (*.ckpt), an exported model directory or a known "
            f"released format: {err}"
        ) from None
    return CkptSource("released", path, s, method=str(manifest(fmt).get("method", fmt)), fmt=fmt)


def row_name(src: CkptSource, method_name: str) -> str | None:
    """The results name a ``ckpt=`` source implies (None: keep the method's own name)."""
    from ecg_text_align.released import RELEASED_SUFFIX

    return f"{src.method or method_name}{RELEASED_SUFFIX}" if src.kind == "released" else None


def load_external(src: CkptSource, name: str | None = None, text_tokenizer: str | None = None) -> Any:
    """Exported directory -> ``from_pretrained``; released -> ``ReleasedEncoder`` (its card records the source), with
    ``encode_text`` when the file holds its text tower and ``text_tokenizer`` names its tokenizer (a local directory
    or a hub name in the local cache)."""
    from ecg_encoders.released import ReleasedFormatError
    from ecg_text_align.pretrained import from_pretrained
    from ecg_text_align.released import TextTokenizerError, load_released

    try:
        if src.kind == "export":
            return from_pretrained(src.path)
        return load_released(src.path, fmt=src.fmt, name=name, text_tokenizer=text_tokenizer)
    except (ReleasedFormatError, TextTokenizerError) as err:
        raise ConfigError(f"ckpt={src.arg}: {err}") from None


def _stage_steps(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Optimiser steps of each stage that wrote a Lightning checkpoint (for the model card)."""
    from benchmarks.pipeline.store import marker_output, read_marker
    from ecg_data.integrity import safe_torch_load

    steps: dict[str, Any] = {}
    for st in cfg.method.stages:
        marker = read_marker(run_dir / st.name)
        out = marker_output(run_dir / st.name, marker) if marker else None
        if out is not None and Path(out).is_file() and Path(out).suffix == ".ckpt":
            ck = safe_torch_load(out, mmap=True)
            steps[str(st.name)] = int(ck.get("global_step", 0))
        elif out is not None:
            steps[str(st.name)] = "done"
    return steps


def export_run(cfg: DictConfig, load: Callable[[], Any], run_dir: Path, checkpoint_hash: str) -> Path | None:
    """Write ``<run_dir>/model`` (``save_pretrained``) for a finished run. ``load`` returns the encoder (the
    method's own loader). An encoder that cannot be exported (a user's object without ``export_spec``, a
    test stand-in) is logged as skipped with the reason: the export never fails a finished pretraining."""
    from ecg_text_align.pretrained import save_pretrained

    out = run_dir / EXPORT_DIR
    try:
        encoder = load()
    except Exception as err:  # noqa: BLE001 -- reported, the run's checkpoint stays usable
        log.warning("export: skipped (the encoder did not load: %s: %s)", type(err).__name__, err)
        return None
    card = {
        "method": str(cfg.method.name),
        "name": str(cfg.method.name),
        "description": str(cfg.method.get("description") or ""),
        "pretrained_on": [str(cfg.pretrain_data.name)] if cfg.method.stages else [],
        "steps": _stage_steps(cfg, run_dir),
        "checkpoint_hash": checkpoint_hash,
        "run": run_dir.name,
        "source": (
            "pretrained with ecglang-bench (benchmarks/run.py)"
            if cfg.method.stages
            else "random initialisation from a fixed seed, no pretraining"
        ),
    }
    curves = {str(st.name): run_dir / str(st.name) / "learning_curve.png" for st in (cfg.method.stages or [])}
    curves = {name: png for name, png in curves.items() if png.is_file()}
    card["learning_curves"] = {name: f"learning_curve-{name}.png" for name in curves}
    try:  # the figures the card links to travel inside the model directory
        save_pretrained(
            encoder, out, card=card, extra_files={card["learning_curves"][name]: png for name, png in curves.items()}
        )
    except TypeError as err:  # not exportable
        log.warning("export: skipped (%s)", err)
        return None
    log.info("export: ran -> %s", out)
    return out


def update_export_card(run_dir: Path | None, results_dir: str | Path, checkpoint_hash: str) -> None:
    """After scoring: put this run's leaderboard cells into its exported model card."""
    if run_dir is None or not (Path(run_dir) / EXPORT_DIR).is_dir():
        return
    from ecg_text_align.pretrained import update_card

    if update_card(Path(run_dir) / EXPORT_DIR, results_dir, checkpoint_hash):
        log.info("export: model card updated with this run's scores (%s)", Path(run_dir) / EXPORT_DIR / "README.md")
