"""Losses shared by the ECG-text methods (MELP, MERL, ...).

Which losses see other ranks' samples:
- ``clip_loss`` and ``unimodal_alignment_loss`` gather features across ranks with gradients
  (``gather=True``, the default): negatives come from the global batch, as open_clip does.
- ``caption_loss`` is per token and needs no negatives: local.
- ``local_alignment_loss`` is **local** (negatives only from the rank's own batch), as in the released
  MELP code (``BeatAlignmentModule`` is applied to the per-rank batch); its cost is O(B^2 * S * Q).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ecg_text_align.distributed import gather_with_grad

#: CLIP / open_clip: logit scale initialised to 1/0.07 and clamped to at most 100.
INIT_TEMPERATURE = 0.07
MAX_LOGIT_SCALE = 100.0


class LogitScale(nn.Module):
    """Learnable temperature stored as log(scale), bounded **in place after each optimiser step**.

    ``forward`` returns ``exp(log_scale)`` unclamped, so the gradient never vanishes. A clamp inside the
    forward pass (``log_scale.clamp(max=ln 100)``) has gradient exactly 0 beyond the bound, so a scale that
    once crossed ln 100 could never come back; MELP (``ecgfm_model.py:323-326``, ``merl_model.py:308-311``)
    and open_clip instead clamp the parameter itself to [0, ln 100] after each step and keep it trainable.
    ``clamp_`` does that; ``PretrainModule`` calls it (``clamp_logit_scales_``) after every optimiser step.
    ``max_scale=inf`` leaves the scale unbounded (ESI, ``esi.py:386,489``).
    """

    def __init__(self, init_temperature: float = INIT_TEMPERATURE, max_scale: float = MAX_LOGIT_SCALE):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_scale = max_scale

    def forward(self) -> torch.Tensor:
        return self.log_scale.exp()

    @torch.no_grad()
    def clamp_(self) -> None:
        """Clamp the parameter to [ln 1, ln max_scale] in place (as MELP's ``on_train_batch_end``); an
        unbounded scale (``max_scale=inf``, ESI) is left alone."""
        if math.isfinite(self.max_scale):
            self.log_scale.clamp_(min=0.0, max=math.log(self.max_scale))


def clamp_logit_scales_(module: nn.Module) -> None:
    """Apply ``LogitScale.clamp_`` to every ``LogitScale`` inside ``module`` (after an optimiser step)."""
    for m in module.modules():
        if isinstance(m, LogitScale):
            m.clamp_()


def _symmetric_ce(logits: torch.Tensor) -> torch.Tensor:
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def clip_loss(
    ecg: torch.Tensor,
    text: torch.Tensor,
    logit_scale: torch.Tensor | float,
    *,
    gather: bool = True,
    normalize: bool = True,
    max_scale: float = MAX_LOGIT_SCALE,
) -> torch.Tensor:
    """Symmetric InfoNCE between paired ECG and text embeddings (B, d).

    ``logit_scale`` is the multiplicative scale (1/temperature). A fixed value (a float or a tensor without
    gradient) is clamped to ``max_scale`` here; a *learnable* scale is not clamped here (that clamp would zero
    its gradient beyond the bound) but in place after each step by its ``LogitScale`` owner. With ``gather``
    and several ranks, the logits are computed on the global batch (open_clip ``gather_with_grad=True``,
    ``local_loss=False``).
    """
    if normalize:
        ecg, text = F.normalize(ecg, dim=-1), F.normalize(text, dim=-1)
    if gather:
        ecg, text = gather_with_grad(ecg), gather_with_grad(text)
    scale = torch.as_tensor(logit_scale, dtype=ecg.dtype, device=ecg.device)
    if not scale.requires_grad:
        scale = scale.clamp(max=max_scale)
    return _symmetric_ce(scale * ecg @ text.t())


def caption_loss(logits: torch.Tensor, labels: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Teacher-forced next-token cross-entropy (CoCa); ``logits`` (B, L, V), ``labels`` (B, L).

    Positions whose label is ``pad_id`` are ignored; the mean is over the remaining tokens. Local loss.
    """
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=pad_id)


def decoder_caption_loss(
    decoder: nn.Module,
    context: torch.Tensor,
    states: torch.Tensor,
    labels: torch.Tensor,
    pad_id: int,
    *,
    real_positions: bool = True,
) -> torch.Tensor:
    """``caption_loss`` of ``decoder(context, states)``; with ``real_positions`` the vocabulary projection and the
    cross-entropy run only where the label is not ``pad_id`` (the decoder is causal, so a real position's state
    does not depend on the pads after it): the same loss and gradients, without (B, L, V) logits at pads."""
    if not real_positions:
        return caption_loss(decoder(context, states), labels, pad_id)
    keep = labels != pad_id
    hidden = decoder(context, states, project=False)
    return caption_loss(decoder.project(hidden[keep]), labels[keep], pad_id)


#: MELP local alignment temperatures (released code, ``BeatAlignmentModule.forward``; GLoRIA's
#: ``local_loss`` defaults): temp1 sharpens the attention of a sentence over beats, temp2 scales the
#: sentence-context cosine before the log-sum-exp over sentences, temp3 scales the record-level logits.
LOCAL_TEMP_ATTENTION = 4.0
LOCAL_TEMP_SIMILARITY = 5.0
LOCAL_TEMP_LOGITS = 10.0


