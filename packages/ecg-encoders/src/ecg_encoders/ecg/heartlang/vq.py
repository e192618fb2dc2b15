"""HeartLang's vector-quantised heartbeat reconstruction (VQ-HBR): beats -> codebook ids ("ECG words").

Source: PKUDigitalHealth/HeartLang ``modeling_vqhbr.py`` (``VQHBR``, ``vqhbr``) and
``utils/norm_ema_quantizer.py`` (``NormEMAVectorQuantizer``, after BEiT v2). Encoder: the beat
transformer (width 768, depth 4, 2 heads x 64, MLP 2048) on raw 96-sample beats, features of padded
beats set to 0, then Linear-Tanh-Linear to 128-d; quantiser: l2-normalised features matched to an
l2-normalised codebook of 8192 x 128, codes updated by EMA (decay 0.99) of the normalised mean of
their assigned features, codebook initialised by 10 rounds of cosine k-means on the first batch,
commitment loss ``beta * mse(sg(z_q), z)`` with beta = 1, straight-through gradient; decoder: the beat
transformer (depth 2) on the 128-d codes, then Linear-Tanh-Linear back to 96 samples; loss = MSE
reconstruction + commitment.

Differences: padded positions are excluded from k-means, EMA statistics and both losses (the original
treats the zero padding beats as data); codebook statistics are not updated in eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ecg_encoders.ecg.heartlang.backbone import BeatTransformer
from ecg_encoders.ecg.heartlang.tokenizer import BeatTokens


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def cosine_kmeans(samples: torch.Tensor, k: int, iters: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Spherical k-means of unit vectors (n, d) -> (means (k, d), counts (k,)); empty clusters keep their seed."""
    n = samples.shape[0]
    idx = torch.randperm(n, device=samples.device)[:k] if n >= k else torch.randint(0, n, (k,), device=samples.device)
    means = samples[idx]
    bins = torch.zeros(k, device=samples.device)
    for _ in range(iters):
        buckets = (samples @ means.t()).argmax(dim=-1)
        bins = torch.bincount(buckets, minlength=k).to(samples.dtype)
        sums = torch.zeros_like(means).index_add_(0, buckets, samples)
        new = F.normalize(sums / bins.clamp(min=1)[:, None], dim=-1)
        means = torch.where((bins == 0)[:, None], means, new)
    return means, bins


class NormEMAQuantizer(nn.Module):
    """Cosine-similarity vector quantiser with an EMA-updated unit-norm codebook (no gradient to codes)."""

    def __init__(
        self,
        n_codes: int,
        dim: int,
        decay: float = 0.99,
        beta: float = 1.0,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
    ) -> None:
        super().__init__()
        self.n_codes, self.dim, self.decay, self.beta, self.kmeans_iters = n_codes, dim, decay, beta, kmeans_iters
        init = torch.zeros(n_codes, dim) if kmeans_init else F.normalize(torch.randn(n_codes, dim), dim=-1)
        self.register_buffer("codebook", init)
        self.register_buffer("cluster_size", torch.zeros(n_codes))  # EMA code usage (monitoring)
        self.register_buffer("initted", torch.tensor(not kmeans_init))

    @torch.no_grad()
    def init_codebook(self, z: torch.Tensor) -> None:
        """k-means initialisation from the first batch's (valid, normalised) features; a no-op afterwards."""
        if bool(self.initted) or z.shape[0] == 0:
            return
        means, bins = cosine_kmeans(z.float(), self.n_codes, self.kmeans_iters)
        self.codebook.copy_(means)
        self.cluster_size.copy_(bins)
        if _distributed():  # every rank starts from rank 0's codebook
            dist.broadcast(self.codebook, src=0)
            dist.broadcast(self.cluster_size, src=0)
        self.initted.fill_(True)

    def ids(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code of each normalised row (squared Euclidean, as the original)."""
        d = z.pow(2).sum(-1, keepdim=True) + self.codebook.pow(2).sum(-1) - 2 * z @ self.codebook.t()
        return d.argmin(dim=-1)

    def forward(
        self, z: torch.Tensor, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, N, D), valid (B, N) bool -> (z_q straight-through (B, N, D), commitment loss, ids (B, N))."""
        z = F.normalize(z.float(), dim=-1)  # original: quantiser runs outside autocast, in float32
        flat = z.reshape(-1, self.dim)
        keep = torch.ones(flat.shape[0], dtype=torch.bool, device=z.device) if valid is None else valid.reshape(-1)
        self.init_codebook(flat[keep].detach())  # original: on the first forward, train or eval
        ids = self.ids(flat.detach())
        z_q = self.codebook[ids].view_as(z)
        if self.training:
            self._ema_update(flat[keep].detach(), ids[keep])
        sel = keep.view(z.shape[:-1])
        loss = self.beta * F.mse_loss(z_q[sel].detach(), z[sel]) if sel.any() else z.sum() * 0.0
        z_q = z + (z_q - z).detach()  # straight-through estimator
        return z_q, loss, ids.view(z.shape[:-1])

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, ids: torch.Tensor) -> None:
        """Move each *used* code towards the normalised mean of its features; unused codes stay as they are."""
        bins = torch.bincount(ids, minlength=self.n_codes).to(self.cluster_size.dtype)
        sums = torch.zeros_like(self.codebook).index_add_(0, ids, z.to(self.codebook.dtype))
        if _distributed():  # original: all_reduce of the statistics, so all ranks keep one codebook
            dist.all_reduce(bins)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(bins, alpha=1 - self.decay)
        used = bins > 0
        if not used.any():
            return
        mean = F.normalize(sums[used] / bins[used, None], dim=-1)
        self.codebook[used] = F.normalize(self.decay * self.codebook[used] + (1 - self.decay) * mean, dim=-1)


