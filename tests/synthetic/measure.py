"""An independent ECG measurement for the tests: nothing here reads the generator's parameters.

R peaks come from neurokit2's ``ecg_peaks`` (an independent QRS detector). Intervals are measured on the
median beat of all 12 leads with the global approach of computerised ECG programs (QRS onset/offset from
the spatial velocity, T end and P onset from the spatial magnitude; cf. Xue, "Computerized ECG
interpretation", and the CSE working party's global measurements). neurokit2's own wave delineation
(``ecg_delineate`` dwt/cwt/peak) was tried first: on clean signals it returned misaligned per-beat lists
and a 54 ms median PR for a normal beat, so it cannot serve as a reference here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, filtfilt, medfilt

from ecg_data.record import LEADS


@dataclass
class Measured:
    hr: float
    rr: np.ndarray  # s
    rr_cv: float
    pr_ms: float | None
    qrs_ms: float
    qt_ms: float
    qtc_bazett_ms: float
    axis_deg: float
    beat: np.ndarray  # (12, L) median beat, baseline removed
    r_idx: int  # R position inside ``beat``
    qrs_on: int
    qrs_off: int
    fs: float

    def lead(self, name: str) -> np.ndarray:
        return self.beat[LEADS.index(name)]

    def st(self, name: str, after_j_ms: float = 60) -> float:
        """ST level (mV) ``after_j_ms`` after the QRS end, relative to the PR baseline."""
        k = self.qrs_off + int(after_j_ms / 1000 * self.fs)
        return float(self.lead(name)[k])

    def qrs_net(self, name: str, first_ms: float | None = None, last_ms: float | None = None) -> float:
        x = self.lead(name)[self.qrs_on : self.qrs_off]
        if first_ms is not None:
            x = x[: int(first_ms / 1000 * self.fs)]
        if last_ms is not None:
            x = x[-int(last_ms / 1000 * self.fs) :]
        return float(x.sum() / self.fs)

    def qrs_p2p(self, name: str) -> float:
        x = self.lead(name)[self.qrs_on : self.qrs_off]
        return float(x.max() - x.min())


def r_peaks(sig: np.ndarray, fs: float) -> np.ndarray:
    import neurokit2 as nk

    mag = np.sqrt((highpass(sig, fs)[[0, 1, 6, 7, 8, 9, 10, 11]] ** 2).sum(axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ecg_peaks(mag, sampling_rate=int(fs))
    return np.asarray(info["ECG_R_Peaks"], dtype=int)


def highpass(sig: np.ndarray, fs: float, fc: float = 0.5) -> np.ndarray:
    b, a = butter(2, fc / (fs / 2), "high")
    return filtfilt(b, a, sig.astype(np.float64), axis=-1)


def _edge(v: np.ndarray, start: int, step: int, thr: float, gap: int, limit: int) -> int:
    """Walk from ``start`` until ``v`` stays below ``thr`` for ``gap`` samples; return the last supra-threshold index."""
    i, last, below = start, start, 0
    while i > limit if step < 0 else i < limit:
        if v[i] > thr:
            last, below = i, 0
        else:
            below += 1
            if below >= gap:
                break
        i += step
    return last


def measure(sig: np.ndarray, fs: float = 500.0, has_p: bool = True, despike: bool = False) -> Measured:
    """``despike``: remove pacemaker spikes (a 7-sample median filter) before delineation."""
    x = highpass(sig, fs)
    if despike:
        x = medfilt(x, (1, 7))
    r = r_peaks(sig, fs)
    rr = np.diff(r) / fs
    pre, post = int(0.55 * fs), int(0.75 * fs)
    ok = r[(r > pre) & (r < x.shape[1] - post)]
    beats = np.stack([x[:, k - pre : k + post] for k in ok])
    beat = np.median(beats, axis=0)
    rpos = pre
    # QRS: spatial velocity over the 8 independent leads, 10 % of its peak near R.
    sv = np.abs(np.diff(beat[[0, 1, 6, 7, 8, 9, 10, 11]], axis=1)).sum(axis=0)
    near = slice(rpos - int(0.08 * fs), rpos + int(0.08 * fs))
    thr = 0.12 * sv[near].max()
    gap = int(0.02 * fs)  # QRS ends where the velocity stays below threshold for 20 ms
    on = _edge(sv, rpos, -1, thr, gap, rpos - int(0.15 * fs))
    off = _edge(sv, rpos, +1, thr, gap, rpos + int(0.2 * fs)) + 1
    # Baseline: just before QRS onset (the PR segment); magnitude relative to it.
    base = beat[:, on - int(0.01 * fs) : on - int(0.004 * fs)].mean(axis=1, keepdims=True)
    beat = beat - base
    mag = np.sqrt((beat[[0, 1, 6, 7, 8, 9, 10, 11]] ** 2).sum(axis=0))
    # T end: 10 % of the T-peak magnitude after the T peak.
    rr_med = float(np.median(rr))
    t_lo = off + int(0.08 * fs)
    t_hi = max(min(on + int(0.7 * rr_med * fs), len(mag) - 1), t_lo + 1)
    tpk = t_lo + int(np.argmax(mag[t_lo:t_hi]))
    tend = tpk
    while tend < min(on + int(0.85 * rr_med * fs), len(mag) - 1) and mag[tend] > 0.1 * mag[tpk]:
        tend += 1
    pr = None
    if has_p:
        p_lo = on - int(0.42 * fs)
        p_win = on - int(min(0.32, 0.6 * rr_med) * fs)
        ppk = p_win + int(np.argmax(mag[p_win : on - int(0.03 * fs)]))
        floor = float(mag[p_lo:ppk].min())  # TP level: the P wave rises from it
        pon = ppk
        while pon > p_lo and mag[pon] > floor + 0.15 * (mag[ppk] - floor):
            pon -= 1
        pr = (on - pon) / fs * 1000
    qt = (tend - on) / fs * 1000
    axis = float(np.degrees(np.arctan2(beat[5, on:off].sum(), beat[0, on:off].sum())))
    return Measured(
        hr=60.0 / rr_med,
        rr=rr,
        rr_cv=float(np.std(rr) / np.mean(rr)),
        pr_ms=pr,
        qrs_ms=(off - on) / fs * 1000,
        qt_ms=qt,
        qtc_bazett_ms=qt / np.sqrt(rr_med),
        axis_deg=axis,
        beat=beat,
        r_idx=rpos,
        qrs_on=on,
        qrs_off=off,
        fs=fs,
    )
