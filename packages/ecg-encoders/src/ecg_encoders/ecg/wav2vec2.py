"""wav2vec2-style ECG encoder: MELP's ECG tower (the ECG-FM / fairseq-signals ``Wav2Vec2CMSCModel``).

Pipeline (fairseq_signals_backbone/models/ecg_transformer.py, ``get_embeddings``):
12-lead signal -> 4 strided convs (256 ch, kernel 2, stride 2, no bias; GroupNorm(256, 256) after the
first, GELU after each: 5000 -> 312 steps) -> LayerNorm(256) -> Linear(256, d) -> dropout
-> [span mask: masked steps replaced by a learned vector] -> + convolutional positional embedding
(Conv1d d->d, kernel 128, 16 groups, weight norm over the kernel axis, drop the extra pad, GELU)
-> post-LN transformer. ``tokens`` are the transformer outputs (B, 312, d); ``pooled`` is their mean.

The quantiser, span masking and the contrastive pretraining head live in ``w2v_quantizer``,
``w2v_masking`` and ``w2v_pretrain`` so that downstream users of the encoder never import them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ecg_encoders.base import ECGEncoder, EncoderOutput
from ecg_encoders.ecg.w2v_transformer import PostLNTransformer


@dataclass(frozen=True)
class Wav2Vec2Config:
    """All hyperparameters; defaults are MELP's ``model_size="small"`` (ecgfm_model.py)."""

    in_channels: int = 12  # cfg.in_d = 12 (ecgfm_model.py init_ecg_encoder)
    conv_layers: tuple[tuple[int, int, int], ...] = ((256, 2, 2),) * 4  # conv_feature_layers default
    conv_bias: bool = False  # ECGTransformerConfig.conv_bias
    width: int = 768  # encoder_embed_dim ("small")
    layers: int = 8  # encoder_layers ("small": 8, MELP "We use 8 layers ... by default")
    heads: int = 12  # encoder_attention_heads
    ffn_dim: int = 3072  # encoder_ffn_embed_dim
    conv_pos: int = 128  # ECGTransformerConfig.conv_pos
    conv_pos_groups: int = 16  # ECGTransformerConfig.conv_pos_groups
    dropout: float = 0.1  # TransformerConfig.dropout
    attention_dropout: float = 0.1  # TransformerConfig.attention_dropout
    activation_dropout: float = 0.0  # TransformerConfig.activation_dropout
    layerdrop: float = 0.0  # TransformerConfig.encoder_layerdrop
    dropout_input: float = 0.1  # MELP ecgfm_model.py (dropout_input = 0.1)
    feature_grad_mult: float = 0.1  # MELP ecgfm_model.py (feature_grad_mult = 0.1)
    fused_attention: bool = True
    fs: int = 500
    length: int = 5000
    # --- pretraining head (used by w2v_pretrain.Wav2Vec2Pretrainer only) ---
    final_dim: int = 256  # MELP ecgfm_model.py (final_dim = 256)
    latent_vars: int = 320  # Wav2Vec2Config.latent_vars
    latent_groups: int = 2  # Wav2Vec2Config.latent_groups
    latent_temp: tuple[float, float, float] = (2.0, 0.5, 0.999995)  # Wav2Vec2Config.latent_temp
    num_negatives: int = 100  # Wav2Vec2Config.num_negatives
    logit_temp: float = 0.1  # Wav2Vec2Config.logit_temp
    dropout_features: float = 0.1  # MELP ecgfm_model.py (dropout_features = 0.1)
    mask_prob: float = 0.65  # MELP ecgfm_model.py (mask_prob = 0.65)
    mask_length: int = 10  # TransformerConfig.mask_length

    @property
    def embed(self) -> int:
        """Channels of the conv feature extractor's output."""
        return self.conv_layers[-1][0]

    def n_tokens(self, length: int | None = None) -> int:
        n = self.length if length is None else length
        for _, k, s in self.conv_layers:
            n = (n - k) // s + 1
        return n


