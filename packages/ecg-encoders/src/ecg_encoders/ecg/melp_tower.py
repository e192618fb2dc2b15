"""MELP's ECG tower: a wav2vec2 encoder plus its two attentional poolers (melp/models/ecgfm_model.py,
``ECGFMModel._encode_ecg`` with ``use_attentional_pool_contrast=use_attentional_pool_caption=True``).

- contrast pooler: ``n_queries_contrast`` queries of width ``shared_dim`` over the tokens -> LayerNorm
  -> @ ``proj_contrast`` (shared_dim × shared_dim) = "beat" embeddings (B, n_q, 256); their mean is the
  global ECG embedding (B, 256).
- caption pooler: 128 queries of width 768 -> LayerNorm = context tokens for the captioning decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ecg_encoders.ecg.wav2vec2 import Wav2Vec2Encoder, build_wav2vec2
from ecg_encoders.pooling import AttentionalPooler


@dataclass
class MELPTowerOutput:
    pooled: torch.Tensor  # (B, shared_dim) mean of the beat embeddings
    beats: torch.Tensor  # (B, n_queries_contrast, shared_dim)
    caption_tokens: torch.Tensor | None  # (B, n_queries_caption, caption_dim); None without a caption pooler
    tokens: torch.Tensor  # (B, N, d) raw transformer outputs


#: MELP values: shared_emb_dim=256, embed_dim_caption=768, n_queries_caption=128, attn_pooler_heads=8
#: (ecgfm_model.py / melp_model.py); n_queries_contrast=12 is the default of scripts/pretrain/main_pretrain.py
#: (the MELPModel class default is 13; the published run command does not set it).
MELP_POOLER_DEFAULTS: dict[str, int] = dict(
    shared_dim=256, caption_dim=768, n_queries_caption=128, n_queries_contrast=12, heads=8
)
TINY_POOLER_DEFAULTS: dict[str, int] = dict(
    shared_dim=32, caption_dim=64, n_queries_caption=8, n_queries_contrast=4, heads=4
)


class MELPECGTower(nn.Module):
    def __init__(
        self,
        encoder: Wav2Vec2Encoder,
        *,
        shared_dim: int = 256,
        caption_dim: int = 768,
        n_queries_caption: int = 128,
        n_queries_contrast: int = 12,
        heads: int = 8,
    ) -> None:
        super().__init__()
        d = encoder.width
        self.encoder = encoder
        self.attn_pool_contrast = AttentionalPooler(shared_dim, d, n_queries_contrast, heads)
        self.ln_contrast = nn.LayerNorm(shared_dim)
        self.proj_contrast = nn.Parameter(d**-0.5 * torch.randn(shared_dim, shared_dim))
        self.attn_pool_caption = AttentionalPooler(caption_dim, d, n_queries_caption, heads)
        self.ln_caption = nn.LayerNorm(caption_dim)
        self.shared_dim = shared_dim
        self.caption_dim = caption_dim

    def drop_caption_pooler(self) -> None:
        """Remove the caption pooler for ECG-only training (MELP stage 0 never uses it): DDP without the
        unused-parameter search needs every parameter in the loss. Stage 2 builds a fresh one."""
        self.attn_pool_caption = None
        self.ln_caption = None

    def drop_contrast_pooler(self) -> None:
        """Remove the contrast pooler too, for a stage whose ECG embedding is the mean of tokens (MELP stage 0's
        CMSC head, ``ecgfm_model.py:104-106``: the original's stage 0 has no attentional pooler at all). Stage 2
        builds fresh poolers and loads only the encoder. Afterwards ``pool`` returns no ``beats``/``pooled``.
        Also used by MELP's ``beat_source="rpeaks"`` ablation, whose beats come from R-peak segments."""
        self.attn_pool_contrast = None
        self.ln_contrast = None
        self.proj_contrast = None

    def pool(self, tokens: torch.Tensor, project: bool = True) -> MELPTowerOutput:
        """``project=False`` skips ``proj_contrast``, as MELP's ``ext_ecg_emb`` (probe features) does."""
        beats = pooled = None  # a dropped contrast pooler (drop_contrast_pooler): tokens and caption tokens only
        if self.attn_pool_contrast is not None:
            beats = self.ln_contrast(self.attn_pool_contrast(tokens))
            if project:
                beats = beats @ self.proj_contrast
            pooled = beats.mean(dim=1)
        caption = None if self.attn_pool_caption is None else self.ln_caption(self.attn_pool_caption(tokens))
        return MELPTowerOutput(pooled=pooled, beats=beats, caption_tokens=caption, tokens=tokens)

    def forward(self, x: torch.Tensor, project: bool = True) -> MELPTowerOutput:
        return self.pool(self.encoder(x).tokens, project=project)


def build_melp_tower(preset: str = "tiny", pooler: dict[str, int] | None = None, **overrides: Any) -> MELPECGTower:
    """``preset`` picks the wav2vec2 preset; poolers follow MELP for paper presets and are shrunk for tiny."""
    defaults = TINY_POOLER_DEFAULTS if preset == "tiny" else MELP_POOLER_DEFAULTS
    return MELPECGTower(build_wav2vec2(preset, **overrides), **{**defaults, **(pooler or {})})
