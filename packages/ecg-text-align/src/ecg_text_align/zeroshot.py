"""Validation-time zero-shot scoring (model selection only; the benchmark's scoring lives in ecg-eval).

Class embeddings come from ``ecg_eval.zeroshot.class_embeddings``, the harness's one implementation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ecg_eval.metrics import multilabel_auroc


def cosine_scores(ecg_emb: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
    return F.normalize(ecg_emb.float(), dim=-1) @ class_emb.t()


def macro_auroc(scores: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> tuple[float, list[str]]:
    """Mean per-class AUROC over classes that have both a positive and a negative; returns (auroc, excluded).

    ``ecg_eval.metrics.multilabel_auroc`` (the harness's AUROC) does the work; NaN (not None) when no class
    is evaluable, so the caller's ``np.isnan`` check skips logging as before."""
    report = multilabel_auroc(np.asarray(labels), np.asarray(scores), list(classes))
    return (report.macro if report.macro is not None else float("nan")), list(report.excluded)
