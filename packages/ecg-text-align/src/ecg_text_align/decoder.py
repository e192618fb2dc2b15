"""CoCa-style caption decoder: causal self-attention over text states + cross-attention to ECG tokens.

Architecture as open_clip's ``MultimodalTransformer`` used by MELP (``melp/backbone/transformer.py``):
pre-LN residual blocks, each layer = causal self-attention block then a cross-attention block, final
LayerNorm and a projection to the vocabulary. MELP's ``MultimodalConfig``: width 768, 8 heads, 6 layers,
context 128, MLP ratio 4. The released code never called ``init_parameters`` (and it referenced a
non-existent attribute), so its output projection stayed ``torch.empty`` garbage; here every weight is
initialised with open_clip's scheme.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


def run_blocks(
    self_attn: nn.ModuleList,
    cross_attn: nn.ModuleList,
    x: torch.Tensor,
    ecg_tokens: torch.Tensor,
    *,
    checkpointing: bool = False,
) -> torch.Tensor:
    """Alternate self-attention and cross-attention blocks (both caption decoders); with ``checkpointing`` (and
    gradients on) each block is recomputed in backward instead of keeping its activations (same gradients)."""
    ckpt = checkpointing and torch.is_grad_enabled()
    for sa, ca in zip(self_attn, cross_attn):
        if ckpt:
            x = checkpoint(ca, checkpoint(sa, x, use_reentrant=False), ecg_tokens, use_reentrant=False)
        else:
            x = ca(sa(x), ecg_tokens)
    return x


class _Block(nn.Module):
    """Pre-LN residual attention block; ``cross`` blocks attend from text to ECG tokens."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, cross: bool, context_dim: int | None = None):
        super().__init__()
        if width % heads:
            raise ValueError(f"decoder width {width} is not divisible by heads {heads}")
        self.heads, self.cross = heads, cross
        self.ln_1 = nn.LayerNorm(width)
        self.ln_1_kv = nn.LayerNorm(context_dim or width) if cross else None
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(context_dim or width, 2 * width)
        self.out = nn.Linear(width, width)
        self.ln_2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def _attn(self, x: torch.Tensor, ctx: torch.Tensor, causal: bool) -> torch.Tensor:
        b, n, w = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, w // h).transpose(1, 2)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, h, w // h).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.out(o.transpose(1, 2).reshape(b, n, w))

    def forward(self, x: torch.Tensor, ecg: torch.Tensor | None = None) -> torch.Tensor:
        y = self.ln_1(x)
        if self.cross:
            x = x + self._attn(y, self.ln_1_kv(ecg), causal=False)
        else:
            x = x + self._attn(y, y, causal=True)
        return x + self.mlp(self.ln_2(x))


class DecoderSteps:
    """``hidden`` and ``forward`` of both caption decoders (open_clip-style ``CaptionDecoder``, ESI's
    ``CoCaDecoder``): each defines its blocks, ``ln_final``, ``context_length``, ``activation_checkpointing`` and
    ``project``."""

    def hidden(self, ecg_tokens: torch.Tensor, text_states: torch.Tensor) -> torch.Tensor:
        """Final-LayerNorm states (B, L, width), before the vocabulary projection (``project``)."""
        if text_states.shape[1] > self.context_length:
            raise ValueError(f"text length {text_states.shape[1]} exceeds decoder context {self.context_length}")
        return self.ln_final(
            run_blocks(
                self.self_attn, self.cross_attn, text_states, ecg_tokens, checkpointing=self.activation_checkpointing
            )
        )

    def forward(self, ecg_tokens: torch.Tensor, text_states: torch.Tensor, project: bool = True) -> torch.Tensor:
        """Logits (B, L, vocab), or with ``project=False`` the states before the projection (through ``__call__``,
        so a compiled decoder stays compiled when the caption loss projects only the real positions)."""
        h = self.hidden(ecg_tokens, text_states)
        return self.project(h) if project else h


class CaptionDecoder(DecoderSteps, nn.Module):
    """(ECG tokens (B, N, d_ecg), text states (B, L, width)) -> logits (B, L, vocab)."""

    def __init__(
        self,
        vocab_size: int,
        width: int = 768,  # MELP MultimodalConfig.width
        layers: int = 6,  # MELP MultimodalConfig.layers
        heads: int = 8,  # MELP MultimodalConfig.heads
        context_length: int = 128,  # MELP MultimodalConfig.context_length
        mlp_ratio: float = 4.0,
        ecg_dim: int | None = None,
    ):
        super().__init__()
        self.width, self.layers, self.context_length = width, layers, context_length
        self.self_attn = nn.ModuleList(_Block(width, heads, mlp_ratio, cross=False) for _ in range(layers))
        self.cross_attn = nn.ModuleList(
            _Block(width, heads, mlp_ratio, cross=True, context_dim=ecg_dim or width) for _ in range(layers)
        )
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, vocab_size))
        #: recompute each block in backward instead of keeping its activations (memory option, same gradients)
        self.activation_checkpointing = False
        self.init_parameters()

    def init_parameters(self) -> None:
        """open_clip's ``init_parameters`` scheme (the one MELP meant to call)."""
        proj_std = self.width**-0.5 * (2 * self.layers) ** -0.5
        attn_std = self.width**-0.5
        fc_std = (2 * self.width) ** -0.5
        for block in [*self.self_attn, *self.cross_attn]:
            nn.init.normal_(block.q.weight, std=attn_std)
            nn.init.normal_(block.kv.weight, std=attn_std)
            nn.init.normal_(block.out.weight, std=proj_std)
            nn.init.normal_(block.mlp[0].weight, std=fc_std)
            nn.init.normal_(block.mlp[2].weight, std=proj_std)
            for lin in (block.q, block.kv, block.out, block.mlp[0], block.mlp[2]):
                nn.init.zeros_(lin.bias)
        nn.init.normal_(self.text_projection, std=self.width**-0.5)

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., width) -> (..., vocab) logits; the caption loss calls it on the real positions only."""
        return hidden @ self.text_projection
