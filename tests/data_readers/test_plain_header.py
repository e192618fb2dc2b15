"""The plain-header fast path of ``read_wfdb`` gives exactly what wfdb's parser and reader give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecg_data.readers import base as base_mod
from ecg_data.readers.base import _plain_header, read_wfdb
from ecg_data.synthetic import generate_records, write_mimic_iv_ecg

FIELDS = ("n_sig", "fs", "sig_len", "comments", "sig_name", "file_name", "fmt", "adc_gain", "baseline", "units")


def _compare(hea: Path, expected_fs: float | None = None) -> None:
    fast = _plain_header(hea.read_text())
    assert fast is not None, hea
    ref = wfdb.rdheader(str(hea.with_suffix("")))
    for f in FIELDS:
        assert getattr(fast, f) == getattr(ref, f), (hea, f)
    got = read_wfdb(hea.with_suffix(""), expected_fs=expected_fs)
    real = base_mod._plain_header
    try:
        base_mod._plain_header = lambda text: None  # force wfdb's parser and reader
        want = read_wfdb(hea.with_suffix(""), expected_fs=expected_fs)
    finally:
        base_mod._plain_header = real
    assert np.array_equal(got[0], want[0]) and got[1:] == want[1:], hea


def test_synthetic_mimic_headers(tmp_path: Path) -> None:
    root = write_mimic_iv_ecg(tmp_path, generate_records(6, 0, profile="mimic"))
    heas = sorted(root.glob("files/**/*.hea"))
    assert len(heas) == 6
    for hea in heas:
        _compare(hea, 500)


def test_real_ptbxl_headers(ptbxl500: Path) -> None:
    heas = (
        sorted((ptbxl500 / "records500").glob("*/*.hea"))[:60] + sorted((ptbxl500 / "records100").glob("*/*.hea"))[:20]
    )
    for hea in heas:
        _compare(hea)


def test_challenge_headers_parse_or_fall_back(cinc_sample: Path) -> None:
    for hea in sorted(cinc_sample.rglob("*.hea")):
        fast = _plain_header(hea.read_text())
        if fast is None:  # e.g. "16x1+24" (byte offsets): wfdb parses those
            continue
        ref = wfdb.rdheader(str(hea.with_suffix("")))
        assert fast.sig_name == ref.sig_name and fast.adc_gain == ref.adc_gain and fast.comments == ref.comments


@pytest.mark.parametrize(
    "text",
    [
        "rec 12 500/1000 5000\n",  # counter frequency
        "rec/2 2 500 5000\nrec_1 2 500\nrec_2 2 500\n",  # multi-segment
        "rec 1 500 5000\nrec.dat 212 200(0)/mV 12 0 0 0 0 I\n",  # format 212
        "rec 1 500 5000\nrec.dat 16 200(0)/mV 16 0 0 0 0 I\nrec.dat 16 200(0)/mV 16 0 0 0 0 II\n",  # wrong count
    ],
)
def test_anything_unusual_goes_to_wfdb(text: str) -> None:
    assert _plain_header(text) is None
