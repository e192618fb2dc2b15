"""The vectorised R-peak detector on real PTB-XL 100 Hz records, against neurokit2's detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecg_encoders.ecg.beats import detect_r_peaks

N_RECORDS = 40


@pytest.mark.shared
@pytest.mark.slow  # ~7 s, mostly importing neurokit2
def test_agrees_with_neurokit2_on_ptbxl_lead_i(ptbxl500: Path) -> None:
    wfdb = pytest.importorskip("wfdb")
    nk = pytest.importorskip("neurokit2")
    from scipy.signal import butter, filtfilt

    heads = sorted((ptbxl500 / "records100").glob("*/*_lr.hea"))[:N_RECORDS]
    assert len(heads) == N_RECORDS, f"expected {N_RECORDS} records under {ptbxl500 / 'records100'}"
    lead_i = np.nan_to_num(np.stack([wfdb.rdrecord(str(h.with_suffix(""))).p_signal[:, 0] for h in heads]))
    b, a = butter(5, [0.67 / 50, 40 / 50], "band")  # HeartLang's band-pass at 100 Hz
    lead_i = filtfilt(b, a, lead_i, axis=1)
    ours = detect_r_peaks(lead_i, fs=100).per_record()
    matched = missed = extra = 0
    for row, mine in zip(lead_i, ours):
        ref = np.asarray(nk.ecg_peaks(row, sampling_rate=100)[1]["ECG_R_Peaks"])
        hit = np.array([mine.size > 0 and np.abs(mine - r).min() <= 5 for r in ref], bool)  # 50 ms
        matched += int(hit.sum())
        missed += int((~hit).sum())
        extra += sum(not (ref.size and np.abs(ref - m).min() <= 5) for m in mine)
    assert matched > 300
    assert missed <= 0.03 * (matched + missed)
    assert extra <= 0.10 * (matched + missed)  # mostly beats at the record edges that neurokit2 skips
