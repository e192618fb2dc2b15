"""R-peak detection and per-beat windows, vectorised over a batch of records (numpy, CPU).

Why our own detector: HeartLang (PKUDigitalHealth/HeartLang, ``QRSTokenizer.py``) runs wfdb's ``xqrs_detect``
record by record, which costs tens of milliseconds per record in Python; an encoder that tokenises
inside ``forward`` needs the whole batch at once. ``detect_r_peaks(..., method="xqrs")`` still runs
wfdb's detector for comparison with the original.

Detector (Pan-Tompkins style, all steps are whole-array numpy operations):
1. slope energy: squared 5-point derivative, averaged over a centred 120 ms window;
2. candidates: samples that are the maximum of the energy within +-250 ms (refractory period, so at
   most 240 bpm) and exceed ``threshold`` x the record's 99th energy percentile;
3. refinement: the R-peak is the largest absolute deviation from a 250 ms moving average within
   +-80 ms of the candidate; refined peaks closer than half the refractory period are merged.
A flat or empty record yields no peaks (callers pad; see ``heartlang.tokenizer``).

The project's one R-peak detector: HeartLang's tokenizer and MELP's real-heartbeat beat option
(``rpeak_beat_tokens``) both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

LEAD_II = 1
WINDOW_S = (-0.25, 0.40)  # seconds around the R-peak (P wave .. T wave), for rpeak_beat_tokens


@dataclass
class Peaks:
    """Flat R-peak list of a batch, sorted by record then time (one entry per detected beat)."""

    record: np.ndarray  # (Q,) int64 record index in the batch
    index: np.ndarray  # (Q,) int64 sample index of the R-peak
    n_records: int

    def per_record(self) -> list[np.ndarray]:
        return [self.index[self.record == b] for b in range(self.n_records)]

    def counts(self) -> np.ndarray:
        return np.bincount(self.record, minlength=self.n_records)


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average along the last axis with edge padding (same length as ``x``)."""
    width = max(int(width), 1)
    left, right = (width - 1) // 2, width // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(left + 1, right)], mode="edge")
    c = np.cumsum(padded, axis=-1)
    return (c[..., width:] - c[..., :-width]) / width


def _window_max(x: np.ndarray, radius: int) -> np.ndarray:
    padded = np.pad(x, [(0, 0), (radius, radius)], mode="constant", constant_values=-np.inf)
    return sliding_window_view(padded, 2 * radius + 1, axis=-1).max(axis=-1)


