"""HeartLang's ECG-sentence transformer as an ECGEncoder, plus its masked-sentence-modelling head.

Source: PKUDigitalHealth/HeartLang ``modeling_pretrain.py`` (``HeartLang``: ``ST_ECGFormer`` with depth 12,
8 heads x 64, MLP 1024, width 768, dropout 0.1, vocab 8192), ``engine_for_pretraining.py`` (50% random
masking, cross-entropy on the masked positions against VQ-HBR codebook ids) and ``modeling_finetune.py``
(``ST_ECGFormerClassifier`` reads the [CLS] state, ``backbone(...)[:, 0]``; the ``--use_mean_pooling``
flag of ``run_class_finetuning.py`` is never passed to the model). So ``pooling="cls"`` is the default;
``pooling="mean"`` averages the non-padded beat states.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ecg_encoders.base import ECGEncoder, EncoderOutput
from ecg_encoders.ecg.heartlang.backbone import BeatTransformer
from ecg_encoders.ecg.heartlang.tokenizer import BeatTokens, HeartbeatTokenizer


class HeartLangEncoder(ECGEncoder):
    """(B, 12, T) at 100 Hz -> beat tokens (B, 256, width) and pooled (B, width); tokenises internally."""

    def __init__(
        self,
        *,
        width: int,
        depth: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        vocab_size: int,
        fs: int = 100,
        length: int = 1000,
        token_len: int = 96,
        max_tokens: int = 256,
        dropout: float = 0.1,
        emb_dropout: float = 0.1,
        pooling: str = "cls",
        mask_padding: bool = False,
        detector: str = "numpy",
        window: str = "heartlang",
    ) -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"HeartLangEncoder pooling must be 'cls' or 'mean', got {pooling!r}")
        self.fs, self.length, self.width, self.pooled_dim = fs, length, width, width
        self.vocab_size, self.pooling = vocab_size, pooling
        self.tokenizer = HeartbeatTokenizer(fs, max_tokens, token_len, detector=detector, window=window)
        self.backbone = BeatTransformer(
            token_len,
            width,
            depth,
            heads,
            dim_head,
            mlp_dim,
            max_tokens=max_tokens,
            dropout=dropout,
            emb_dropout=emb_dropout,
            mask_padding=mask_padding,
        )

    def tokenize(self, x: torch.Tensor) -> BeatTokens:
        if x.ndim != 3 or x.shape[1] != 12:
            raise ValueError(f"HeartLangEncoder expects (B, 12, T) at {self.fs} Hz, got {tuple(x.shape)}")
        return self.tokenizer(x)

    def encode_tokens(self, tokens: BeatTokens, mask: torch.Tensor | None = None) -> EncoderOutput:
        """Encode an ECG sentence; ``mask`` (B, N) bool replaces those beats by [MASK] (pretraining)."""
        h = self.backbone(tokens.beats, tokens.lead_ids, tokens.time_ids, mask=mask, padding_mask=tokens.padding_mask)
        states = h[:, 1:]
        if self.pooling == "cls":
            pooled = h[:, 0]
        else:
            keep = (~tokens.padding_mask).to(states.dtype)[..., None]
            pooled = (states * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return EncoderOutput(tokens=states, pooled=pooled)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        return self.encode_tokens(self.tokenize(x))


class MaskedBeatHead(nn.Module):
    """Predicts the VQ-HBR codebook id of each masked beat (original: ``ST_ECGFormer.lm_head``)."""

    def __init__(self, width: int, vocab_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(width, vocab_size)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """states (B, N, d), mask (B, N) bool -> logits (n_masked, vocab)."""
        return self.proj(states[mask])


def random_beat_mask(
    padding_mask: torch.Tensor,
    ratio: float = 0.5,
    *,
    exclude_padding: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, N) bool mask of beats to hide.

    Original (``engine_for_pretraining.random_masking``): exactly ``N - int(N * (1 - ratio))`` random
    positions per row, padding included. ``exclude_padding=True`` (default) draws only among real beats,
    ``round(n_real * ratio)`` of them per row, so the loss never asks for the code of a padding slot.
    """
    b, n = padding_mask.shape
    noise = torch.rand(b, n, generator=generator, device=padding_mask.device if generator is None else "cpu")
    noise = noise.to(padding_mask.device)
    if exclude_padding:
        noise = noise.masked_fill(padding_mask, 2.0)  # padding sorts last, never chosen
        n_mask = torch.round((~padding_mask).sum(1).to(torch.float32) * ratio).long()
    else:
        n_mask = torch.full((b,), n - int(n * (1 - ratio)), dtype=torch.long, device=padding_mask.device)
    rank = noise.argsort(dim=1).argsort(dim=1)
    return rank < n_mask[:, None]


def masked_beat_loss(
    head: MaskedBeatHead, states: torch.Tensor, mask: torch.Tensor, target_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the masked beats' codebook ids -> (loss, accuracy); targets of -100 are ignored."""
    logits = head(states, mask)
    targets = target_ids[mask]
    if targets.numel() == 0:
        zero = states.sum() * 0.0
        return zero, zero.detach()
    loss = F.cross_entropy(logits, targets, ignore_index=-100)
    valid = targets != -100
    acc = (logits.argmax(-1)[valid] == targets[valid]).float().mean() if valid.any() else loss.detach() * 0
    return loss, acc.detach()
