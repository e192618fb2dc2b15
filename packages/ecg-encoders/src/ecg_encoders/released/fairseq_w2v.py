"""fairseq-signals wav2vec2 family -> ours: MELP's released ECG encoder and ECG-FM.

Released layout (fuying-wang/fairseq-signals ``models/ecg_transformer.py``, ``models/wav2vec2/wav2vec2.py``,
``modules/*``; the same names as Jwoo5/fairseq-signals, which ECG-FM is trained with):

| released (prefix ``P``)                                        | ours (``Wav2Vec2Encoder``)                          |
|----------------------------------------------------------------|-----------------------------------------------------|
| ``feature_extractor.conv_layers.i.0.weight``                   | ``feature_extractor.conv_layers.i.0.weight``        |
| ``feature_extractor.conv_layers.0.2.{weight,bias}`` (GroupNorm after a Dropout) | ``feature_extractor.conv_layers.0.1.*`` |
| ``layer_norm.*``, ``post_extract_proj.*``, ``mask_emb``         | same                                                |
| ``conv_pos.pos_conv.0.parametrizations.weight.original{0,1}`` or ``conv_pos.pos_conv.0.weight_{g,v}`` | ``pos_conv.conv.parametrizations.weight.original{0,1}`` |
| ``conv_pos.pos_conv.0.bias``                                    | ``pos_conv.conv.bias``                              |
| ``encoder.layer_norm.*``                                        | ``encoder.layer_norm.*``                            |
| ``encoder.layers.i.self_attn.{q,k,v}_proj.*`` (three Linear)    | ``encoder.layers.i.self_attn.qkv.*`` (concatenated q, k, v) |
| ``encoder.layers.i.self_attn.out_proj.*``                       | ``encoder.layers.i.self_attn.out.*``                |
| ``encoder.layers.i.{self_attn_layer_norm,fc1,fc2,final_layer_norm}.*`` | same                                      |

Ignored: ``quantizer.*``, ``project_q.*``, ``final_proj.*`` (wav2vec2 pretraining head, not used by the
encoder's forward). MELP's ``ECGFMModel`` wraps the model as ``ecg_encoder.*`` and adds its poolers
(``attn_pool_contrast``, ``ln_contrast``, ``proj_contrast``, ``attn_pool_caption``, ``ln_caption``: same names
as our ``MELPECGTower``); its ``logit_scale`` (CMSC temperature) and ``bn.*`` (the affine-free BatchNorm of a
commented-out Barlow-Twins term) are ignored. Heads and strides are not stored in weights: heads come from
the width (fairseq-signals' sizes: 768 -> 12, 1024 -> 16), conv strides equal the kernels (``[(256, 2, 2)] * 4``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from ecg_encoders.released.base import Conversion, KeyMapper
from ecg_encoders.released.errors import ReleasedFormatError

ANCHOR = "feature_extractor.conv_layers.0.0.weight"
PRETRAIN_HEAD = r"(quantizer\..*|project_q\..*|final_proj\..*|input_quantizer\..*|project_inp\..*|target_glu\..*)"
POOLER_PREFIXES = ("attn_pool_contrast.", "ln_contrast.", "proj_contrast", "attn_pool_caption.", "ln_caption.")


def find_prefix(state: Mapping[str, Any]) -> str | None:
    """The prefix under which a fairseq-signals wav2vec2 lives (``""``, ``"ecg_encoder."``, ...), or None."""
    hits = [k[: -len(ANCHOR)] for k in state if k.endswith(ANCHOR)]
    return min(hits, key=len) if hits else None


def infer_config(state: Mapping[str, torch.Tensor], p: str) -> dict[str, Any]:
    """Our ``Wav2Vec2Config`` overrides, read from the tensor shapes."""
    convs = sorted(
        {
            int(m.group(1))
            for k in state
            if (m := re.fullmatch(re.escape(p) + r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", k))
        }
    )
    conv_layers = []
    for i in convs:
        w = state[f"{p}feature_extractor.conv_layers.{i}.0.weight"]
        conv_layers.append((int(w.shape[0]), int(w.shape[2]), int(w.shape[2])))
    in_channels = int(state[f"{p}{ANCHOR}"].shape[1])
    embed = conv_layers[-1][0]
    proj = state.get(f"{p}post_extract_proj.weight")
    width = int(proj.shape[0]) if proj is not None else embed
    n_layers = len(
        {int(m.group(1)) for k in state if (m := re.fullmatch(re.escape(p) + r"encoder\.layers\.(\d+)\..*", k))}
    )
    ffn = int(state[f"{p}encoder.layers.0.fc1.weight"].shape[0])
    v = state.get(
        f"{p}conv_pos.pos_conv.0.parametrizations.weight.original1", state.get(f"{p}conv_pos.pos_conv.0.weight_v")
    )
    if v is None:
        raise KeyError("conv_pos.pos_conv.0 weight (parametrized or weight_g/weight_v)")
    heads = {768: 12, 1024: 16}.get(width, max(1, width // 64))
    return dict(
        in_channels=in_channels,
        conv_layers=tuple(conv_layers),
        width=width,
        layers=n_layers,
        heads=heads,
        ffn_dim=ffn,
        conv_pos=int(v.shape[2]),
        conv_pos_groups=int(width // v.shape[1]),
        conv_bias=f"{p}feature_extractor.conv_layers.0.0.bias" in state,
    )


def map_wav2vec2(
    m: KeyMapper, p: str, ours: str, n_convs: int, n_layers: int, has_proj: bool, mask_emb: bool = True
) -> None:
    """Fill ``m.out`` with our wav2vec2 keys under ``ours`` from the released keys under ``p``; ``mask_emb=False``
    for a tower built without it (D-BETA: ``apply_mask`` off, the authors' loader deletes the key)."""
    for i in range(n_convs):
        m.put(f"{ours}feature_extractor.conv_layers.{i}.0.weight", f"{p}feature_extractor.conv_layers.{i}.0.weight")
        if f"{p}feature_extractor.conv_layers.{i}.0.bias" in m.released:
            m.put(f"{ours}feature_extractor.conv_layers.{i}.0.bias", f"{p}feature_extractor.conv_layers.{i}.0.bias")
    for t in ("weight", "bias"):  # GroupNorm sits after a Dropout in fairseq (index 2), right after the conv in ours
        m.put(f"{ours}feature_extractor.conv_layers.0.1.{t}", f"{p}feature_extractor.conv_layers.0.2.{t}")
        m.put(f"{ours}layer_norm.{t}", f"{p}layer_norm.{t}")
        m.put(f"{ours}encoder.layer_norm.{t}", f"{p}encoder.layer_norm.{t}")
        if has_proj:
            m.put(f"{ours}post_extract_proj.{t}", f"{p}post_extract_proj.{t}")
    if mask_emb:
        m.put(f"{ours}mask_emb", f"{p}mask_emb")
    pc, oc = f"{p}conv_pos.pos_conv.0.", f"{ours}pos_conv.conv."
    if f"{pc}weight_g" in m.released:  # torch.nn.utils.weight_norm (older fairseq-signals)
        m.put(f"{oc}parametrizations.weight.original0", f"{pc}weight_g")
        m.put(f"{oc}parametrizations.weight.original1", f"{pc}weight_v")
    else:  # torch.nn.utils.parametrizations.weight_norm
        m.put(f"{oc}parametrizations.weight.original0", f"{pc}parametrizations.weight.original0")
        m.put(f"{oc}parametrizations.weight.original1", f"{pc}parametrizations.weight.original1")
    m.put(f"{oc}bias", f"{pc}bias")
    for i in range(n_layers):
        src, dst = f"{p}encoder.layers.{i}.", f"{ours}encoder.layers.{i}."
        for t in ("weight", "bias"):
            m.out[f"{dst}self_attn.qkv.{t}"] = torch.cat([m.take(f"{src}self_attn.{x}_proj.{t}") for x in "qkv"], dim=0)
            m.put(f"{dst}self_attn.out.{t}", f"{src}self_attn.out_proj.{t}")
            for name in ("self_attn_layer_norm", "fc1", "fc2", "final_layer_norm"):
                m.put(f"{dst}{name}.{t}", f"{src}{name}.{t}")
    m.ignore(re.escape(p) + PRETRAIN_HEAD, "wav2vec2 pretraining head (quantiser / projections), unused by the encoder")


def convert_encoder(state: Mapping[str, torch.Tensor], source: str, fmt: str = "ecgfm") -> tuple[Any, Conversion]:
    """A bare fairseq-signals wav2vec2 (ECG-FM) -> (our ``Wav2Vec2Encoder``, conversion report)."""
    from ecg_encoders.ecg.wav2vec2 import build_wav2vec2

    p = find_prefix(state)
    if p is None:
        raise ReleasedFormatError(source, fmt, f"no '{ANCHOR}' key: not a fairseq-signals wav2vec2")
    cfg = infer_config(state, p)
    m = KeyMapper(state, source, fmt)  # map first: a missing key fails before a large model is built
    map_wav2vec2(
        m, p, "", len(cfg["conv_layers"]), cfg["layers"], "post_extract_proj.weight" in {k[len(p) :] for k in state}
    )
    if p:
        m.ignore(r"(?!" + re.escape(p) + r").*", f"outside the wav2vec2 model (prefix {p!r})")
    enc = build_wav2vec2("melp", **cfg)
    conv = m.finish(enc)
    enc.load_state_dict({k: v.float() for k, v in conv.state.items()})
    return enc, conv


def convert_melp(state: Mapping[str, torch.Tensor], source: str, fmt: str = "melp_encoder") -> tuple[Any, Conversion]:
    """MELP's released ECG encoder (``ECGFMModel``: wav2vec2 + poolers) -> (our ``MELPECGTower``, report)."""
    from ecg_encoders.ecg.melp_tower import build_melp_tower

    p = find_prefix(state)
    if p is None or not p.endswith("ecg_encoder."):
        raise ReleasedFormatError(source, fmt, "no 'ecg_encoder.feature_extractor...' keys: not MELP's ECGFMModel")
    outer = p[: -len("ecg_encoder.")]
    cfg = infer_config(state, p)
    q_c = state.get(f"{outer}attn_pool_contrast.query")
    q_cap = state.get(f"{outer}attn_pool_caption.query")
    if q_c is None or q_cap is None:
        raise ReleasedFormatError(source, fmt, "missing attn_pool_contrast.query / attn_pool_caption.query")
    pooler = dict(
        shared_dim=int(q_c.shape[1]),
        n_queries_contrast=int(q_c.shape[0]),
        caption_dim=int(q_cap.shape[1]),
        n_queries_caption=int(q_cap.shape[0]),
        heads=8,
    )  # ecgfm_model.py attn_pooler_heads=8
    m = KeyMapper(state, source, fmt)
    map_wav2vec2(m, p, "encoder.", len(cfg["conv_layers"]), cfg["layers"], True)
    tower = build_melp_tower("melp", pooler=pooler, **cfg)
    for k in tower.state_dict():
        if k.startswith(POOLER_PREFIXES):
            m.put(k, f"{outer}{k}")
    m.ignore(re.escape(outer) + r"logit_scale", "CMSC temperature of stage 0, not part of the encoder")
    m.ignore(
        re.escape(outer) + r"bn\.(running_mean|running_var|num_batches_tracked)",
        "affine-free BatchNorm of ECGFMModel's commented-out Barlow-Twins term, unused",
    )
    if outer:
        m.ignore(r"(?!" + re.escape(outer) + r").*", f"outside ECGFMModel (prefix {outer!r})")
    conv = m.finish(tower)
    tower.load_state_dict({k: v.float() for k, v in conv.state.items()})
    return tower, conv
