"""MERL: ResNet18-1D + attention pooling, a bidirectional BERT (MedCPT) with its lower layers frozen,
CLIP loss between ECG and report plus MERL's uni-modal alignment between two dropout views of the ECG.

Source: cheliu-computation/MERL-ICML2024 ``utils/utils_builder.py`` (``ECGCLIP``), ``utils/utils_loss.py``
(``clip_loss``), ``utils/utils_trainer.py`` (``loss = cma_loss + uma_loss``), ``pretrain/config.yaml``.
docs/baselines/merl.md lists what is faithful and what differs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ecg_text_align.components import build
from ecg_text_align.losses import DropoutViews, clip_loss, unimodal_alignment_loss
from ecg_text_align.module import PretrainModule

DEFAULT_ECG = {"_target_": "ecg_encoders.ecg.resnet1d.build_resnet18_1d", "preset": "tiny"}
DEFAULT_TEXT = {"_target_": "ecg_encoders.text.presets.build_text_preset", "name": "medcpt"}


class MERL(PretrainModule):
    method_name = "merl"
    scored_module_names = ("ecg", "proj_ecg")  # proj_ecg: ViT towers only

    def __init__(
        self,
        ecg_encoder: Mapping[str, Any] = DEFAULT_ECG,
        text_encoder: Mapping[str, Any] = DEFAULT_TEXT,
        proj_hidden: int = 256,  # config.yaml projection_head.mlp_hidden_size
        temperature: float = 0.07,  # utils_loss.py clip_loss(temperature=0.07), fixed (not learned)
        clip_weight: float = 1.0,  # utils_trainer.py: loss = cma_loss + uma_loss
        uma_weight: float = 1.0,
        view_dropout: float = 0.1,  # utils_builder.py dropout1/dropout2 p=0.1
        sum_directions: bool = True,  # utils_loss.py returns loss_t + loss_i (a sum, not the mean)
        train_text_tower: bool = False,  # utils_builder.py:148-152 get_text_emb runs under torch.no_grad:
        # MERL never trains its BERT (only proj_t); True = our earlier variant
        proj_out: int = 256,  # config.yaml projection_head.projection_size (ViT towers; ResNet: pooled width)
        input_preset: str = "merl",  # the input this model reads (ecg_data.preprocess.PRESETS)
        **common: Any,
    ):
        # the optimiser values (lr, betas, weight_decay, ...) are the stage's, from the method config
        # (configs/method/merl.yaml, each with its source); PretrainModule's defaults otherwise
        common.setdefault("model_preset", str(dict(ecg_encoder).get("preset", "custom")))  # the card says which size
        super().__init__(input_preset=input_preset, **common)
        self.save_hyperparameters()
        self.ecg = build(dict(ecg_encoder))
        self.text = build(dict(text_encoder))
        width = int(self.text.width)
        #: ResNet towers pool by attention themselves (utils_builder.py:47-78); ViT towers (the repo's default
        #: vit_tiny, config.yaml:3) get MERL's proj_e head: Linear-BN-ReLU-Linear-BN on LN(mean of tokens)
        #: (utils_builder.py:80-98,167-170), and the two views read that pooled vector
        self.vit_head = not hasattr(self.ecg, "downconv")
        if self.vit_head:
            dim = int(proj_out)
            w = int(self.ecg.pooled_dim)
            self.proj_ecg = nn.Sequential(
                nn.Linear(w, proj_hidden),
                nn.BatchNorm1d(proj_hidden),
                nn.ReLU(inplace=True),
                nn.Linear(proj_hidden, dim),
                nn.BatchNorm1d(dim),
            )
            self.views = DropoutViews(w, dim, p=view_dropout)
        else:
            dim = int(self.ecg.pooled_dim)  # MERL: projection_size 256 = downconv width = pooled width
            # linear1/linear2 (bias-free, proj_out -> proj_out) + dropout 0.1 on avgpool(downconv(features))
            self.views = DropoutViews(int(self.ecg.width), dim, p=view_dropout)
        # utils_builder.py proj_t: Linear(768, proj_hidden) -> GELU -> Linear(proj_hidden, proj_out)
        self.proj_text = nn.Sequential(nn.Linear(width, proj_hidden), nn.GELU(), nn.Linear(proj_hidden, dim))
        if not train_text_tower:
            self.text.requires_grad_(False)  # no optimiser state, no gradient: as MERL's no_grad text pass

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in self.text.tokenize(list(texts)).items()}

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        """MERL ``ext_ecg_emb``: the attention-pooled embedding (ResNet) or ``proj_e`` of the pooled ViT
        features: the zero-shot space, probed too."""
        out = self.ecg(x)
        return self.proj_ecg(out.pooled) if self.vit_head else out.pooled

    @torch.no_grad()
    def encode_ecg_probe(self, x: torch.Tensor, bn_train_mode: bool = True) -> torch.Tensor:
        """MERL's linear-probe feature (``finetune/main_single.py`` with ``finetune/models/resnet1d.py``): the
        512-d global average of the ResNet backbone (before ``downconv``), computed with the model in train
        mode, i.e. BatchNorm normalising with the batch's statistics (``bn_train_mode=True``). Running
        statistics are left untouched here. Not yet called by the harness (it probes ``encode_ecg``)."""
        backbone = getattr(self.ecg, "backbone", None)
        if backbone is None:
            raise TypeError(f"{type(self.ecg).__name__} has no ResNet backbone; MERL's probe feature needs one")
        was = self.training
        self.eval()
        bns = [m for m in backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        saved = [(m.training, m.momentum) for m in bns]
        try:
            if bn_train_mode:
                for m in bns:
                    m.train()
                    m.momentum = 0.0  # batch statistics, running statistics unchanged
            return backbone(x.to(self.device, torch.float32)).mean(dim=-1)
        finally:
            for m, (tr, mom) in zip(bns, saved):
                m.train(tr)
                m.momentum = mom
            self.train(was)

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        """BERT pooler output; without gradient unless ``train_text_tower`` (MERL: ``torch.no_grad``, the
        module still in train mode, so its dropout is active during training as in the original)."""
        t = self._tokenize(texts)
        with torch.set_grad_enabled(torch.is_grad_enabled() and bool(self.hparams.train_text_tower)):
            return self.text(t["input_ids"], t["attention_mask"]).pooled

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        return self.proj_text(self._text_features(texts))

    def contrastive_chance(self, batch_size: int) -> dict[str, float]:
        """Both losses gather negatives; with ``sum_directions`` (MERL) they add the two directions: 2 ln B."""
        k = 2.0 if self.hparams.sum_directions else 1.0
        chance = k * math.log(self.global_batch(batch_size))
        return {"clip": chance, "uma": chance}

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        out = self.ecg(batch["ecg"])
        text = self.embed_text(batch["report"])
        scale = 1.0 / self.hparams.temperature
        k = 2.0 if self.hparams.sum_directions else 1.0  # our clip_loss averages the two directions
        emb = self.proj_ecg(out.pooled) if self.vit_head else out.pooled
        losses = {"clip": k * clip_loss(emb, text, scale, max_scale=float("inf"))}
        # views: avgpool over time of the downconv features (ResNet) or the pooled ViT features
        v1, v2 = self.views(out.pooled if self.vit_head else out.tokens.mean(dim=1))
        losses["uma"] = k * unimodal_alignment_loss(v1, v2, self.hparams.temperature)
        losses["loss"] = self.hparams.clip_weight * losses["clip"] + self.hparams.uma_weight * losses["uma"]
        return losses
