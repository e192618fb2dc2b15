"""Put any 12-lead signal into the standard lead order, by the lead names in its header.

Why by name: databases disagree on row order (MIMIC-IV-ECG stores aVF before aVL) and on spelling
(PTB-XL writes ``AVR``, CinC writes ``aVR``). Mapping by position silently swaps leads; mapping by
name either gets it right or fails loudly, naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ecg_data.record import LEADS, RecordError

# Canonical key: upper case, no spaces/dashes/underscores. Aliases seen in PhysioNet headers.
_ALIASES: dict[str, str] = {
    "I": "I",
    "II": "II",
    "III": "III",
    "AVR": "aVR",
    "AVL": "aVL",
    "AVF": "aVF",
    "V1": "V1",
    "V2": "V2",
    "V3": "V3",
    "V4": "V4",
    "V5": "V5",
    "V6": "V6",
    # Roman numerals in Arabic form and the "lead" prefix appear in some exports.
    "1": "I",
    "2": "II",
    "3": "III",
    "LEADI": "I",
    "LEADII": "II",
    "LEADIII": "III",
    "LEADAVR": "aVR",
    "LEADAVL": "aVL",
    "LEADAVF": "aVF",
}
for _i in range(1, 7):
    _ALIASES[f"LEADV{_i}"] = f"V{_i}"


def canonical_lead(name: str) -> str | None:
    """The standard spelling of a lead name (``avr`` -> ``aVR``), or None when it is not a 12-lead name."""
    key = "".join(ch for ch in str(name).strip().upper() if ch not in " -_")
    return _ALIASES.get(key)


def to_standard_order(signal: np.ndarray, names: Sequence[str], source: str | Path) -> np.ndarray:
    """Reorder rows of ``signal`` (n_leads, T) into ``LEADS`` order using ``names``.

    Raises ``RecordError(source, ...)`` on a row/name count mismatch, an unknown name, a duplicate
    lead, or a missing lead.
    """
    signal = np.asarray(signal)
    if signal.ndim != 2:
        raise RecordError(source, f"signal must be 2-D (leads, samples), got shape {signal.shape}")
    names = [str(n) for n in names]
    if signal.shape[0] != len(names):
        raise RecordError(source, f"{signal.shape[0]} signal rows but {len(names)} lead names {names}")
    canon = [canonical_lead(n) for n in names]
    unknown = [n for n, c in zip(names, canon) if c is None]
    if unknown:
        raise RecordError(source, f"unknown lead name(s) {unknown}; expected the 12 standard leads {list(LEADS)}")
    seen: dict[str, int] = {}
    for row, c in enumerate(canon):
        if c in seen:
            raise RecordError(source, f"duplicate lead {c!r} (header names {names[seen[c]]!r} and {names[row]!r})")
        seen[c] = row  # type: ignore[index]
    missing = [lead for lead in LEADS if lead not in seen]
    if missing:
        raise RecordError(source, f"missing lead(s) {missing}; header has {names}")
    return signal[[seen[lead] for lead in LEADS]]
