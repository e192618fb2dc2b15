"""Recording noise, generated per electrode and then turned into leads.

Why per electrode: real artefacts (a loose LA electrode, arm-muscle tremor, mains pickup) live on
electrodes, and every lead is a difference of electrode potentials. Generating noise on the 9 electrodes
and forming leads from them keeps Einthoven's and Goldberger's relations exact, and spreads an
electrode's artefact to exactly the leads that use it (e.g. an LA artefact shows in I, III, aVL, not II).

Noise types follow the MIT-BIH Noise Stress Test categories (Moody, Muldrow & Mark 1984: baseline
wander, muscle artefact, electrode motion) plus mains interference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from .model import FS, N_SAMPLES

ELECTRODES = ("RA", "LA", "LL", "V1", "V2", "V3", "V4", "V5", "V6")

# Electrode potentials -> leads I, II, V1-V6 (precordial leads are referenced to Wilson's central terminal).
E2L = np.zeros((8, 9))
E2L[0, [0, 1]] = [-1, 1]
E2L[1, [0, 2]] = [-1, 1]
for _k in range(6):
    E2L[2 + _k, 3 + _k] = 1
    E2L[2 + _k, [0, 1, 2]] = -1 / 3


@dataclass(frozen=True)
class NoiseConfig:
    """Noise amplitudes in mV (per electrode, before lead formation); ``scale`` multiplies them all."""

    scale: float = 1.0
    baseline_mv: float = 0.12
    emg_mv: float = 0.018
    powerline_mv: float = 0.01
    motion_p: float = 0.15  # probability that a record has an electrode-motion artefact
    motion_mv: float = 0.6

    def with_scale(self, s: float) -> NoiseConfig:
        return NoiseConfig(s, self.baseline_mv, self.emg_mv, self.powerline_mv, self.motion_p, self.motion_mv)


def electrode_noise(
    rng: np.random.Generator, cfg: NoiseConfig, resp_f: float, n: int = N_SAMPLES, fs: float = FS
) -> tuple[np.ndarray, dict]:
    """(8, n) noise in leads I, II, V1-V6, and a dict naming which artefacts were added."""
    if cfg.scale <= 0:
        return np.zeros((8, n)), {}
    s = cfg.scale
    t = np.arange(n) / fs
    ne = len(ELECTRODES)
    info: dict = {}
    # Baseline wander: respiration plus slow drift, different amplitude and phase per electrode. Each
    # electrode mixes the sine and cosine of three shared frequencies (one matrix product, few trig calls).
    bw_level = cfg.baseline_mv * s * rng.uniform(0.2, 1.2)
    freqs = np.array([resp_f, rng.uniform(0.05, 0.15), rng.uniform(0.3, 0.6)])
    amps = rng.uniform(0.2, 1.0, (ne, 3)) * bw_level * np.array([1.0, 1.2, 0.4])
    phases = rng.uniform(0, 2 * np.pi, (ne, 3))
    tc = t[::10]  # the wander is below 1 Hz: evaluate on a 50 Hz grid and interpolate linearly
    arg = 2 * np.pi * freqs[:, None] * tc[None, :]
    coarse = np.concatenate([np.sin(arg), np.cos(arg)])  # (6, n / 10)
    basis = np.stack([np.interp(t, tc, row) for row in coarse])
    mix = np.concatenate([amps * np.cos(phases), amps * np.sin(phases)], axis=1)  # sin(a+p) = sin a cos p + cos a sin p
    noise = mix @ basis
    info["baseline_mv"] = float(bw_level)
    # Muscle (EMG): broadband noise, emphasised on limb electrodes, with occasional bursts.
    emg_level = cfg.emg_mv * s * np.exp(rng.normal(0, 0.5))
    white = (rng.random((ne, n)) - 0.5) * np.sqrt(12.0)  # unit-variance white noise (uniform draws are cheaper)
    emg = lfilter([1.0, -0.6], [1.0], white, axis=1)  # mild high-frequency emphasis
    env = np.ones(n)
    if rng.random() < 0.3:
        a = int(rng.integers(0, n - fs))
        env[a : a + int(rng.uniform(0.5, 2.0) * fs)] += rng.uniform(1.0, 3.0)
    limb_w = np.array([1.5, 1.5, 1.2, 1, 1, 1, 1, 1, 1])[:, None] * rng.uniform(0.5, 1.5, (ne, 1))
    noise += emg * env[None, :] * limb_w * emg_level
    info["emg_mv"] = float(emg_level)
    # Mains: 50 or 60 Hz, differential part left by unequal electrode impedances.
    if rng.random() < 0.5:
        f0 = float(rng.choice([50.0, 60.0]))
        pl = cfg.powerline_mv * s * rng.uniform(0.2, 1.5, (ne, 1))
        noise += pl * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi))[None, :]
        info["powerline_hz"] = f0
    # Electrode motion: a step with exponential recovery plus a damped wobble on one electrode.
    if rng.random() < cfg.motion_p * min(s, 2.0):
        e = int(rng.integers(0, ne))
        a0 = int(rng.integers(0, n - int(0.5 * fs)))
        tau = rng.uniform(0.15, 0.8)
        x = t[a0:] - t[a0]
        art = np.exp(-x / tau) * (1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 4) * x))
        noise[e, a0:] += rng.choice([-1, 1]) * cfg.motion_mv * s * rng.uniform(0.3, 1.5) * art
        info["motion_electrode"] = ELECTRODES[e]
    return E2L @ noise, info
