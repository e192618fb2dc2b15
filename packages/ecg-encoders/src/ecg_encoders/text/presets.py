"""Named text encoders: which model and which mode each method runs it in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecg_encoders.text.errors import ModelNotAvailableError
from ecg_encoders.text.hf import HFTextEncoder

TEXT_PRESETS: dict[str, dict[str, Any]] = {
    # MELP: causal BERT with a trailing [CLS], first 6 layers frozen (melp_model.py init_text_encoder,
    # num_freeze_layers=6; run command in scripts/pretrain/main_pretrain.py uses fuyingw/heart_bert)
    "heart_bert": dict(
        name_or_path="fuyingw/heart_bert",
        causal=True,
        add_trailing_cls=True,
        pooling="last",
        freeze_layers=6,
        max_length=128,
    ),
    # MERL: bidirectional MedCPT query encoder, BERT pooler output, 6 layers frozen (merl_model.py)
    "medcpt": dict(name_or_path="ncbi/MedCPT-Query-Encoder", pooling="pooler", freeze_layers=6, max_length=128),
    # bidirectional BioLinkBERT-base with its [CLS] state
    "biolinkbert": dict(name_or_path="michiyasunaga/BioLinkBERT-base", pooling="cls", max_length=128),
    # small BERT trained on the corpus (text/offline.py), run like MELP runs heart_bert; half its 4 layers
    # frozen, mirroring MELP's 6 of 12. Needs ``path=`` (written by init_text_model_dir / MELP stage 1).
    "offline_default": dict(
        name_or_path=None, causal=True, add_trailing_cls=True, pooling="last", freeze_layers=2, max_length=128
    ),
}


def build_text_preset(name: str, path: str | Path | None = None, **overrides: Any) -> HFTextEncoder:
    """``path`` replaces the hub name (a local copy of the model); any HFTextEncoder option can be overridden."""
    if name not in TEXT_PRESETS:
        raise KeyError(f"unknown text preset {name!r}; valid presets: {', '.join(TEXT_PRESETS)}")
    kw = {**TEXT_PRESETS[name], **overrides}
    source = path if path is not None else kw.pop("name_or_path")
    kw.pop("name_or_path", None)
    if source is None:
        raise ModelNotAvailableError(
            name,
            "no model directory given",
            hint="The offline default text model is built from the pretraining corpus: create it with "
            "ecg_encoders.text.offline.init_text_model_dir(reports, DIR) (MELP's stage 1 then trains it) "
            "and pass path=DIR.",
        )
    return HFTextEncoder(source, **kw)


def build_text_encoder(name_or_preset: str | Path, **kw: Any) -> HFTextEncoder:
    """A preset name (``heart_bert``, ``offline_default`` ...) or a hub name / directory."""
    if str(name_or_preset) in TEXT_PRESETS:
        return build_text_preset(str(name_or_preset), **kw)
    return HFTextEncoder(name_or_preset, **kw)
