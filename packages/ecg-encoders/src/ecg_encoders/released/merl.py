"""MERL's released weights (cheliu-computation/MERL-ICML2024): ResNet18 -> our ``ResNet18_1D``, ViT-tiny ->
our ``ViT1D`` preset ``merl_vit_tiny`` (+ ``proj_e``), the two towers the README says were uploaded.

ResNet18 (format ``merl_resnet18``):

Two released files (README "Pre-trained models"): ``*_ckpt.pth`` = the whole ``ECGCLIP`` state dict
(``utils/utils_builder.py``), ``*_encoder.pth`` = ``ecg_encoder.state_dict()`` only (the ResNet, for linear
probing). Key map (``ecg_encoder.`` prefix in the whole model, none in the encoder file):

| released                                   | ours                                     |
|--------------------------------------------|------------------------------------------|
| ``conv1.weight``, ``bn1.*``                 | ``backbone.stem.0.weight``, ``backbone.stem.1.*`` |
| ``layer{s}.{j}.{conv1,bn1,conv2,bn2,shortcut.0,shortcut.1}.*`` | ``backbone.layers.{2(s-1)+j}.*`` (same leaf names) |
| ``downconv.*``                              | ``downconv.*``                           |
| ``att_pool_head.positional_embedding``      | ``pool.pos_embed``                       |
| ``att_pool_head.cls_token``                 | ``pool.cls_token`` **+ positional_embedding[:, :1]** (see below) |
| ``att_pool_head.mhsa.*``                    | ``pool.attn.*``                          |
| ``att_pool_head.c_proj.*``                  | ``pool.proj.*``                          |

MERL adds ``positional_embedding[:, :1]`` to the [CLS] token and then the whole positional embedding to the
sequence, so the [CLS] row gets it twice; ours adds it once, hence the fold into ``cls_token``.
Ignored: ``ecg_encoder.linear.*`` (the ResNet's unused 10-class head), ``linear1``/``linear2`` (uni-modal
alignment views, training only), ``lm_model.*`` and ``proj_t.*`` (the MedCPT text tower: scoring it zero-shot
needs MedCPT's tokenizer, which the file does not hold — not converted).

ViT-tiny (format ``merl_vit_tiny``; ``utils/vit1d.py`` ``vit_tiny``, ``utils/utils_builder.py:80-98``): the same two
files, ``ecg_encoder.`` prefix in the whole model, none in the encoder file:

| released                                   | ours (``MERLViT``: ``ecg.`` prefix; encoder file: ``ViT1D``, none) |
|--------------------------------------------|------------------------------------------|
| ``to_patch_embedding.weight``, ``pos_embedding`` | ``patch_embed.weight``, ``pos_embed``  |
| ``block{i}.attn.norm.*``, ``block{i}.ff.norm.*`` | ``blocks.{i}.norm1.*``, ``blocks.{i}.norm2.*`` |
| ``block{i}.attn.fn.to_qkv.*``, ``block{i}.attn.fn.to_out.0.*`` | ``blocks.{i}.attn.qkv.*``, ``blocks.{i}.attn.proj.*`` |
| ``block{i}.ff.fn.net.{0,3}.*``              | ``blocks.{i}.mlp.{0,3}.*``               |
| ``norm.*``                                  | ``norm.*``                               |
| ``proj_e.{0,1,3,4}.*`` (whole model)        | ``proj_ecg.{0,1,3,4}.*``                 |

Both split ``to_qkv`` into q, k, v and then heads in the same order, so the tensors map unchanged. Heads are not
stored: width 192 and depth 12 are ``vit_tiny`` (3 heads of 64); other sizes are refused. Ignored:
``linear1``/``linear2`` (views, training only), ``lm_model.*`` and ``proj_t.*`` (MedCPT, as above).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ecg_encoders.base import EncoderOutput
from ecg_encoders.released.base import Conversion, KeyMapper
from ecg_encoders.released.errors import ReleasedFormatError

BN_LEAVES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
BLOCK_LEAVES = ("conv1.weight", "conv2.weight", "shortcut.0.weight") + tuple(
    f"{bn}.{t}" for bn in ("bn1", "bn2", "shortcut.1") for t in BN_LEAVES
)


def find_prefix(state: Mapping[str, Any]) -> str | None:
    hits = [k[: -len("layer1.0.conv1.weight")] for k in state if k.endswith("layer1.0.conv1.weight")]
    return min(hits, key=len) if hits else None


def convert(state: Mapping[str, torch.Tensor], source: str, fmt: str = "merl_resnet18") -> tuple[Any, Conversion, bool]:
    """-> (our ``ResNet18_1D``, report, has_pool): ``has_pool`` is False for the encoder-only file."""
    from ecg_encoders.ecg.resnet1d import build_resnet18_1d

    p = find_prefix(state)
    if p is None:
        raise ReleasedFormatError(source, fmt, "no 'layer1.0.conv1.weight' key: not MERL's ResNet")
    outer = p[: -len("ecg_encoder.")] if p.endswith("ecg_encoder.") else None
    has_pool = outer is not None and f"{outer}att_pool_head.cls_token" in state
    m = KeyMapper(state, source, fmt)
    proj_dim = int(state[f"{outer}downconv.weight"].shape[0]) if has_pool else 256
    n_pos = int(state[f"{outer}att_pool_head.positional_embedding"].shape[1]) - 1 if has_pool else 313
    model = build_resnet18_1d("merl", proj_dim=proj_dim)
    if model.n_tokens != n_pos:
        raise ReleasedFormatError(
            source, fmt, f"positional embedding has {n_pos} positions; 5000 samples give {model.n_tokens}"
        )
    m.put("backbone.stem.0.weight", f"{p}conv1.weight")
    for t in BN_LEAVES:
        m.put(f"backbone.stem.1.{t}", f"{p}bn1.{t}")
    for s in range(1, 5):
        for j in range(2):
            for leaf in BLOCK_LEAVES:
                key = f"{p}layer{s}.{j}.{leaf}"
                if key in state:
                    m.put(f"backbone.layers.{2 * (s - 1) + j}.{leaf}", key)
    m.ignore(re.escape(p) + r"linear\.(weight|bias)", "ResNet's unused classification layer (512 -> 10)")
    if has_pool:
        for t in ("weight", "bias"):
            m.put(f"downconv.{t}", f"{outer}downconv.{t}")
            m.put(f"pool.proj.{t}", f"{outer}att_pool_head.c_proj.{t}")
            m.put(f"pool.attn.out_proj.{t}", f"{outer}att_pool_head.mhsa.out_proj.{t}")
        m.put("pool.attn.in_proj_weight", f"{outer}att_pool_head.mhsa.in_proj_weight")
        m.put("pool.attn.in_proj_bias", f"{outer}att_pool_head.mhsa.in_proj_bias")
        pos = m.take(f"{outer}att_pool_head.positional_embedding")
        m.out["pool.pos_embed"] = pos
        m.out["pool.cls_token"] = m.take(f"{outer}att_pool_head.cls_token") + pos[:, :1]
        m.ignore(re.escape(outer) + r"linear[12]\.weight", "uni-modal alignment views (training only)")
        m.ignore(re.escape(outer) + r"(lm_model|proj_t)\..*", "MedCPT text tower: not converted (needs its tokenizer)")
        conv = m.finish(model)
    else:  # encoder-only file: the pooler stays random and is not used (features = mean of the ResNet map)
        own = model.state_dict()
        for k, v in own.items():
            if not k.startswith("backbone."):
                m.out[k] = v
        conv = m.finish(model)
        conv.state = {k: v for k, v in conv.state.items() if k.startswith("backbone.")}
    model.load_state_dict({**model.state_dict(), **{k: v for k, v in conv.state.items()}})
    return model, conv, has_pool


#: original ``TransformerBlock`` sub-module -> ours (``utils/vit1d.py`` PreNorm / Attention / FeedForward)
VIT_BLOCK = {
    "attn.norm": "norm1",
    "attn.fn.to_qkv": "attn.qkv",
    "attn.fn.to_out.0": "attn.proj",
    "ff.norm": "norm2",
    "ff.fn.net.0": "mlp.0",
    "ff.fn.net.3": "mlp.3",
}


def find_vit_prefix(state: Mapping[str, Any]) -> str | None:
    hits = [k[: -len("to_patch_embedding.weight")] for k in state if k.endswith("to_patch_embedding.weight")]
    return min(hits, key=len) if hits else None


def merl_proj_e(width: int, hidden: int = 256, out: int = 256) -> nn.Sequential:
    """MERL ``proj_e`` (``utils_builder.py:90-96``): Linear-BN-ReLU-Linear-BN, the layout of MERL's ``proj_ecg``."""
    return nn.Sequential(
        nn.Linear(width, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out),
        nn.BatchNorm1d(out),
    )


