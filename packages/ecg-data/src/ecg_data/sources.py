"""Where each real dataset is published, how its files are checksummed, and which file belongs to which record.

Facts only (addresses, layouts, checksum file names, licences), used by ``python -m ecg_data download`` and
``python -m ecg_data verify``. Sizes are *estimates* (records x bytes per record, measured on the project's
samples), used for the disk-space check and the > 10 GB confirmation; the publishers' pages list the exact totals.

| name | publisher's directory | checksums |
| --- | --- | --- |
| ``ptbxl`` | https://physionet.org/files/ptb-xl/1.0.3/ | ``SHA256SUMS.txt`` (PhysioNet) |
| ``cpsc2018`` | https://physionet.org/files/challenge-2020/1.0.2/ (``training/cpsc_2018``) | ``SHA256SUMS.txt`` |
| ``csn`` | https://physionet.org/files/ecg-arrhythmia/1.0.0/ | ``SHA256SUMS.txt`` |
| ``g12ec`` | https://physionet.org/files/challenge-2021/1.0.3/ (``training/georgia``) | ``SHA256SUMS.txt`` |
| ``mimic-iv-ecg`` | https://physionet.org/files/mimic-iv-ecg/1.0/ | ``SHA256SUMS.txt`` |
| ``code15`` | Zenodo record 4916206 (doi:10.5281/zenodo.4916206) | md5 of every file (Zenodo API) |
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ecg_data.registry import UnknownNameError

GB = 10**9
#: a download above this many bytes asks for confirmation (or ``--yes``)
CONFIRM_BYTES = 10 * GB
#: the checksum list kept under a Zenodo dataset's root, and the one a mirror of it must serve
ZENODO_SUMS = "md5sums.txt"


@dataclass(frozen=True)
class Source:
    """One downloadable dataset."""

    name: str
    title: str
    data_dir: str  # $ECG_DATA_ROOT/<data_dir>, the task's directory
    reader: str  # ecg_data.readers name
    release: str
    host: str  # "physionet" | "zenodo"
    url: str  # the publisher's directory (PhysioNet) or the record's DOI (Zenodo)
    page: str
    licence: str
    credentials: str  # what a user needs before downloading ("none": open access)
    record: re.Pattern[str]  # matched on the local path; group 1 = record id (a file without a match is metadata)
    n_records: int
    bytes_estimate: int  # the whole dataset, unpacked (an estimate: see size_basis)
    size_basis: str
    subtree: str = ""  # the folder of the publisher's directory that holds this dataset (stripped locally)
    checksums: str = "SHA256SUMS.txt"
    #: record id as the readers name it, from the regex group
    record_id: Callable[[str], str] = str
    #: archives unpacked after verification (CODE-15%: exams_partN.zip -> exams_partN.hdf5)
    unzip: bool = False
    #: extra bytes an unpacked archive needs beside the archive (estimate, for the disk check)
    unpacked_bytes: int = 0
    aliases: tuple[str, ...] = field(default=())
    #: download units (records, or archives where a file holds many records) in the whole dataset
    units: int = 0
    #: metadata files the reader needs (its required paths); other listed files (README, RECORDS, ...) are optional
    required_meta: tuple[str, ...] = ()

    @property
    def n_units(self) -> int:
        return self.units or self.n_records

    def local_path(self, remote: str) -> str | None:
        """Path under ``--root`` of a file listed by the publisher, or None when it is not part of this dataset."""
        if not self.subtree:
            return remote
        if remote.startswith(self.subtree):
            return remote[len(self.subtree) :]
        return remote if remote == "LICENSE.txt" else None

    def record_of(self, local: str) -> str | None:
        m = self.record.search(local)
        return self.record_id(m.group(1)) if m else None

    def download_command(self, root: str | Path, records: str = "published") -> str:
        tail = "" if records == "published" else f" --records {records}"
        return f"python -m ecg_data download {self.name} --root {root}{tail}"


# bytes per record measured on ../shared/data: PTB-XL 100 + 500 Hz (.hea + .dat) 150 kB; a 10 s 12-lead 500 Hz
# Challenge .mat + .hea 122 kB; CPSC2018 records last 6-60 s (mean about 16 s).
SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            name="ptbxl",
            title="PTB-XL",
            data_dir="ptbxl",
            reader="ptbxl",
            release="1.0.3",
            host="physionet",
            url="https://physionet.org/files/ptb-xl/1.0.3/",
            page="https://physionet.org/content/ptb-xl/1.0.3/",
            licence="CC BY 4.0",
            credentials="none (open access)",
            record=re.compile(r"^records(?:100|500)/\d+/(\d+)_(?:lr|hr)\.(?:hea|dat)$"),
            record_id=lambda g: str(int(g)),
            n_records=21_799,
            bytes_estimate=3_300_000_000,
            size_basis="21,799 records x 150 kB (100 Hz and 500 Hz copies)",
            required_meta=("ptbxl_database.csv", "scp_statements.csv"),
        ),
        Source(
            name="cpsc2018",
            title="CPSC2018 (PhysioNet/CinC Challenge 2020 release)",
            data_dir="cpsc2018",
            reader="cpsc2018",
            release="Challenge 2020 1.0.2",
            host="physionet",
            url="https://physionet.org/files/challenge-2020/1.0.2/",
            page="https://physionet.org/content/challenge-2020/1.0.2/",
            licence="CC BY 4.0",
            credentials="none (open access)",
            subtree="training/cpsc_2018/",
            record=re.compile(r"(?:^|/)(A\d+)\.(?:hea|mat)$"),
            n_records=6_877,
            bytes_estimate=1_350_000_000,
            size_basis="6,877 records of 6-60 s (mean about 16 s) x 12 leads x 500 Hz x 2 bytes",
        ),
        Source(
            name="csn",
            title="Chapman-Shaoxing-Ningbo (ecg-arrhythmia)",
            data_dir="csn",
            reader="csn",
            release="1.0.0",
            host="physionet",
            url="https://physionet.org/files/ecg-arrhythmia/1.0.0/",
            page="https://physionet.org/content/ecg-arrhythmia/1.0.0/",
            licence="CC BY 4.0",
            credentials="none (open access)",
            record=re.compile(r"^WFDBRecords/\d+/\d+/(JS\d+)\.(?:hea|mat)$"),
            n_records=45_152,
            bytes_estimate=5_500_000_000,
            size_basis="45,152 records x 122 kB",
            required_meta=("ConditionNames_SNOMED-CT.csv",),
        ),
        Source(
            name="g12ec",
            title="G12EC (Georgia, PhysioNet/CinC Challenge 2021)",
            data_dir="g12ec",
            reader="g12ec",
            release="Challenge 2021 1.0.3",
            host="physionet",
            url="https://physionet.org/files/challenge-2021/1.0.3/",
            page="https://physionet.org/content/challenge-2021/1.0.3/",
            licence="CC BY 4.0",
            credentials="none (open access)",
            subtree="training/georgia/",
            record=re.compile(r"(?:^|/)(E\d+)\.(?:hea|mat)$"),
            n_records=10_344,
            bytes_estimate=1_270_000_000,
            size_basis="10,344 records x 122 kB",
        ),
        Source(
            name="mimic-iv-ecg",
            title="MIMIC-IV-ECG",
            data_dir="mimic-iv-ecg",
            reader="mimic_iv_ecg",
            release="1.0",
            host="physionet",
            url="https://physionet.org/files/mimic-iv-ecg/1.0/",
            page="https://physionet.org/content/mimic-iv-ecg/1.0/",
            licence="ODbL 1.0",
            credentials="none (open access; PhysioNet login only for the separate MIMIC-IV hosp patients table)",
            record=re.compile(r"^files/p\d+/p\d+/s(\d+)/\d+\.(?:hea|dat)$"),
            n_records=800_035,
            bytes_estimate=97_000_000_000,
            size_basis="about 800,000 records x 121 kB (10 s, 12 leads, 500 Hz)",
            aliases=("mimic_iv_ecg", "mimic"),
            required_meta=("record_list.csv", "machine_measurements.csv"),
        ),
        Source(
            name="code15",
            title="CODE-15%",
            data_dir="code15",
            reader="code15",
            release="1.0.0",
            host="zenodo",
            url="doi:10.5281/zenodo.4916206",
            page="https://zenodo.org/record/4916206",
            licence="CC BY 4.0",
            credentials="none (open access)",
            checksums=ZENODO_SUMS,
            record=re.compile(r"^(exams_part\d+)\.zip$"),
            n_records=345_779,
            units=18,
            bytes_estimate=30_000_000_000,
            unzip=True,
            unpacked_bytes=68_000_000_000,
            size_basis="18 zip archives (about 30 GB, an estimate) unpacked to 345,779 exams x 4096 x 12 float32 (68 GB)",
            required_meta=("exams.csv",),
        ),
    )
}

#: the environment variables that hold PhysioNet credentials (else ~/.netrc, machine physionet.org)
CREDENTIAL_ENV = ("PHYSIONET_USERNAME", "PHYSIONET_PASSWORD")


def get_source(name: str) -> Source:
    key = name.strip()
    for s in SOURCES.values():
        if key == s.name or key in s.aliases or key == s.data_dir:
            return s
    raise UnknownNameError(f"unknown dataset {name!r}; downloadable: {', '.join(SOURCES)}")


def source_for_data_dir(data_dir: str) -> Source | None:
    return next((s for s in SOURCES.values() if s.data_dir == data_dir), None)


def parse_checksums(text: str, *, where: str) -> list[tuple[str, str]]:
    """``(path, hexdigest)`` from a ``sha256sum``/``md5sum`` style list (``<hex> [*]<path>`` per line)."""
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{64}", parts[0]):
            raise ValueError(f"{where}: line {i} is not '<checksum> <path>': {line[:80]!r}")
        out.append((parts[1].lstrip("*").strip(), parts[0].lower()))
    return out


def algorithm(hexdigest: str) -> str:
    return "md5" if len(hexdigest) == 32 else "sha256"
