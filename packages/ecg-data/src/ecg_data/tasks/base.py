"""The ``Task`` object: labels, splits and fixed training subsets of one benchmark task.

A task is (reader, label rule, split rule). Labels come from metadata only (no signal reads), split
files are written once under ``cache_root()/splits/<task>/<reader fingerprint>/`` and re-read after.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecg_data.paths import atomic_write_json, cache_root
from ecg_data.readers import get_reader
from ecg_data.readers.base import DatasetReader
from ecg_data.tasks.splits import SPLITS, subset_order, subset_size
from ecg_data.tasks.window import InputWindow, WindowedReader

log = logging.getLogger(__name__)

SPLIT_FORMAT = 2  # bump when the split file content or rules change (2: the synthetic MIMIC twin splits 90/2/8)


@dataclass
class LabelResult:
    """What a label rule returns: candidate labels (index record_id, sorted class columns, 0/1)."""

    labels: pd.DataFrame
    dropped: dict[str, str] = field(default_factory=dict)  # classes dropped before splitting
    excluded: dict[str, str] = field(default_factory=dict)  # record_id -> why it is not in the task
    drop_unlabelled: bool = False  # remove records left without any class after class dropping (PTB-XL)


@dataclass
class TaskSpec:
    """How to build one task: reader, label rule, split rule. Registered in ``TASKS``."""

    name: str
    dataset: str
    data_dir: str  # sub-directory of $ECG_DATA_ROOT
    labels: Callable[[DatasetReader], LabelResult]
    split: Callable[[DatasetReader, pd.DataFrame, int], dict[str, list[str]]]
    reader_kw: dict[str, Any] = field(default_factory=dict)
    synthetic_preset: str | None = None
    description: str = ""
    #: name of a shipped published split (``ecg_data.tasks.published``): its membership replaces ``split``
    published: str | None = None
    #: "published": the shipped label matrix, classes fixed; "rule": ``labels(reader)`` on the published records
    label_source: str = "rule"
    #: part of the input definition, applied to every record before any preset (CPSC2018's 5 s)
    input_window: InputWindow | None = None


@dataclass
class Task:
    name: str
    dataset: str
    root: Path
    classes: list[str]
    labels: pd.DataFrame
    splits: dict[str, list[str]]
    dropped: dict[str, str]
    suite: str
    reader_kw: dict[str, Any] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    split_dir: Path | None = None
    seed: int = 0
    #: published tasks: split -> published record ids absent on this disk (counted, logged, never silent)
    absent: dict[str, list[str]] = field(default_factory=dict)
    #: published tasks: source, checksum and counts of the shipped membership
    published: dict[str, Any] | None = None
    input_window: InputWindow | None = None
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def fingerprint(self) -> str:
        """The (windowed) reader's fingerprint, computed once: part of every result's identity."""
        if self._fingerprint is None:
            self._fingerprint = self.reader().fingerprint()
        return self._fingerprint

    def reader(self) -> DatasetReader:
        reader = get_reader(self.dataset, self.root, **self.reader_kw)
        return WindowedReader(reader, self.input_window) if self.input_window else reader  # type: ignore[return-value]

    def y(self, record_ids: Sequence[str]) -> np.ndarray:
        """(N, C) float32 labels in ``classes`` order, selected by name."""
        ids = [str(r) for r in record_ids]
        missing = [r for r in ids if r not in self.labels.index]
        if missing:
            raise KeyError(f"task {self.name}: {len(missing)} record id(s) not in the task, e.g. {missing[:5]}")
        return self.labels.loc[ids, self.classes].to_numpy(dtype=np.float32)

    def train_subset(self, fraction: float, seed: int) -> list[str]:
        """The fixed training subset (1.0 = all of train); read from / written to the split directory.

        Subsets of one seed are nested and keep >= 1 positive per class (``splits.subset_order``).
        """
        train = self.splits["train"]
        # The train list depends on the split seed (CPSC/CSN), so a subset seed that differs from it
        # gets its own file name; the usual call (same seed for both) uses the contract's name.
        tail = "" if seed == self.seed else f"-split{self.seed}"
        path = (self.split_dir or _split_dir(self.name, "nofingerprint")) / f"subset-{fraction:g}-seed{seed}{tail}.json"
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            return [str(r) for r in data["record_ids"]]
        if fraction == 1.0:
            ids = list(train)
        else:
            order, n_cover = subset_order(
                train, self.labels[self.classes] if self.classes else None, seed, salt=self.name
            )
            ids = order[: subset_size(fraction, len(train), n_cover)]
        atomic_write_json(
            path,
            {
                "task": self.name,
                "fraction": fraction,
                "seed": seed,
                "n": len(ids),
                "n_train": len(train),
                "rule": "nested prefix of a seeded shuffle, >=1 positive per class first",
                "record_ids": ids,
            },
        )
        return ids

    def summary(self) -> dict[str, Any]:
        y = self.labels
        return {
            "task": self.name,
            "dataset": self.dataset,
            "suite": self.suite,
            "root": str(self.root),
            "n_records": int(len(y)),
            "classes": self.classes,
            "split_sizes": {s: len(v) for s, v in self.splits.items()},
            "positives": {s: {c: int(y.loc[v, c].sum()) for c in self.classes} for s, v in self.splits.items()},
            "dropped": self.dropped,
            "n_excluded": len(self.excluded),
            "absent_published": {sp: len(v) for sp, v in self.absent.items()},
            "published": self.published,
            "input_window": self.input_window.to_dict() if self.input_window else None,
        }


def multi_hot(per_record: dict[str, list[str]], classes: list[str]) -> pd.DataFrame:
    """0/1 int8 frame (index record_id, columns ``classes``) from record -> class names."""
    col = {c: i for i, c in enumerate(classes)}
    arr = np.zeros((len(per_record), len(classes)), dtype=np.int8)
    for i, cl in enumerate(per_record.values()):
        for c in cl:
            if c in col:
                arr[i, col[c]] = 1
    return pd.DataFrame(arr, index=pd.Index(list(per_record), name="record_id"), columns=list(classes))


def _split_dir(task: str, fingerprint: str) -> Path:
    return cache_root() / "splits" / task / fingerprint


def build_task(spec: TaskSpec, root: Path, seed: int, suite: str) -> Task:
    """Labels from metadata, splits from file (or computed and written), class dropping, filtering."""
    reader = get_reader(spec.dataset, root, **spec.reader_kw)
    res = spec.labels(reader)
    labels = res.labels.astype(np.int8)
    labels = labels[sorted(labels.columns)]
    split_dir = _split_dir(spec.name, reader.fingerprint())
    path = split_dir / f"split-seed{seed}.json"
    stale = path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("format") != SPLIT_FORMAT
    if stale:
        log.warning("split file %s was written by another format version; regenerating it", path)
    if path.is_file() and not stale:
        # The file keeps the splits *before* class dropping ("candidate_splits") so that dropping and
        # filtering are recomputed identically on every read; "splits" holds the final ids for people.
        data = json.loads(path.read_text(encoding="utf-8"))
        splits = {s: [str(r) for r in data["candidate_splits"][s]] for s in SPLITS}
        unknown = [r for s in SPLITS for r in splits[s] if r not in labels.index]
        if unknown:
            raise ValueError(
                f"{path}: {len(unknown)} record id(s) not in the task's labels (stale file?), e.g. {unknown[:5]}"
            )
        fresh = False
    else:
        splits = spec.split(reader, labels, seed)
        fresh = True
    candidate_splits = {s: list(v) for s, v in splits.items()}
    dropped = dict(res.dropped)
    for c in list(labels.columns):
        empty = [s for s in SPLITS if splits[s] and labels.loc[splits[s], c].sum() == 0] if labels.shape[1] else []
        if empty:
            dropped[c] = f"no positive in {'/'.join(empty)}"
    classes = [c for c in labels.columns if c not in dropped]
    labels = labels[classes]
    excluded = dict(res.excluded)
    if res.drop_unlabelled and classes:
        none = labels.index[labels.sum(axis=1) == 0]
        for r in none:
            excluded[str(r)] = "no label left after dropping classes"
        gone = set(none)
        splits = {s: [r for r in v if r not in gone] for s, v in splits.items()}
        labels = labels[~labels.index.isin(gone)]
    if fresh:
        atomic_write_json(
            path,
            {
                "task": spec.name,
                "dataset": spec.dataset,
                "reader_version": reader.version,
                "seed": seed,
                "format": SPLIT_FORMAT,
                "fingerprint": reader.fingerprint(),
                "classes": classes,
                "dropped": dropped,
                "sizes": {s: len(v) for s, v in splits.items()},
                "splits": splits,
                "candidate_splits": candidate_splits,
            },
        )
    for c, why in dropped.items():
        log.info("task %s: dropped class %s (%s)", spec.name, c, why)
    return Task(
        name=spec.name,
        dataset=spec.dataset,
        root=Path(root),
        classes=classes,
        labels=labels,
        splits=splits,
        dropped=dropped,
        suite=suite,
        reader_kw=dict(spec.reader_kw),
        excluded=excluded,
        split_dir=split_dir,
        seed=seed,
    )


def build_published_task(spec: TaskSpec, root: Path, seed: int, suite: str) -> Task:
    """A task on the published split membership: the shipped ids, labels (or our rule's), classes fixed.

    Records of the published split that this disk lacks are counted per split, logged and kept in
    ``Task.absent``; records on disk outside the published split are listed in ``Task.excluded``. No class is
    dropped for lack of positives: scoring excludes (and lists) a class without a positive in the evaluated split.
    """
    from ecg_data.tasks.published import load_published  # lazy: reads the shipped file only when needed

    pub = load_published(spec.published or spec.name)
    reader = get_reader(spec.dataset, root, **spec.reader_kw)
    on_disk = reader.present_ids()  # a metadata row without its signal files is absent too (partial download)
    splits = {s: [r for r in pub.splits[s] if r in on_disk] for s in SPLITS}
    absent = {s: [r for r in pub.splits[s] if r not in on_disk] for s in SPLITS}
    members = [r for s in SPLITS for r in splits[s]]
    member_set = set(members)
    excluded = {
        r: "not in the published split" for r in reader.metadata().index if r in on_disk and r not in member_set
    }
    dropped: dict[str, str] = {}
    if spec.label_source == "published":
        labels = pub.labels().loc[members]
        classes = list(pub.classes)
    elif spec.label_source == "rule":
        res = spec.labels(reader)
        lab = res.labels.astype(np.int8)
        unlabelled = [r for r in members if r not in lab.index]
        if unlabelled:
            raise ValueError(
                f"task {spec.name}: {len(unlabelled)} published record(s) have no label under the task's rule, e.g. {unlabelled[:5]}"
            )
        labels = lab.loc[members]
        dropped = dict(res.dropped)
        classes = [c for c in sorted(labels.columns) if c not in dropped]
        labels = labels[classes]
    else:
        raise ValueError(f"task {spec.name}: unknown label_source {spec.label_source!r}")
    n_absent = sum(len(v) for v in absent.values())
    if n_absent:
        log.warning(
            "task %s: %d of %d published records are absent under %s (train %d, val %d, test %d); "
            "they are not evaluated and every result says so",
            spec.name,
            n_absent,
            n_absent + len(members),
            root,
            len(absent["train"]),
            len(absent["val"]),
            len(absent["test"]),
        )
    info = {
        **pub.summary(),
        "label_source": spec.label_source,
        "path": pub.path,
        "n_absent": {s: len(v) for s, v in absent.items()},
        "n_on_disk_not_in_split": len(excluded),
    }
    return Task(
        name=spec.name,
        dataset=spec.dataset,
        root=Path(root),
        classes=classes,
        labels=labels,
        splits=splits,
        dropped=dropped,
        suite=suite,
        reader_kw=dict(spec.reader_kw),
        excluded=excluded,
        # the shipped content's checksum is part of the directory, so subsets of another membership never mix
        split_dir=_split_dir(spec.name, f"{reader.fingerprint()}-pub{pub.content_sha256[:8]}"),
        seed=seed,
        absent=absent,
        published=info,
        input_window=spec.input_window,
    )