def detect_r_peaks(
    signal: np.ndarray, fs: float, *, method: str = "numpy", threshold: float = 0.3, refractory_s: float = 0.25
) -> Peaks:
    """R-peaks of each row of ``signal`` (B, T) (or one record (T,)) sampled at ``fs`` Hz."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"detect_r_peaks expects (B, T) or (T,), got shape {x.shape}")
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    if method == "xqrs":
        return _detect_xqrs(x, fs)
    if method != "numpy":
        raise ValueError(f"unknown R-peak detector {method!r}; valid: 'numpy', 'xqrs'")
    b, t = x.shape
    if t < 5:
        return Peaks(np.zeros(0, np.int64), np.zeros(0, np.int64), b)
    # 1. slope energy (5-point derivative of Pan & Tompkins 1985, eq. 4), integrated over 120 ms
    xp = np.pad(x, ((0, 0), (2, 2)), mode="edge")
    deriv = (-xp[:, :-4] - 2 * xp[:, 1:-3] + 2 * xp[:, 3:-1] + xp[:, 4:]) / 8.0
    energy = _moving_average(deriv**2, round(0.12 * fs))
    # 2. candidates: local maxima within the refractory period, above a per-record threshold
    radius = max(int(round(refractory_s * fs)), 1)
    level = np.percentile(energy, 99, axis=1, keepdims=True)
    prev = np.concatenate([np.full((b, 1), -np.inf), energy[:, :-1]], axis=1)
    cand = (energy >= _window_max(energy, radius)) & (energy > prev) & (energy > threshold * level) & (level > 0)
    rec, idx = np.nonzero(cand)
    if rec.size == 0:
        return Peaks(rec.astype(np.int64), idx.astype(np.int64), b)
    # 3. refine to the largest deviation from the local baseline within +-80 ms
    half = max(int(round(0.08 * fs)), 1)
    dev = np.abs(x - _moving_average(x, round(0.25 * fs)))
    dev = np.pad(dev, ((0, 0), (half, half)), mode="constant", constant_values=-1.0)
    win = sliding_window_view(dev, 2 * half + 1, axis=1)[rec, idx]  # (Q, 2*half+1), centred on idx
    idx = idx + win.argmax(axis=1) - half
    # merge refined peaks that collapsed together (same record, closer than half the refractory period)
    keep = np.ones(idx.size, dtype=bool)
    keep[1:] = ~((rec[1:] == rec[:-1]) & (idx[1:] - idx[:-1] < radius // 2))
    return Peaks(rec[keep].astype(np.int64), idx[keep].astype(np.int64), b)


def _detect_xqrs(x: np.ndarray, fs: float) -> Peaks:
    """wfdb's XQRS per record, as HeartLang's ``QRSTokenizer.qrs_detection`` (slow; for comparison)."""
    from wfdb import processing  # lazy: optional path

    recs, idxs = [], []
    for i, row in enumerate(x):
        found = np.zeros(0, np.int64)
        if np.ptp(row) > 0:
            found = np.asarray(processing.xqrs_detect(sig=row, fs=fs, verbose=False), dtype=np.int64)
        recs.append(np.full(found.size, i, np.int64))
        idxs.append(np.sort(found))
    return Peaks(np.concatenate(recs), np.concatenate(idxs), x.shape[0])


def beat_windows(
    peaks: Peaks, length: int, token_len: int = 96, mode: str = "heartlang"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source span ``[start, end)`` of every beat and where it lands in its ``token_len`` window.

    ``mode="heartlang"`` reproduces ``QRSTokenizer.extract_qrs_segments``: a beat spans from the midpoint
    with its previous R-peak to the midpoint with its next one (first/last beats: +-token_len/2 on the
    open side); a span longer than ``token_len`` is replaced by ``[r - token_len/2, r + token_len/2)``.
    The span is copied to offset ``max(token_len/2 - (r - start), 0)``, so the R-peak sits at
    ``token_len // 2`` except when the span reaches further than half a window back but is shorter than
    a window in total (irregular rhythms): then it is left-aligned, as in the original.
    ``mode="centred"``: the span clipped to ``r +- token_len/2``, always with the R-peak at the centre.
    Returns ``(start, end, offset)`` arrays of shape (Q,).
    """
    if mode not in ("heartlang", "centred"):
        raise ValueError(f"unknown beat window mode {mode!r}; valid: 'heartlang', 'centred'")
    c, rec, h = peaks.index, peaks.record, token_len // 2
    n = c.size
    has_prev = np.zeros(n, bool)
    has_next = np.zeros(n, bool)
    has_prev[1:] = rec[1:] == rec[:-1]
    has_next[:-1] = rec[:-1] == rec[1:]
    c_prev = np.where(has_prev, np.roll(c, 1), c)
    c_next = np.where(has_next, np.roll(c, -1), c)
    mid_prev, mid_next = (c_prev + c) // 2, (c + c_next) // 2
    if mode == "centred":
        start = np.maximum(np.where(has_prev, np.maximum(mid_prev, c - h), c - h), 0)
        end = np.minimum(np.where(has_next, np.minimum(mid_next, c + h), c + h), length)
        return start, end, h - (c - start)
    first, last = ~has_prev, ~has_next
    start = np.where(first, np.maximum(c - h, 0), mid_prev)
    end = np.where(
        first & has_next,
        mid_next,
        np.where(
            first,
            np.minimum(np.maximum(c - h, 0) + token_len, length),
            np.where(last, np.minimum(c + h, length), mid_next),
        ),
    )
    start, end = np.maximum(start, 0), np.minimum(end, length)
    too_long = end - start > token_len
    start = np.where(too_long, np.maximum(c - h, 0), start)
    end = np.where(too_long, np.minimum(start + token_len, length), end)
    offset = np.maximum(h - (c - start), 0)
    end = end - np.maximum(offset + (end - start) - token_len, 0)  # original: trim what overflows
    return start, end, offset


def rpeak_beat_tokens(
    x: torch.Tensor, tokens: torch.Tensor, fs: float, max_beats: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean encoder token per detected beat: (B, 12, T), (B, N, d) -> (B, max_beats, d), mask (B, max_beats).

    Why: MELP's "beats" are learned pooler queries; this documented ablation (``beat_source: rpeaks``) pools
    the tokens inside ``WINDOW_S`` around each R-peak of lead II instead, as HeartLang segments real beats.
    Records with no detected beat fall back to one "beat" = mean over all tokens (so every record has one).
    """
    b, n, d = tokens.shape
    t = x.shape[-1]
    out = tokens.new_zeros(b, max_beats, d)
    mask = torch.zeros(b, max_beats, dtype=torch.bool, device=tokens.device)
    per_record = detect_r_peaks(x[:, LEAD_II].detach().float().cpu().numpy(), fs).per_record()
    for i in range(b):
        peaks = per_record[i][:max_beats]
        for j, p in enumerate(peaks):
            lo = max(0, int((p + WINDOW_S[0] * fs) * n / t))
            hi = min(n, max(lo + 1, int(np.ceil((p + WINDOW_S[1] * fs) * n / t))))
            out[i, j] = tokens[i, lo:hi].mean(0)
            mask[i, j] = True
        if len(peaks) == 0:
            out[i, 0] = tokens[i].mean(0)
            mask[i, 0] = True
    return out, mask
