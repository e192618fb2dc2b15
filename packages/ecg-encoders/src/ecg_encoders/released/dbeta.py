"""D-BETA's released weights (Pham, Saeed, Ma, ICML 2025; github.com/manhph2211/D-BETA, checkpoint on
huggingface.co/Manhph2211/D-BETA) -> ours.

The file is the whole ``DBETA`` model (``models/dbeta.py``), loaded by the authors with ``strict=True`` into the
full model (``models/processor.py::get_model``): a fairseq-signals wav2vec2 ECG tower, a learned [CLS]
(``class_embedding``), flan-t5-base's T5 encoder as text tower, uni-modal projections and poolers, the cross-modal
layers and the pretraining heads. The features the authors extract (``get_ecg_feats``, README "feature
extraction") are ``tanh(unimodal_ecg_pooler(multi_modal_ecg_proj(encoder([CLS]; conv features + conv_pos))))``
at the [CLS] position, 768-d; their zero-shot (``example.ipynb``) scores the dot product of that feature with the
same pooling of the text tower (``unimodal_language_pooler(multi_modal_language_proj(T5(prompt)))``).

| released                                                     | ours (``DBETA``)                                   |
|--------------------------------------------------------------|----------------------------------------------------|
| ``ecg_encoder.*`` (fairseq-signals wav2vec2; ``conv_pos`` as ``weight_g``/``weight_v``) | ``ecg.w2v.*`` (``fairseq_w2v.map_wav2vec2``)   |
| ``class_embedding``                                           | ``ecg.class_embedding``                            |
| ``multi_modal_ecg_proj.*``, ``unimodal_ecg_pooler.dense.*``   | ``ecg.proj.*``, ``ecg.pooler.*``                   |
| ``language_encoder.*`` (transformers ``T5EncoderModel``)      | ``text.t5.*`` (same names)                         |
| ``multi_modal_language_proj.*``, ``unimodal_language_pooler.dense.*`` | ``text.proj.*``, ``text.pooler.*``         |

Ignored, with the reason: ``multi_modal_{ecg,language}_layers.*``, ``multi_modal_{ecg,language}_pooler.*``,
``modality_type_embeddings.*`` (the cross-modal fusion, used only by the pretraining heads), ``mlm_head.*``,
``mim_head.*``, ``itm_head.*`` (pretraining heads; ``remove_pretraining_modules`` drops them after loading),
``ecg_encoder.mask_emb`` (deleted by the authors' loader), ``language_encoder.encoder.embed_tokens.weight`` (tied
to ``language_encoder.shared.weight``). Sizes come from the shapes (``configs/config.json``: 8 layers of 768, 12
heads, conv ``[(256, 2, 2)] * 4``, conv_pos 128 in 16 groups; flan-t5-base: 12 layers of 768, d_ff 2048, 12 heads
of 64, gated-gelu).
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

FMT = "dbeta"
#: the text tower's tokenizer (example.ipynb ``extract_language_features``: ``T5TokenizerFast.from_pretrained(
#: "google/flan-t5-base")``); the released file does not hold it
TOKENIZER = "google/flan-t5-base"
#: keys that only D-BETA's file holds beside a fairseq-signals wav2vec2 under ``ecg_encoder.``
MARKERS = ("class_embedding", "multi_modal_ecg_proj.weight", "unimodal_ecg_pooler.dense.weight")
IGNORED = {
    r"multi_modal_(ecg|language)_layers\..*": "cross-modal fusion layers, used only by the pretraining heads",
    r"multi_modal_(ecg|language)_pooler\..*": "poolers of the cross-modal fusion (matching head), not the features",
    r"modality_type_embeddings\..*": "modality embeddings of the cross-modal fusion",
    r"(mlm_head|mim_head|itm_head)\..*": "pretraining heads (remove_pretraining_modules drops them after loading)",
    r"ecg_encoder\.mask_emb": "masking vector of pretraining; the authors' loader deletes it",
    r"language_encoder\.encoder\.embed_tokens\.weight": "tied to language_encoder.shared.weight",
}


def is_dbeta(state: Mapping[str, Any]) -> bool:
    return all(k in state for k in MARKERS)


class DBETAECG(nn.Module):
    """The ECG side: wav2vec2 conv features + conv positions, a learned [CLS] in front, the transformer, then the
    uni-modal projection; ``pooled`` is tanh(pooler) of the [CLS] row (the authors' ``get_ecg_feats``)."""

    def __init__(self, w2v: nn.Module, hidden: int) -> None:
        super().__init__()
        self.w2v = w2v
        self.w2v.drop_mask_emb()
        width = w2v.cfg.width
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.proj = nn.Linear(width, hidden)
        self.pooler = nn.Linear(hidden, hidden)
        self.fs, self.length, self.pooled_dim = w2v.fs, w2v.length, hidden

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        w = self.w2v
        w._check_input(x)
        feats = w.feature_extractor(x.to(w.layer_norm.weight.dtype))
        h = w.layer_norm(feats.transpose(1, 2))
        h = w.post_extract_proj(h) if w.post_extract_proj is not None else h
        h = w.dropout_input(h)
        h = h + w.pos_conv(h)  # conv positions before the [CLS] is prepended (ECGTransformerModel.get_embeddings)
        cls = self.class_embedding.to(h.dtype).expand(h.shape[0], 1, -1)
        tokens = self.proj(w.encoder(torch.cat([cls, h], dim=1)))
        return EncoderOutput(tokens=tokens, pooled=torch.tanh(self.pooler(tokens[:, 0])))


class DBETAText(nn.Module):
    """The text side: flan-t5-base's T5 encoder, the uni-modal projection, tanh(pooler) of the first token."""

    def __init__(self, t5: nn.Module, width: int, hidden: int) -> None:
        super().__init__()
        self.t5 = t5
        self.proj = nn.Linear(width, hidden)
        self.pooler = nn.Linear(hidden, hidden)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        states = self.t5(input_ids=input_ids, attention_mask=attention_mask)[0]
        return torch.tanh(self.pooler(self.proj(states)[:, 0]))


class DBETA(nn.Module):
    """Both towers; ``forward`` is the ECG side (what the harness probes)."""

    def __init__(self, ecg: DBETAECG, text: DBETAText) -> None:
        super().__init__()
        self.ecg, self.text = ecg, text

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        return self.ecg(x)


def _t5_config(state: Mapping[str, torch.Tensor], p: str) -> Any:
    from transformers import T5Config

    emb = state[f"{p}shared.weight"]
    layers = len(
        {int(m.group(1)) for k in state if (m := re.fullmatch(re.escape(p) + r"encoder\.block\.(\d+)\..*", k))}
    )
    q = state[f"{p}encoder.block.0.layer.0.SelfAttention.q.weight"]
    rel = state[f"{p}encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
    gated = f"{p}encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in state
    ff = state[f"{p}encoder.block.0.layer.1.DenseReluDense.{'wi_0' if gated else 'wi'}.weight"]
    heads = int(rel.shape[1])
    return T5Config(
        vocab_size=int(emb.shape[0]),
        d_model=int(emb.shape[1]),
        d_kv=int(q.shape[0]) // heads,
        d_ff=int(ff.shape[0]),
        num_layers=layers,
        num_heads=heads,
        relative_attention_num_buckets=int(rel.shape[0]),
        feed_forward_proj="gated-gelu" if gated else "relu",
        tie_word_embeddings=False,
        is_encoder_decoder=False,
        use_cache=False,
    )


def convert(state: Mapping[str, torch.Tensor], source: str, fmt: str = FMT) -> tuple[DBETA, Conversion]:
    """The whole released ``DBETA`` state dict -> (our ``DBETA``, conversion report)."""
    from transformers import T5EncoderModel

    from ecg_encoders.ecg.wav2vec2 import build_wav2vec2
    from ecg_encoders.released.fairseq_w2v import infer_config, map_wav2vec2

    missing = [k for k in MARKERS if k not in state]
    if missing or "ecg_encoder.feature_extractor.conv_layers.0.0.weight" not in state:
        raise ReleasedFormatError(source, fmt, f"not D-BETA's DBETA state dict (lacks {missing or ['ecg_encoder.*']})")
    if "language_encoder.shared.weight" not in state:
        raise ReleasedFormatError(source, fmt, "no language_encoder.* (flan-t5 text tower): not the whole DBETA file")
    cfg = infer_config(state, "ecg_encoder.")
    hidden = int(state["multi_modal_ecg_proj.weight"].shape[0])
    m = KeyMapper(state, source, fmt)
    map_wav2vec2(
        m,
        "ecg_encoder.",
        "ecg.w2v.",
        len(cfg["conv_layers"]),
        cfg["layers"],
        "ecg_encoder.post_extract_proj.weight" in state,
        mask_emb=False,
    )
    m.put("ecg.class_embedding", "class_embedding")
    for t in ("weight", "bias"):
        m.put(f"ecg.proj.{t}", f"multi_modal_ecg_proj.{t}")
        m.put(f"ecg.pooler.{t}", f"unimodal_ecg_pooler.dense.{t}")
        m.put(f"text.proj.{t}", f"multi_modal_language_proj.{t}")
        m.put(f"text.pooler.{t}", f"unimodal_language_pooler.dense.{t}")
    for pattern, why in IGNORED.items():
        m.ignore(pattern, why)
    t5 = T5EncoderModel(_t5_config(state, "language_encoder."))
    for k in t5.state_dict():
        if k != "encoder.embed_tokens.weight":  # tied to shared.weight in transformers' T5EncoderModel
            m.put(f"text.t5.{k}", f"language_encoder.{k}")
    model = DBETA(
        DBETAECG(build_wav2vec2("melp", **cfg, feature_grad_mult=1.0), hidden),
        DBETAText(t5, int(state["multi_modal_language_proj.weight"].shape[1]), hidden),
    )
    own = set(model.state_dict())
    if "text.t5.encoder.embed_tokens.weight" in own:  # a transformers version that lists the tied copy too
        m.out["text.t5.encoder.embed_tokens.weight"] = m.out["text.t5.shared.weight"]
    conv = m.finish(model)
    model.load_state_dict({k: v.float() for k, v in conv.state.items()})
    return model.eval(), conv
