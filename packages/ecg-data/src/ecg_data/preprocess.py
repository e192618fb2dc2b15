"""Preprocessing: composable signal transforms and each paper's named preset.

Why presets with a key: every method was trained on inputs prepared a particular way (rate, length,
filter, normalisation). A preset fixes all of it under one name, and ``Preset.key()`` hashes every
parameter so the record cache (``ecg_data.cache``) is keyed by it: a changed preprocessing never
reads a stale cache.

Transforms are callables ``(signal (12, T) float32, fs) -> (signal, fs)`` on numpy arrays, so they
run once at cache-build time. ``RandomLeadMask`` is the exception: a training augmentation on torch
tensors, applied per item or per batch on the device and never cached. The two per-record
normalisations (``MinMaxNormalize``, ``ZScore``) also have a ``batch(x)`` form on torch tensors
(B, 12, T), so a cache can store the signal before normalisation and the loader normalises each batch
on the device (``Preset.split_normalization``); both forms live in the same class and are tested
against each other.

One step is not per record: ``TrainStandardScaler`` (one mean and standard deviation over every value of a task's
train split, HeartLang's PTB-XL input). A preset ending in it cannot run on a record until
``ecg_data.cache.resolve_preset(task, preset)`` has fitted it on that task's train split and replaced it by a
``Standardize(mean, std, fitted_on)``, whose numbers are then part of the preset key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from typing import Any, Literal, Protocol

import numpy as np
from scipy import signal as sps

from ecg_data.paths import stable_hash
from ecg_data.record import LEADS, Record, RecordError
from ecg_data.registry import LazyRegistry

#: Bump when a transform's *implementation* changes in a way that changes its output; part of every key.
PREPROCESS_VERSION = 1


class Transform(Protocol):
    def __call__(self, x: np.ndarray, fs: float) -> tuple[np.ndarray, float]: ...

    def spec(self) -> dict[str, Any]: ...


class _Spec:
    """Mixin: ``spec()`` = class name + dataclass fields, the transform's contribution to the preset key."""

    def spec(self) -> dict[str, Any]:
        return {"type": type(self).__name__, **asdict(self)}  # type: ignore[call-overload]


def _rational(fs: float) -> Fraction:
    """A sampling rate as an exact fraction (500 -> 500, 257.0 -> 257, 128.5 -> 257/2)."""
    frac = Fraction(str(float(fs))).limit_denominator(1000)
    if not math.isclose(float(frac), float(fs), rel_tol=0, abs_tol=1e-9):
        raise ValueError(f"sampling rate {fs} is not a simple rational number")
    return frac


