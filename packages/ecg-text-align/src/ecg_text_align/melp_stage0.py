"""MELP stage 0: ECG-only pretraining of the ECG tower (wav2vec 2.0 + CMSC + random lead masking).

As ``ECGFMModel.shared_step`` in HKU-MedAI/MELP @088741d (``src/melp/models/ecgfm_model.py:239-321``): the
wav2vec2 masked-prediction loss plus CMSC (contrastive multi-segment coding, CLOCS, Kiyasseh et al. 2021).
Defaults follow the original; each difference of the earlier version is kept as a named option:

- each 5-s half is its own sample: its own lead mask (``RandomLeadsMask`` per crop) and its own span mask;
- CMSC positives (``cmsc_positives="subject"``): every pair of halves with the same ``subject_id`` in the
  gathered batch, soft targets (softmax over the positives, ``ecgfm_model.py:298-307``); ``"record"`` = only
  the two halves of one record;
- CMSC embedding (``cmsc_embedding="mean_linear"``): mean of the transformer tokens -> Linear(d, 256, no
  bias) (``ecgfm_model.py:104-106,160-161``: the stage-0 run builds no attentional pooler); ``"pooler"`` =
  the tower's contrast pooler (mean of beats);
- local-loss logits (``ClipLoss(local_loss=True)``): local halves against the gathered other halves;
- Gumbel temperature fixed at its start value 2 (``anneal_gumbel_temp=False``: MELP never calls
  ``set_num_updates``); ``True`` anneals 2 -> 0.5 as fairseq's wav2vec2 does;
- the learnable logit scale is clamped in place after each step (``LogitScale``), ``ecgfm_model.py:323-326``.

The resulting ``ecg_tower.*`` weights initialise MELP's ECG tower (``MELP(ecg_tower_ckpt=...)``; the contrast
pooler is not carried over, as in MELP).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ecg_data.preprocess import random_lead_mask
from ecg_text_align.components import build
from ecg_text_align.distributed import gather_with_grad, world_size
from ecg_text_align.losses import LogitScale
from ecg_text_align.melp import DEFAULT_ECG
from ecg_text_align.module import PretrainModule


def _gather_plain(t: torch.Tensor) -> torch.Tensor:
    """all_gather without gradient (ids)."""
    if world_size() == 1:
        return t
    out = [torch.zeros_like(t) for _ in range(world_size())]
    dist.all_gather(out, t.contiguous())
    return torch.cat(out)


def cmsc_loss(
    seg1: torch.Tensor,
    seg2: torch.Tensor,
    logit_scale: torch.Tensor,
    *,
    groups: torch.Tensor | None = None,
    gather: bool = True,
) -> torch.Tensor:
    """CMSC InfoNCE: row i of ``seg1`` against every (gathered) ``seg2`` and vice versa, as MELP.

    ``groups`` (B,) integer subject ids: targets are uniform over every column of the same subject (soft
    targets, ``ecgfm_model.py:298-303``); None = only the same record (hard targets). The logits are local
    rows x gathered columns (``ClipLoss(local_loss=True)``). No clamp here: ``LogitScale`` is bounded in place.
    """
    a, b = F.normalize(seg1, dim=-1), F.normalize(seg2, dim=-1)
    b_local = a.shape[0]
    offset = 0
    if gather and world_size() > 1:
        all_a, all_b = gather_with_grad(a), gather_with_grad(b)
        offset = b_local * dist.get_rank()
    else:
        all_a, all_b = a, b
    if groups is None:
        groups = torch.arange(b_local, device=a.device) + offset
    all_groups = _gather_plain(groups) if (gather and world_size() > 1) else groups

    def targets(g_rows: torch.Tensor, g_cols: torch.Tensor) -> torch.Tensor:
        same = (g_rows[:, None] == g_cols[None, :]).float()
        return same / same.sum(1, keepdim=True)

    logits_1 = logit_scale * a @ all_b.t()
    logits_2 = logit_scale * b @ all_a.t()
    t = targets(groups, all_groups)
    return (F.cross_entropy(logits_1, t) + F.cross_entropy(logits_2, t)) / 2


def _subject_codes(split: Any) -> torch.Tensor | None:
    """Integer subject code per cache row of ``split`` (its ``patient_id``); a record without one is its own subject."""
    if split is None:
        return None
    pids = split.index["patient_id"]
    keys = [str(p) if p is not None and str(p) not in ("", "nan", "None") else f"__rec{i}" for i, p in enumerate(pids)]
    codes = {k: j for j, k in enumerate(dict.fromkeys(keys))}
    return torch.tensor([codes[k] for k in keys], dtype=torch.long)


class MELPStage0(PretrainModule):
    method_name = "melp_stage0"

    def __init__(
        self,
        ecg_tower: Mapping[str, Any] = DEFAULT_ECG,
        n_segments: int = 2,  # CMSC: the record split into 2 contiguous segments (pretrain_dataset.py use_cmsc)
        cmsc_weight: float = 1.0,  # ecgfm_model.py:310: loss = recon_loss + cmsc_loss
        w2v_options: Mapping[str, Any] | None = None,
        cmsc_positives: str = "subject",  # ecgfm_model.py:298-303; "record" = ours before 0.2
        cmsc_embedding: str = "mean_linear",  # ecgfm_model.py:104-106,160-161; "pooler" = ours before 0.2
        independent_half_masks: bool = True,  # each crop its own lead mask; False = one mask for both halves
        anneal_gumbel_temp: bool = False,  # MELP never calls set_num_updates: tau stays 2
        lead_mask_p: float = 0.5,  # MELP pretrain_dataset.py RandomLeadsMask (stage 0 masks leads)
        **common: Any,
    ):
        super().__init__(lead_mask_p=lead_mask_p, **common)
        self.save_hyperparameters()
        from ecg_encoders.ecg.w2v_pretrain import Wav2Vec2Pretrainer

        if cmsc_positives not in ("subject", "record"):
            raise ValueError(f"cmsc_positives must be 'subject' or 'record', got {cmsc_positives!r}")
        if cmsc_embedding not in ("mean_linear", "pooler"):
            raise ValueError(f"cmsc_embedding must be 'mean_linear' or 'pooler', got {cmsc_embedding!r}")
        self.ecg_tower = build(dict(ecg_tower))
        if callable(getattr(self.ecg_tower, "drop_caption_pooler", None)):
            self.ecg_tower.drop_caption_pooler()  # unused by stage 0; DDP needs every parameter used
        # MELP optimises the contrastive term of wav2vec2 only (see ecg_encoders.ecg.w2v_pretrain docstring)
        opts = {"diversity_weight": 0.0, "features_pen_weight": 0.0, **(w2v_options or {})}
        self.w2v = Wav2Vec2Pretrainer(self.ecg_tower.encoder, **opts)
        if cmsc_embedding == "mean_linear":
            # ecgfm_model.py:104-106: head = Dropout(0) + Linear(768, shared_emb_dim, bias=proj_bias=False)
            self.cmsc_head = nn.Linear(int(self.ecg_tower.encoder.width), int(self.ecg_tower.shared_dim), bias=False)
            self.ecg_tower.drop_contrast_pooler()  # unused: the CMSC embedding bypasses it (DDP needs every parameter used)
        self.logit_scale = LogitScale()
        if n_segments != 2:
            raise ValueError("CMSC here uses exactly 2 segments per record")
        self.n_segments, self.cmsc_weight = n_segments, cmsc_weight
        self._subject_codes: torch.Tensor | None = None
        self._val_subject_codes: torch.Tensor | None = None

    def scored_modules(self) -> list[nn.Module | nn.Parameter]:
        if self.hparams.cmsc_embedding == "mean_linear":
            return [self.ecg_tower.encoder, self.cmsc_head]
        return [self.ecg_tower]

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.cmsc_embedding == "mean_linear":  # the stage's own ECG embedding (no attentional pooler)
            return self.cmsc_head(self.ecg_tower.encoder(x).tokens.mean(dim=1))
        return self.ecg_tower(x).pooled

    def _augment(self, batch: dict[str, Any]) -> dict[str, Any]:
        if self.hparams.independent_half_masks:
            return batch  # lead masks are drawn per half in compute_losses
        return super()._augment(batch)

    # ----- subject ids of the batch (CMSC positives) ------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        # PretrainDataModule's caches (batches give their rows; fit hands them over): training, and the val split of
        # a validation loss
        self._subject_codes = _subject_codes(self.data_facts.train_split)
        self._val_subject_codes = _subject_codes(self.data_facts.loss_val_split)

    def subject_ids(self, batch: Mapping[str, Any]) -> torch.Tensor | None:
        """(B,) integer subject ids of the batch (None = use the record as the group)."""
        if self.hparams.cmsc_positives == "record":
            return None
        if "subject_code" in batch:
            return torch.as_tensor(batch["subject_code"], dtype=torch.long)
        codes = self._val_subject_codes if self._in_val_loss else self._subject_codes
        if codes is not None and "index" in batch:
            return codes[torch.as_tensor(batch["index"]).long().cpu()]
        return None

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        x = batch["ecg"]
        b = x.shape[0]
        half = x.shape[-1] // 2
        segs = torch.cat([x[..., :half], x[..., half : 2 * half]], dim=0)  # (2B, 12, T/2)
        if self.hparams.independent_half_masks and self.lead_mask_p > 0:
            segs = random_lead_mask(segs, self.lead_mask_p, torch.Generator().manual_seed(self.step_seed(11)))
        rng = np.random.default_rng(self.step_seed())
        g = torch.Generator(device=x.device).manual_seed(int(rng.integers(2**31)))
        if self.hparams.anneal_gumbel_temp:
            self.w2v.set_num_updates(self.global_step)
        out = self.w2v(segs, rng=rng, generator=g)
        if self.hparams.cmsc_embedding == "mean_linear":
            emb = self.cmsc_head(out.tokens.mean(dim=1))
        else:
            emb = self.ecg_tower.pool(out.tokens).pooled
        groups = self.subject_ids(batch)
        if groups is not None:
            groups = groups.to(x.device)
        cmsc = cmsc_loss(emb[:b], emb[b:], self.logit_scale(), groups=groups)
        loss = out.contrastive_loss + self.w2v.diversity_weight * out.diversity_loss
        loss = loss + self.w2v.features_pen_weight * out.features_pen + self.cmsc_weight * cmsc
        return {
            "loss": loss,
            "w2v": out.contrastive_loss.detach(),
            "cmsc": cmsc.detach(),
            "w2v_acc": out.accuracy.detach(),
            "gumbel_tau": torch.tensor(float(self.w2v.quantizer.curr_temp)),
        }


def run_stage0(
    data: Mapping[str, Any],
    trainer: Mapping[str, Any],
    run_dir: str | Path,
    ecg_tower: Mapping[str, Any] = DEFAULT_ECG,
    **module_kw: Any,
) -> Path:
    """Hydra entry point: ``data`` -> ``PretrainDataModule`` kwargs; returns the last checkpoint."""
    from ecg_text_align.data import PretrainDataModule
    from ecg_text_align.train import fit

    module = MELPStage0(ecg_tower=ecg_tower, **module_kw)
    return fit(module, PretrainDataModule(**{**data, "zero_shot_tasks": []}), trainer, run_dir)
