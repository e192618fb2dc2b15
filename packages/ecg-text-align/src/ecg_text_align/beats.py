"""Beat embeddings from real heartbeats (documented ablation, beyond the MELP paper).

MELP's "beats" are n_q learned attentional-pooler queries; HeartLang instead segments real beats around
R-peaks. This option pools the encoder tokens inside a window around each detected R-peak (lead II),
so local alignment attends over physiological beats. Detection is a light Pan-Tompkins: 5-15 Hz band,
squared derivative, peaks at least 0.25 s apart above 30 % of the record's maximum.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import butter, filtfilt, find_peaks

LEAD_II = 1
WINDOW_S = (-0.25, 0.40)  # seconds around the R-peak (P wave .. T wave)


def detect_r_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices of R-peaks in a 1-D lead; empty when the lead is flat (e.g. masked)."""
    if signal.std() < 1e-6 or signal.shape[0] < int(fs):
        return np.zeros(0, dtype=int)
    b, a = butter(2, [5 / (fs / 2), 15 / (fs / 2)], btype="band")
    env = np.diff(filtfilt(b, a, signal), prepend=signal[0]) ** 2
    peaks, _ = find_peaks(env, distance=int(0.25 * fs), height=0.3 * env.max())
    # move from the derivative peak to the local |signal| maximum (within 60 ms)
    w = int(0.06 * fs)
    return np.array([max(0, p - w) + int(np.argmax(np.abs(signal[max(0, p - w) : p + w + 1]))) for p in peaks], dtype=int)


def rpeak_beat_tokens(
    x: torch.Tensor, tokens: torch.Tensor, fs: float, max_beats: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean encoder token per detected beat: (B, 12, T), (B, N, d) -> (B, max_beats, d), mask (B, max_beats).

    Records with no detected beat fall back to one "beat" = mean over all tokens (so every record has one).
    """
    b, n, d = tokens.shape
    t = x.shape[-1]
    out = tokens.new_zeros(b, max_beats, d)
    mask = torch.zeros(b, max_beats, dtype=torch.bool, device=tokens.device)
    lead = x[:, LEAD_II].detach().float().cpu().numpy()
    for i in range(b):
        peaks = detect_r_peaks(lead[i], fs)[:max_beats]
        for j, p in enumerate(peaks):
            lo = max(0, int((p + WINDOW_S[0] * fs) * n / t))
            hi = min(n, max(lo + 1, int(np.ceil((p + WINDOW_S[1] * fs) * n / t))))
            out[i, j] = tokens[i, lo:hi].mean(0)
            mask[i, j] = True
        if len(peaks) == 0:
            out[i, 0] = tokens[i].mean(0)
            mask[i, 0] = True
    return out, mask
