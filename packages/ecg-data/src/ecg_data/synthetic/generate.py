"""``generate_records``: the synthetic corpus as a stream of labelled 12-lead records with reports.

Why per-record seeds: record ``i`` of seed ``s`` depends only on ``(s, i)`` (and its patient on
``(s, patient)``), so a corpus is identical however it is generated, and any record can be regenerated.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .conditions import PROFILES, ConditionSet, Profile, sample_conditions
from .model import FS, N_SAMPLES, assemble_12, project
from .noise import NoiseConfig, electrode_noise
from .physiology import Patient, build_dipole, sample_patient
from .reports import join_statements, machine_statements, ptbxl_report


@dataclass(frozen=True)
class Difficulty:
    """Knobs that make the corpus harder or easier.

    noise: recording-noise amplitudes (``NoiseConfig.scale`` multiplies them all).
    variability: spread of patient anatomy and physiology (axis, amplitudes, intervals, lead field).
    severity: range of condition severities; 0 is borderline (PR 210 ms, QRS 125 ms, ST 0.06 mV),
        1 is marked. Low severities make labels hard to see, as in real data.
    report_omit / report_wrong: report noise (see ``reports``).
    """

    noise: NoiseConfig = field(default_factory=NoiseConfig)
    variability: float = 1.0
    severity: tuple[float, float] = (0.0, 1.0)
    report_omit: float = 0.10
    report_wrong: float = 0.05


DIFFICULTIES: dict[str, Difficulty] = {
    "clean": Difficulty(
        NoiseConfig(scale=0.0), variability=0.5, severity=(0.5, 1.0), report_omit=0.0, report_wrong=0.0
    ),
    "easy": Difficulty(NoiseConfig(scale=0.5), variability=0.7, severity=(0.3, 1.0)),
    "default": Difficulty(),
    "hard": Difficulty(NoiseConfig(scale=2.0), variability=1.3, severity=(0.0, 0.7), report_omit=0.2, report_wrong=0.1),
}


def get_difficulty(d: str | Difficulty) -> Difficulty:
    if isinstance(d, Difficulty):
        return d
    if d not in DIFFICULTIES:
        raise ValueError(f"unknown difficulty {d!r}; choose from {sorted(DIFFICULTIES)}")
    return DIFFICULTIES[d]


@dataclass
class SynthRecord:
    """One synthetic record: signal (12, 5000) float32 mV at 500 Hz in ``ecg_data.record.LEADS`` order."""

    signal: np.ndarray
    scp_codes: dict[str, float]
    cpsc_classes: list[str]
    snomed_codes: list[str]
    report: str
    report_ptbxl: str
    patient_id: str
    meta: dict[str, Any]
    fs: float = FS

    @property
    def conditions(self) -> list[str]:
        return list(self.meta["conditions"])


def make_record(
    cs: ConditionSet,
    patient: Patient,
    rng: np.random.Generator,
    diff: Difficulty,
    patient_id: str = "0",
    n: int = N_SAMPLES,
    fs: float = FS,
) -> SynthRecord:
    """Render one record for given conditions and patient."""
    sev = float(rng.uniform(*diff.severity))
    dip, info = build_dipole(cs, patient, sev, rng, n, fs)
    leads = project(dip, patient.lead_field)
    noise, ninfo = electrode_noise(rng, diff.noise, patient.resp_f, n, fs)
    signal = assemble_12(leads + noise)
    stmts, rinfo = machine_statements(cs, rng, diff.report_omit, diff.report_wrong)
    meta = {
        "conditions": cs.all,
        "acute": cs.acute,
        "age": patient.age,
        "sex": patient.sex,
        "statements": stmts,
        "report_omitted": rinfo["omitted"],
        "report_spurious": rinfo["spurious"],
        "noise": ninfo,
        **info,
    }
    return SynthRecord(
        signal=signal,
        scp_codes=cs.scp_codes(rng),
        cpsc_classes=cs.cpsc_classes(),
        snomed_codes=cs.snomed_codes(),
        report=join_statements(stmts),
        report_ptbxl=ptbxl_report(cs),
        patient_id=patient_id,
        meta=meta,
        fs=fs,
    )


def generate_records(
    n: int,
    seed: int,
    difficulty: str | Difficulty = "default",
    *,
    profile: str | Profile = "ptbxl",
    conditions: ConditionSet | None = None,
    records_per_patient: float = 1.3,
    start: int = 0,
) -> Iterator[SynthRecord]:
    """Yield ``n`` records (``start`` .. ``start + n - 1``) of the corpus with this seed.

    profile: condition prevalences (``"ptbxl"``, ``"mimic"``, ``"cpsc"`` or a ``Profile``).
    conditions: force these conditions on every record (tests, figures).
    records_per_patient: mean records per patient (patients own anatomy, rate and intervals).
    """
    diff = get_difficulty(difficulty)
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    # Patient of each record: a deterministic sequence of patients with 1 + Geometric records each.
    prng = np.random.default_rng([seed, 7])
    owner: list[int] = []
    k = 0
    while len(owner) < start + n:
        owner.extend([k] * int(prng.geometric(1.0 / max(records_per_patient, 1.0))))
        k += 1
    cache: dict[int, Patient] = {}
    for i in range(start, start + n):
        pk = owner[i]
        if pk not in cache:
            cache.clear()
            cache[pk] = sample_patient(np.random.default_rng([seed, 1, pk]), diff.variability)
        rng = np.random.default_rng([seed, 2, i])
        cs = conditions if conditions is not None else sample_conditions(rng, prof)
        rec = make_record(cs, cache[pk], rng, diff, patient_id=str(pk + 1))
        rec.meta["index"] = i
        yield rec


def with_difficulty(base: str | Difficulty, **changes: Any) -> Difficulty:
    """A named difficulty with some knobs changed (``noise_scale=`` sets the noise multiplier)."""
    d = get_difficulty(base)
    if "noise_scale" in changes:
        changes["noise"] = d.noise.with_scale(changes.pop("noise_scale"))
    return replace(d, **changes)


#: Records per task handed to a worker process by ``generate_records_parallel``.
PARALLEL_CHUNK = 256


def _chunk(args: tuple[int, int, int, Any, Any, float]) -> list[SynthRecord]:
    start, k, seed, difficulty, profile, rpp = args
    return list(generate_records(k, seed, difficulty, profile=profile, records_per_patient=rpp, start=start))


def generate_records_parallel(
    n: int,
    seed: int,
    difficulty: str | Difficulty = "default",
    *,
    profile: str | Profile = "ptbxl",
    records_per_patient: float = 1.3,
    workers: int | None = None,
) -> Iterator[SynthRecord]:
    """``generate_records(n, seed, ...)``, the same records in the same order, computed by ``workers`` processes.

    Why: generation costs ~15 ms of CPU per 10-s record (noise and dipole synthesis), so an 800k-record
    corpus is hours in one process. Every record is a pure function of (seed, index) and its patient of
    (seed, patient), so chunks of indices are independent; the caller (a writer) still consumes them in
    order. ``workers`` defaults to the CPU count; 1 (or a small ``n``) runs in this process."""
    import multiprocessing as mp

    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers <= 1 or n <= PARALLEL_CHUNK:
        yield from generate_records(n, seed, difficulty, profile=profile, records_per_patient=records_per_patient)
        return
    tasks = [(s, min(PARALLEL_CHUNK, n - s), seed, difficulty, profile, records_per_patient)
             for s in range(0, n, PARALLEL_CHUNK)]  # fmt: skip
    with mp.get_context("spawn").Pool(workers) as pool:
        for chunk in pool.imap(_chunk, tasks):  # in order; at most a few chunks ahead of the writer
            yield from chunk
