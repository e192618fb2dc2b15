"""Conditions of the synthetic corpus, which may co-occur, and the labels each one carries.

Why one table: the generator, the labels (PTB-XL SCP codes, CPSC2018 classes, SNOMED-CT codes) and the
report templates must agree on what a condition is; keeping the label mapping here means a change in
one place reaches every writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Base rhythms; exactly one per record.
RHYTHMS: tuple[str, ...] = ("SR", "SB", "STACH", "AF", "AFL", "PACE")
SINUS: frozenset[str] = frozenset({"SR", "SB", "STACH"})

#: Additional conditions (any number, subject to the exclusions below).
EXTRAS: tuple[str, ...] = (
    "1AVB",
    "LBBB",
    "RBBB",
    "LAFB",
    "LVH",
    "AMI",
    "IMI",
    "LMI",
    "ISC",
    "TINV",
    "PVC",
    "PAC",
    "LVOLT",
    "LQT",
)
MI_TERRITORIES: tuple[str, ...] = ("AMI", "IMI", "LMI")
ALL_CONDITIONS: tuple[str, ...] = RHYTHMS + EXTRAS

# Pairs that cannot co-occur (physiology or masking): e.g. AF has no PR interval, so no 1st-degree block;
# an LBBB masks infarct Q waves and carries its own ST-T changes; a paced ventricle has no bundle branch block.
_EXCLUDE: dict[str, set[str]] = {
    "1AVB": {"AF", "AFL", "PACE"},
    "PAC": {"AF", "AFL", "PACE"},
    "LBBB": {"RBBB", "LAFB", "LVH", "AMI", "IMI", "LMI", "ISC", "TINV", "PACE"},
    "RBBB": {"LBBB", "PACE"},
    "LAFB": {"LBBB", "PACE"},
    "LVH": {"LBBB", "LVOLT", "PACE"},
    "AMI": {"LBBB", "PACE"},
    "IMI": {"LBBB", "PACE", "LMI"},
    "LMI": {"LBBB", "PACE", "IMI"},
    "ISC": {"LBBB", "PACE"},
    "TINV": {"LBBB", "PACE"},
    "LQT": {"PACE", "LBBB"},
    "LVOLT": {"LVH"},
    "PVC": set(),
}


def compatible(cond: str, present: set[str]) -> bool:
    """True when ``cond`` may be added to a record that already has ``present``."""
    if cond in present:
        return False
    bad = _EXCLUDE.get(cond, set())
    if bad & present:
        return False
    # symmetric check: an already-present condition may exclude the new one
    return not any(cond in _EXCLUDE.get(p, set()) for p in present)


# --------------------------------------------------------------------------------------------- labels
#: PTB-XL SCP code for each condition. Rhythm statements, diagnostic statements and form statements follow
#: PTB-XL 1.0.3 ``scp_statements.csv`` semantics (Wagner et al. 2020, Table 2 / the statement table).
SCP_RHYTHM = {"SR": "SR", "SB": "SBRAD", "STACH": "STACH", "AF": "AFIB", "AFL": "AFLT", "PACE": "PACE"}
SCP_DIAGNOSTIC = {
    "1AVB": "1AVB",
    "LBBB": "CLBBB",
    "RBBB": "CRBBB",
    "LAFB": "LAFB",
    "LVH": "LVH",
    "AMI": "AMI",
    "IMI": "IMI",
    "LMI": "LMI",
    "ISC": "ISC_",
    "TINV": "NDT",
    "LQT": "LNGQT",
}
SCP_FORM = {"PVC": "PVC", "PAC": "PAC", "LVOLT": "LVOLT", "ISC": "STD_", "TINV": "INVT"}
SCP_ACUTE_FORM = "STE_"  # ST elevation of an acute infarct

#: (code, description, diagnostic, form, rhythm, diagnostic_class, diagnostic_subclass, category)
#: The flags / classes are those of PTB-XL 1.0.3 so the PTB-XL task definitions apply unchanged.
SCP_STATEMENTS: tuple[tuple[str, str, float | None, float | None, float | None, str, str, str], ...] = (
    ("NORM", "normal ECG", 1.0, None, None, "NORM", "NORM", "Normal/abnormal"),
    (
        "1AVB",
        "first degree AV block",
        1.0,
        None,
        None,
        "CD",
        "_AVB",
        "Sinus node dysfunction, atrial and AV-conduction defects",
    ),
    (
        "CLBBB",
        "complete left bundle branch block",
        1.0,
        None,
        None,
        "CD",
        "CLBBB",
        "Intraventricular and intra-atrial Conduction disturbances",
    ),
    (
        "CRBBB",
        "complete right bundle branch block",
        1.0,
        None,
        None,
        "CD",
        "CRBBB",
        "Intraventricular and intra-atrial Conduction disturbances",
    ),
    (
        "LAFB",
        "left anterior fascicular block",
        1.0,
        None,
        None,
        "CD",
        "LAFB/LPFB",
        "Intraventricular and intra-atrial Conduction disturbances",
    ),
    ("LVH", "left ventricular hypertrophy", 1.0, None, None, "HYP", "LVH", "Ventricular Hypertrophy"),
    ("AMI", "anterior myocardial infarction", 1.0, None, None, "MI", "AMI", "Myocardial Infarction"),
    ("IMI", "inferior myocardial infarction", 1.0, None, None, "MI", "IMI", "Myocardial Infarction"),
    ("LMI", "lateral myocardial infarction", 1.0, None, None, "MI", "LMI", "Myocardial Infarction"),
    (
        "ISC_",
        "non-specific ischemic",
        1.0,
        None,
        None,
        "STTC",
        "ISC_",
        "Basic roots for coding ST-T changes and abnormalities",
    ),
    ("NDT", "non-diagnostic T abnormalities", 1.0, 1.0, None, "STTC", "STTC", "other ST-T descriptive statements"),
    ("LNGQT", "long QT-interval", 1.0, 1.0, None, "STTC", "STTC", "other ST-T descriptive statements"),
    (
        "PVC",
        "ventricular premature complex",
        None,
        1.0,
        None,
        "",
        "",
        "Statements related to ectopic rhythm abnormalities",
    ),
    ("PAC", "atrial premature complex", None, 1.0, None, "", "", "Statements related to ectopic rhythm abnormalities"),
    (
        "LVOLT",
        "low QRS voltages in the frontal and horizontal leads",
        None,
        1.0,
        None,
        "",
        "",
        "Other QRS morphology descriptive statements",
    ),
    (
        "STD_",
        "non-specific ST depression",
        None,
        1.0,
        None,
        "",
        "",
        "Basic roots for coding ST-T changes and abnormalities",
    ),
    (
        "STE_",
        "non-specific ST elevation",
        None,
        1.0,
        None,
        "",
        "",
        "Basic roots for coding ST-T changes and abnormalities",
    ),
    ("INVT", "inverted T-waves", None, 1.0, None, "", "", "other ST-T descriptive statements"),
    ("SR", "sinus rhythm", None, None, 1.0, "", "", "Statements related to impulse formation (abnormalities)"),
    ("SBRAD", "sinus bradycardia", None, None, 1.0, "", "", "Statements related to impulse formation (abnormalities)"),
    ("STACH", "sinus tachycardia", None, None, 1.0, "", "", "Statements related to impulse formation (abnormalities)"),
    ("AFIB", "atrial fibrillation", None, None, 1.0, "", "", "Statements related to impulse formation (abnormalities)"),
    ("AFLT", "atrial flutter", None, None, 1.0, "", "", "Statements related to impulse formation (abnormalities)"),
    (
        "PACE",
        "normal functioning artificial pacemaker",
        None,
        None,
        1.0,
        "",
        "",
        "Pacemaker types and pacemaker function",
    ),
)

#: CPSC2018 nine classes (Liu et al. 2018) for the conditions that have one.
CPSC_CLASSES: tuple[str, ...] = ("NORM", "AF", "I-AVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE")
_CPSC = {"AF": "AF", "1AVB": "I-AVB", "LBBB": "LBBB", "RBBB": "RBBB", "PAC": "PAC", "PVC": "PVC", "ISC": "STD"}

#: SNOMED-CT codes as used by the PhysioNet/CinC Challenge 2020/2021 label tables (dx_mapping_scored /
#: dx_mapping_unscored). The CPSC2018 nine map to the codes the readers use.
SNOMED: dict[str, str] = {
    "NSR": "426783006",  # sinus rhythm (CPSC "Normal")
    "SB": "426177001",  # sinus bradycardia
    "STACH": "427084000",  # sinus tachycardia
    "AF": "164889003",  # atrial fibrillation
    "AFL": "164890007",  # atrial flutter
    "PACE": "10370003",  # pacing rhythm
    "1AVB": "270492004",  # 1st degree AV block
    "LBBB": "164909002",  # left bundle branch block
    "RBBB": "59118001",  # right bundle branch block
    "LAFB": "445118002",  # left anterior fascicular block
    "LVH": "164873001",  # left ventricular hypertrophy
    "MI": "164865005",  # myocardial infarction (all territories)
    "AMI": "54329005",  # anterior myocardial infarction (added for the anterior territory)
    "STE": "164931005",  # ST elevation
    "ISC": "429622005",  # ST depression
    "TINV": "59931005",  # T wave inversion
    "PVC": "164884008",  # ventricular ectopics
    "PAC": "284470004",  # premature atrial contraction
    "LVOLT": "251146004",  # low QRS voltages
    "LQT": "111975006",  # prolonged QT interval
}


@dataclass
class ConditionSet:
    """The conditions of one record and the labels they imply."""

    rhythm: str
    extras: list[str] = field(default_factory=list)
    acute: bool = False  # an MI with acute ST elevation (STEMI); otherwise an old infarct

    @property
    def all(self) -> list[str]:
        return [self.rhythm, *self.extras]

    @property
    def is_normal(self) -> bool:
        return self.rhythm in SINUS and not self.extras

    def scp_codes(self, rng: np.random.Generator) -> dict[str, float]:
        """PTB-XL-style ``{code: likelihood}``: diagnostic statements carry 100/80/50, form and rhythm 0."""
        codes: dict[str, float] = {}
        diag = [SCP_DIAGNOSTIC[c] for c in self.extras if c in SCP_DIAGNOSTIC]
        if not diag and self.rhythm in SINUS:
            codes["NORM"] = float(rng.choice([100.0, 80.0], p=[0.9, 0.1]))
        for code in diag:
            codes[code] = float(rng.choice([100.0, 80.0, 50.0], p=[0.8, 0.12, 0.08]))
        for c in self.extras:
            if c in SCP_FORM:
                codes[SCP_FORM[c]] = 0.0
        if self.acute:
            codes[SCP_ACUTE_FORM] = 0.0
        codes[SCP_RHYTHM[self.rhythm]] = 0.0
        return codes

    def cpsc_classes(self) -> list[str]:
        if self.is_normal:
            return ["NORM"]
        out = [_CPSC[c] for c in self.all if c in _CPSC]
        if self.acute:
            out.append("STE")
        return [c for c in CPSC_CLASSES if c in out]

    def snomed_codes(self) -> list[str]:
        out: list[str] = []
        if self.is_normal and self.rhythm == "SR":
            out.append(SNOMED["NSR"])
        for c in self.all:
            if c in MI_TERRITORIES:
                out.append(SNOMED["MI"])
                if c == "AMI":
                    out.append(SNOMED["AMI"])
            elif c in SNOMED and c != "SR":
                out.append(SNOMED[c])
        if self.acute:
            out.append(SNOMED["STE"])
        return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------- sampling
@dataclass(frozen=True)
class Profile:
    """Prevalences of one corpus. ``p_normal``: share of records with a sinus rhythm and nothing else."""

    rhythm_p: dict[str, float]
    extra_p: dict[str, float]
    p_normal: float
    p_acute: float = 0.4  # share of infarcts with acute ST elevation


# Prevalences loosely follow PTB-XL (Wagner et al. 2020, Fig. 2) and, for the CPSC profile, the CPSC2018
# class counts (Liu et al. 2018, Table 1), boosted for rare classes so every class has test positives.
PROFILES: dict[str, Profile] = {
    "ptbxl": Profile(
        rhythm_p={"SR": 0.70, "SB": 0.08, "STACH": 0.08, "AF": 0.08, "AFL": 0.03, "PACE": 0.03},
        extra_p={
            "1AVB": 0.07,
            "LBBB": 0.05,
            "RBBB": 0.07,
            "LAFB": 0.07,
            "LVH": 0.10,
            "AMI": 0.07,
            "IMI": 0.08,
            "LMI": 0.04,
            "ISC": 0.08,
            "TINV": 0.07,
            "PVC": 0.07,
            "PAC": 0.06,
            "LVOLT": 0.05,
            "LQT": 0.05,
        },
        p_normal=0.40,
    ),
    "cpsc": Profile(
        rhythm_p={"SR": 0.72, "SB": 0.06, "STACH": 0.06, "AF": 0.16},
        extra_p={
            "1AVB": 0.13,
            "LBBB": 0.05,
            "RBBB": 0.25,
            "PAC": 0.11,
            "PVC": 0.12,
            "ISC": 0.14,
            "AMI": 0.02,
            "IMI": 0.03,
            "LMI": 0.01,
        },
        p_normal=0.16,
        p_acute=1.0,
    ),
}
PROFILES["mimic"] = PROFILES["ptbxl"]


def sample_conditions(rng: np.random.Generator, profile: Profile) -> ConditionSet:
    """Draw a physiologically possible combination of conditions."""
    names = list(profile.rhythm_p)
    p = np.array([profile.rhythm_p[r] for r in names])
    rhythm = str(rng.choice(names, p=p / p.sum()))
    cs = ConditionSet(rhythm)
    if rhythm in SINUS and rng.random() < profile.p_normal:
        return cs
    for _ in range(20):  # sinus records on this branch need at least one finding
        extras: list[str] = []
        present = {rhythm}
        for c in rng.permutation(list(profile.extra_p)):
            c = str(c)
            if rng.random() < profile.extra_p[c] and compatible(c, present):
                extras.append(c)
                present.add(c)
        if extras or rhythm not in SINUS:
            break
    cs.extras = sorted(extras, key=EXTRAS.index)
    cs.acute = (
        any(c in MI_TERRITORIES for c in cs.extras) and "ISC" not in cs.extras and (rng.random() < profile.p_acute)
    )
    # CPSC's STE without infarct Q waves does not exist in this model; an infarct there is always acute.
    return cs


def forced(rhythm: str, extras: list[str] | tuple[str, ...] = (), acute: bool = False) -> ConditionSet:
    """A given combination (for tests and the figure); raises if it is not physiologically possible."""
    if rhythm not in RHYTHMS:
        raise ValueError(f"unknown rhythm {rhythm!r}; choose from {RHYTHMS}")
    present = {rhythm}
    for c in extras:
        if c not in EXTRAS:
            raise ValueError(f"unknown condition {c!r}; choose from {EXTRAS}")
        if not compatible(c, present):
            raise ValueError(f"{c} cannot combine with {sorted(present)}")
        present.add(c)
    if acute and not any(c in MI_TERRITORIES for c in extras):
        raise ValueError("acute=True needs an infarct territory (AMI, IMI or LMI)")
    return ConditionSet(rhythm, sorted(extras, key=EXTRAS.index), acute)