def local_alignment_scores(
    beats: torch.Tensor,
    sentences: torch.Tensor,
    sentence_mask: torch.Tensor,
    temp_attention: float = LOCAL_TEMP_ATTENTION,
    temp_similarity: float = LOCAL_TEMP_SIMILARITY,
    beat_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B_ecg, B_text) scores: for every ECG b and report i, how well i's sentences find matching beats in b.

    As GLoRIA/MELP: raw dot products beat·sentence; softmax over the report's sentences, then ×temp1 and
    softmax over beats (the attention of each sentence over beats); the attended beat context is compared
    to the sentence by cosine; score = log Σ_s exp(temp2 · cos). Padded sentences (mask 0) take no part.
    """
    mask = sentence_mask.bool()  # (Bt, S)
    dots = torch.einsum("bqd,isd->bisq", beats, sentences)  # (Be, Bt, S, Q)
    neg = torch.finfo(dots.dtype).min
    a = dots.masked_fill(~mask[None, :, :, None], neg).softmax(dim=2)  # over sentences
    a = a * temp_attention
    if beat_mask is not None:  # real-heartbeat option: records have different beat counts
        a = a.masked_fill(~beat_mask.bool()[:, None, None, :], neg)
    a = a.softmax(dim=3)  # over beats
    # cos(context, sentence) with context = Σ_q a_q·beat_q, written without the (Be, Bt, S, d) context tensor:
    # context·sentence = Σ_q a_q (beat_q·sentence) = Σ_q a_q dots_q, and |context|² = aᵀ G a with G = the beats'
    # Gram matrix (Q×Q). Same value as F.cosine_similarity(context, sentence) (tests/text_align/test_losses.py);
    # measured 2026-12-07 on the tiny MELP step: ~100 ms less per step of 32 (docs/performance.md).
    num = (a * dots).sum(dim=3)  # (Be, Bt, S)
    gram = torch.einsum("bqd,brd->bqr", beats, beats)  # (Be, Q, Q)
    ctx_sq = torch.einsum("bisq,bqr,bisr->bis", a, gram, a).clamp(min=0)
    s_sq = sentences.pow(2).sum(dim=-1)[None]  # (1, Bt, S)
    cos = num / (ctx_sq * s_sq).clamp(min=1e-16).sqrt()  # eps 1e-8 on the norms' product, as F.cosine_similarity
    cos = (cos * temp_similarity).masked_fill(~mask[None], float("-inf"))
    return torch.logsumexp(cos, dim=2)


def local_alignment_loss(
    beats: torch.Tensor,
    sentences: torch.Tensor,
    sentence_mask: torch.Tensor,
    temp_attention: float = LOCAL_TEMP_ATTENTION,
    temp_similarity: float = LOCAL_TEMP_SIMILARITY,
    temp_logits: float = LOCAL_TEMP_LOGITS,
    beat_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """MELP's beat-sentence alignment: symmetric cross-entropy on ``temp3 · scores`` (local to the rank).

    ``beats`` (B, Q, d), ``sentences`` (B, S, d), ``sentence_mask`` (B, S), optional ``beat_mask`` (B, Q). Records whose report has no
    sentence are left out of both directions (the released code silently misaligned the batch instead);
    with fewer than two usable records the loss is 0 (no negatives).
    """
    keep = sentence_mask.bool().any(dim=1)
    if int(keep.sum()) < 2:
        return beats.sum() * 0.0 + sentences.sum() * 0.0
    beats, sentences, sentence_mask = beats[keep], sentences[keep], sentence_mask[keep]
    if beat_mask is not None:
        beat_mask = beat_mask[keep]
    scores = local_alignment_scores(beats, sentences, sentence_mask, temp_attention, temp_similarity, beat_mask)
    return _symmetric_ce(scores * temp_logits)


#: MERL (utils_builder.py / utils_trainer.py): two dropout(p=0.1) views, CLIP loss at fixed temperature 0.07.
UNIMODAL_TEMPERATURE = 0.07


def unimodal_alignment_loss(
    view1: torch.Tensor, view2: torch.Tensor, temperature: float = UNIMODAL_TEMPERATURE, *, gather: bool = True
) -> torch.Tensor:
    """MERL's uni-modal alignment: InfoNCE between two dropout views of the same ECG embedding."""
    return clip_loss(view1, view2, 1.0 / temperature, gather=gather, max_scale=float("inf"))


class DropoutViews(nn.Module):
    """MERL's two views: ``dropout(linear_k(emb))`` for k = 1, 2 (bias-free linears, dropout 0.1)."""

    def __init__(self, dim_in: int, dim_out: int, p: float = 0.1):
        super().__init__()
        self.linear1 = nn.Linear(dim_in, dim_out, bias=False)
        self.linear2 = nn.Linear(dim_in, dim_out, bias=False)
        self.dropout1, self.dropout2 = nn.Dropout(p), nn.Dropout(p)

    def forward(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dropout1(self.linear1(emb)), self.dropout2(self.linear2(emb))