#: fairseq-signals / MELP configurations. "tiny" keeps the 5000-sample input and the 312 tokens but
#: shrinks every width so CPU tests run in milliseconds.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        conv_layers=((32, 2, 2),) * 4,
        width=64,
        layers=2,
        heads=4,
        ffn_dim=128,
        conv_pos=16,
        conv_pos_groups=4,
        final_dim=32,
        latent_vars=16,
        latent_groups=2,
        num_negatives=10,
    ),
    "melp": {},  # MELP ecgfm_model.py model_size="small": d=768, 8 layers, 12 heads, FFN 3072
    "ecgfm_base": dict(layers=12),  # model_size="base" (ECG-FM, 12 layers)
    "ecgfm_large": dict(width=1024, layers=24, heads=16, ffn_dim=4096),  # model_size="large"
}
PAPER_PRESETS: list[str] = ["melp"]


class GradMultiply(torch.autograd.Function):
    """Identity forward, gradient scaled by ``scale`` (fairseq ``GradMultiply``; feature_grad_mult)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


class ConvFeatureExtractor(nn.Module):
    """fairseq ``ConvFeatureExtraction`` in ``mode="default"``: GroupNorm (one group per channel) after
    the first conv only, GELU after every conv, Kaiming-normal conv weights."""

    def __init__(self, in_channels: int, layers: tuple[tuple[int, int, int], ...], bias: bool = False) -> None:
        super().__init__()
        blocks = []
        c_in = in_channels
        for i, (c_out, k, s) in enumerate(layers):
            conv = nn.Conv1d(c_in, c_out, k, stride=s, bias=bias)
            nn.init.kaiming_normal_(conv.weight)
            parts: list[nn.Module] = [conv]
            if i == 0:
                parts.append(nn.GroupNorm(c_out, c_out, affine=True))
            parts.append(nn.GELU())
            blocks.append(nn.Sequential(*parts))
            c_in = c_out
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, T) -> (B, C, N)
        for block in self.conv_layers:
            x = block(x)
        return x


class ConvPositionalEmbedding(nn.Module):
    """Grouped conv over time as a relative positional embedding (fairseq ``ConvPositionalEncoding``).

    An even kernel with padding k//2 yields one step too many; ``SamePad`` drops the last one.
    """

    def __init__(self, dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=groups)
        nn.init.normal_(conv.weight, mean=0.0, std=math.sqrt(4.0 / (kernel * dim)))
        nn.init.constant_(conv.bias, 0.0)
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        self.remove = 1 if kernel % 2 == 0 else 0
        #: on CPU, run the conv as a channels-last 2-D conv: the (B, N, d) tokens already have that layout, and
        #: oneDNN's channels-last grouped kernel is ~1.7x faster forward + backward at MELP's size
        #: (docs/performance.md); same weights and outputs to float rounding. The trainer's ``perf.channels_last_conv``.
        self.channels_last_conv = False

    def _conv_channels_last(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, d) -> (B, d, N + 1)
        conv = self.conv
        w = conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (d, d/groups, 1, k)
        y = F.conv2d(x.transpose(1, 2).unsqueeze(2), w, conv.bias, padding=(0, conv.padding[0]), groups=conv.groups)
        return y.squeeze(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, d) -> (B, N, d)
        if self.channels_last_conv and x.device.type == "cpu":
            y = self._conv_channels_last(x)
        else:
            y = self.conv(x.transpose(1, 2))
        if self.remove:
            y = y[:, :, : -self.remove]
        return F.gelu(y).transpose(1, 2)


@dataclass
class Wav2Vec2Features:
    """Everything one pass computes; the pretraining head needs the pre-projection features too."""

    tokens: torch.Tensor  # (B, N, d) transformer outputs
    features: torch.Tensor  # (B, N, C) conv features after LayerNorm, *before* masking/projection
    features_pen: torch.Tensor  # mean squared conv activation (fairseq "features_pen")
    mask_indices: torch.Tensor | None = field(default=None)  # (B, N) bool, True = masked


class Wav2Vec2Encoder(ECGEncoder):
    def __init__(self, cfg: Wav2Vec2Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.fs = cfg.fs
        self.length = cfg.length
        self.width = cfg.width
        self.pooled_dim = cfg.width
        self.feature_extractor = ConvFeatureExtractor(cfg.in_channels, cfg.conv_layers, cfg.conv_bias)
        self.layer_norm = nn.LayerNorm(cfg.embed)
        self.post_extract_proj = nn.Linear(cfg.embed, cfg.width) if cfg.embed != cfg.width else None
        self.dropout_input = nn.Dropout(cfg.dropout_input)
        # learned vector that replaces masked steps (TransformerModel.mask_emb, uniform init)
        self.mask_emb = nn.Parameter(torch.empty(cfg.width).uniform_())
        self.pos_conv = ConvPositionalEmbedding(cfg.width, cfg.conv_pos, cfg.conv_pos_groups)
        self.encoder = PostLNTransformer(
            cfg.width,
            cfg.layers,
            cfg.heads,
            cfg.ffn_dim,
            cfg.dropout,
            cfg.attention_dropout,
            cfg.activation_dropout,
            cfg.layerdrop,
            cfg.fused_attention,
        )

    def drop_mask_emb(self) -> None:
        """Remove ``mask_emb`` for users that never mask (MELP stage 2): DDP without the unused-parameter search
        needs every parameter to take part in the loss."""
        self.mask_emb = None

    def set_fused_attention(self, fused: bool) -> None:
        """Switch between ``scaled_dot_product_attention`` and explicit attention (same weights)."""
        self.encoder.set_fused_attention(fused)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"wav2vec2 encoder expects (batch, {self.cfg.in_channels}, samples), got {tuple(x.shape)}")
        if self.cfg.n_tokens(x.shape[-1]) < 2:
            raise ValueError(f"wav2vec2 encoder: input of {x.shape[-1]} samples gives fewer than 2 tokens")

    def extract(self, x: torch.Tensor, mask_indices: torch.Tensor | None = None) -> Wav2Vec2Features:
        """Run the tower; ``mask_indices`` (B, N) bool replaces those steps by ``mask_emb``."""
        self._check_input(x)
        feats = self.feature_extractor(x.to(self.layer_norm.weight.dtype))
        mult = self.cfg.feature_grad_mult
        if mult <= 0:
            feats = feats.detach()
        elif mult != 1.0 and feats.requires_grad:
            feats = GradMultiply.apply(feats, mult)
        features_pen = feats.float().pow(2).mean()
        feats = self.layer_norm(feats.transpose(1, 2))
        h = self.post_extract_proj(feats) if self.post_extract_proj is not None else feats
        h = self.dropout_input(h)
        if mask_indices is not None:
            if self.mask_emb is None:
                raise ValueError("this wav2vec2 encoder has no mask_emb (drop_mask_emb() was called); it cannot mask")
            if mask_indices.shape != h.shape[:2]:
                raise ValueError(f"mask_indices shape {tuple(mask_indices.shape)} != tokens {tuple(h.shape[:2])}")
            h = torch.where(mask_indices[..., None], self.mask_emb.to(h.dtype), h)
        h = h + self.pos_conv(h)
        tokens = self.encoder(h)
        return Wav2Vec2Features(tokens=tokens, features=feats, features_pen=features_pen, mask_indices=mask_indices)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        tokens = self.extract(x).tokens
        return EncoderOutput(tokens=tokens, pooled=tokens.mean(dim=1))


def make_config(preset: str = "tiny", **overrides: Any) -> Wav2Vec2Config:
    if preset not in PRESETS:
        raise KeyError(f"unknown wav2vec2 preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    valid = {f.name for f in fields(Wav2Vec2Config)}
    bad = sorted(set(overrides) - valid)
    if bad:
        raise TypeError(f"unknown wav2vec2 option(s) {bad}; valid options: {sorted(valid)}")
    return replace(Wav2Vec2Config(), **{**PRESETS[preset], **overrides})


def build_wav2vec2(preset: str = "tiny", **overrides: Any) -> Wav2Vec2Encoder:
    """Registry factory (``ECG_ENCODERS["wav2vec2"]``)."""
    return Wav2Vec2Encoder(make_config(preset, **overrides))


def config_dict(cfg: Wav2Vec2Config) -> dict[str, Any]:
    return asdict(cfg)
