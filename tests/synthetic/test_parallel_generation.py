"""Parallel generation yields the corpus of the sequential generator, record for record, in order."""

from __future__ import annotations

import numpy as np

from ecg_data.synthetic.generate import PARALLEL_CHUNK, generate_records, generate_records_parallel


def test_parallel_generation_equals_the_sequential_corpus() -> None:
    n = PARALLEL_CHUNK + 40  # two chunks, the second partial
    seq = list(generate_records(n, 3, profile="mimic"))
    par = list(generate_records_parallel(n, 3, profile="mimic", workers=2))
    assert len(par) == n and [r.meta["index"] for r in par] == list(range(n))
    for a, b in zip(seq, par):
        assert a.patient_id == b.patient_id and a.report == b.report
        np.testing.assert_array_equal(a.signal, b.signal)
