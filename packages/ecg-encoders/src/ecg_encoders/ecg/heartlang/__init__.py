"""HeartLang (ICLR 2025, PKUDigitalHealth/HeartLang): heartbeat tokenizer, VQ-HBR and the ECG-sentence encoder.

Two-stage use (the baselines chain them):
1. ``vq = build_heartbeat_vq(preset)``; ``tokens = HeartbeatTokenizer()(x)``; train on ``vq(tokens).loss``.
2. ``enc = build_heartlang(preset)``; ``head = build_msm_head(preset)``; per batch
   ``tokens = enc.tokenize(x)``; ``ids = vq.codebook_ids(tokens)``; ``mask = random_beat_mask(tokens.padding_mask)``;
   ``out = enc.encode_tokens(tokens, mask)``; ``loss, acc = masked_beat_loss(head, out.tokens, mask, ids)``.
"""

from __future__ import annotations

from typing import Any

from ecg_encoders.ecg.heartlang.backbone import BeatTransformer
from ecg_encoders.ecg.heartlang.sentence import HeartLangEncoder, MaskedBeatHead, masked_beat_loss, random_beat_mask
from ecg_encoders.ecg.heartlang.tokenizer import BeatTokens, HeartbeatTokenizer
from ecg_encoders.ecg.heartlang.vq import HeartbeatVQ, NormEMAQuantizer, VQOutput
from ecg_encoders.ecg.vit1d import _resolve

#: Sentence encoder. ``base``: modeling_pretrain.py ``HeartLang`` (depth 12, heads 8, dim_head 64, MLP 1024,
#: width 768, dropout 0.1, emb_dropout 0.1, vocab 8192 = codebook size); 100 Hz x 10 s input (README / QRSTokenizer).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(width=32, depth=2, heads=2, dim_head=16, mlp_dim=64, vocab_size=64, fs=100, length=1000),
    "base": dict(width=768, depth=12, heads=8, dim_head=64, mlp_dim=1024, vocab_size=8192, fs=100, length=1000),
}
PAPER_PRESETS: list[str] = ["base"]

#: VQ-HBR. ``base``: modeling_vqhbr.py ``vqhbr`` (width 768, encoder depth 4, decoder depth 2, 2 heads x 64,
#: MLP 2048) and scripts/vqhbr/MIMIC-IV.sh (codebook 8192 x 128, k-means init; decay 0.99 default).
VQ_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(width=32, enc_depth=1, dec_depth=1, heads=2, dim_head=16, mlp_dim=64, n_codes=64, code_dim=16),
    "base": dict(
        width=768, enc_depth=4, dec_depth=2, heads=2, dim_head=64, mlp_dim=2048, n_codes=8192, code_dim=128, decay=0.99
    ),
}


def build_heartlang(preset: str = "tiny", **overrides: Any) -> HeartLangEncoder:
    return HeartLangEncoder(**_resolve(PRESETS, preset, overrides, "heartlang"))


def build_heartbeat_vq(preset: str = "tiny", **overrides: Any) -> HeartbeatVQ:
    return HeartbeatVQ(**_resolve(VQ_PRESETS, preset, overrides, "heartbeat VQ"))


def build_msm_head(preset: str = "tiny", **overrides: Any) -> MaskedBeatHead:
    cfg = _resolve(PRESETS, preset, {}, "heartlang")
    return MaskedBeatHead(overrides.get("width", cfg["width"]), overrides.get("vocab_size", cfg["vocab_size"]))


__all__ = [
    "PRESETS",
    "PAPER_PRESETS",
    "VQ_PRESETS",
    "BeatTokens",
    "BeatTransformer",
    "HeartbeatTokenizer",
    "HeartbeatVQ",
    "HeartLangEncoder",
    "MaskedBeatHead",
    "NormEMAQuantizer",
    "VQOutput",
    "build_heartbeat_vq",
    "build_heartlang",
    "build_msm_head",
    "masked_beat_loss",
    "random_beat_mask",
]