class MERLViT(nn.Module):
    """ECG side of MERL's ``ECGCLIP`` with a ViT tower: ``pooled`` = ``proj_e(LN(mean of tokens))`` (``ext_ecg_emb``).

    Attribute names ``ecg`` / ``proj_ecg`` are those of ``baselines/merl`` ``MERL``, so the converted tensors load
    into that model under the same keys.
    """

    def __init__(self, ecg: nn.Module, proj_hidden: int = 256, proj_out: int = 256) -> None:
        super().__init__()
        self.ecg = ecg
        self.proj_ecg = merl_proj_e(int(ecg.pooled_dim), proj_hidden, proj_out)
        self.fs, self.length, self.pooled_dim = ecg.fs, ecg.length, proj_out

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        out = self.ecg(x)
        return EncoderOutput(tokens=out.tokens, pooled=self.proj_ecg(out.pooled))


def convert_vit(
    state: Mapping[str, torch.Tensor], source: str, fmt: str = "merl_vit_tiny"
) -> tuple[nn.Module, Conversion, bool]:
    """-> (``MERLViT`` for the whole model / ``ViT1D`` for the encoder file, report, has_proj_e)."""
    from ecg_encoders.ecg.vit1d import PRESETS, build_vit1d

    p = find_vit_prefix(state)
    if p is None:
        raise ReleasedFormatError(source, fmt, "no 'to_patch_embedding.weight' key: not MERL's ViT")
    outer = p[: -len("ecg_encoder.")] if p.endswith("ecg_encoder.") else None
    has_proj = outer is not None and f"{outer}proj_e.0.weight" in state
    width = int(state[f"{p}to_patch_embedding.weight"].shape[0])
    block = re.compile(re.escape(p) + r"block(\d+)\.")
    depth = len({hit.group(1) for k in state if (hit := block.match(k))})
    tiny = PRESETS["merl_vit_tiny"]
    if (width, depth) != (tiny["width"], tiny["depth"]):
        raise ReleasedFormatError(
            source,
            fmt,
            f"width {width}, depth {depth}: only vit_tiny (width {tiny['width']}, "
            f"depth {tiny['depth']}) is converted (heads are not stored in the file)",
        )
    tower = build_vit1d("merl_vit_tiny")
    ours = "ecg." if has_proj else ""
    m = KeyMapper(state, source, fmt)
    m.put(f"{ours}patch_embed.weight", f"{p}to_patch_embedding.weight")
    m.put(f"{ours}pos_embed", f"{p}pos_embedding")
    for i in range(depth):
        for theirs, mine in VIT_BLOCK.items():
            for t in ("weight", "bias"):
                m.put(f"{ours}blocks.{i}.{mine}.{t}", f"{p}block{i}.{theirs}.{t}")
    for t in ("weight", "bias"):
        m.put(f"{ours}norm.{t}", f"{p}norm.{t}")
    if has_proj:
        hidden, out = int(state[f"{outer}proj_e.0.weight"].shape[0]), int(state[f"{outer}proj_e.3.weight"].shape[0])
        model: nn.Module = MERLViT(tower, hidden, out)
        for j in (0, 3):
            for t in ("weight", "bias"):
                m.put(f"proj_ecg.{j}.{t}", f"{outer}proj_e.{j}.{t}")
        for j in (1, 4):
            for t in BN_LEAVES:
                m.put(f"proj_ecg.{j}.{t}", f"{outer}proj_e.{j}.{t}")
        m.ignore(re.escape(outer) + r"linear[12]\.weight", "uni-modal alignment views (training only)")
        m.ignore(re.escape(outer) + r"(lm_model|proj_t)\..*", "MedCPT text tower: not converted (needs its tokenizer)")
    else:
        model = tower
    conv = m.finish(model)
    model.load_state_dict(conv.state)
    return model, conv, has_proj
