"""MERL: ResNet18-1D + attention pooling, a bidirectional BERT (MedCPT) with its lower layers frozen,
CLIP loss between ECG and report plus MERL's uni-modal alignment between two dropout views of the ECG.

Source: cheliu-computation/MERL-ICML2024 ``utils/utils_builder.py`` (``ECGCLIP``), ``utils/utils_loss.py``
(``clip_loss``), ``utils/utils_trainer.py`` (``loss = cma_loss + uma_loss``), ``pretrain/config.yaml``.
docs/baselines/merl.md lists what is faithful and what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ecg_text_align.components import build
from ecg_text_align.losses import DropoutViews, clip_loss, unimodal_alignment_loss
from ecg_text_align.module import PretrainModule

DEFAULT_ECG = {"name": "resnet18_1d", "preset": "tiny"}
DEFAULT_TEXT = {"target": "ecg_encoders.text.presets:build_text_preset", "name": "medcpt"}


class MERL(PretrainModule):
    method_name = "merl"

    def __init__(
        self,
        ecg_encoder: Mapping[str, Any] = DEFAULT_ECG,
        text_encoder: Mapping[str, Any] = DEFAULT_TEXT,
        proj_hidden: int = 256,          # config.yaml projection_head.mlp_hidden_size
        temperature: float = 0.07,       # utils_loss.py clip_loss(temperature=0.07), fixed (not learned)
        clip_weight: float = 1.0,        # utils_trainer.py: loss = cma_loss + uma_loss
        uma_weight: float = 1.0,
        view_dropout: float = 0.1,       # utils_builder.py dropout1/dropout2 p=0.1
        sum_directions: bool = True,     # utils_loss.py returns loss_t + loss_i (a sum, not the mean)
        **common: Any,
    ):
        common.setdefault("lr", 1e-3)            # config.yaml optimizer.params.lr
        common.setdefault("weight_decay", 1e-8)  # config.yaml optimizer.params.weight_decay
        common.setdefault("input_preset", "merl")
        common.setdefault("model_preset", str(dict(ecg_encoder).get("preset", "custom")))  # the card says which size
        super().__init__(**common)
        self.save_hyperparameters()
        self.ecg = build(dict(ecg_encoder))
        self.text = build(dict(text_encoder))
        dim = int(self.ecg.pooled_dim)  # MERL: projection_size 256 = downconv width = pooled width
        width = int(self.text.width)
        # utils_builder.py proj_t: Linear(768, proj_hidden) -> GELU -> Linear(proj_hidden, proj_out)
        self.proj_text = nn.Sequential(nn.Linear(width, proj_hidden), nn.GELU(), nn.Linear(proj_hidden, dim))
        # linear1/linear2 (bias-free, proj_out -> proj_out) + dropout 0.1 on avgpool(downconv(features))
        self.views = DropoutViews(int(self.ecg.width), dim, p=view_dropout)

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in self.text.tokenize(list(texts)).items()}

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        """The attention-pooled ECG embedding (MERL ``ext_ecg_emb``): the zero-shot space, probed too."""
        return self.ecg(x).pooled

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        t = self._tokenize(texts)
        return self.proj_text(self.text(t["input_ids"], t["attention_mask"]).pooled)

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        out = self.ecg(batch["ecg"])
        text = self.embed_text(batch["report"])
        scale = 1.0 / self.hparams.temperature
        k = 2.0 if self.hparams.sum_directions else 1.0  # our clip_loss averages the two directions
        losses = {"clip": k * clip_loss(out.pooled, text, scale, max_scale=float("inf"))}
        v1, v2 = self.views(out.tokens.mean(dim=1))  # avgpool over time of the downconv features
        losses["uma"] = k * unimodal_alignment_loss(v1, v2, self.hparams.temperature)
        losses["loss"] = self.hparams.clip_weight * losses["clip"] + self.hparams.uma_weight * losses["uma"]
        return losses
