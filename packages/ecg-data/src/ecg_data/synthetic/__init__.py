"""A physiological synthetic 12-lead ECG + report corpus, written in the real PhysioNet layouts.

Why: a fresh clone and CI have no PhysioNet data; the whole pipeline must still run offline on data whose
true labels and reports are known. See docs/synthetic.md.
"""

from .conditions import ConditionSet, forced
from .generate import DIFFICULTIES, Difficulty, SynthRecord, generate_records, with_difficulty
from .presets import PRESETS, ensure_preset
from .writers import write_cinc2020, write_mimic_iv_ecg, write_ptbxl

__all__ = [
    "ConditionSet",
    "DIFFICULTIES",
    "Difficulty",
    "PRESETS",
    "SynthRecord",
    "ensure_preset",
    "forced",
    "generate_records",
    "with_difficulty",
    "write_cinc2020",
    "write_mimic_iv_ecg",
    "write_ptbxl",
]
