"""Benchmark tasks by name: labels (selected by class name), split files, fixed training subsets.

``get_task("ptbxl_super", root=None, seed=0)``. Real tasks find their data under
``$ECG_DATA_ROOT/<dir>`` (dirs ``ptbxl``, ``cpsc2018``, ``csn``, ``mimic-iv-ecg``, ``g12ec``, ``code15``,
``code-test``) unless ``root`` is
given; synthetic tasks (``synth_*``) generate their corpus on first use via
``ecg_data.synthetic.ensure_preset``.

The published benchmark (``ptbxl_super|sub|form|rhythm``, ``cpsc2018``, ``csn``) uses the split membership and
labels shipped in ``ecg_data.tasks.published`` (MERL's split files); our corrected variants (``cpsc2018_full``:
10 s input; ``csn_exact``: exact-SNOMED labels) use the same membership, so they differ in one thing only.
"""

from __future__ import annotations

from pathlib import Path

from ecg_data.paths import data_root
from ecg_data.readers import READERS
from ecg_data.record import DatasetNotFoundError
from ecg_data.registry import LazyRegistry
from ecg_data.tasks import cinc, code15, g12ec, mimic, ptbxl
from ecg_data.tasks.base import Task, TaskSpec, build_published_task, build_task
from ecg_data.tasks.published import PUBLISHED_TASKS, published_classes, published_labels, published_split
from ecg_data.tasks.window import CPSC2018_PUBLISHED_WINDOW

_SPECS: list[TaskSpec] = []
for _kind in ptbxl.KINDS:
    _published = _kind != "all"
    _SPECS.append(
        TaskSpec(
            name=f"ptbxl_{_kind}",
            dataset="ptbxl",
            data_dir="ptbxl",
            labels=ptbxl.label_fn(_kind),
            split=ptbxl.ptbxl_split,
            reader_kw={"fs": 500},
            published=f"ptbxl_{_kind}" if _published else None,
            label_source="published" if _published else "rule",
            description=(
                f"PTB-XL '{_kind}', published split (MERL data_split, = strat_fold 1-8/9/10)"
                if _published
                else "PTB-XL every SCP statement, strat_fold 1-8/9/10"
            ),
        )
    )
    _SPECS.append(
        TaskSpec(
            name=f"synth_ptbxl_{_kind}",
            dataset="ptbxl",
            data_dir="ptbxl",
            labels=ptbxl.label_fn(_kind),
            split=ptbxl.ptbxl_split,
            reader_kw={"fs": 500},
            synthetic_preset="synth-ptbxl",
            description=f"synthetic PTB-XL '{_kind}' statements, strat_fold 1-8/9/10",
        )
    )
