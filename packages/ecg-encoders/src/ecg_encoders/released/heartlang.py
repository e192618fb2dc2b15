"""HeartLang's released checkpoints -> ours (PKUDigitalHealth/HeartLang).

``checkpoint-200.pth`` (``run_heartlang_pretraining.py`` / ``utils.save_model``: ``{"model": ST_ECGFormer
state dict, "optimizer", "epoch", "scaler", "args"}``) and the VQ-HBR ``checkpoint-100.pth`` (``VQHBR``).

Backbone map (``modeling_pretrain.py`` ``ST_ECGFormer`` / ``backbone_vqhbr.py`` ``VqhbrBackbone`` -> our
``BeatTransformer``):

| released                                   | ours                      |
|--------------------------------------------|---------------------------|
| ``token_embed.tokenConv.weight``            | ``token_embed.weight``    |
| ``mask_token``, ``cls_token``, ``pos_embed`` | same                      |
| ``spa_embed.embed.weight`` / ``tem_embed.embed.weight`` | ``lead_embed.weight`` / ``time_embed.weight`` |
| ``transformer.layers.i.0.norm.*``           | ``blocks.i.norm1.*``      |
| ``transformer.layers.i.0.to_qkv.weight``    | ``blocks.i.attn.qkv.weight`` (same [q|k|v] x heads layout) |
| ``transformer.layers.i.0.to_out.0.*``       | ``blocks.i.attn.proj.*``  |
| ``transformer.layers.i.1.net.{0,1,4}.*``    | ``blocks.i.{norm2,mlp.0,mlp.3}.*`` |
| ``norm_layer.*``                            | ``norm.*``                |

Sentence model: ``lm_head.*`` is the masked-beat head (pretraining only) -> ignored for the encoder.
VQ-HBR: ``encoder.*``/``decoder.*`` backbones as above, ``encode_task_layer``/``decode_task_layer`` same
names, ``quantize.embedding.weight`` -> ``quantizer.codebook``, ``quantize.cluster_size`` ->
``quantizer.cluster_size``; ``quantize.embedding.{cluster_size,embed_avg,initted}`` are EMA bookkeeping of
training (ignored; our ``initted`` is set True).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from ecg_encoders.released.base import Conversion, KeyMapper
from ecg_encoders.released.errors import ReleasedFormatError


def _layers(state: Mapping[str, Any], p: str) -> int:
    return len(
        {int(m.group(1)) for k in state if (m := re.fullmatch(re.escape(p) + r"transformer\.layers\.(\d+)\..*", k))}
    )


def backbone_config(state: Mapping[str, torch.Tensor], p: str) -> dict[str, int]:
    width = int(state[f"{p}cls_token"].shape[-1])
    qkv = state[f"{p}transformer.layers.0.0.to_qkv.weight"]
    inner = int(qkv.shape[0]) // 3
    dim_head = 64  # modeling_pretrain.py / backbone_vqhbr.py dim_head=64 (not stored in the weights)
    return dict(
        width=width,
        depth=_layers(state, p),
        heads=inner // dim_head,
        dim_head=dim_head,
        mlp_dim=int(state[f"{p}transformer.layers.0.1.net.1.weight"].shape[0]),
        token_len=int(state[f"{p}token_embed.tokenConv.weight"].shape[1]),
        max_tokens=int(state[f"{p}pos_embed"].shape[1]) - 1,
    )


def map_backbone(m: KeyMapper, p: str, ours: str, depth: int, *, mask_token: bool = True) -> None:
    """``mask_token=False``: our module has none (VQ-HBR never masks; removed so DDP sees every parameter used)."""
    m.put(f"{ours}token_embed.weight", f"{p}token_embed.tokenConv.weight")
    for k in ("mask_token", "cls_token", "pos_embed") if mask_token else ("cls_token", "pos_embed"):
        m.put(f"{ours}{k}", f"{p}{k}")
    m.put(f"{ours}lead_embed.weight", f"{p}spa_embed.embed.weight")
    m.put(f"{ours}time_embed.weight", f"{p}tem_embed.embed.weight")
    for i in range(depth):
        src, dst = f"{p}transformer.layers.{i}.", f"{ours}blocks.{i}."
        m.put(f"{dst}attn.qkv.weight", f"{src}0.to_qkv.weight")
        for t in ("weight", "bias"):
            m.put(f"{dst}norm1.{t}", f"{src}0.norm.{t}")
            m.put(f"{dst}attn.proj.{t}", f"{src}0.to_out.0.{t}")
            m.put(f"{dst}norm2.{t}", f"{src}1.net.0.{t}")
            m.put(f"{dst}mlp.0.{t}", f"{src}1.net.1.{t}")
            m.put(f"{dst}mlp.3.{t}", f"{src}1.net.4.{t}")
    for t in ("weight", "bias"):
        m.put(f"{ours}norm.{t}", f"{p}norm_layer.{t}")


def convert_sentence(state: Mapping[str, torch.Tensor], source: str, fmt: str = "heartlang") -> tuple[Any, Conversion]:
    """``ST_ECGFormer`` (HeartLang's sentence model) -> (our ``HeartLangEncoder``, report)."""
    from ecg_encoders.ecg.heartlang import build_heartlang

    if "token_embed.tokenConv.weight" not in state or "lm_head.weight" not in state:
        raise ReleasedFormatError(
            source, fmt, "no 'token_embed.tokenConv.weight' / 'lm_head.weight': not HeartLang's ST_ECGFormer"
        )
    cfg = backbone_config(state, "")
    enc = build_heartlang(
        "base",
        width=cfg["width"],
        depth=cfg["depth"],
        heads=cfg["heads"],
        dim_head=cfg["dim_head"],
        mlp_dim=cfg["mlp_dim"],
        vocab_size=int(state["lm_head.weight"].shape[0]),
    )
    m = KeyMapper(state, source, fmt)
    map_backbone(m, "", "backbone.", cfg["depth"])
    m.ignore(r"lm_head\.(weight|bias)", "masked-beat prediction head (pretraining only)")
    conv = m.finish(enc)
    enc.load_state_dict({k: v.float() for k, v in conv.state.items()})
    return enc, conv


def convert_vqhbr(
    state: Mapping[str, torch.Tensor], source: str, fmt: str = "heartlang_vqhbr"
) -> tuple[Any, Conversion]:
    """``VQHBR`` (modeling_vqhbr.py) -> (our ``HeartbeatVQ``, report)."""
    from ecg_encoders.ecg.heartlang import build_heartbeat_vq

    if "quantize.embedding.weight" not in state:
        raise ReleasedFormatError(source, fmt, "no 'quantize.embedding.weight': not HeartLang's VQ-HBR")
    enc_cfg, dec_cfg = backbone_config(state, "encoder."), backbone_config(state, "decoder.")
    code = state["quantize.embedding.weight"]
    vq = build_heartbeat_vq(
        "base",
        width=enc_cfg["width"],
        enc_depth=enc_cfg["depth"],
        dec_depth=dec_cfg["depth"],
        heads=enc_cfg["heads"],
        dim_head=enc_cfg["dim_head"],
        mlp_dim=enc_cfg["mlp_dim"],
        n_codes=int(code.shape[0]),
        code_dim=int(code.shape[1]),
    )
    m = KeyMapper(state, source, fmt)
    map_backbone(m, "encoder.", "encoder.", enc_cfg["depth"], mask_token=False)
    map_backbone(m, "decoder.", "decoder.", dec_cfg["depth"], mask_token=False)
    for layer in ("encode_task_layer", "decode_task_layer"):
        for i in (0, 2):
            for t in ("weight", "bias"):
                m.put(f"{layer}.{i}.{t}", f"{layer}.{i}.{t}")
    m.put("quantizer.codebook", "quantize.embedding.weight")
    if "quantize.cluster_size" in state:
        m.put("quantizer.cluster_size", "quantize.cluster_size")
    else:
        m.out["quantizer.cluster_size"] = torch.zeros(code.shape[0])
    m.out["quantizer.initted"] = torch.tensor(True)
    m.ignore(r"quantize\.embedding\.(cluster_size|embed_avg|initted)", "EMA bookkeeping of codebook training")
    m.ignore(
        r"(encoder|decoder)\.mask_token", "VQ-HBR never masks: our tokenizer has no [MASK] vector (unused in the loss)"
    )
    conv = m.finish(vq)
    vq.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in conv.state.items()})
    return vq, conv
