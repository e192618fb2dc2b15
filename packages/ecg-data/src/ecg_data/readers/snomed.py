"""SNOMED-CT code tables for the CPSC2018 classes (authored here; codes checked against the
PhysioNet/CinC Challenge 2020/2021 label tables, ``dx_mapping_scored.csv`` / ``dx_mapping_unscored.csv``).

Why a table of exact codes: matching by substring of a condition *name* mislabels records
(e.g. "complete right bundle branch block" vs "incomplete right bundle branch block"). Each class
lists the code the Challenge 2020 release of CPSC2018 uses first, then the codes the Challenge
scoring treats as equivalent, so that CPSC2018 read from other Challenge sources maps the same way.
"""

from __future__ import annotations

#: The nine CPSC2018 classes, in the order of the original REFERENCE.csv class numbers 1..9.
CPSC_CLASSES: tuple[str, ...] = ("NORM", "AF", "I-AVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE")

#: Original CPSC2018 REFERENCE.csv class number -> class name (CPSC2018 challenge description, Table 1).
CPSC_ORIGINAL_LABELS: dict[int, str] = {i + 1: c for i, c in enumerate(CPSC_CLASSES)}

#: class -> exact SNOMED-CT codes (first = code used by the Challenge 2020 CPSC release).
CPSC_SNOMED: dict[str, tuple[str, ...]] = {
    # "Normal" in CPSC2018 is coded as sinus rhythm (SNOMED 426783006) in the Challenge release.
    "NORM": ("426783006",),
    # atrial fibrillation
    "AF": ("164889003",),
    # first degree atrioventricular block
    "I-AVB": ("270492004",),
    # left bundle branch block
    "LBBB": ("164909002",),
    # right bundle branch block; 713427006 (complete RBBB) is scored as equivalent to 59118001 in the
    # Challenge 2020/2021 ("equivalent classes"), so both count as RBBB. Incomplete RBBB (713426002) does NOT.
    "RBBB": ("59118001", "713427006"),
    # premature atrial contraction; 63593006 (supraventricular premature beats) is the Challenge equivalent.
    "PAC": ("284470004", "63593006"),
    # premature ventricular contractions: the Challenge 2020 CPSC release codes CPSC's PVC as
    # 164884008 (ventricular ectopics); 427172004 (PVC) and 17338001 (ventricular premature beats)
    # are the codes (and Challenge-equivalent pair) other Challenge sources use.
    "PVC": ("164884008", "427172004", "17338001"),
    # ST depression
    "STD": ("429622005",),
    # ST elevation
    "STE": ("164931005",),
}

#: exact code -> CPSC class
SNOMED_TO_CPSC: dict[str, str] = {code: cls for cls, codes in CPSC_SNOMED.items() for code in codes}


def cpsc_classes_from_codes(codes: list[str]) -> list[str]:
    """Exact-code lookup; unknown codes are ignored (they are other diagnoses, not CPSC classes)."""
    return sorted({SNOMED_TO_CPSC[c] for c in codes if c in SNOMED_TO_CPSC})
