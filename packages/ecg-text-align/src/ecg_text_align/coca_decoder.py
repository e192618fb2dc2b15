"""CoCa caption decoder in the form ESI uses (comp-well-org/ESI @5c08a9b ``model/esi.py``, adapted there from
lucidrains' coca-pytorch), written here from its description; nothing is copied.

Each of the ``layers`` multimodal layers is two residual blocks:

1. *parallel* block (``esi.py:144-248``): one bias-free LayerNorm (gain only), one fused bias-free projection
   to multi-head queries, **one shared key/value head** (multi-query attention) and a SwiGLU feed-forward
   input; rotary position embeddings on queries and keys; causal attention; output = attn_out(attn) +
   ff_out(SwiGLU(ff)); no biases anywhere;
2. cross-attention block (``esi.py:252-337``, ``parallel_ff=True``, ``norm_context=False``): bias-free
   LayerNorm of the text, queries from it, one shared key/value head from the (un-normalised) ECG context,
   plus a parallel SwiGLU feed-forward of the normalised text.

Then bias-free LayerNorm and a bias-free projection to the vocabulary (``esi.py:410-413``). At width 768,
8 heads of 64, ff_mult 4, 6 layers: 95,560,704 parameters without the final norm and vocabulary projection
(tests/baselines/test_paper_counts.py). The interface is the one of ``CaptionDecoder``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ecg_text_align.decoder import DecoderSteps


class GainLayerNorm(nn.Module):
    """LayerNorm with a learned gain and a fixed zero bias (a buffer), as ESI's ``LayerNorm``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.gamma, self.beta)


def _rotary(n: int, dim_head: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n, dim_head) rotary angles: positions x inverse frequencies 10000^(-2i/d), repeated for both halves."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim_head, 2, device=device, dtype=torch.float32) / dim_head))
    freqs = torch.arange(n, device=device, dtype=torch.float32)[:, None] * inv_freq[None]
    return torch.cat((freqs, freqs), dim=-1).to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _apply_rotary(pos: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return t * pos.cos() + _rotate_half(t) * pos.sin()


def _swiglu(x: torch.Tensor) -> torch.Tensor:
    x, gate = x.chunk(2, dim=-1)
    return F.silu(gate) * x


class ParallelBlock(nn.Module):
    """Causal multi-query self-attention and SwiGLU feed-forward computed in parallel from one norm."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8, ff_mult: int = 4) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        self.norm = GainLayerNorm(dim)
        attn_inner, ff_inner = dim_head * heads, dim * ff_mult
        self.fused_dims = (attn_inner, dim_head, dim_head, 2 * ff_inner)
        self.fused_attn_ff_proj = nn.Linear(dim, sum(self.fused_dims), bias=False)
        self.attn_out = nn.Linear(attn_inner, dim, bias=False)
        self.ff_out = nn.Linear(ff_inner, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        y = self.norm(x)
        q, k, v, ff = self.fused_attn_ff_proj(y).split(self.fused_dims, dim=-1)
        q = q.view(b, n, self.heads, self.dim_head).transpose(1, 2)  # (b, h, n, d)
        pos = _rotary(n, self.dim_head, x.device, q.dtype)
        q, k = _apply_rotary(pos, q), _apply_rotary(pos, k)
        # one shared key/value head (multi-query): broadcast over the query heads
        o = F.scaled_dot_product_attention(q, k[:, None], v[:, None], is_causal=True)
        o = o.transpose(1, 2).reshape(b, n, -1)
        return x + self.attn_out(o) + self.ff_out(_swiglu(ff))


class CrossBlock(nn.Module):
    """Multi-query cross-attention from text to the ECG context plus a parallel SwiGLU feed-forward."""

    def __init__(
        self, dim: int, context_dim: int | None = None, dim_head: int = 64, heads: int = 8, ff_mult: int = 4
    ) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner, ff_inner = heads * dim_head, ff_mult * dim
        self.norm = GainLayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim or dim, 2 * dim_head, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)
        self.ff_in = nn.Linear(dim, 2 * ff_inner, bias=False)
        self.ff_out = nn.Linear(ff_inner, dim, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        y = self.norm(x)
        q = self.to_q(y).view(b, n, self.heads, self.dim_head).transpose(1, 2)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        o = F.scaled_dot_product_attention(q, k[:, None], v[:, None])
        o = self.to_out(o.transpose(1, 2).reshape(b, n, -1))
        return x + o + self.ff_out(_swiglu(self.ff_in(y)))


class CoCaDecoder(DecoderSteps, nn.Module):
    """(ECG context (B, N, d_ecg), text states (B, L, width)) -> logits (B, L, vocab), ESI's multimodal layers."""

    def __init__(
        self,
        vocab_size: int,
        width: int = 768,
        layers: int = 6,  # ESI main.py multimodal_depth=6
        heads: int = 8,  # ESI main.py heads=8
        context_length: int = 512,
        dim_head: int = 64,  # ESI main.py dim_head=64
        ff_mult: int = 4,  # ESI ff_mult=4
        ecg_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.width, self.layers, self.context_length = width, layers, context_length
        self.self_attn = nn.ModuleList(ParallelBlock(width, dim_head, heads, ff_mult) for _ in range(layers))
        self.cross_attn = nn.ModuleList(
            CrossBlock(width, ecg_dim or width, dim_head, heads, ff_mult) for _ in range(layers)
        )
        self.ln_final = GainLayerNorm(width)
        self.to_logits = nn.Linear(width, vocab_size, bias=False)
        #: recompute each block in backward instead of keeping its activations (memory option, same gradients)
        self.activation_checkpointing = False

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., width) -> (..., vocab) logits; the caption loss calls it on the real positions only."""
        return self.to_logits(hidden)