_SPECS += [
    TaskSpec(
        name="cpsc2018",
        dataset="cpsc2018",
        data_dir="cpsc2018",
        labels=cinc.cpsc_labels,
        split=cinc.stratified,
        published="cpsc2018",
        label_source="published",
        input_window=CPSC2018_PUBLISHED_WINDOW,
        description="CPSC2018 published split and 9 classes; input = first 5 s zero-padded to 10 s",
    ),
    TaskSpec(
        name="cpsc2018_full",
        dataset="cpsc2018",
        data_dir="cpsc2018",
        labels=cinc.cpsc_labels,
        split=cinc.stratified,
        published="cpsc2018",
        label_source="published",
        description="CPSC2018 published split and 9 classes; full record as input (preset decides length)",
    ),
    TaskSpec(
        name="synth_cpsc2018",
        dataset="cpsc2018",
        data_dir="cpsc2018",
        labels=cinc.cpsc_labels,
        split=cinc.stratified,
        synthetic_preset="synth-cpsc2018",
        description="synthetic CPSC2018 9 classes, 72/8/20 multilabel-stratified",
    ),
    TaskSpec(
        name="csn",
        dataset="csn",
        data_dir="csn",
        labels=cinc.csn_labels,
        split=cinc.stratified,
        published="csn",
        label_source="published",
        description="Chapman-Shaoxing-Ningbo published split (23,026 records) and 38 published label columns",
    ),
    TaskSpec(
        name="csn_exact",
        dataset="csn",
        data_dir="csn",
        labels=cinc.csn_exact_labels,
        split=cinc.stratified,
        published="csn",
        label_source="rule",
        description="Chapman-Shaoxing-Ningbo published split; classes = exact SNOMED codes with >= 50 positives",
    ),
]
_SPECS.append(
    TaskSpec(
        name="g12ec",
        dataset="g12ec",
        data_dir="g12ec",
        labels=g12ec.g12ec_labels,
        split=cinc.stratified,
        description="G12EC (Georgia) Challenge 2021 scored classes, 72/8/20 multilabel-stratified",
    )
)
_SPECS += code15.TASK_SPECS
#: the real corpus uses the reader's defaults, i.e. the original pipelines' report rules (EKG -> ECG, reports under
#: 4 words dropped; MELP preprocess_mimic_iv_ecg.py:30,116-117); the synthetic twin keeps every report it writes
#: (its short machine statements are part of the corpus design and of the default run's figures)
_SYNTH_MIMIC_KW = {"min_report_words": 0, "ekg_to_ecg": False}
for _name, _preset, _kw, _split in (
    ("mimic_iv_ecg", None, {}, mimic.subject_split),
    ("synth_mimic", "synth-mimic", _SYNTH_MIMIC_KW, mimic.synthetic_subject_split),
):
    _SPECS.append(
        TaskSpec(
            name=_name,
            dataset="mimic_iv_ecg",
            data_dir="mimic-iv-ecg",
            labels=mimic.mimic_labels,
            split=_split,
            synthetic_preset=_preset,
            reader_kw=_kw,
            description="MIMIC-IV-ECG reports, split by subject",
        )
    )

#: name -> TaskSpec
TASKS = LazyRegistry("task", {s.name: s for s in _SPECS})


def resolve_root(spec: TaskSpec, root: str | Path | None) -> tuple[Path, str]:
    """(root, suite) for a task: explicit root, the synthetic preset, or $ECG_DATA_ROOT/<dir>."""
    suite = "synthetic" if spec.synthetic_preset else "real"
    if root is not None:
        return Path(root), suite
    if spec.synthetic_preset:
        from ecg_data.synthetic import ensure_preset  # lazy: the generator is only needed for synthetic tasks

        return Path(ensure_preset(spec.synthetic_preset)), suite
    found = data_root(spec.data_dir)
    if found is None:
        cls = READERS.get(spec.dataset)
        raise DatasetNotFoundError(
            f"task {spec.name}: no root given and $ECG_DATA_ROOT is not set (expected $ECG_DATA_ROOT/{spec.data_dir}).\n"
            f"Expected layout:\n{cls.expected_layout}\nDownload it from {cls.published_at}"
        )
    return found, suite


def get_task(name: str, root: str | Path | None = None, seed: int = 0) -> Task:
    spec: TaskSpec = TASKS.get(name)
    path, suite = resolve_root(spec, root)
    if spec.published:
        return build_published_task(spec, path, seed, suite)
    return build_task(spec, path, seed, suite)


def rule_task(name: str, root: str | Path | None = None, seed: int = 0) -> Task:
    """The task built from its label and split rules, ignoring the published membership.

    Why: the synthetic twins are built this way, and it shows how the rules (PTB-XL folds and aggregation,
    exact-code CPSC labels with a seeded 72/8/20 split) compare with the published files. Split files of a rule
    task live under ``splits/<name>-rule/`` so they never mix with the published task's subsets.
    """
    from dataclasses import replace

    spec: TaskSpec = TASKS.get(name)
    path, suite = resolve_root(spec, root)
    if not spec.published:
        return build_task(spec, path, seed, suite)
    task = build_task(replace(spec, name=f"{name}-rule", published=None), path, seed, suite)
    task.name = name
    return task


__all__ = [
    "rule_task",
    "PUBLISHED_TASKS",
    "TASKS",
    "Task",
    "TaskSpec",
    "get_task",
    "published_classes",
    "published_labels",
    "published_split",
]
