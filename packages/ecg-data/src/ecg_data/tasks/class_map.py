"""Classes that two tasks share by name, for domain transfer (train on one task, test on another).

``class_map.csv`` (beside this module) has one row per clinical concept and one column per label vocabulary:
``ptbxl`` (every PTB-XL task: SCP codes and the super/sub-class names), ``cpsc2018``, ``csn`` (the acronyms of
``ConditionNames_SNOMED-CT.csv``), ``g12ec`` (Challenge 2021 abbreviations) and ``code`` (CODE-15% and the CODE
test set). A cell is a class name, or alternatives separated by ``|`` (the first one the task has is used); empty
means the vocabulary has no such class. Synthetic tasks use their real twin's column (``synth_`` is dropped).

Why a file and not string matching: names collide across vocabularies (CSN's ``AF`` is atrial flutter, CPSC's
is atrial fibrillation; CODE's ``ST`` is sinus tachycardia, elsewhere ``ST`` means the segment).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MAP_FILE = Path(__file__).with_name("class_map.csv")
VOCABULARIES = ("ptbxl", "cpsc2018", "csn", "g12ec", "code")


def vocabulary(task_name: str) -> str:
    """The class-map column of a task name (``ptbxl_rhythm`` -> ``ptbxl``, ``synth_cpsc2018`` -> ``cpsc2018``)."""
    name = task_name.removeprefix("synth_")
    if name.startswith("ptbxl"):
        return "ptbxl"
    if name.startswith("code"):
        return "code"
    for v in VOCABULARIES:
        if name == v:
            return v
    raise KeyError(f"task {task_name!r} has no column in {MAP_FILE.name} (columns: {', '.join(VOCABULARIES)})")


@lru_cache(maxsize=4)
def load_map(path: str | Path = MAP_FILE) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in ("concept", *VOCABULARIES) if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    return rows


@dataclass(frozen=True)
class SharedClass:
    concept: str
    source: str  # class name in the source task
    target: str  # class name in the target task


def shared_classes(
    source_task: str,
    source_classes: list[str],
    target_task: str,
    target_classes: list[str],
    path: str | Path = MAP_FILE,
) -> list[SharedClass]:
    """Concepts both tasks have (in class-map order), with each task's class name."""
    vs, vt = vocabulary(source_task), vocabulary(target_task)
    have_s, have_t = set(source_classes), set(target_classes)
    out = []
    for row in load_map(str(path)):
        s = next((c for c in (row[vs] or "").split("|") if c and c in have_s), None)
        t = next((c for c in (row[vt] or "").split("|") if c and c in have_t), None)
        if s and t:
            out.append(SharedClass(row["concept"], s, t))
    return out
