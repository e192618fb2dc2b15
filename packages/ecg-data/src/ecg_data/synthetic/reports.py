"""Machine-style reports (MIMIC-IV-ECG manner) and terse PTB-XL-style reports.

Why noisy templates: MIMIC-IV-ECG reports are the output of the acquisition cart's interpretation
program (statements such as "Sinus rhythm", "Left bundle branch block", "Abnormal ECG", one per
``report_k`` column); they use synonyms, vary in order and are sometimes wrong or incomplete. A model
that aligns ECGs with text should face that, so each true finding is omitted with probability ``omit``
and a record receives, with probability ``wrong``, one statement of a finding it does not have.
"""

from __future__ import annotations

import numpy as np

from .conditions import ALL_CONDITIONS, ConditionSet

# Statement variants per condition, in the wording of machine interpretation programs.
STATEMENTS: dict[str, tuple[str, ...]] = {
    "SR": ("Sinus rhythm", "Normal sinus rhythm", "Sinus rhythm within normal limits"),
    "SB": ("Sinus bradycardia", "Marked sinus bradycardia", "Sinus bradycardia, rate below 60"),
    "STACH": ("Sinus tachycardia", "Sinus tachycardia, rate above 100"),
    "AF": (
        "Atrial fibrillation",
        "Atrial fibrillation with rapid ventricular response",
        "Atrial fibrillation with controlled ventricular response",
        "Probable atrial fibrillation",
    ),
    "AFL": ("Atrial flutter", "Atrial flutter with variable A-V block", "Atrial flutter with 2:1 A-V conduction"),
    "PACE": ("Ventricular paced rhythm", "Electronic ventricular pacemaker", "Demand pacing, ventricular paced rhythm"),
    "1AVB": ("1st degree A-V block", "First degree AV block", "Prolonged PR interval, first degree AV block"),
    "LBBB": ("Left bundle branch block", "Complete left bundle branch block", "LBBB"),
    "RBBB": ("Right bundle branch block", "Complete right bundle branch block", "RBBB"),
    "LAFB": (
        "Left anterior fascicular block",
        "Left axis deviation, left anterior fascicular block",
        "Left anterior hemiblock",
    ),
    "LVH": (
        "Left ventricular hypertrophy",
        "LVH with secondary repolarization abnormality",
        "Voltage criteria for left ventricular hypertrophy",
    ),
    "AMI": (
        "Anterior infarct - age undetermined",
        "Anteroseptal infarct, possibly old",
        "Anterior myocardial infarction",
    ),
    "IMI": ("Inferior infarct - age undetermined", "Inferior myocardial infarction", "Possible inferior infarct, old"),
    "LMI": ("Lateral infarct - age undetermined", "Lateral myocardial infarction", "High lateral infarct, old"),
    "ISC": (
        "ST depression, consider ischemia",
        "ST-T changes consistent with myocardial ischemia",
        "Inferolateral ST depression",
    ),
    "TINV": ("T wave inversion", "Nonspecific T wave abnormality", "Lateral T wave inversion"),
    "PVC": ("Premature ventricular complexes", "with occasional PVCs", "Ventricular premature complex(es)"),
    "PAC": ("Premature atrial complexes", "with premature atrial contractions", "Atrial premature complex(es)"),
    "LVOLT": ("Low QRS voltages", "Low voltage QRS", "Low QRS voltage in limb and precordial leads"),
    "LQT": ("Prolonged QT interval", "Long QT interval", "QT prolongation"),
}
ACUTE: dict[str, tuple[str, ...]] = {
    "AMI": ("Anterior infarct, acute", "Acute anterior ST elevation myocardial infarction", "Anterior STEMI"),
    "IMI": ("Inferior infarct, acute", "Acute inferior ST elevation myocardial infarction", "Inferior STEMI"),
    "LMI": ("Lateral infarct, acute", "Acute lateral ST elevation myocardial infarction", "Lateral STEMI"),
}
ACUTE_BANNER = "** ** ACUTE MI / STEMI ** **"
SUMMARY = {"normal": "Normal ECG", "abnormal": "Abnormal ECG", "borderline": "Borderline ECG"}

