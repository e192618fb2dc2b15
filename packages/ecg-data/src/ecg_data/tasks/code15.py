"""CODE-15% and CODE test set tasks: the six CODE abnormalities (1dAVb, RBBB, LBBB, SB, ST, AF).

- ``code15``: labels from ``exams.csv``; every indexed exam is in the task (exams without any of the six are
  all-negative, as in the paper); split 72/8/20 multilabel-stratified over **patients** (``patient_id``), so no
  patient is in two splits (``ecg_data.tasks.cinc.stratified`` groups by patient when ids exist).
- ``code_test``: the 827-exam CODE test set with its cardiologist gold standard; the same classes and the same
  72/8/20 rule over exams (no patient ids), so it can be probed on its own. The paper's protocol — train on
  CODE, test on the 827 gold-standard exams — is the ``transfer`` direction ``code15 -> code_test``
  (docs/evaluation.md).
- A class without a positive in a split is dropped (``Task.dropped``), as for every task.
"""

from __future__ import annotations

from ecg_data.readers.base import DatasetReader
from ecg_data.readers.code15 import CODE_CLASSES
from ecg_data.tasks.base import LabelResult, TaskSpec, multi_hot
from ecg_data.tasks.cinc import stratified


def code_labels(reader: DatasetReader) -> LabelResult:
    md = reader.metadata()
    per = {rid: list(cl) for rid, cl in md["code_classes"].items()}
    return LabelResult(labels=multi_hot(per, sorted(CODE_CLASSES)))


TASK_SPECS: list[TaskSpec] = [
    TaskSpec(
        name="code15",
        dataset="code15",
        data_dir="code15",
        labels=code_labels,
        split=stratified,
        description="CODE-15% six abnormalities, 72/8/20 multilabel-stratified by patient",
    ),
    TaskSpec(
        name="code_test",
        dataset="code_test",
        data_dir="code-test",
        labels=code_labels,
        split=stratified,
        description="CODE test set (827 exams, cardiologist gold standard), 72/8/20 multilabel-stratified",
    ),
]
