"""The generator's truth for a record of a synthetic corpus: its conditions, and a report re-written from them.

Why: the generator knows what every record has, so the suite can show the scale of a synthetic table -- a reference
row that sees the truth (``ecg_eval.references``) bounds what the corpus's label and report noise allow. A record
is a pure function of (seed, index) (``generate.generate_records``): its condition set is the first draw of the
record's own generator, so it is recomputed here from the corpus manifest without rendering the signal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .conditions import PROFILES, ConditionSet, sample_conditions
from .generate import get_difficulty
from .presets import MANIFEST, PRESETS
from .reports import join_statements, machine_statements

#: record id -> generator index, per reader (the writers' naming: PTB-XL ``ecg_id`` = index + 1, CinC ``A0001`` =
#: index + 1, MIMIC-IV-ECG ``study_id`` = 40000000 + index; ``writers.py``)
INDEX_OFFSET: dict[str, int] = {"ptbxl": 1, "cpsc2018": 1, "mimic_iv_ecg": 40000000}
#: the statement name of a normal record (``ecg_eval.statements``: NORM for "Normal ECG")
NORMAL = "NORM"
#: the statement name of acute ST elevation (the STEMI wording of an acute infarct)
ACUTE = "STE"
#: report-rewriting draws use their own stream, apart from the corpus's (seed, 2, index) record stream
_REWRITE_STREAM = 9


class TruthError(ValueError):
    """A directory that is not a synthetic corpus of this project, or a record id it does not name."""


@dataclass(frozen=True)
class RecordTruth:
    conditions: tuple[str, ...]  # rhythm first, then the extra conditions (``conditions.ALL_CONDITIONS`` names)
    acute: bool
    normal: bool

    @property
    def statements(self) -> tuple[str, ...]:
        """The conditions as statement names, with NORM for a normal record and STE for an acute infarct."""
        return self.conditions + ((NORMAL,) if self.normal else ()) + ((ACUTE,) if self.acute else ())


@dataclass(frozen=True)
class CorpusTruth:
    root: Path
    preset: str
    seed: int
    difficulty: str | dict
    reader: str

    def index(self, record_id: str) -> int:
        digits = re.sub(r"\D", "", str(record_id))
        if not digits:
            raise TruthError(f"{self.root}: record id {record_id!r} has no generator index")
        i = int(digits) - INDEX_OFFSET.get(self.reader, 0)
        if i < 0:
            raise TruthError(f"{self.root}: record id {record_id!r} is not one the {self.reader} writer names")
        return i

    def condition_set(self, record_id: str) -> ConditionSet:
        rng = np.random.default_rng([self.seed, 2, self.index(record_id)])
        return sample_conditions(rng, PROFILES[PRESETS[self.preset].profile])

    def truth(self, record_id: str) -> RecordTruth:
        cs = self.condition_set(record_id)
        return RecordTruth(tuple(cs.all), bool(cs.acute), bool(cs.is_normal))

    def rewritten_report(self, record_id: str) -> str:
        """A machine-style report written afresh from the record's true conditions, with the corpus's own omission and
        error rates (its difficulty), from a draw independent of the corpus's report."""
        omit, wrong = _report_noise(self.difficulty)
        rng = np.random.default_rng([self.seed, _REWRITE_STREAM, self.index(record_id)])
        stmts, _ = machine_statements(self.condition_set(record_id), rng, omit, wrong)
        return join_statements(stmts)


def _report_noise(d: str | dict) -> tuple[float, float]:
    """(omission, error) rates of a difficulty as the manifest stores it (a name or its fields)."""
    if isinstance(d, str):
        diff = get_difficulty(d)
        return diff.report_omit, diff.report_wrong
    return float(d["report_omit"]), float(d["report_wrong"])


@lru_cache(maxsize=32)
def corpus_truth(root: str | Path) -> CorpusTruth:
    """The truth of the synthetic corpus at ``root`` (read from its ``synthetic.json`` manifest)."""
    root = Path(root)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise TruthError(f"{root}: no {MANIFEST}: not a synthetic corpus (the generator's truth exists only there)")
    m = json.loads(manifest.read_text())
    preset = str(m.get("preset", ""))
    if preset not in PRESETS:
        raise TruthError(f"{manifest}: unknown preset {preset!r}; known: {sorted(PRESETS)}")
    return CorpusTruth(root, preset, int(m["seed"]), m.get("difficulty", "default"), str(m.get("reader", "")))
