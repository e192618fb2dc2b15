"""The call site for the weights-only export at the end of each method stage (the checkpoint issue builds it).

``pretrain`` calls ``on_stage_complete`` on global rank 0 once a stage's output exists and before its
completion marker is written. Today it does nothing: the export format and ``from_pretrained`` belong to the
export work; replace the body (keep the signature) to write ``<stage_dir>/export/`` next to the checkpoint.
"""

from __future__ import annotations

from pathlib import Path


def on_stage_complete(*, method: str, stage: str, stage_dir: Path, output: Path) -> None:
    """Hook: ``output`` is the stage's result (a Lightning checkpoint or a model directory). No-op for now."""
    return None
