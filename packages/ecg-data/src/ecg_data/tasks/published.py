"""The published benchmark's split membership and labels, shipped with ecg-data (readable without data on disk).

Why shipped: MERL (ICML 2024), MELP (ICML 2025) and HeartLang (ICLR 2025) all report on the split files of
MERL's repository (``finetune/data_split/{ptbxl,icbeb,chapman}``, reused by MELP). A number stands beside theirs
only on the same records with the same label columns, so the membership (record ids per split) and the label
matrix (positive record ids per class name, classes as published) are carried over as facts, in our own format
(``published_splits/<task>.json.gz``), with provenance (repository, commit, file, git blob, licence) and a
content checksum that is verified on every load. They are regenerated from the source files by a script kept
outside the repository; no source file is copied.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecg_data.tasks.splits import SPLITS

FORMAT = "ecglang-published-split/1"

#: task name -> the dataset (reader) its record ids name.
PUBLISHED_TASKS: dict[str, str] = {
    "ptbxl_super": "ptbxl",
    "ptbxl_sub": "ptbxl",
    "ptbxl_form": "ptbxl",
    "ptbxl_rhythm": "ptbxl",
    "cpsc2018": "cpsc2018",
    "csn": "csn",
}


class PublishedSplitError(ValueError):
    """A shipped published-split file is missing, corrupt, or does not match its checksum (names the file)."""


@dataclass(frozen=True)
class PublishedSplit:
    task: str
    dataset: str
    classes: tuple[str, ...]
    splits: dict[str, list[str]]
    positives: dict[str, list[str]]
    provenance: dict[str, Any]
    content_sha256: str
    path: str

    def labels(self) -> pd.DataFrame:
        """0/1 int8 frame, index = every record of the three splits (split order), columns = ``classes``."""
        ids = [r for s in SPLITS for r in self.splits[s]]
        pos = {r: i for i, r in enumerate(ids)}
        arr = np.zeros((len(ids), len(self.classes)), dtype=np.int8)
        for j, c in enumerate(self.classes):
            arr[[pos[r] for r in self.positives[c]], j] = 1
        return pd.DataFrame(arr, index=pd.Index(ids, name="record_id"), columns=list(self.classes))

    def summary(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "sizes": {s: len(v) for s, v in self.splits.items()},
            "classes": list(self.classes),
            "content_sha256": self.content_sha256,
            "source": self.provenance.get("repository"),
            "commit": self.provenance.get("commit"),
        }


def data_dir() -> Path:
    return Path(str(resources.files("ecg_data.tasks") / "published_splits"))


def _manifest() -> dict[str, Any]:
    path = data_dir() / "MANIFEST.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise PublishedSplitError(f"{path}: unreadable published-split manifest: {e}") from e


def content_checksum(classes: list[str], splits: dict[str, list[str]], positives: dict[str, list[str]]) -> str:
    payload = {"classes": list(classes), "splits": splits, "positives": positives}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@cache
def load_published(name: str) -> PublishedSplit:
    """The shipped membership and labels of one published task, checksums verified."""
    if name not in PUBLISHED_TASKS:
        raise KeyError(f"no published split for task {name!r}; published tasks: {', '.join(PUBLISHED_TASKS)}")
    path = data_dir() / f"{name}.json.gz"
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PublishedSplitError(f"{path}: published split file missing ({e}); reinstall ecg-data") from e
    entry = _manifest().get("files", {}).get(path.name)
    if entry is None:
        raise PublishedSplitError(f"{path}: not listed in {data_dir() / 'MANIFEST.json'}")
    if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
        raise PublishedSplitError(f"{path}: sha256 differs from MANIFEST.json (file changed or corrupt)")
    try:
        doc = json.loads(gzip.decompress(raw))
    except (OSError, ValueError) as e:
        raise PublishedSplitError(f"{path}: not a gzipped JSON document: {e}") from e
    if doc.get("format") != FORMAT:
        raise PublishedSplitError(f"{path}: format {doc.get('format')!r}, expected {FORMAT!r}")
    splits = {s: [str(r) for r in doc["splits"][s]] for s in SPLITS}
    positives = {c: [str(r) for r in doc["positives"][c]] for c in doc["classes"]}
    checksum = content_checksum(doc["classes"], splits, positives)
    if checksum != doc["content_sha256"] or checksum != entry["content_sha256"]:
        raise PublishedSplitError(
            f"{path}: content checksum mismatch (expected {entry['content_sha256']}, got {checksum})"
        )
    return PublishedSplit(
        task=name,
        dataset=doc["dataset"],
        classes=tuple(doc["classes"]),
        splits=splits,
        positives=positives,
        provenance=doc["provenance"],
        content_sha256=checksum,
        path=str(path),
    )


def published_split(name: str) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...], "test": [...]}``: record ids as our readers name them (no data needed)."""
    sp = load_published(name).splits
    return {s: list(v) for s, v in sp.items()}


def published_classes(name: str) -> list[str]:
    """The published class list, in the published column order (fixed: never dropped from the task)."""
    return list(load_published(name).classes)


def published_labels(name: str) -> pd.DataFrame:
    """The published label matrix (index record_id, columns = published classes)."""
    return load_published(name).labels()
