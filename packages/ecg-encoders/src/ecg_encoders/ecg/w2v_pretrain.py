"""wav2vec 2.0 contrastive pretraining head (MELP stage 0 / fairseq-signals ``Wav2Vec2Model``).

Objective (Baevski et al. 2020, §3.2): for every masked step, the transformer output (projected to
``final_dim``) must pick the quantised *unmasked* conv feature of that step among ``num_negatives``
distractors drawn from other masked steps of the same record; cosine similarity / ``logit_temp``.
Diversity loss = (G·V - perplexity) / (G·V) keeps the codebooks in use; ``features_pen`` is the L2
penalty on conv activations. Weights default to fairseq-signals' ``loss_weights=[0.1, 10]``;
MELP's ``ECGFMModel.shared_step`` optimises the contrastive term only (set both weights to 0).
CMSC and lead masking are added on top by ``ecg_text_align``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ecg_encoders.ecg.w2v_masking import compute_mask_indices
from ecg_encoders.ecg.w2v_quantizer import GumbelVectorQuantizer
from ecg_encoders.ecg.wav2vec2 import Wav2Vec2Encoder


@dataclass
class Wav2Vec2PretrainOutput:
    loss: torch.Tensor  # weighted sum that is optimised
    contrastive_loss: torch.Tensor
    diversity_loss: torch.Tensor
    features_pen: torch.Tensor
    logits: torch.Tensor  # (B*M, 1+K): column 0 is the positive
    accuracy: torch.Tensor  # share of masked steps whose positive scores highest
    tokens: torch.Tensor  # (B, N, d) transformer outputs of the *masked* input (MELP pools these for CMSC)
    mask_indices: torch.Tensor  # (B, N) bool
    code_perplexity: torch.Tensor
    prob_perplexity: torch.Tensor


def sample_negatives(y: torch.Tensor, num_negatives: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, M, D) targets -> (K, B, M, D) distractors from the same record, never the step itself."""
    b, m, d = y.shape
    if m < 2:
        raise ValueError("need at least 2 masked steps per record to draw distractors")
    idx = torch.randint(0, m - 1, (b, m, num_negatives), device=y.device, generator=generator)
    own = torch.arange(m, device=y.device)[None, :, None]
    idx = idx + (idx >= own).long()  # skip the positive's own index
    negs = torch.gather(y[:, None].expand(b, m, m, d), 2, idx[..., None].expand(-1, -1, -1, d))
    return negs.permute(2, 0, 1, 3)


class Wav2Vec2Pretrainer(nn.Module):
    """Quantiser + projections around a :class:`Wav2Vec2Encoder`; ``forward(x)`` returns the losses."""

    def __init__(
        self,
        encoder: Wav2Vec2Encoder,
        *,
        diversity_weight: float = 0.1,  # fairseq-signals wav2vec2 criterion loss_weights[0]
        features_pen_weight: float = 10.0,  # loss_weights[1]
        **overrides: Any,
    ) -> None:
        super().__init__()
        cfg = encoder.cfg
        opts = {
            k: overrides.pop(k, getattr(cfg, k))
            for k in (
                "final_dim",
                "latent_vars",
                "latent_groups",
                "latent_temp",
                "num_negatives",
                "logit_temp",
                "dropout_features",
                "mask_prob",
                "mask_length",
            )
        }
        if overrides:
            raise TypeError(f"unknown Wav2Vec2Pretrainer option(s): {sorted(overrides)}")
        self.encoder = encoder
        self.opts = opts
        self.diversity_weight = diversity_weight
        self.features_pen_weight = features_pen_weight
        final_dim = opts["final_dim"]
        self.dropout_features = nn.Dropout(opts["dropout_features"])
        # vq_dim = final_dim (latent_dim=0), quantiser input = conv channels (Wav2Vec2Model.__init__)
        self.quantizer = GumbelVectorQuantizer(
            cfg.embed, opts["latent_vars"], opts["latent_groups"], final_dim, tuple(opts["latent_temp"])
        )
        self.project_q = nn.Linear(final_dim, final_dim)
        self.final_proj = nn.Linear(cfg.width, final_dim)

    def set_num_updates(self, num_updates: int) -> None:
        self.quantizer.set_num_updates(num_updates)

    def sample_mask(self, batch: int, n_tokens: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        m = compute_mask_indices((batch, n_tokens), self.opts["mask_prob"], self.opts["mask_length"], rng=rng)
        return torch.from_numpy(m)

    def forward(
        self,
        x: torch.Tensor,
        mask_indices: torch.Tensor | None = None,
        rng: np.random.Generator | None = None,
        generator: torch.Generator | None = None,
    ) -> Wav2Vec2PretrainOutput:
        b = x.shape[0]
        n = self.encoder.cfg.n_tokens(x.shape[-1])
        if mask_indices is None:
            mask_indices = self.sample_mask(b, n, rng)
        mask_indices = mask_indices.to(x.device).bool()
        counts = mask_indices.sum(1)
        if not bool((counts == counts[0]).all()):
            raise ValueError("every record must have the same number of masked steps (see compute_mask_indices)")
        out = self.encoder.extract(x, mask_indices)
        m = int(counts[0])
        unmasked = self.dropout_features(out.features)
        y = unmasked[mask_indices].view(b, m, -1)
        q = self.quantizer(y)
        y = self.project_q(q.x)
        negs = sample_negatives(y, self.opts["num_negatives"], generator)  # (K, B, M, D)
        pred = self.final_proj(out.tokens[mask_indices].view(b, m, -1))
        targets = torch.cat([y[None], negs], dim=0)  # (1+K, B, M, D)
        logits = torch.cosine_similarity(pred.float()[None], targets.float(), dim=-1) / self.opts["logit_temp"]
        neg_is_pos = (y[None] == negs).all(-1)
        logits[1:] = logits[1:].masked_fill(neg_is_pos, float("-inf"))
        logits = logits.permute(1, 2, 0).reshape(b * m, -1)
        zeros = torch.zeros(b * m, dtype=torch.long, device=logits.device)
        contrastive = F.cross_entropy(logits, zeros)
        diversity = (q.num_vars - q.prob_perplexity) / q.num_vars
        loss = contrastive + self.diversity_weight * diversity + self.features_pen_weight * out.features_pen
        acc = (logits.argmax(-1) == 0).float().mean()
        return Wav2Vec2PretrainOutput(
            loss=loss,
            contrastive_loss=contrastive,
            diversity_loss=diversity,
            features_pen=out.features_pen,
            logits=logits,
            accuracy=acc,
            tokens=out.tokens,
            mask_indices=mask_indices,
            code_perplexity=q.code_perplexity,
            prob_perplexity=q.prob_perplexity,
        )
