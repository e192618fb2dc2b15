"""MERL's released ResNet18 weights -> our ``ResNet18_1D`` (cheliu-computation/MERL-ICML2024).

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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from ecg_encoders.released.base import Conversion, KeyMapper
from ecg_encoders.released.errors import ReleasedFormatError

BLOCK_LEAVES = ("conv1.weight", "conv2.weight", "shortcut.0.weight") + tuple(
    f"{bn}.{t}" for bn in ("bn1", "bn2", "shortcut.1") for t in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"))


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
        raise ReleasedFormatError(source, fmt, f"positional embedding has {n_pos} positions; 5000 samples give {model.n_tokens}")
    m.put("backbone.stem.0.weight", f"{p}conv1.weight")
    for t in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
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
