import numpy as np
import pytest
from dr_fixtures import MIMIC_NAMES, PTBXL_NAMES

from ecg_data.leads import canonical_lead, to_standard_order
from ecg_data.record import LEADS, RecordError


def test_aliases_and_case():
    assert [canonical_lead(n) for n in ("AVR", "avr", "aVR", "a-VR", " v1 ", "Lead II")] == ["aVR"] * 3 + [
        "aVR",
        "V1",
        "II",
    ]
    assert canonical_lead("V7") is None


def test_maps_by_name_not_position():
    sig = np.arange(12)[:, None] * np.ones((1, 4))  # row i holds value i
    out = to_standard_order(sig, MIMIC_NAMES, "x.hea")
    # MIMIC row 4 is aVF and row 5 is aVL: in standard order aVL (index 4) must come from row 5.
    assert out[LEADS.index("aVL"), 0] == 5 and out[LEADS.index("aVF"), 0] == 4
    assert np.array_equal(to_standard_order(sig, PTBXL_NAMES, "y.hea"), sig)


@pytest.mark.parametrize(
    "names, problem",
    [
        (PTBXL_NAMES[:11] + ["V7"], "unknown lead"),
        (PTBXL_NAMES[:11] + ["V5"], "duplicate lead"),
        (PTBXL_NAMES[:11], "signal rows"),
    ],
)
def test_errors_name_the_file(names, problem):
    with pytest.raises(RecordError, match=problem) as e:
        to_standard_order(np.zeros((12, 3)), names, "/data/rec.hea")
    assert e.value.path == "/data/rec.hea"


def test_missing_lead():
    with pytest.raises(RecordError, match="missing lead"):
        to_standard_order(np.zeros((11, 3)), PTBXL_NAMES[:11], "r.hea")
