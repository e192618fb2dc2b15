"""A small fake DatasetReader over real WFDB files (written with wfdb.wrsamp, read with wfdb.rdsamp).

Why a fake: the cache only needs the reader interface (name, version, metadata, read, fingerprint);
these tests must not depend on a particular dataset reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecg_data.paths import stable_hash
from ecg_data.record import LEADS, Record, RecordError

# A non-standard header order, so the reader must map leads by name (as MIMIC-IV-ECG needs).
FILE_ORDER = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]


@dataclass
class FakeSpec:
    record_id: str
    n_samples: int = 5000
    fs: int = 500
    nan: bool = False
    truncate: bool = False
    report: str | None = "sinus rhythm. normal ecg"
    codes: list[str] = field(default_factory=lambda: ["NORM"])


def write_fake_dataset(root: Path, specs: list[FakeSpec], seed: int = 0) -> Path:
    """Write one WFDB record per spec (16-bit, header lead names in FILE_ORDER) and a metadata CSV."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in specs:
        t = np.arange(s.n_samples) / s.fs
        sig = np.stack([np.sin(2 * np.pi * (1 + i % 5) * t) * (0.2 + 0.1 * i) for i in range(12)], axis=1)
        sig = sig + 0.05 * rng.standard_normal(sig.shape)
        if s.nan:
            sig[10:20, 3] = np.nan
        name = f"rec{s.record_id}"
        wfdb.wrsamp(
            name, fs=s.fs, units=["mV"] * 12, sig_name=FILE_ORDER, p_signal=sig,
            fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(root),
        )  # fmt: skip
        if s.truncate:
            dat = root / f"{name}.dat"
            dat.write_bytes(dat.read_bytes()[:100])
        rows.append(
            {"record_id": s.record_id, "patient_id": f"p{int(s.record_id) % 7}", "report": s.report,
             "codes": "|".join(s.codes), "path": name}
        )  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "meta.csv", index=False)
    return root


class FakeWFDBReader:
    """The DatasetReader interface over ``write_fake_dataset`` output. ``fail_on`` injects a crash (not a RecordError)."""

    name = "fake"
    version = "0.0"
    native_fs = 500

    def __init__(self, root: str | Path, fail_on: str | None = None) -> None:
        self.root = Path(root)
        self.fail_on = fail_on
        self.reads = 0  # counted in this process (workers=1), to show a resumed build skips finished chunks
        self._meta: pd.DataFrame | None = None

    def metadata(self) -> pd.DataFrame:
        if self._meta is None:
            df = pd.read_csv(self.root / "meta.csv", dtype={"record_id": str, "patient_id": str})
            df["codes"] = [c.split("|") if isinstance(c, str) and c else [] for c in df["codes"]]
            self._meta = df.set_index("record_id").sort_index()
        return self._meta

    def fingerprint(self) -> str:
        df = self.metadata()
        return stable_hash(df.reset_index().astype(str).values.tolist())

    def read(self, record_id: str) -> Record:
        self.reads += 1
        if record_id == self.fail_on:
            raise RuntimeError(f"injected failure at record {record_id}")
        row = self.metadata().loc[record_id]
        path = self.root / row["path"]
        try:
            sig, fields = wfdb.rdsamp(str(path))
        except Exception as e:  # wfdb raises many types for broken files
            raise RecordError(f"{path}.dat", f"unreadable signal file: {type(e).__name__}: {e}") from e
        if sig.shape[0] != fields["sig_len"]:
            raise RecordError(f"{path}.dat", f"truncated signal: {sig.shape[0]} of {fields['sig_len']} samples")
        order = [fields["sig_name"].index(lead) for lead in LEADS]
        report = row["report"] if isinstance(row["report"], str) else None
        return Record(
            signal=sig[:, order].T.astype(np.float32), fs=float(fields["fs"]), record_id=record_id,
            patient_id=row["patient_id"], report=report, codes=list(row["codes"]), meta={"path": f"{path}.hea"},
        )  # fmt: skip


@pytest.fixture(autouse=True)
def _cache_per_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh $ECG_CACHE per test: the fake datasets of different tests share a key by design (same content)."""
    monkeypatch.setenv("ECG_CACHE", str(tmp_path / "ecg-cache"))


@pytest.fixture(scope="session")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six good 10 s records, a short one (padded), a long one (cropped), one with NaNs and one truncated."""
    specs = [FakeSpec(str(i)) for i in range(1, 7)]
    specs += [FakeSpec("7", n_samples=3000, report=None), FakeSpec("8", n_samples=6000, codes=["AFIB", "PVC"])]
    specs += [FakeSpec("9", nan=True), FakeSpec("10", truncate=True)]
    return write_fake_dataset(tmp_path_factory.mktemp("fake"), specs)  # read-only for the tests


#: Record ids of ``fake_root`` in a fixed order.
FAKE_IDS = [str(i) for i in range(1, 11)]


@pytest.fixture
def fake_ids() -> list[str]:
    return list(FAKE_IDS)


@pytest.fixture
def fake_reader(fake_root: Path) -> FakeWFDBReader:
    return FakeWFDBReader(fake_root)
