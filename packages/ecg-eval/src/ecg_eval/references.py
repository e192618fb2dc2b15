"""Reference rows of a synthetic table: ``oracle`` (what the corpus allows) and ``chance`` (what nothing gives).

Why: a synthetic table has no published numbers to read it against, so the suite shows its scale. Both rows are
scored through the same harness as a method -- same tasks, splits, prompts, probes, bootstrap -- and marked as
references in the leaderboard (never ranked, never bold).

- ``oracle``: its ECG features are the generator's true condition indicators of each record
  (``ecg_data.synthetic.truth``); its text encoder maps a statement to the conditions it names
  (``ORACLE_VOCABULARY``: the corpus's statement wording plus the clinical terms of the prompt file). Its report
  generator re-writes each record's report from the true conditions with the corpus's own omission and error rates.
  Label noise, reports that omit or invent findings, and prompts that name a group of conditions bound it below 100.
- ``chance``: random features per record and per text (seeded by their identity): random scores for zero-shot and
  retrieval, uninformative features for the probes.

Both read the records' identity instead of their signals: the harness asks ``encode_records(task, split,
record_ids)`` of an encoder that has it (``embeddings.embed_split``) and ``generate_records_reports`` for report
generation, so nothing here decodes a signal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecg_eval.protocol import EncoderCard, InputSpec
from ecg_eval.statements import StatementVocabulary, default_vocabulary

ORACLE = "oracle"
CHANCE = "chance"
#: the reference rows, name -> what the leaderboard's legend says of it
REFERENCE_ROWS: dict[str, str] = {
    ORACLE: "the generator's true conditions as features and a statement-to-condition text encoder: the ceiling "
    "the corpus's label and report noise allow",
    CHANCE: "random features and random text embeddings: the floor",
}
CHANCE_DIM = 32

#: clinical terms (the prompt file's wording) -> the corpus conditions they name; a term may name a group
#: ("myocardial infarction": every infarct). Matched like report statements (``StatementVocabulary``: case-
#: insensitive, on word boundaries, longest phrase first, a matched span consumed).
_GROUPS: dict[str, tuple[str, ...]] = {
    "MI": ("AMI", "IMI", "LMI"),
    "BBB": ("LBBB", "RBBB"),
    "CD": ("1AVB", "LBBB", "RBBB", "LAFB"),
    "STTC": ("ISC", "TINV"),
    "HYP": ("LVH",),
}
_TERMS: dict[str, tuple[str, ...]] = {
    "MI": ("myocardial infarction", "infarct", "infarction", "pathological q waves"),
    "BBB": ("bundle branch block",),
    "CD": ("conduction disturbance", "conduction"),
    "STTC": ("st/t change", "st-t change", "st-t changes", "abnormal st segment and t waves"),
    "HYP": ("hypertrophy", "ventricular hypertrophy", "atrial enlargement"),
    "SR": ("sinus rhythm", "sinus node"),
    "SB": ("sinus bradycardia", "bradycardia", "slower than 60"),
    "STACH": ("sinus tachycardia", "tachycardia", "faster than 100"),
    "AF": ("atrial fibrillation", "fibrillatory", "irregularly irregular"),
    "AFL": ("atrial flutter", "flutter"),
    "PACE": ("pacemaker", "paced", "pacing"),
    "1AVB": (
        "first degree atrioventricular block",
        "atrioventricular block",
        "av block",
        "a-v block",
        "pr interval longer than 200 ms",
        "delayed or blocked conduction from atria to ventricles",
    ),
    "LBBB": ("left bundle branch block",),
    "RBBB": ("right bundle branch block",),
    "LAFB": ("fascicular block", "left anterior fascicular block", "hemiblock"),
    "LVH": ("left ventricular hypertrophy",),
    "AMI": ("anterior myocardial infarction", "anterior precordial leads", "anterior infarct"),
    "IMI": ("inferior myocardial infarction", "inferior infarct", "leads ii, iii and avf"),
    "LMI": ("lateral myocardial infarction", "lateral infarct"),
    "ISC": ("ischemic", "ischemia", "ischaemia", "st depression", "st segment depression", "st-t changes suggesting"),
    "TINV": (
        "inverted t waves",
        "negative t waves",
        "t wave inversion",
        "t-wave abnormalities",
        "t-wave changes",
        "t wave abnormality",
    ),
    "PVC": ("premature ventricular", "ventricular premature", "wide qrs complex not preceded"),
    "PAC": ("premature atrial", "atrial premature", "ectopic p wave"),
    "LVOLT": ("low qrs voltage", "low qrs voltages", "low voltage", "small qrs amplitudes"),
    "LQT": ("long qt", "prolonged qt", "qt prolongation", "prolonged corrected qt"),
    "STE": ("st elevation", "st segment elevation", "elevated st segment", "stemi"),
    "NORM": ("normal ecg", "within normal limits", "without abnormalities"),
}


def _oracle_vocabulary() -> tuple[StatementVocabulary, list[str]]:
    """The corpus's statements plus the clinical terms, and the condition columns of the oracle's space."""
    base = default_vocabulary()
    phrases: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in base.phrases.items()}
    for name, terms in _TERMS.items():
        phrases[name] = tuple(dict.fromkeys(phrases.get(name, ()) + terms))
    columns = sorted({c for name in phrases for c in _GROUPS.get(name, (name,))})
    return StatementVocabulary(phrases, source="oracle: corpus statements + prompt-file terms"), columns


class _Reference:
    """What both references share: a card, an input spec (the run's preset: the harness loads the cached split for
    its record ids), no ``encode_ecg`` on signals."""

    name = "reference"

    def __init__(self, preset: str = "melp", fs: int = 500, length: int = 5000, seed: int = 0):
        self.input_spec = InputSpec(preset=preset, fs=fs, length=length)
        self.seed = int(seed)
        self.card = EncoderCard(
            name=self.name,
            checkpoint_hash=f"reference-{self.name}-v1-seed{self.seed}",
            n_parameters=0,
            preset="reference",
            extra={"reference": self.name},
        )

    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"the {self.name} reference reads records, not signals: the harness calls encode_records")

    def eval(self) -> _Reference:
        return self


class OracleEncoder(_Reference):
    name = ORACLE

    @cached_property
    def _space(self) -> tuple[StatementVocabulary, list[str]]:
        return _oracle_vocabulary()

    def _vector(self, names: Sequence[str]) -> np.ndarray:
        vocab, columns = self._space
        col = {c: j for j, c in enumerate(columns)}
        v = np.zeros(len(columns), dtype=np.float32)
        for n in names:
            for c in _GROUPS.get(n, (n,)):
                if c in col:
                    v[col[c]] = 1.0
        return v

    def encode_records(self, task: Any, split: str, record_ids: Sequence[str]) -> np.ndarray:
        from ecg_data.synthetic.truth import corpus_truth

        truth = corpus_truth(Path(task.root))
        return np.stack([self._vector(truth.truth(str(r)).statements) for r in record_ids])

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        vocab, _ = self._space
        return torch.from_numpy(np.stack([self._vector(sorted(vocab.recognise(t))) for t in texts]))

    def generate_records_reports(self, task: Any, split: str, record_ids: Sequence[str]) -> list[str]:
        from ecg_data.synthetic.truth import corpus_truth

        truth = corpus_truth(Path(task.root))
        return [truth.rewritten_report(str(r)) for r in record_ids]


def _seeded_normal(key: str, seed: int, dim: int) -> np.ndarray:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return rng.standard_normal(dim).astype(np.float32)


class ChanceEncoder(_Reference):
    name = CHANCE

    def encode_records(self, task: Any, split: str, record_ids: Sequence[str]) -> np.ndarray:
        return np.stack([_seeded_normal(f"ecg:{task.dataset}:{r}", self.seed, CHANCE_DIM) for r in record_ids])

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return torch.from_numpy(np.stack([_seeded_normal(f"text:{t}", self.seed, CHANCE_DIM) for t in texts]))


def reference_encoder(name: str, **kw: Any) -> _Reference:
    """``oracle`` or ``chance`` (``kw``: ``preset``, ``fs``, ``length`` of the run, ``seed``)."""
    classes = {ORACLE: OracleEncoder, CHANCE: ChanceEncoder}
    if name not in classes:
        raise ValueError(f"unknown reference row {name!r}; choose from {sorted(classes)}")
    return classes[name](**kw)


def is_reference(result_or_name: dict | str) -> bool:
    """A reference row's result (its card says so) or name."""
    if isinstance(result_or_name, str):
        return result_or_name in REFERENCE_ROWS
    extra = (result_or_name.get("encoder_card") or {}).get("extra") or {}
    return bool(extra.get("reference")) or result_or_name.get("method") in REFERENCE_ROWS


def reference_label(method: str) -> str:
    """A table's row label: a reference row is italic and says so; a method keeps its name."""
    return f"_{method} (reference)_" if is_reference(method) else method


def reference_cell(text: str) -> str:
    """A reference row's cell in italics (a number, never bold; "–" and empty cells unchanged)."""
    t = text.strip()
    return f"_{t}_" if t and t not in ("–", "n/a") and not t.startswith("_") else text


def sort_key(method: str) -> tuple[bool, str]:
    """Methods first, reference rows last."""
    return (is_reference(method), method)