@dataclass
class VQOutput:
    loss: torch.Tensor  # rec_loss + quant_loss
    rec_loss: torch.Tensor
    quant_loss: torch.Tensor
    reconstruction: torch.Tensor  # (B, N, token_len)
    ids: torch.Tensor  # (B, N) codebook ids


class HeartbeatVQ(nn.Module):
    """VQ-HBR: ``forward(tokens)`` -> losses for stage 1; ``codebook_ids(tokens)`` -> targets for stage 2."""

    def __init__(
        self,
        *,
        width: int,
        enc_depth: int,
        dec_depth: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        n_codes: int,
        code_dim: int,
        decay: float = 0.99,
        kmeans_init: bool = True,
        token_len: int = 96,
        max_tokens: int = 256,
        smooth_l1: bool = False,
        mask_padding: bool = False,
    ) -> None:
        super().__init__()
        self.token_len, self.n_codes, self.code_dim = token_len, n_codes, code_dim
        kw = dict(max_tokens=max_tokens, mask_padding=mask_padding, mask_token=False)  # VQ-HBR never masks
        self.encoder = BeatTransformer(token_len, width, enc_depth, heads, dim_head, mlp_dim, **kw)
        self.decoder = BeatTransformer(code_dim, width, dec_depth, heads, dim_head, mlp_dim, **kw)
        self.quantizer = NormEMAQuantizer(n_codes, code_dim, decay=decay, kmeans_init=kmeans_init)
        self.encode_task_layer = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, code_dim))
        self.decode_task_layer = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, token_len))
        for m in [*self.encode_task_layer, *self.decode_task_layer]:
            if isinstance(m, nn.Linear):  # original: trunc_normal_(std=0.02), zero bias
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.loss_fn = F.smooth_l1_loss if smooth_l1 else F.mse_loss

    def encode(self, tokens: BeatTokens) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (z_q (B, N, code_dim), commitment loss, ids (B, N))."""
        feats = self.encoder(tokens.beats, tokens.lead_ids, tokens.time_ids, padding_mask=tokens.padding_mask)[:, 1:]
        # original (backbone_vqhbr.py:215,225): x[zero_mask] = 0 for every all-zero beat -- padding and real beats
        # of a zero-filled lead alike (measured: such beats got other codes when only padding was zeroed)
        zero = tokens.padding_mask | (tokens.beats == 0).all(dim=-1)
        feats = feats.masked_fill(zero[..., None], 0.0)
        return self.quantizer(self.encode_task_layer(feats), valid=~tokens.padding_mask)

    def decode(self, z_q: torch.Tensor, tokens: BeatTokens) -> torch.Tensor:
        h = self.decoder(z_q, tokens.lead_ids, tokens.time_ids, padding_mask=tokens.padding_mask)[:, 1:]
        return self.decode_task_layer(h)

    def forward(self, tokens: BeatTokens) -> VQOutput:
        z_q, quant_loss, ids = self.encode(tokens)
        rec = self.decode(z_q, tokens)
        valid = ~tokens.padding_mask
        rec_loss = self.loss_fn(rec[valid], tokens.beats[valid]) if valid.any() else rec.sum() * 0.0
        return VQOutput(rec_loss + quant_loss, rec_loss, quant_loss, rec, ids)

    @torch.no_grad()
    def codebook_ids(self, tokens: BeatTokens, ignore_index: int | None = -100) -> torch.Tensor:
        """Codebook id of every beat (B, N) without touching the codebook; padding -> ``ignore_index``."""
        was = self.training
        self.eval()
        try:
            _, _, ids = self.encode(tokens)
        finally:
            self.train(was)
        if ignore_index is not None:
            ids = ids.masked_fill(tokens.padding_mask, ignore_index)
        return ids
