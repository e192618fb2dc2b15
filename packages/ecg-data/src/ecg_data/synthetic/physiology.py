"""Beat timing and wave morphology for each condition, turned into a cardiac dipole.

Why conditions act on the model and not on labels: a classifier should learn what a cardiologist sees
(a long PR, a wide QRS with an RSR' in V1, irregular RR without P waves), so each condition changes the
timing process or the 3-D wave vectors, and the leads show the consequences.

Interval conventions used here (clinical definitions, e.g. Surawicz & Knilans, "Chou's
Electrocardiography in Clinical Practice", 6th ed.): PR = P onset to QRS onset; QRS = QRS onset to end;
QT = QRS onset to T end; heart-rate correction by Fridericia (QT = QTc * RR^(1/3)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .conditions import ConditionSet
from .model import DOWER, FS, N_SAMPLES, Template, Waves, rotation

DEG = np.pi / 180.0


@dataclass
class Patient:
    """Per-patient anatomy and physiology (shared by all records of one patient)."""

    axis_deg: float  # frontal-plane rotation of the whole heart
    rot_y_deg: float
    rot_x_deg: float
    qrs_amp: float
    t_amp: float
    p_amp: float
    width: float  # QRS width factor
    pr: float  # s, P onset -> QRS onset
    qtc: float  # s (Fridericia)
    lead_field: np.ndarray  # (8, 3) perturbed Dower matrix (electrode placement, torso)
    resp_f: float  # Hz
    rsa: float  # relative RR modulation by respiration
    age: int
    sex: int  # 0 male, 1 female (PTB-XL convention)


def sample_patient(rng: np.random.Generator, variability: float = 1.0) -> Patient:
    v = variability
    lf = DOWER * (1.0 + rng.normal(0.0, 0.08 * v, DOWER.shape)) + rng.normal(0.0, 0.05 * v, DOWER.shape)
    return Patient(
        axis_deg=float(np.clip(rng.normal(0.0, 16.0 * v), -35, 35)),
        rot_y_deg=float(rng.normal(0.0, 10.0 * v)),
        rot_x_deg=float(rng.normal(0.0, 8.0 * v)),
        qrs_amp=float(1.3 * np.exp(rng.normal(0.0, 0.22 * v))),
        t_amp=float(np.exp(rng.normal(0.0, 0.25 * v))),
        p_amp=float(np.exp(rng.normal(0.0, 0.2 * v))),
        width=float(np.clip(rng.normal(1.0, 0.06 * v), 0.85, 1.15)),
        pr=float(rng.uniform(0.125, 0.19)),
        qtc=float(np.clip(rng.normal(0.405, 0.015 * v), 0.37, 0.44)),
        lead_field=lf,
        resp_f=float(rng.uniform(0.15, 0.35)),
        rsa=float(rng.uniform(0.01, 0.05) * v),
        age=int(rng.integers(18, 90)),
        sex=int(rng.integers(0, 2)),
    )


@dataclass
class Beat:
    r: float  # fiducial time (R peak; pacing spike for paced beats), s
    kind: str  # N normal, V premature ventricular, A premature atrial, P paced
    rr_prev: float  # preceding RR, s (drives QT adaptation)


@dataclass
class Physiology:
    """The record's templates (already rotated into the patient's heart) and its true intervals."""

    qrs: Template
    t_vec: np.ndarray
    t_width: float
    st_vec: np.ndarray
    p_vec: np.ndarray
    pr: float
    qtc: float
    truth: dict = field(default_factory=dict)


def _unit(v: tuple[float, float, float]) -> np.ndarray:
    a = np.asarray(v, float)
    return a / np.linalg.norm(a)


# ---------------------------------------------------------------------------------------- morphology
def _morphology(cs: ConditionSet, pat: Patient, sev: float, rng: np.random.Generator) -> Physiology:
    c = set(cs.all)
    w = pat.width
    # Normal QRS loop: septal q (rightward, anterior), main R (left, inferior), terminal S (posterior).
    q = [-0.025, 0.007, np.array([-0.12, 0.05, -0.20])]
    r = [0.0, 0.0095, np.array([1.0, 0.65, 0.25])]
    s = [0.023, 0.008, np.array([-0.25, -0.25, 0.55])]
    extra: list[list] = []
    t_vec = np.array([0.32, 0.22, -0.15])
    t_width = 1.0
    st = np.zeros(3)
    pr = pat.pr
    qtc = pat.qtc
    axis = pat.axis_deg
    if c & {"LBBB", "RBBB"}:  # a narrow-QRS patient's bundle branch block must still reach 120 ms
        w = max(w, 0.98)

    if "LAFB" in c:  # left anterior fascicle: initial inferior, main forces superior-left (axis -45..-90)
        q[2] = np.array([-0.05, 0.25, -0.15])
        r[2] = np.array([0.75, -0.85 - 0.3 * sev, 0.25])
        s[2] = np.array([-0.2, -0.35, 0.5])
        w *= 1.05
        axis = float(np.clip(axis, -10.0, 5.0))
    if "LVH" in c:  # more LV mass: larger, more posterior-left forces, slightly longer QRS; strain in 60 %
        k = 1.7 + 0.8 * sev
        r[2] = r[2] * k + np.array([0.1, 0.0, 0.3])
        s[2] = s[2] * (1.2 + 0.5 * sev)
        w *= 1.08
        if rng.random() < 0.6:
            t_vec = -0.5 * t_vec
            st = st - (0.04 + 0.06 * sev) * _unit(tuple(r[2]))
    for terr, qv, loss, stv, tv in (
        ("AMI", (-0.05, 0.0, 1.0), (0.0, 0.0, 0.35), (0.05, 0.0, -1.0), (0.0, 0.0, 1.0)),
        ("IMI", (0.0, -1.0, 0.0), (0.0, -0.5, 0.0), (0.0, 1.0, 0.0), (0.0, -1.0, 0.0)),
        ("LMI", (-1.0, 0.0, 0.0), (-0.35, 0.0, 0.0), (1.0, -0.1, 0.0), (-1.0, 0.0, 0.0)),
    ):
        if terr in c:  # necrosis: initial forces point away from the territory (pathological Q >= 40 ms)
            q = [-0.022, 0.012 + 0.004 * sev, (0.35 + 0.25 * sev) * np.asarray(qv)]
            r[2] = r[2] + np.asarray(loss)
            if cs.acute:  # injury current: ST vector towards the territory
                st = st + (0.1 + 0.25 * sev) * _unit(stv)
            else:  # old infarct: T vector turns away from the territory
                t_vec = t_vec + (0.15 + 0.25 * sev) * np.asarray(tv)
    if "ISC" in c:  # subendocardial ischaemia: ST vector away from the (left, inferior) ventricle
        st = st - (0.06 + 0.18 * sev) * _unit((0.7, 0.6, -0.2))
        t_vec = 0.7 * t_vec
    if "TINV" in c:
        t_vec = -(0.3 + 0.7 * sev) * t_vec
    if "RBBB" in c:  # late, slow right-ventricular activation: terminal rightward-anterior R'
        extra.append([(0.045 + 0.025 * sev) * w, 0.016 * w, (0.8 + 0.4 * sev) * np.array([-0.4, -0.05, -0.6])])
        t_vec = t_vec + np.array([-0.05, 0.0, 0.3])
    if "LBBB" in c:  # right-to-left septal activation, slow LV activation; secondary discordant ST-T
        wl = w * (0.86 + 0.2 * sev)
        q = None
        r = [-0.012 * wl, 0.019 * wl, np.array([0.5, 0.15, 0.5])]
        s = [0.032 * wl, 0.021 * wl, np.array([0.6, 0.05, 0.7])]
        t_vec = -np.array([0.3, 0.1, 0.4]) * 0.9
        st = st - (0.08 + 0.06 * sev) * _unit((0.55, 0.1, 0.6))
    if "LQT" in c:
        qtc = 0.47 + 0.08 * sev + float(rng.normal(0, 0.008))
        t_width = 1.2
    if "1AVB" in c:
        pr = 0.21 + 0.12 * sev + float(rng.uniform(0, 0.01))

    rows = [x for x in (q, r, s) if x is not None]
    if "LBBB" not in c:
        rows = [[x[0] * w, x[1] * w, x[2]] for x in rows]
    rows += extra
    qrs = Template(
        np.array([x[0] for x in rows]), np.array([x[1] for x in rows]), np.array([x[2] for x in rows], float)
    )
    amp = pat.qrs_amp
    if "LVOLT" in c:
        amp *= 0.32 - 0.12 * sev
    rot = rotation(pat.rot_x_deg * DEG, pat.rot_y_deg * DEG, axis * DEG)
    qrs = Template(qrs.offsets, qrs.sigmas, qrs.vecs * amp).rotated(rot)
    t_scale = pat.t_amp * (0.6 if "LVOLT" in c else 1.0)
    p_vec = rot @ np.array([0.45, 0.75, -0.15]) * 0.16 * pat.p_amp * (0.7 if "LVOLT" in c else 1.0)
    phys = Physiology(qrs, rot @ t_vec * t_scale, t_width, rot @ st * pat.qrs_amp, p_vec, pr, qtc)
    phys.truth = {
        "pr_s": pr if cs.rhythm in ("SR", "SB", "STACH") else None,
        "qrs_s": qrs.end - qrs.onset,
        "qtc_s": qtc,
        "axis_rot_deg": axis,
    }
    return phys


def t_template(vec: np.ndarray, width: float) -> tuple[Template, float]:
    """Asymmetric T wave (slow rise, faster fall) from two Gaussians; returns it and its end offset."""
    t = Template(np.array([-0.035, 0.02]) * width, np.array([0.05, 0.034]) * width, np.array([0.55 * vec, 0.6 * vec]))
    return t, (0.02 + 2.6 * 0.034) * width


def pvc_template(rng: np.random.Generator, scale: float) -> tuple[Template, np.ndarray]:
    """Ectopic ventricular beat: wide bizarre QRS of random origin, discordant T."""
    d = rng.normal(size=3)
    d[0] = abs(d[0]) * np.sign(rng.random() - 0.3)
    d /= np.linalg.norm(d)
    d2 = d + rng.normal(0, 0.3, 3)
    a = rng.uniform(1.3, 2.2) * scale
    q = Template(np.array([0.0, 0.045]), np.array([0.024, 0.026]), np.array([d * a, d2 * a * 0.7]))
    return q, -0.3 * a * d


def paced_template(rng: np.random.Generator, scale: float) -> tuple[Template, np.ndarray]:
    """Right-ventricular apical pacing: spike, then LBBB-like wide QRS with a superior axis."""
    spike = rng.normal(size=3)
    spike = spike / np.linalg.norm(spike) * rng.uniform(0.6, 2.0)
    q = Template(
        np.array([0.0, 0.062, 0.11]),
        np.array([0.0012, 0.024, 0.026]),
        np.array([spike, np.array([0.45, -0.6, 0.55]) * scale, np.array([0.35, -0.45, 0.6]) * scale]),
    )
    return q, -np.array([0.3, -0.35, 0.4]) * 0.7 * scale


# -------------------------------------------------------------------------------------------- timing
def _rate(cs: ConditionSet, sev: float, rng: np.random.Generator) -> float:
    return {
        "SR": lambda: rng.uniform(60.5, 99.5),
        "SB": lambda: 59.0 - 17.0 * sev - rng.uniform(0, 2),
        "STACH": lambda: 102.0 + 45.0 * sev + rng.uniform(0, 3),
        "AF": lambda: rng.uniform(60.0, 150.0),
        "PACE": lambda: rng.uniform(60.0, 80.0),
        "AFL": lambda: 0.0,
    }[cs.rhythm]()


def sinus_beats(hr: float, pat: Patient, dur: float, rng: np.random.Generator, rsa_scale: float = 1.0) -> list[Beat]:
    rr0 = 60.0 / hr
    phase = rng.uniform(0, 2 * np.pi)
    t = -rng.uniform(0.2, rr0 + 0.2)
    beats: list[Beat] = []
    rr = rr0
    while t < dur + 0.6:
        beats.append(Beat(t, "N", rr))
        rr = rr0 * (1.0 + pat.rsa * rsa_scale * np.sin(2 * np.pi * pat.resp_f * t + phase)) + rng.normal(0, 0.006 * rr0)
        t += rr
    return beats


def af_beats(hr: float, cv: float, dur: float, rng: np.random.Generator) -> list[Beat]:
    rr0 = 60.0 / hr
    n = int((dur + 2) / rr0 * 1.6) + 4
    rrs = np.maximum(rr0 * np.exp(rng.normal(-0.5 * cv * cv, cv, n)), 0.28)
    times = -rng.uniform(0.2, rr0 + 0.2) + np.concatenate([[0.0], np.cumsum(rrs[:-1])])
    return [Beat(float(t), "N", float(rr)) for t, rr in zip(times, np.concatenate([[rr0], rrs[:-1]])) if t < dur + 0.6]


def add_ectopics(beats: list[Beat], kind: str, count: int, dur: float, rng: np.random.Generator) -> None:
    """Premature beats: PVC keeps the sinus schedule (compensatory pause); PAC resets the sinus node."""
    cand = [
        i
        for i in range(1, len(beats) - 1)
        if 0.8 < beats[i].r < dur - 0.8
        and beats[i].kind == "N"
        and beats[i - 1].kind == "N"
        and beats[i + 1].kind == "N"
    ]
    if not cand:
        return
    chosen: list[int] = []
    for i in rng.permutation(cand):  # never adjacent: no couplets
        if len(chosen) < count and all(abs(int(i) - j) > 1 for j in chosen):
            chosen.append(int(i))
    chosen.sort()
    for i in chosen[::-1] if kind == "A" else chosen:
        rr = beats[i].r - beats[i - 1].r
        if kind == "V":
            c = rng.uniform(0.45, 0.65)
            beats[i] = Beat(beats[i - 1].r + c * rr, "V", c * rr)
        else:
            c = rng.uniform(0.6, 0.78)
            new = beats[i - 1].r + c * rr
            delta = new - beats[i].r
            beats[i] = Beat(new, "A", c * rr)
            for j in range(i + 1, len(beats)):
                beats[j].r += delta
    while beats and beats[-1].r > dur + 0.6:
        beats.pop()


# ---------------------------------------------------------------------------------------------- build
def build_dipole(
    cs: ConditionSet, pat: Patient, sev: float, rng: np.random.Generator, n: int = N_SAMPLES, fs: float = FS
) -> tuple[np.ndarray, dict]:
    """The record's dipole (3, n) and a dict of what the generator did (for docs and debugging only)."""
    dur = n / fs
    phys = _morphology(cs, pat, sev, rng)
    atrial = np.zeros((3, n))
    tt = np.arange(n) / fs
    has_p = cs.rhythm in ("SR", "SB", "STACH")
    hr = _rate(cs, sev, rng)
    info: dict = {}
    if cs.rhythm == "AF":
        cv = 0.10 + 0.14 * sev + rng.uniform(0, 0.04)
        beats = af_beats(hr, cv, dur, rng)
        amp = 0.02 + 0.07 * sev
        f = np.zeros(n)
        for _ in range(3):  # fibrillatory waves: a few 4-9 Hz components with wandering phase
            fr = rng.uniform(4.0, 9.0)
            ph = 2 * np.pi * fr * tt + rng.uniform(0, 2 * np.pi) + 1.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * tt)
            f += rng.uniform(0.4, 1.0) * np.sin(ph)
        atrial += np.outer(_unit((-0.3, 0.5, -0.8)) * amp * pat.p_amp / 1.5, f)
        info["rr_cv"] = cv
    elif cs.rhythm == "AFL":
        a_rate = rng.uniform(250.0, 320.0)
        k = int(rng.choice([2, 3, 4], p=[0.55, 0.15, 0.3]))
        tf = 60.0 / a_rate
        t0 = -rng.uniform(0, tf)
        ph = np.mod((tt - t0) / tf, 1.0)
        saw = np.where(ph < 0.7, -ph / 0.7, -(1.0 - ph) / 0.3) + 0.5
        amp = rng.uniform(0.12, 0.25) * pat.p_amp
        atrial += np.outer(_unit((0.05, 1.0, -0.3)) * amp, saw)
        av = rng.uniform(0.18, 0.26)
        onset = -phys.qrs.onset
        first = t0 - k * tf * 2
        m = int((dur + 3) / (k * tf)) + 2
        beats = [
            Beat(first + j * k * tf + av + onset, "N", k * tf)
            for j in range(m)
            if first + j * k * tf + av + onset < dur + 0.6
        ]
        hr = a_rate / k
        info.update(atrial_rate=a_rate, conduction=f"{k}:1")
    elif cs.rhythm == "PACE":
        beats = sinus_beats(hr, pat, dur, rng, rsa_scale=0.0)
        for b in beats:
            b.kind = "P"
    else:
        beats = sinus_beats(hr, pat, dur, rng)
    if "PAC" in cs.extras:
        add_ectopics(beats, "A", 1 + int(rng.random() < 0.4 * (1 + sev)), dur, rng)
    if "PVC" in cs.extras:
        add_ectopics(beats, "V", 1 + int(rng.random() < 0.4 * (1 + sev)) + int(rng.random() < 0.2), dur, rng)

    waves = Waves.empty()
    t_norm, t_end = t_template(phys.t_vec, phys.t_width)
    st_on = not np.allclose(phys.st_vec, 0)
    pvc_shape = pvc_template(rng, pat.qrs_amp) if "PVC" in cs.extras else None
    paced = paced_template(rng, pat.qrs_amp) if cs.rhythm == "PACE" else None
    pac_vec = rotation(0, 0, rng.uniform(-2.5, -1.2)) @ phys.p_vec  # ectopic atrial focus: other P axis
    resp_ph = rng.uniform(0, 2 * np.pi)
    qrs_on, qrs_end = phys.qrs.onset, phys.qrs.end
    for b in beats:
        mod = 1.0 + 0.06 * np.sin(2 * np.pi * pat.resp_f * b.r + resp_ph)  # respiratory amplitude modulation
        qt = phys.qtc * max(b.rr_prev, 0.3) ** (1.0 / 3.0)
        if b.kind in ("N", "A"):
            if has_p:
                pc = b.r + qrs_on - phys.pr + 0.056
                pv = phys.p_vec if b.kind == "N" else pac_vec
                waves.add(pc - 0.012, 0.017, 0.55 * pv)
                waves.add(pc + 0.014, 0.017, 0.45 * (pv + np.array([0, 0, 0.5]) * np.linalg.norm(pv)))
            waves.add_template(b.r, phys.qrs, mod)
            if st_on:
                j = b.r + qrs_end
                for off in (0.03, 0.09, 0.15):
                    waves.add(j + off * min(1.0, qt / 0.4), 0.035, phys.st_vec)
            waves.add_template(b.r + qrs_on + qt - t_end, t_norm, mod)
        elif b.kind == "V":
            q, tv = pvc_shape
            waves.add_template(b.r, q, mod)
            tv_t, tv_end = t_template(tv, 1.25)
            waves.add_template(b.r + q.onset + qt + 0.06 - tv_end, tv_t)
        else:  # paced
            q, tv = paced
            waves.add_template(b.r, q)
            tv_t, tv_end = t_template(tv, 1.2)
            waves.add_template(b.r + qt + 0.04 - tv_end, tv_t)
    dip = waves.render(n, fs) + atrial
    rr = np.diff([b.r for b in beats])
    info.update(
        hr=float(60.0 / np.mean(rr)) if len(rr) else hr,
        beats="".join(b.kind for b in beats if 0 <= b.r < dur),
        r_times=[round(float(b.r), 4) for b in beats if 0 <= b.r < dur],
        pr_s=phys.truth["pr_s"],
        qrs_s=phys.truth["qrs_s"],
        qtc_s=phys.qtc,
        qt_s=float(phys.qtc * (60.0 / hr) ** (1 / 3)) if hr > 0 else None,
        severity=sev,
    )
    return dip, info
