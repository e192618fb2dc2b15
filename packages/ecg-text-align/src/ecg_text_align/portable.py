"""Paths stored in a checkpoint's hyperparameters that survive moving or copying the run directory.

Why: a MELP / MERL / ESI checkpoint names its text tower by the absolute path the stage-1 model had when it was
trained (``text_encoder.path``). After ``runs/`` is moved or copied that path is gone (or, worse, still points
at the old copy). ``relocate_paths`` re-roots each such path next to the checkpoint: it looks for the longest
trailing part of the stored path (at least two components, e.g. ``text_lm/text_model``) under the checkpoint's
nearest ancestor directory that holds it. A path that exists *inside* the checkpoint's own run is always
preferred over the original location, so a copy never reads the original's files.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

#: hyperparameter keys holding file system paths that a rebuilt model reads
PATH_KEYS = ("path",)


def relocate(stored: str, anchor: Path, min_parts: int = 2) -> str:
    """``stored`` re-rooted under an ancestor of ``anchor`` (a checkpoint file), or unchanged if not found."""
    parts = Path(stored).parts
    if not Path(stored).is_absolute() or len(parts) < min_parts + 1:
        return stored
    for ancestor in Path(anchor).resolve().parents:
        for i in range(1, len(parts) - min_parts + 1):
            cand = ancestor.joinpath(*parts[i:])
            if cand.exists():
                return str(cand)
    return stored


def relocate_paths(hparams: MutableMapping[str, Any], anchor: str | Path) -> MutableMapping[str, Any]:
    """In place: every ``path`` entry of nested dicts (e.g. ``text_encoder.path``) relocated next to ``anchor``."""
    for key, value in list(hparams.items()):
        if isinstance(value, MutableMapping):
            relocate_paths(value, anchor)
        elif key in PATH_KEYS and isinstance(value, str) and value:
            hparams[key] = relocate(value, Path(anchor))
    return hparams
