"""Preflight of the real data: before any training, say what an incomplete tree lacks and how to complete it.

For every real task of the run whose directory is ``$ECG_DATA_ROOT/<dir>`` (``data_root=``), ``ecg_data.verify``
runs without hashing (presence, release, the published-split counts that evaluation will report). When the tree
is incomplete its summary and the exact ``python -m ecg_data download ...`` command are logged as a warning; the
run goes on (a partial tree is a legitimate trial, and every result file records its absent records).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger("ecgbench")


def report_incomplete_data(tasks: Iterable[str | None]) -> list[str]:
    """Warn (and return the summaries) for each dataset of ``tasks`` whose tree under $ECG_DATA_ROOT is incomplete."""
    from ecg_data.paths import data_root
    from ecg_data.sources import source_for_data_dir
    from ecg_data.tasks import TASKS
    from ecg_data.verify import render, verify

    groups: dict[str, list[str]] = {}
    for name in dict.fromkeys(t for t in tasks if t):
        if name not in TASKS:  # a task of another backend (the toy one of the tests): not ecg_data's to check
            continue
        spec = TASKS.get(name)
        if spec.synthetic_preset or source_for_data_dir(spec.data_dir) is None or data_root(spec.data_dir) is None:
            continue
        groups.setdefault(spec.data_dir, []).append(name)
    out = []
    for data_dir, names in groups.items():
        source = source_for_data_dir(data_dir)
        assert source is not None
        report = verify(source.name, data_root(data_dir), tasks=names, hashes=False)  # type: ignore[arg-type]
        if not report.ok:
            text = render(report)
            log.warning("preflight: the %s data is incomplete\n%s", source.name, text)
            out.append(text)
    return out
