"""Fixtures of this folder: small synthetic ECGs with R-peaks at known samples.

A fixture rather than an importable helper: site-packages may hold an unrelated ``tests`` package."""

from __future__ import annotations

import numpy as np
import pytest


def spiky_ecg(
    peaks_per_record: list[np.ndarray], length: int = 1000, leads: int = 12, seed: int = 0, noise: float = 0.01
) -> np.ndarray:
    """(B, leads, length) float32: narrow R spikes (plus a small T wave and noise) at the given samples.

    Lead l is scaled by (l + 1) so windows of different leads are distinguishable.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    out = np.zeros((len(peaks_per_record), leads, length), np.float32)
    for b, peaks in enumerate(peaks_per_record):
        base = np.zeros(length)
        for p in peaks:
            base += np.exp(-0.5 * ((t - p) / 1.2) ** 2) + 0.2 * np.exp(-0.5 * ((t - p - 25) / 5.0) ** 2)
        base += noise * rng.standard_normal(length)
        out[b] = base[None] * (np.arange(leads)[:, None] + 1)
    return out


@pytest.fixture(scope="session")
def spiky():
    """The ``spiky_ecg`` builder."""
    return spiky_ecg
