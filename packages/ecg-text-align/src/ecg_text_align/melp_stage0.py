"""MELP stage 0: ECG-only pretraining of the ECG tower (wav2vec 2.0 + CMSC + random lead masking).

As ``ECGFMModel.shared_step`` in HKU-MedAI/MELP: the wav2vec2 masked-prediction loss plus CMSC
(contrastive multi-segment coding, CLOCS, Kiyasseh et al. 2021): two segments of the same record are
positives, every other record's segment in the (gathered) batch is a negative; the segment embedding is the
tower's pooled (mean-of-beats) embedding, contrasted with a learnable, clamped (<= 100) logit scale.
Lead masking (p = 0.5) comes from the ``PretrainModule`` base. The resulting ``ecg_tower.*`` weights
initialise MELP's ECG tower (``MELP(ecg_tower_ckpt=...)``; the contrast pooler is not carried over, as in MELP).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ecg_text_align.components import build
from ecg_text_align.distributed import gather_with_grad
from ecg_text_align.losses import LogitScale
from ecg_text_align.melp import DEFAULT_ECG
from ecg_text_align.module import PretrainModule


def cmsc_loss(seg1: torch.Tensor, seg2: torch.Tensor, logit_scale: torch.Tensor, *, gather: bool = True) -> torch.Tensor:
    """Symmetric InfoNCE where segment 1 and 2 of the same record are the positive pair."""
    a, b = F.normalize(seg1, dim=-1), F.normalize(seg2, dim=-1)
    if gather:
        a, b = gather_with_grad(a), gather_with_grad(b)
    logits = logit_scale.clamp(max=100.0) * a @ b.t()
    labels = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


class MELPStage0(PretrainModule):
    method_name = "melp_stage0"

    def __init__(
        self,
        ecg_tower: Mapping[str, Any] = DEFAULT_ECG,
        n_segments: int = 2,  # CMSC: the record split into 2 contiguous segments
        cmsc_weight: float = 1.0,  # MELP ecgfm_model.py: loss = recon_loss + cmsc_loss
        w2v_options: Mapping[str, Any] | None = None,
        **common: Any,
    ):
        common.setdefault("lead_mask_p", 0.5)
        super().__init__(**common)
        self.save_hyperparameters()
        from ecg_encoders.ecg.w2v_pretrain import Wav2Vec2Pretrainer

        self.ecg_tower = build(dict(ecg_tower))
        if callable(getattr(self.ecg_tower, "drop_caption_pooler", None)):
            self.ecg_tower.drop_caption_pooler()  # unused by stage 0; DDP needs every parameter used
        # MELP optimises the contrastive term of wav2vec2 only (see ecg_encoders.ecg.w2v_pretrain docstring)
        opts = {"diversity_weight": 0.0, "features_pen_weight": 0.0, **(w2v_options or {})}
        self.w2v = Wav2Vec2Pretrainer(self.ecg_tower.encoder, **opts)
        self.logit_scale = LogitScale()
        if n_segments != 2:
            raise ValueError("CMSC here uses exactly 2 segments per record")
        self.n_segments, self.cmsc_weight = n_segments, cmsc_weight

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        return self.ecg_tower(x).pooled

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        x = batch["ecg"]
        half = x.shape[-1] // 2
        segs = torch.cat([x[..., :half], x[..., half : 2 * half]], dim=0)  # (2B, 12, T/2)
        rng = np.random.default_rng(hash((self.seed, self.global_rank, self.global_step)) & 0x7FFFFFFF)
        g = torch.Generator(device=x.device).manual_seed(int(rng.integers(2**31)))
        self.w2v.set_num_updates(self.global_step)
        out = self.w2v(segs, rng=rng, generator=g)
        pooled = self.ecg_tower.pool(out.tokens).pooled
        b = x.shape[0]
        cmsc = cmsc_loss(pooled[:b], pooled[b:], self.logit_scale())
        loss = out.contrastive_loss + self.w2v.diversity_weight * out.diversity_loss
        loss = loss + self.w2v.features_pen_weight * out.features_pen + self.cmsc_weight * cmsc
        return {"loss": loss, "w2v": out.contrastive_loss.detach(), "cmsc": cmsc.detach(), "w2v_acc": out.accuracy.detach()}


def run_stage0(
    data: Mapping[str, Any], trainer: Mapping[str, Any], run_dir: str | Path, ecg_tower: Mapping[str, Any] = DEFAULT_ECG, **module_kw: Any
) -> Path:
    """Hydra entry point: ``data`` -> ``PretrainDataModule`` kwargs; returns the last checkpoint."""
    from ecg_text_align.data import PretrainDataModule
    from ecg_text_align.train import fit

    module = MELPStage0(ecg_tower=ecg_tower, **module_kw)
    return fit(module, PretrainDataModule(**{**data, "zero_shot_tasks": []}), trainer, run_dir)
