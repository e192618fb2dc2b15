"""The weights-only export at the end of each method stage (item 5).

``pretrain`` calls ``on_stage_complete`` on global rank 0 once a stage's output exists and before its completion
marker is written. A stage that ends in a Lightning checkpoint (full training state: optimizer moments, loops,
pickled hyperparameters; ~3 GB at MELP paper size) also gets ``<stage_dir>/export/``: its weights alone as
safetensors plus ``export.json``, so a stage's result can be kept, moved or shared without the training state and
loaded without unpickling. The self-contained model directory with config, text tower and card is written once at
the end of pretraining (``benchmarks/pipeline/checkpoints.py``, docs/checkpoints.md).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from ecg_data.integrity import CorruptFileError, safe_torch_load, sha256_file

log = logging.getLogger("ecgbench")
FORMAT = "ecglang-bench/stage-weights/1"
WEIGHTS = "model.safetensors"


def on_stage_complete(*, method: str, stage: str, stage_dir: Path, output: Path) -> Path | None:
    """Write ``<stage_dir>/export/`` for a checkpoint output; ``None`` for outputs that are model directories."""
    output = Path(output)
    if output.is_dir() or output.suffix != ".ckpt":
        log.info("%s/%s: output %s is already a model directory; no weights-only export", method, stage, output.name)
        return None
    ckpt: dict[str, Any] = safe_torch_load(output)  # weights_only, like every checkpoint the suite reads
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict) or not ckpt["state_dict"]:
        log.warning("%s/%s: %s holds no Lightning state_dict; no weights-only export", method, stage, output.name)
        return None
    return write_stage_weights(ckpt, stage_dir / "export", method=method, stage=stage, source=output.name)


def write_stage_weights(ckpt: dict[str, Any], out_dir: Path, *, method: str, stage: str, source: str) -> Path:
    """Atomically write ``out_dir/model.safetensors`` and ``out_dir/export.json`` from a checkpoint's state dict."""
    from safetensors.torch import save_file

    state = ckpt.get("state_dict")
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{source}: no state_dict to export")
    # clone: safetensors refuses tensors that share storage (tied weights); contiguous: it stores raw buffers
    tensors = {k: v.detach().clone().contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT, "method": method, "stage": stage})
    meta = {
        "format": FORMAT,
        "method": method,
        "stage": stage,
        "source": source,
        "class": ckpt.get("ecg_text_align_class"),
        "tensors": len(tensors),
        "parameters": int(sum(t.numel() for t in tensors.values())),
        "global_step": ckpt.get("global_step"),
        "sha256": sha256_file(tmp / WEIGHTS),
    }  # load_stage_weights refuses weights that differ
    (tmp / "export.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    log.info("%s/%s: weights-only export -> %s (%d tensors)", method, stage, out_dir, len(tensors))
    return out_dir


def load_stage_weights(export_dir: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a stage export (safetensors only: nothing is unpickled)."""
    from safetensors.torch import load_file

    path = Path(export_dir) / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{export_dir}: not a stage export (no {WEIGHTS})")
    meta = Path(export_dir) / "export.json"
    recorded = json.loads(meta.read_text(encoding="utf-8")).get("sha256") if meta.is_file() else None
    if recorded is not None and sha256_file(path) != recorded:
        raise CorruptFileError(
            f"{path}: sha256 differs from the one recorded in export.json when it was written (corrupt or replaced)"
        )
    return load_file(str(path))
