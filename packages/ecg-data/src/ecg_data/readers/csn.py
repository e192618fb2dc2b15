"""Chapman-Shaoxing-Ningbo (CSN) reader: PhysioNet "ecg-arrhythmia" 1.0.0.

Dataset card
------------
- Source: PhysioNet, "A large scale 12-lead electrocardiogram database for arrhythmia study",
  https://physionet.org/content/ecg-arrhythmia/1.0.0/
- Version: 1.0.0 (45,152 records, 10 s, 12 leads, 500 Hz; Chapman University, Shaoxing People's
  Hospital and Ningbo First Hospital).
- License: Creative Commons Attribution 4.0 (CC BY 4.0).
- Citation: Zheng, J., Guo, H., Chu, H. (2022). A large scale 12-lead electrocardiogram database for
  arrhythmia study (version 1.0.0). PhysioNet. https://doi.org/10.13026/wgex-er52 ; Zheng, J. et al.
  (2020). A 12-lead electrocardiogram database for arrhythmia research covering more than 10,000
  patients. Scientific Data 7, 48.
- Layout::

    <root>/WFDBRecords/NN/NNN/JSNNNNN.hea   Challenge-format header, '# Age:', '# Sex:', '# Dx: <SNOMED codes>'
    <root>/WFDBRecords/NN/NNN/JSNNNNN.mat   variable 'val' (12, 5000) int16 ADC units
    <root>/ConditionNames_SNOMED-CT.csv     Acronym Name, Full Name, Snomed_CT

- Labels: exact SNOMED-CT codes from ``# Dx:`` (never substring matches of condition names; the
  published CSN benchmark labels built by substring are noisy). A class is named by its acronym from
  ``ConditionNames_SNOMED-CT.csv`` (or ``SNOMED_<code>`` when the code is not listed, or when two
  codes share an acronym); the ``csn`` task keeps classes with at least ``CSN_MIN_POSITIVES``
  positive records and a positive in every split (see ``ecg_data.tasks.cinc``).
- Known quirks: no patient ids (splits cannot be patient-disjoint); some records contain codes that
  are not in the condition table; some records have all-zero (flat) leads or NaN-free but constant
  segments, which ``read`` rejects as flat leads unless ``allow_flat=True``; the same records appear
  (renamed ``JS*``) in the CinC Challenge 2021 "Ningbo"/"Chapman-Shaoxing" sets, so do not pool both.
"""

from __future__ import annotations

import re

import pandas as pd

from ecg_data.readers.base import clean_text, object_series, read_csv_checked
from ecg_data.readers.cinc import ChallengeLayoutReader
from ecg_data.record import RecordError

CONDITIONS_FILE = "ConditionNames_SNOMED-CT.csv"


def _norm(col: str) -> str:
    return re.sub(r"[^a-z]", "", str(col).lower())


class CSNReader(ChallengeLayoutReader):
    name = "csn"
    version = "1.0.0"
    records_dir = "WFDBRecords"
    expected_layout = __doc__.split("- Layout::", 1)[1].split("- Labels:", 1)[0].strip("\n")
    published_at = "https://physionet.org/content/ecg-arrhythmia/1.0.0/"

    def required_paths(self) -> list[str]:
        return [self.records_dir, CONDITIONS_FILE]

    def _check_columns(self) -> None:
        super()._check_columns()
        self.conditions()  # validates the condition table's columns at construction

    def conditions(self) -> pd.DataFrame:
        """Condition table indexed by SNOMED code (str), columns ``acronym``, ``full_name``."""
        path = self.root / CONDITIONS_FILE
        df = read_csv_checked(path, ())
        by_norm = {_norm(c): c for c in df.columns}
        want = {
            "acronym": ("acronymname", "acronym"),
            "full_name": ("fullname", "name"),
            "code": ("snomedct", "snomed", "code"),
        }
        cols: dict[str, str] = {}
        for key, options in want.items():
            found = next((by_norm[o] for o in options if o in by_norm), None)
            if found is None:
                raise RecordError(
                    path, f"missing metadata column for {key!r} (tried {options}); found {list(df.columns)}"
                )
            cols[key] = found
        index = pd.Index([str(c).strip().split(".")[0] for c in df[cols["code"]]], name="code")
        out = pd.DataFrame(
            {
                "acronym": object_series((clean_text(v) or "" for v in df[cols["acronym"]]), index),
                "full_name": object_series((clean_text(v) or "" for v in df[cols["full_name"]]), index),
            },
            index=index,
        )
        return out[~out.index.duplicated(keep="first")]

    def class_names(self) -> dict[str, str]:
        """SNOMED code -> unique class name (acronym; ``SNOMED_<code>`` when unlisted or ambiguous)."""
        cond = self.conditions()
        counts = cond["acronym"].value_counts()
        names = {}
        for code, acr in cond["acronym"].items():
            names[code] = acr if acr and counts[acr] == 1 else f"{acr}_{code}" if acr else f"SNOMED_{code}"
        for codes in self.metadata()["codes"]:
            for c in codes:
                names.setdefault(c, f"SNOMED_{c}")
        return names
