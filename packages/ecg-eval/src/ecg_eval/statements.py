"""Statements recognised in a free-text ECG report, for the clinical score of report generation.

Why a phrase vocabulary and not a model: the score must be the same for every method and reproducible without
a download. The vocabulary is the one the project already has — the statement variants of the synthetic corpus
(``ecg_data.synthetic.reports``: machine-style MIMIC wording, acute-MI wording and the terse PTB-XL-style
statements), one statement class per condition, plus ``NORM`` for "normal ECG". Matching is case-insensitive,
on word boundaries, longest phrase first, and a matched span is consumed (so "left anterior hemiblock" is not
also read as another statement). On real reports it recognises only these phrasings: the result file reports
``reference_coverage``, the share of reference reports with at least one recognised statement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np


@dataclass(frozen=True)
class StatementVocabulary:
    phrases: Mapping[str, tuple[str, ...]]  # statement -> phrases (any case)
    source: str = "custom"

    @property
    def names(self) -> list[str]:
        return sorted(self.phrases)

    @cached_property
    def _patterns(self) -> list[tuple[re.Pattern[str], str]]:
        pairs = sorted(((p.lower(), s) for s, ps in self.phrases.items() for p in ps), key=lambda t: -len(t[0]))
        return [(re.compile(r"(?<![a-z0-9])" + re.escape(p) + r"(?![a-z0-9])"), s) for p, s in pairs]

    def recognise(self, report: str) -> set[str]:
        """Statements found in one report."""
        text = " ".join(str(report or "").lower().split())
        found: set[str] = set()
        taken = np.zeros(len(text) + 1, dtype=bool)
        for pat, name in self._patterns:
            for m in pat.finditer(text):
                if not taken[m.start() : m.end()].any():
                    taken[m.start() : m.end()] = True
                    found.add(name)
        return found

    def matrix(self, reports: Sequence[str]) -> np.ndarray:
        """(N, S) bool, columns in ``names`` order."""
        col = {s: j for j, s in enumerate(self.names)}
        out = np.zeros((len(reports), len(col)), dtype=bool)
        for i, r in enumerate(reports):
            for s in self.recognise(r):
                out[i, col[s]] = True
        return out


@lru_cache(maxsize=1)
def default_vocabulary() -> StatementVocabulary:
    """The project's statement vocabulary (see the module docstring)."""
    from ecg_data.synthetic.reports import ACUTE, PTBXL_STATEMENTS, STATEMENTS

    phrases: dict[str, set[str]] = {c: set(v) for c, v in STATEMENTS.items()}
    for c, v in ACUTE.items():
        phrases[c] |= set(v)
    for c, v in PTBXL_STATEMENTS.items():
        phrases.setdefault(c, set()).add(v)
    phrases["NORM"] = {"normal ecg"}
    return StatementVocabulary({c: tuple(sorted(p)) for c, p in phrases.items()}, source="ecg_data.synthetic.reports")