@dataclass(frozen=True)
class Resample(_Spec):
    """Polyphase resampling to ``fs`` with exact rational factors (scipy ``resample_poly``).

    Why polyphase rather than the FFT ``scipy.signal.resample`` some originals use: it does not assume
    the record is periodic (no wrap-around ringing at the edges) and is exact for 500 <-> 100 Hz.
    """

    fs: float

    def __call__(self, x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        ratio = _rational(self.fs) / _rational(fs)
        if ratio == 1:
            return x, float(self.fs)
        y = sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
        return y.astype(np.float32, copy=False), float(self.fs)


@dataclass(frozen=True)
class Bandpass(_Spec):
    """Zero-phase Butterworth band-pass (second-order sections, ``sosfiltfilt``): no phase distortion of the QRS."""

    low: float
    high: float
    order: int = 5

    def __call__(self, x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        if not 0 < self.low < self.high < fs / 2:
            raise ValueError(f"band-pass {self.low}-{self.high} Hz needs 0 < low < high < fs/2 = {fs / 2} Hz")
        sos = sps.butter(self.order, [self.low, self.high], btype="band", fs=fs, output="sos")
        padlen = 3 * (2 * len(sos) + 1)  # sosfiltfilt's default edge padding
        if x.shape[-1] <= padlen:
            raise ValueError(f"signal of {x.shape[-1]} samples is too short to band-pass (needs > {padlen})")
        y = sps.sosfiltfilt(sos, x.astype(np.float64), axis=-1)
        return y.astype(np.float32), fs


@dataclass(frozen=True)
class CropPad(_Spec):
    """Fixed length: crop (from the start, or centred) or zero-pad at the end.

    Padding is at the end as the originals do (MERL/MELP ``np.pad(..., (0, n))``); the cache records
    which records were padded or cropped in its QC columns.
    """

    length: int
    where: Literal["start", "center"] = "start"

    def __post_init__(self) -> None:
        if self.where not in ("start", "center"):
            raise ValueError(f"CropPad.where must be 'start' or 'center', got {self.where!r}")
        if self.length <= 0:
            raise ValueError(f"CropPad.length must be positive, got {self.length}")

    def __call__(self, x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        t = x.shape[-1]
        if t > self.length:
            start = 0 if self.where == "start" else (t - self.length) // 2
            return np.ascontiguousarray(x[..., start : start + self.length]), fs
        if t < self.length:
            pad = [(0, 0)] * (x.ndim - 1) + [(0, self.length - t)]
            return np.pad(x, pad, mode="constant"), fs
        return x, fs


@dataclass(frozen=True)
class MinMaxNormalize(_Spec):
    """Global min-max over the whole record (all leads together) to [0, 1], as MERL and MELP do.

    ``(x - min) / (max - min + eps)``; the originals add ``eps = 1e-8``. NaN guard: a constant record
    (max == min) becomes all zeros instead of 0/0.
    """

    eps: float = 0.0

    def __call__(self, x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        lo, hi = float(np.min(x)), float(np.max(x))
        if hi == lo:
            return np.zeros_like(x, dtype=np.float32), fs
        y = (x.astype(np.float64) - lo) / (hi - lo + self.eps)
        return y.astype(np.float32), fs

    def batch(self, x: Any) -> Any:
        """The same formula on a torch batch (B, 12, T), per record, in float32 (e.g. on the GPU)."""
        lo = x.amin(dim=(-2, -1), keepdim=True)
        hi = x.amax(dim=(-2, -1), keepdim=True)
        y = (x - lo) / (hi - lo + self.eps)
        return y.masked_fill(hi == lo, 0.0)


@dataclass(frozen=True)
class ZScore(_Spec):
    """Standardise to zero mean, unit standard deviation, per lead (default) or over the whole record.

    ``(x - mean) / (std + eps)``. NaN guard: a constant lead (record) has std 0 and becomes zeros.
    ``ddof=1`` reproduces ``torch.Tensor.std`` (unbiased), which ESI uses.
    """

    per: Literal["lead", "record"] = "lead"
    eps: float = 0.0
    ddof: int = 0

    def __post_init__(self) -> None:
        if self.per not in ("lead", "record"):
            raise ValueError(f"ZScore.per must be 'lead' or 'record', got {self.per!r}")

    def __call__(self, x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        x64 = x.astype(np.float64)
        axis = -1 if self.per == "lead" else None
        mean = x64.mean(axis=axis, keepdims=True)
        std = x64.std(axis=axis, keepdims=True, ddof=self.ddof)
        denom = std + self.eps
        safe = np.where(denom > 0, denom, 1.0)
        y = np.where(std > 0, (x64 - mean) / safe, 0.0)
        return y.astype(np.float32), fs

    def batch(self, x: Any) -> Any:
        """The same formula on a torch batch (B, 12, T), per lead or per record, in float32 (e.g. on the GPU)."""
        dims = (-1,) if self.per == "lead" else (-2, -1)
        std, mean = _torch().std_mean(x, dim=dims, correction=self.ddof, keepdim=True)
        denom = std + self.eps
        y = (x - mean) / denom.masked_fill(denom <= 0, 1.0)
        return y.masked_fill(std <= 0, 0.0)


@dataclass(frozen=True)
class ScaleToRange(_Spec):
    """Global min-max over the whole record (all leads together) to [``low``, ``high``], as HeartLang's CPSC2018
    and CSN scripts do (``normalize_data(ecg, -3, 3)``: one ``np.min``/``np.max`` over the 12 x T array, no eps).

    ``low + (high - low) * (x - min) / (max - min)``. One min and max for all leads, so relative lead amplitudes
    survive. NaN guard: a constant record becomes the range's midpoint instead of 0/0.
    """

    low: float = -3.0
    high: float = 3.0

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"ScaleToRange needs low < high, got [{self.low}, {self.high}]")

    def __call__(self, x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        lo, hi = float(np.min(x)), float(np.max(x))
        if hi == lo:
            return np.full_like(x, (self.low + self.high) / 2, dtype=np.float32), fs
        y = self.low + (self.high - self.low) * (x.astype(np.float64) - lo) / (hi - lo)
        return y.astype(np.float32), fs


@dataclass(frozen=True)
class TrainStandardScaler(_Spec):
    """Dataset-level standardisation: one mean and one standard deviation over every value (all records, leads and
    samples pooled) of the task's ``fit_split``, applied unchanged to every split.

    This is sklearn's ``StandardScaler`` fitted on the flattened train array, as HeartLang's PTB-XL preprocessing does
    (population std, ``ddof=0``). It is a placeholder: the statistics depend on the task's train split, not on one
    record, so ``ecg_data.cache.resolve_preset`` fits it on that split's cache of the chain before it and puts a
    ``Standardize`` in its place. It must be a preset's last step; calling it unfitted is a bug, not a bad record.
    """

    fit_split: str = "train"

    def __call__(self, x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        raise RuntimeError(
            "TrainStandardScaler is not fitted: resolve the preset on a task first "
            "(ecg_data.cache.resolve_preset / cached_split)"
        )

    def fit(self, batches: Iterable[np.ndarray], fitted_on: str) -> tuple[Standardize, int]:
        """``(Standardize, number of values)`` from the fit split's rows, streamed (Chan's pooled mean/variance in
        float64, so no (N, 12, L) copy is held)."""
        n, mean, m2 = 0, 0.0, 0.0
        for b in batches:
            v = np.asarray(b, dtype=np.float64).ravel()
            if not v.size:
                continue
            mb = float(v.mean())
            m2b = float(np.square(v - mb).sum())
            total = n + v.size
            delta = mb - mean
            mean += delta * v.size / total
            m2 += m2b + delta * delta * n * v.size / total
            n = total
        if n == 0:
            raise ValueError(f"TrainStandardScaler: the {self.fit_split} split has no values to fit on")
        std = math.sqrt(m2 / n)
        if not std > 0 or not math.isfinite(std):
            raise ValueError(f"TrainStandardScaler: the {self.fit_split} split has standard deviation {std}")
        return Standardize(mean=mean, std=std, fitted_on=fitted_on), n


@dataclass(frozen=True)
class Standardize(_Spec):
    """``(x - mean) / std`` with fixed statistics: a fitted ``TrainStandardScaler``.

    ``fitted_on`` identifies what the statistics were fitted on (hash of the train split's cache key and the step),
    so the preset key changes when the train split does, even if the numbers happened not to. Has a ``batch`` form,
    so a cache can hold the signal before it and the loader applies it per batch (``normalize="device"``).
    """

    mean: float
    std: float
    fitted_on: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"Standardize needs a finite mean and a positive std, got {self.mean}, {self.std}")

    def __call__(self, x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        return ((x.astype(np.float64) - self.mean) / self.std).astype(np.float32), fs

    def batch(self, x: Any) -> Any:
        """The same affine map on a torch batch (B, 12, T) in float32 (e.g. on the GPU)."""
        return (x - self.mean) / self.std


def _torch() -> Any:
    import torch

    return torch


#: Transforms that may run per batch on the device instead of at cache-build time (last in a chain).
DEVICE_NORMALIZERS = (MinMaxNormalize, ZScore, Standardize)


@dataclass(frozen=True)
class Compose(_Spec):
    """Apply transforms in order."""

    transforms: tuple[Any, ...] = ()

    def __call__(self, x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        for t in self.transforms:
            x, fs = t(x, fs)
        return x, fs

    def spec(self) -> dict[str, Any]:
        return {"type": "Compose", "transforms": [t.spec() for t in self.transforms]}


def random_lead_mask(x: Any, p: float, generator: Any = None, **kw: Any) -> Any:
    """The project's one lead mask, ``ecg_data.augment.random_lead_mask`` (re-exported here, beside the presets)."""
    from ecg_data.augment import random_lead_mask as mask

    return mask(x, p, generator, **kw)


class RandomLeadMask:
    """``random_lead_mask`` as a callable, for ``ecg_data.loader.finish_batch(augment=...)`` and dataset transforms.

    Never part of a preset or the cache. MELP uses it with p = 0.5 (HKU-MedAI/MELP
    src/melp/datasets/augmentations.py, ``RandomLeadsMask(mask_leads_prob=0.5)`` in pretrain_dataset.py).
    """

    def __init__(self, p: float = 0.5, generator: Any = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomLeadMask.p must be in [0, 1], got {p}")
        self.p = p
        self.generator = generator

    def __call__(self, x: Any) -> Any:
        return random_lead_mask(x, self.p, self.generator)

    def __repr__(self) -> str:
        return f"RandomLeadMask(p={self.p})"


@dataclass
class PreprocInfo:
    """What preprocessing did to one record; becomes the cache's QC columns."""

    fs_raw: float
    n_samples_raw: int
    n_samples_before_croppad: int
    padded: bool
    cropped: bool


@dataclass(frozen=True)
class Preset:
    """A paper's preprocessing: target rate, output length, the transform chain, and where it comes from."""

    name: str
    fs: float
    length: int
    transforms: tuple[Any, ...]
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fs": float(self.fs),
            "length": int(self.length),
            "transforms": [t.spec() for t in self.transforms],
            "extra": self.extra,
            "preprocess_version": PREPROCESS_VERSION,
        }

    def split_normalization(self) -> tuple[Preset, Any | None]:
        """``(stored preset, normaliser)``: the chain without a trailing per-record normalisation, and that step.

        Why: the cache can then hold the signal before normalisation and the loader normalises each batch on
        the device (``normaliser.batch``). When the stored chain equals a registered preset's (melp, merl and
        esi all become ``raw500``), that preset is used, so the three methods share one cache. Presets without
        a trailing normalisation (heartlang, raw500, raw100) return ``(self, None)``.
        """
        if not self.transforms or not isinstance(self.transforms[-1], DEVICE_NORMALIZERS):
            return self, None
        return self.without_last(), self.transforms[-1]

    def without_last(self) -> Preset:
        """The chain without its last step: the registered preset with that chain when there is one (so caches are
        shared: melp, merl and esi -> ``raw500``; heartlang-ptbxl -> ``raw100``), else ``<name>-prenorm``."""
        stored = Preset(f"{self.name}-prenorm", self.fs, self.length, self.transforms[:-1],
                        source=f"{self.name} without its last step (normalised per batch on the device)")  # fmt: skip
        for p in (PRESETS.get(n) for n in PRESETS.names()):
            if (p.fs, p.length, p.transforms, p.extra) == (stored.fs, stored.length, stored.transforms, self.extra):
                return p
        return stored

    def fit_step(self) -> TrainStandardScaler | None:
        """The preset's train-fitted step (its last), or None. Why last only: the chain before it must be a preset
        of its own (same rate and length) whose cache of the train split the statistics are computed on."""
        where = [i for i, t in enumerate(self.transforms) if isinstance(t, TrainStandardScaler)]
        if not where:
            return None
        if where != [len(self.transforms) - 1]:
            raise ValueError(f"preset {self.name}: TrainStandardScaler must be the last step (and only once)")
        return self.transforms[-1]

    def with_fitted(self, step: Standardize) -> Preset:
        """This preset with its ``TrainStandardScaler`` replaced by the fitted ``step`` (same name, new key)."""
        if self.fit_step() is None:
            raise ValueError(f"preset {self.name} has no TrainStandardScaler to fit")
        return replace(self, transforms=(*self.transforms[:-1], step))

    def key(self) -> str:
        """Stable hash of every parameter (and the implementation version): the cache key's preset part."""
        return stable_hash(self.spec())

    def apply(self, record: Record) -> np.ndarray:
        """(12, length) float32 at ``fs``; raises RecordError naming the source on failure."""
        return self.apply_with_info(record)[0]

    def apply_with_info(self, record: Record) -> tuple[np.ndarray, PreprocInfo]:
        source = record.meta.get("path", f"record {record.record_id}")
        x = np.asarray(record.signal, dtype=np.float32)
        fs = float(record.fs)
        if not np.isfinite(x).all():
            raise RecordError(source, "NaN/Inf samples in signal")
        before_croppad = x.shape[-1]
        try:
            for t in self.transforms:
                if isinstance(t, CropPad):
                    before_croppad = x.shape[-1]
                x, fs = t(x, fs)
        except ValueError as e:
            raise RecordError(source, f"preprocessing ({self.name}) failed: {e}") from e
        if x.shape != (len(LEADS), self.length) or not math.isclose(fs, self.fs):
            raise RecordError(
                source,
                f"preset {self.name} produced shape {x.shape} at {fs} Hz, expected (12, {self.length}) at {self.fs} Hz",
            )
        if not np.isfinite(x).all():
            raise RecordError(source, f"preprocessing ({self.name}) produced NaN/Inf")
        info = PreprocInfo(
            fs_raw=float(record.fs),
            n_samples_raw=int(record.signal.shape[-1]),
            n_samples_before_croppad=int(before_croppad),
            padded=before_croppad < self.length,
            cropped=before_croppad > self.length,
        )
        return np.ascontiguousarray(x, dtype=np.float32), info


# --- the papers' presets -------------------------------------------------------------------------------

MELP = Preset(
    name="melp",
    fs=500,
    length=5000,
    transforms=(Resample(500), CropPad(5000, "start"), MinMaxNormalize(eps=1e-8)),
    # HKU-MedAI/MELP src/melp/datasets/pretrain_dataset.py and finetune_dataset.py: wfdb.rdsamp at 500 Hz,
    # ecg[:, :5000], (ecg - min) / (max - min + 1e-8) over the whole record (all leads). No filtering
    # (scripts/preprocess/preprocess_mimic_iv_ecg.py's nk2.ecg_clean output is not what the dataset reads).
    source="HKU-MedAI/MELP src/melp/datasets/{pretrain,finetune}_dataset.py",
)

MERL = Preset(
    name="merl",
    fs=500,
    length=5000,
    transforms=(Resample(500), CropPad(5000, "start"), MinMaxNormalize(eps=1e-8)),
    # cheliu-computation/MERL-ICML2024 utils/utils_dataset.py (pretraining, MIMIC-IV-ECG at 500 Hz, 10 s)
    # and finetune/finetune_dataset.py: ecg[:, :5000]; (ecg - min) / (max - min + 1e-8), global.
    source="cheliu-computation/MERL-ICML2024 utils/utils_dataset.py, finetune/finetune_dataset.py",
)

ESI = Preset(
    name="esi",
    fs=500,
    length=5000,
    transforms=(Resample(500), CropPad(5000, "start"), ZScore(per="record", eps=1e-6, ddof=1)),
    # comp-well-org/ESI utils/ecg_loader.py: raw MIMIC-IV-ECG p_signal (500 Hz, 5000 samples);
    # mean/std over dims [0, 1] (the whole record, torch's unbiased std), (x - mean) / (std + 1e-6).
    source="comp-well-org/ESI utils/ecg_loader.py, utils/data/process_mimic.py",
)

HEARTLANG = Preset(
    name="heartlang",
    fs=100,
    length=1000,
    transforms=(Resample(100), Bandpass(0.67, 40.0, order=5), CropPad(1000, "start")),
    # PKUDigitalHealth/HeartLang datasets/dataset_preprocess/MIMIC-IV/mimic_preprocess.py: resample 500 -> 100 Hz,
    # then Butterworth band-pass 0.67-40 Hz, order 5, zero-phase (filtfilt); is_norm=False (no normalisation).
    # Deviations on purpose: polyphase instead of FFT resampling, SOS form instead of (b, a) (same magnitude
    # response, numerically stable).
    source="PKUDigitalHealth/HeartLang datasets/dataset_preprocess/MIMIC-IV/mimic_preprocess.py",
)

# HeartLang's downstream inputs, per dataset (PKUDigitalHealth/HeartLang @a08afd8, datasets/dataset_preprocess/;
# baselines/heartlang/model.py maps datasets to them). Deviations on purpose, as for `heartlang`: polyphase instead of
# FFT resampling (scipy.signal.resample in the originals), SOS instead of (b, a) band-pass.

HEARTLANG_PTBXL = Preset(
    name="heartlang-ptbxl",
    fs=100,
    length=1000,
    transforms=(Resample(100), CropPad(1000, "start"), TrainStandardScaler("train")),
    # PTBXL/ecg_ptbxl_benchmarking/code: the 100 Hz records (utils/utils.py:143-150, filename_lr; reproduce_results.py
    # and scp_experiment.py:24 sampling_frequency=100), no filter; one StandardScaler fitted on every value of the
    # task's train folds (utils.py:315 ``ss.fit(np.vstack(X_train).flatten()[:, np.newaxis])``; train = strat_fold <= 8,
    # scp_experiment.py:83), applied to train, val and test (utils.py:321-329). Deviation: PTB-XL's own records100
    # there, our polyphase 500 -> 100 Hz here. The chain before the scaler is raw100's, so the cache is shared.
    source="PKUDigitalHealth/HeartLang datasets/dataset_preprocess/PTBXL/ecg_ptbxl_benchmarking/code/utils/utils.py"
    ":305-329",
)

HEARTLANG_CPSC2018 = Preset(
    name="heartlang-cpsc2018",
    fs=100,
    length=1000,
    transforms=(Resample(500), CropPad(5000, "start"), ScaleToRange(-3.0, 3.0), Resample(100)),
    # CPSC2018/make_cpsc_dataset.py: first 2500 samples (:83), zero-padded to 5000 (:86-88; the cpsc2018 task's input
    # window already does both), normalize_data(ecg, -3, 3) over the padded 12 x 5000 record (:91, :54-62), then
    # 500 -> 100 Hz (:99). No filter: apply_fir_filter_to_leads (:13-19) is never called.
    source="PKUDigitalHealth/HeartLang datasets/dataset_preprocess/CPSC2018/make_cpsc_dataset.py:83-99",
)

HEARTLANG_CSN = Preset(
    name="heartlang-csn",
    fs=100,
    length=1000,
    transforms=(
        Resample(500),
        CropPad(5000, "start"),
        ScaleToRange(-3.0, 3.0),
        Resample(100),
        Bandpass(0.67, 40.0, order=5),
    ),
    # CSN/make_csn_datasets.py: the 500 Hz record (:82), normalize_data(ecg, -3, 3) over the whole record (:85, :54-62),
    # 500 -> 100 Hz (:93), Butterworth band-pass 0.67-40 Hz, order 5, filtfilt at 100 Hz (:94, :9-20).
    source="PKUDigitalHealth/HeartLang datasets/dataset_preprocess/CSN/make_csn_datasets.py:82-94",
)

RAW500 = Preset(
    name="raw500",
    fs=500,
    length=5000,
    transforms=(Resample(500), CropPad(5000, "start")),
    source="no normalisation: millivolts at 500 Hz, 10 s (for round-trip checks and custom methods)",
)

RAW100 = Preset(
    name="raw100",
    fs=100,
    length=1000,
    transforms=(Resample(100), CropPad(1000, "start")),
    source="no normalisation: millivolts at 100 Hz, 10 s",
)

PRESETS = LazyRegistry(
    "preprocessing preset",
    {
        p.name: p
        for p in (MELP, MERL, ESI, HEARTLANG, HEARTLANG_PTBXL, HEARTLANG_CPSC2018, HEARTLANG_CSN, RAW500, RAW100)
    },
)

#: HeartLang's downstream inputs per dataset, as the original prepares each (PKUDigitalHealth/HeartLang @a08afd8,
#: datasets/dataset_preprocess/); keys are dataset names, so every task of a dataset (the published one, our corrected
#: variant, the synthetic twin) gets it. One table for the trained baseline (baselines/heartlang) and the released
#: weights (ecg_encoders.released); other datasets (G12EC, CODE-15, MIMIC-IV-ECG), for which the original has no
#: script, keep ``heartlang``. Pretraining (MIMIC) is not affected.
HEARTLANG_DOWNSTREAM: dict[str, str] = {
    # PTBXL/ecg_ptbxl_benchmarking/code/utils/utils.py:305-329: one StandardScaler fitted on every value of the
    # task's train folds (:315), applied to all splits; 100 Hz records, no filter (:143-150)
    "ptbxl": "heartlang-ptbxl",
    # CPSC2018/make_cpsc_dataset.py:91: min-max of the (5 s, zero-padded) record to [-3, 3], then 500 -> 100 Hz (:99);
    # no band-pass
    "cpsc2018": "heartlang-cpsc2018",
    # CSN/make_csn_datasets.py:85: min-max to [-3, 3], 500 -> 100 Hz (:93), band-pass 0.67-40 Hz order 5 (:94)
    "csn": "heartlang-csn",
}


def get_preset(name_or_preset: str | Preset) -> Preset:
    """A registered preset by name (or the Preset itself, so callers accept both)."""
    if isinstance(name_or_preset, Preset):
        return name_or_preset
    return PRESETS.get(name_or_preset)


def make_preset(name: str, fs: float, length: int, transforms: Sequence[Any], source: str = "") -> Preset:
    """A custom preset (e.g. from a Hydra config)."""
    return Preset(name=name, fs=fs, length=length, transforms=tuple(transforms), source=source)