# Terse English statements in the manner of PTB-XL's (mostly German) cardiologist reports.
PTBXL_STATEMENTS: dict[str, str] = {
    "SR": "sinus rhythm",
    "SB": "sinus bradycardia",
    "STACH": "sinus tachycardia",
    "AF": "atrial fibrillation",
    "AFL": "atrial flutter",
    "PACE": "pacemaker ecg",
    "1AVB": "av block i",
    "LBBB": "left bundle branch block",
    "RBBB": "right bundle branch block",
    "LAFB": "left anterior hemiblock",
    "LVH": "left ventricular hypertrophy",
    "AMI": "anterior myocardial infarction",
    "IMI": "inferior myocardial infarction",
    "LMI": "lateral myocardial infarction",
    "ISC": "st depression, ischemic",
    "TINV": "t inversion",
    "PVC": "ventricular extrasystole(s)",
    "PAC": "supraventricular extrasystole(s)",
    "LVOLT": "peripheral low voltage",
    "LQT": "long qt",
}


def machine_statements(cs: ConditionSet, rng: np.random.Generator, omit: float, wrong: float) -> tuple[list[str], dict]:
    """The statements of one report (one per ``report_k`` column) and what was omitted / made up."""
    findings = list(cs.all)
    kept: list[str] = []
    omitted: list[str] = []
    for c in findings:
        (omitted if rng.random() < omit else kept).append(c)
    spurious: list[str] = []
    if rng.random() < wrong:
        absent = [c for c in ALL_CONDITIONS if c not in findings]
        spurious.append(str(rng.choice(absent)))

    def text(c: str) -> str:
        pool = ACUTE[c] if cs.acute and c in ACUTE else STATEMENTS[c]
        return str(pool[rng.integers(len(pool))])

    rhythm_kept = [c for c in kept if c == cs.rhythm]
    others = [c for c in kept if c != cs.rhythm] + spurious
    order = list(rng.permutation(len(others)))
    body = [text(others[i]) for i in order]
    stmts: list[str] = []
    if rhythm_kept:
        r = text(cs.rhythm)
        ect = [i for i, s in enumerate(body) if s.startswith("with ")]
        if ect and rng.random() < 0.5:  # "Sinus rhythm with occasional PVCs" as one statement
            r = f"{r} {body.pop(ect[0])}"
        if rng.random() < 0.85:
            stmts.append(r)
            stmts.extend(body)
        else:
            stmts.extend(body)
            stmts.insert(int(rng.integers(0, len(stmts) + 1)), r)
    else:
        stmts.extend(body)
    if cs.acute and rng.random() < 0.5:
        stmts.append(ACUTE_BANNER)
    if not stmts or rng.random() < 0.92:  # never an empty report: real carts always print a summary
        stmts.append(SUMMARY["normal" if cs.is_normal else ("borderline" if cs.extras == ["LVOLT"] else "abnormal")])
    return stmts, {"omitted": omitted, "spurious": spurious}


def join_statements(stmts: list[str]) -> str:
    """One report string as MIMIC-IV-ECG users build it: ``***``/``---`` markers stripped, each statement
    ending in a period, joined by a space (e.g. "Sinus rhythm. Left bundle branch block. Abnormal ECG.")."""
    out = []
    for s in stmts:
        s = " ".join(s.strip(" *-").split())
        if s:
            out.append(s if s[-1] in ".!?" else s + ".")
    return " ".join(out)


def ptbxl_report(cs: ConditionSet) -> str:
    parts = [PTBXL_STATEMENTS[c] for c in cs.all]
    if cs.acute:
        parts = [p.replace("myocardial infarction", "myocardial infarction, acute") for p in parts]
    if cs.is_normal:
        parts.append("normal ecg")
    return ", ".join(parts)
