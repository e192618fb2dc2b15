"""Benchmark tasks by name: labels (selected by class name), split files, fixed training subsets.

``get_task("ptbxl_super", root=None, seed=0)``. Real tasks find their data under
``$ECG_DATA_ROOT/<dir>`` (dirs ``ptbxl``, ``cpsc2018``, ``csn``, ``mimic-iv-ecg``, ``g12ec``, ``code15``,
``code-test``) unless ``root`` is
given; synthetic tasks (``synth_*``) generate their corpus on first use via
``ecg_data.synthetic.ensure_preset``.
"""

from __future__ import annotations

from pathlib import Path

from ecg_data.paths import data_root
from ecg_data.readers import READERS
from ecg_data.record import DatasetNotFoundError
from ecg_data.registry import LazyRegistry
from ecg_data.tasks import cinc, code15, g12ec, mimic, ptbxl
from ecg_data.tasks.base import Task, TaskSpec, build_task

_SPECS: list[TaskSpec] = []
for _kind in ptbxl.KINDS:
    for _prefix, _preset in (("ptbxl", None), ("synth_ptbxl", "synth-ptbxl")):
        _SPECS.append(
            TaskSpec(
                name=f"{_prefix}_{_kind}", dataset="ptbxl", data_dir="ptbxl", labels=ptbxl.label_fn(_kind),
                split=ptbxl.ptbxl_split, reader_kw={"fs": 500}, synthetic_preset=_preset,
                description=f"PTB-XL '{_kind}' statements, strat_fold 1-8/9/10",
            )
        )
for _name, _preset in (("cpsc2018", None), ("synth_cpsc2018", "synth-cpsc2018")):
    _SPECS.append(
        TaskSpec(name=_name, dataset="cpsc2018", data_dir="cpsc2018", labels=cinc.cpsc_labels, split=cinc.stratified,
                 synthetic_preset=_preset, description="CPSC2018 9 classes, 72/8/20 multilabel-stratified")
    )
_SPECS.append(
    TaskSpec(name="csn", dataset="csn", data_dir="csn", labels=cinc.csn_labels, split=cinc.stratified,
             description="Chapman-Shaoxing-Ningbo SNOMED classes, 72/8/20 multilabel-stratified")
)
_SPECS.append(
    TaskSpec(name="g12ec", dataset="g12ec", data_dir="g12ec", labels=g12ec.g12ec_labels, split=cinc.stratified,
             description="G12EC (Georgia) Challenge 2021 scored classes, 72/8/20 multilabel-stratified")
)
_SPECS += code15.TASK_SPECS
for _name, _preset in (("mimic_iv_ecg", None), ("synth_mimic", "synth-mimic")):
    _SPECS.append(
        TaskSpec(name=_name, dataset="mimic_iv_ecg", data_dir="mimic-iv-ecg", labels=mimic.mimic_labels,
                 split=mimic.subject_split, synthetic_preset=_preset, description="MIMIC-IV-ECG reports, split by subject")
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
    return build_task(spec, path, seed, suite)


__all__ = ["TASKS", "Task", "TaskSpec", "get_task"]
