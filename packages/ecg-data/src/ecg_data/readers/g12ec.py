"""Georgia 12-lead ECG Challenge database (G12EC) reader: PhysioNet/CinC Challenge 2020/2021 layout.

Dataset card
------------
- Source: PhysioNet/Computing in Cardiology Challenge 2021, https://physionet.org/content/challenge-2021/1.0.3/
  (``training/georgia``; also in Challenge 2020, https://physionet.org/content/challenge-2020/1.0.2/,
  ``training/georgia``). Collected at Emory University Hospital, Atlanta, Georgia, USA.
- Version: Challenge 2021 release 1.0.3 (10,344 records ``E00001``-``E10344``; 12 leads, 500 Hz, 10 s).
- License: Creative Commons Attribution 4.0 (CC BY 4.0).
- Citation: Perez Alday, E. A. et al. (2020). Classification of 12-lead ECGs: the PhysioNet/Computing in
  Cardiology Challenge 2020. Physiol. Meas. 41, 124003. Reyna, M. A. et al. (2021). Will Two Do? Varying
  Dimensions in Electrocardiography: The PhysioNet/Computing in Cardiology Challenge 2021. CinC 48.
- Layout::

    <root>/**/E00001.hea   header: 12 leads, 500 Hz; comments '# Age:', '# Sex:', '# Dx: <SNOMED codes>'
    <root>/**/E00001.mat   variable 'val' (12, T) int16 ADC units (gain 1000/mV)

  Only ``E<digits>`` records are indexed, so ``<root>`` may be the Georgia folder (``training/georgia``, with
  its ``g1`` ... ``g11`` sub-folders) or a mixed Challenge folder holding other sources as well.
- Labels: exact SNOMED-CT codes from ``# Dx:`` mapped to the Challenge 2021 *scored* classes
  (``CHALLENGE_SCORED``, from the Challenge's ``dx_mapping_scored.csv``), named by the Challenge abbreviation;
  the pairs the Challenge scores as one diagnosis are merged (CRBBB -> RBBB, CLBBB -> LBBB, SVPB -> PAC,
  VPB -> PVC). Unscored codes stay in ``codes`` but are not classes.
- Known quirks: no patient ids (splits cannot be patient-disjoint); a few headers say ``Age: NaN``; some records
  have a constant lead (rejected by ``read`` unless ``allow_flat=True``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ecg_data.readers.cinc import ChallengeLayoutReader
from ecg_data.record import DatasetNotFoundError

#: Challenge 2021 scored SNOMED-CT codes -> class (abbreviation of ``dx_mapping_scored.csv``), equivalent pairs
#: merged into the first code's abbreviation as the Challenge scores them ("We score ... as the same diagnosis").
CHALLENGE_SCORED: dict[str, str] = {
    "164889003": "AF",  # atrial fibrillation
    "164890007": "AFL",  # atrial flutter
    "6374002": "BBB",  # bundle branch block
    "426627000": "Brady",  # bradycardia
    "733534002": "LBBB",  # complete left bundle branch block (scored as LBBB)
    "164909002": "LBBB",  # left bundle branch block
    "713427006": "RBBB",  # complete right bundle branch block (scored as RBBB)
    "59118001": "RBBB",  # right bundle branch block
    "270492004": "IAVB",  # 1st degree av block
    "713426002": "IRBBB",  # incomplete right bundle branch block
    "39732003": "LAD",  # left axis deviation
    "445118002": "LAnFB",  # left anterior fascicular block
    "251146004": "LQRSV",  # low qrs voltages
    "698252002": "NSIVCB",  # nonspecific intraventricular conduction disorder
    "426783006": "NSR",  # sinus rhythm
    "284470004": "PAC",  # premature atrial contraction
    "63593006": "PAC",  # supraventricular premature beats (scored as PAC)
    "10370003": "PR",  # pacing rhythm
    "365413008": "PRWP",  # poor R wave progression
    "427172004": "PVC",  # premature ventricular contractions
    "17338001": "PVC",  # ventricular premature beats (scored as PVC)
    "164947007": "LPR",  # prolonged pr interval
    "111975006": "LQT",  # prolonged qt interval
    "164917005": "QAb",  # qwave abnormal
    "47665007": "RAD",  # right axis deviation
    "427393009": "SA",  # sinus arrhythmia
    "426177001": "SB",  # sinus bradycardia
    "427084000": "STach",  # sinus tachycardia
    "164934002": "TAb",  # t wave abnormal
    "59931005": "TInv",  # t wave inversion
}

_RECORD = re.compile(r"^E\d+$")
_LAYOUT = __doc__.split("- Layout::", 1)[1].split("- Labels:", 1)[0].strip("\n")


def scored_classes(codes: list[str]) -> list[str]:
    """Exact-code lookup into the scored classes (unscored codes are other diagnoses, not classes)."""
    return sorted({CHALLENGE_SCORED[c] for c in codes if c in CHALLENGE_SCORED})


class G12ECReader(ChallengeLayoutReader):
    """G12EC (``E*`` records) in the Challenge layout; metadata adds ``scored_classes``."""

    name = "g12ec"
    version = "challenge2021-1.0.3"
    expected_layout = _LAYOUT
    published_at = "https://physionet.org/content/challenge-2021/1.0.3/ (training/georgia)"

    def _header_files(self) -> list[Path]:
        return [p for p in super()._header_files() if _RECORD.match(p.stem)]

    def _check_layout(self) -> None:
        super()._check_layout()
        if not self._header_files():
            raise DatasetNotFoundError(
                f"{self.name} {self.version}: no Georgia records (E<digits>.hea) under {self.root}.\n"
                f"Expected layout:\n{self.expected_layout}\nDownload it from {self.published_at}"
            )

    def _load_metadata(self):  # type: ignore[override]
        df = super()._load_metadata()
        df["scored_classes"] = [scored_classes(list(c)) for c in df["codes"]] if len(df) else []
        return df
