"""The reader interface and the checks every reader shares.

A reader turns one database's on-disk layout into (a) a metadata table, cheap to build and enough to
derive labels and splits, and (b) ``Record`` objects, one file read at a time. Every problem with a
file is a ``RecordError`` naming that file; bulk code (the cache) uses ``safe_read`` to count and log
skips instead of dropping anything silently.
"""

from __future__ import annotations

import hashlib
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from ecg_data.leads import to_standard_order
from ecg_data.record import LEADS, DatasetNotFoundError, Record, RecordError

log = logging.getLogger(__name__)

#: Columns every metadata table has (see docs/contracts.md).
BASE_COLUMNS: tuple[str, ...] = ("patient_id", "report", "codes", "path")

# Bytes per sample of the WFDB storage formats we can size-check before reading (WFDB spec, "signal files").
_BYTES_PER_SAMPLE: dict[str, float] = {"8": 1, "80": 1, "16": 2, "61": 2, "160": 2, "212": 1.5, "24": 3, "32": 4}
_SURROGATE = re.compile("[\udc80-\udcff]")

#: Text cells that mean "no value": pandas' default CSV NA spellings, plus what ``str()`` of a missing
#: value gives (``"nan"``, ``"<NA>"``, ``"NaT"``), compared lower-case after stripping white space.
MISSING_TEXT: frozenset[str] = frozenset(
    {"", "nan", "-nan", "none", "null", "na", "n/a", "<na>", "nat", "#n/a", "#na", "#n/a n/a"}
)


class DatasetReader(ABC):
    """One database on disk. Subclasses set the class attributes and implement the two loaders."""

    name: str = ""
    version: str = ""
    native_fs: int = 0
    expected_layout: str = ""
    published_at: str = ""

    def __init__(self, root: str | Path, **kw: Any) -> None:
        self.root = Path(root).expanduser()
        if kw:
            raise TypeError(f"{type(self).__name__} got unexpected options {sorted(kw)}")
        self._metadata: pd.DataFrame | None = None
        #: record_id -> reason, for records the metadata scan could not index (logged, counted, never silent).
        self.skipped: dict[str, str] = {}
        self._check_layout()
        self._check_columns()

    # -- layout -------------------------------------------------------------------------------------
    def required_paths(self) -> list[str]:
        """Paths (relative to root) that must exist; subclasses extend."""
        return []

    def _check_layout(self) -> None:
        missing = [p for p in self.required_paths() if not (self.root / p).exists()]
        if not self.root.is_dir() or missing:
            what = f"{self.root} does not exist" if not self.root.is_dir() else f"missing {missing} under {self.root}"
            raise DatasetNotFoundError(
                f"{self.name} {self.version}: {what}.\nExpected layout:\n{self.expected_layout}\n"
                f"Download it from {self.published_at}"
            )

    def required_columns(self) -> dict[str, Sequence[str]]:
        """Metadata CSVs (relative to root) and the columns they must have; checked by the constructor."""
        return {}

    def _check_columns(self) -> None:
        """Cheap (header row only): a metadata file without its columns fails at construction, naming the file."""
        for rel, cols in self.required_columns().items():
            read_csv_checked(self.root / rel, cols, nrows=0)

    # -- metadata -----------------------------------------------------------------------------------
    @abstractmethod
    def _load_metadata(self) -> pd.DataFrame:
        """Build the metadata table (index record_id)."""

    def metadata(self) -> pd.DataFrame:
        """Index ``record_id`` (str, unique, deterministic order); columns include ``BASE_COLUMNS``."""
        if self._metadata is None:
            df = self._load_metadata()
            missing = [c for c in BASE_COLUMNS if c not in df.columns]
            if missing:  # a reader bug, not bad input
                raise AssertionError(f"{self.name} metadata lacks {missing}")
            if not df.index.is_unique:
                dup = df.index[df.index.duplicated()].tolist()[:5]
                raise RecordError(self.root, f"duplicate record ids in metadata, e.g. {dup}")
            df.index = pd.Index([str(i) for i in df.index], name="record_id")
            for col in ("patient_id", "report", "report_problem"):  # None, never NaN, under pandas 2 and 3
                if col in df.columns:
                    df[col] = object_series(df[col], df.index)
            self._metadata = df
        return self._metadata

    def record_ids(self) -> list[str]:
        return self.metadata().index.tolist()

    def present_ids(self) -> set[str]:
        """Records whose signal files are on disk. Readers that index the files themselves (the Challenge layouts)
        have no other kind; readers whose metadata is a table (PTB-XL) override this, so that a partial download
        counts its missing records as absent instead of failing on them later."""
        return set(self.metadata().index)

    def fingerprint(self) -> str:
        """Stable hash of the metadata table (ids, patients, reports, codes, paths) plus name and version.

        Why: caches and split files are keyed by it, so a changed download, a changed sampling-rate
        choice or changed cleaning rules never reuse stale files.
        """
        md = self.metadata()
        frame = pd.DataFrame(
            {
                "record_id": md.index.astype(str),
                **{c: md[c].map(_canonical_str).to_numpy() for c in BASE_COLUMNS},
            }
        )
        h = hashlib.sha256(f"{self.name}|{self.version}|{self.fingerprint_extra()}".encode())
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return h.hexdigest()[:16]

    def fingerprint_extra(self) -> str:
        """Reader options that change what ``read`` returns (e.g. the sampling rate)."""
        return ""

    # -- records ------------------------------------------------------------------------------------
    @abstractmethod
    def read(self, record_id: str) -> Record:
        """Load one record; raises ``RecordError`` naming the file and the problem."""

    def _row(self, record_id: str) -> pd.Series:
        md = self.metadata()
        rid = str(record_id)
        if rid not in md.index:
            raise RecordError(self.root / "?", f"unknown {self.name} record id {rid!r}")
        return md.loc[rid]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r})"


def is_missing(v: Any) -> bool:
    """True for every spelling of "no value" that pandas 2 or 3 can hand back for a cell.

    Why: pandas 3 stores missing text as ``NaN`` in its ``str`` dtype where pandas 2 kept ``None`` in
    ``object`` columns; ``pd.NA`` and ``NaT`` come from nullable dtypes. Containers are never missing.
    """
    if v is None:
        return True
    if isinstance(v, (list, tuple, dict, set, np.ndarray)):
        return False
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def clean_text(v: Any) -> str | None:
    """A text cell with white space folded, or ``None`` when missing, blank or an NA spelling."""
    if is_missing(v):
        return None
    s = " ".join(str(v).split())
    return None if s.lower() in MISSING_TEXT else s


def object_series(values: Iterable[Any], index: pd.Index) -> pd.Series:
    """An ``object`` column that keeps ``None`` as ``None`` under pandas 2 and 3 alike.

    Why: assigning a plain list with ``None`` to a DataFrame column under pandas 3 infers the ``str``
    dtype and turns ``None`` into ``NaN``, which then leaks into text towers as ``"nan"``.
    """
    vals = [None if (not isinstance(v, (list, tuple, dict)) and is_missing(v)) else v for v in values]
    return pd.Series(vals, index=index, dtype=object)


def _canonical_str(v: Any) -> str:
    if is_missing(v):
        return ""
    if isinstance(v, dict):
        return repr(sorted(v.items()))
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)


# -- bulk helpers used by the cache ------------------------------------------------------------------
def safe_read(reader: DatasetReader, record_id: str) -> tuple[Record | None, str | None]:
    """``(record, None)`` or ``(None, reason)``: bulk code counts and logs the reason, never drops silently."""
    try:
        return reader.read(record_id), None
    except RecordError as e:
        return None, str(e)


def iter_records(
    reader: DatasetReader, record_ids: Iterable[str] | None = None
) -> Iterator[tuple[str, Record | None, str | None]]:
    """Yield ``(record_id, record or None, reason or None)``; skipped records are logged at WARNING."""
    ids = reader.record_ids() if record_ids is None else record_ids
    for rid in ids:
        rec, reason = safe_read(reader, rid)
        if reason is not None:
            log.warning("skipping %s record %s: %s", reader.name, rid, reason)
        yield str(rid), rec, reason


# -- shared file helpers ----------------------------------------------------------------------------
def read_csv_checked(path: Path, required: Sequence[str], **kw: Any) -> pd.DataFrame:
    """Read a metadata CSV; a malformed file or missing columns raise ``RecordError(path, ...)``.

    Undecodable bytes are kept as surrogate escapes (not replaced) so the affected *cell* can be
    reported per record by ``report_problem`` instead of failing the whole table.
    """
    try:
        df = pd.read_csv(path, encoding="utf-8", encoding_errors="surrogateescape", **kw)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise RecordError(path, f"malformed metadata file: {type(e).__name__}: {e}") from e
    cols = set(df.columns) | ({df.index.name} if df.index.name else set())
    missing = [c for c in required if c not in cols]
    if missing:
        raise RecordError(path, f"missing metadata column(s) {missing}; found {sorted(map(str, cols))}")
    return df


def report_problem(text: Any) -> tuple[str | None, str | None]:
    """``(clean report or None, problem or None)``: missing or blank -> (None, None); undecodable bytes -> problem."""
    if is_missing(text):
        return None, None
    if _SURROGATE.search(str(text)):
        return None, "report is not valid UTF-8"
    return clean_text(text), None


def check_report(row: pd.Series, source: str | Path, require_report: bool) -> None:
    """Raise for a corrupt report always, and for an empty one when the reader needs reports."""
    problem = row.get("report_problem")
    if isinstance(problem, str) and problem:
        raise RecordError(source, problem)
    if require_report and clean_text(row.get("report")) is None:
        raise RecordError(source, "empty report")


def check_signal(signal: np.ndarray, source: str | Path, *, allow_flat: bool = False) -> np.ndarray:
    """NaN/Inf samples and (unless allowed) flat leads raise ``RecordError``; returns float32 (12, T)."""
    if signal.shape[1] == 0:
        raise RecordError(source, "signal has no samples")
    finite = np.isfinite(signal)
    if not finite.all():
        bad = [LEADS[i] for i in np.where(~finite.all(axis=1))[0]]
        raise RecordError(source, f"{int((~finite).sum())} NaN/Inf sample(s) in lead(s) {bad}")
    if not allow_flat:
        flat = np.ptp(signal, axis=1) == 0
        if flat.any():
            raise RecordError(source, f"flat (constant) lead(s) {[LEADS[i] for i in np.where(flat)[0]]}")
    return signal.astype(np.float32, copy=False)


def read_wfdb(
    base: Path,
    *,
    expected_fs: float | Sequence[float] | None,
    allow_flat: bool = False,
) -> tuple[np.ndarray, float, list[str], list[str]]:
    """Read a WFDB record (``base`` without extension; ``.dat`` or Challenge ``.mat`` signals).

    Returns ``(signal (12, T) float32 mV in standard order, fs, header comments, header lead names)``.
    Every failure is a ``RecordError`` naming the header or signal file.
    """
    import wfdb

    hea = base.with_suffix(".hea") if base.suffix != ".hea" else base
    base = hea.with_suffix("")
    if not hea.is_file():
        raise RecordError(hea, "header file missing")
    try:
        raw = hea.read_bytes()
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordError(hea, f"unreadable header (not UTF-8/ASCII): {e}") from e
    except OSError as e:
        raise RecordError(hea, f"unreadable header: {e}") from e
    header = _plain_header(raw.decode("utf-8"))
    if header is None:  # anything beyond the plain single-segment layout: wfdb's full parser
        try:
            header = wfdb.rdheader(str(base))
        except Exception as e:  # wfdb raises many types for malformed headers
            raise RecordError(hea, f"malformed header: {type(e).__name__}: {e}") from e
    n_sig = int(header.n_sig or 0)
    names = list(header.sig_name or [])
    if n_sig != 12 or len(names) != 12:
        raise RecordError(hea, f"expected 12 leads, header declares {n_sig} ({names})")
    fs = float(header.fs or 0)
    if expected_fs is not None:
        allowed = [float(expected_fs)] if np.isscalar(expected_fs) else [float(f) for f in expected_fs]  # type: ignore[arg-type]
        if fs not in allowed:
            raise RecordError(
                hea, f"unexpected sampling rate {fs:g} Hz (expected {' or '.join(f'{a:g}' for a in allowed)} Hz)"
            )
    sig_len = int(header.sig_len or 0)
    if sig_len <= 0:
        raise RecordError(hea, "header declares no samples (sig_len missing or 0)")
    files = sorted(set(header.file_name))
    for fname in files:
        if not (base.parent / fname).is_file():
            raise RecordError(base.parent / fname, "signal file missing")
    if all(f.endswith(".mat") for f in files):
        signal = _read_challenge_mat(base.parent / files[0], header, sig_len)
    else:
        signal = _read_dat(base, header, sig_len, files)
    signal = to_standard_order(signal * _unit_scale(header, hea)[:, None], names, hea)
    return check_signal(signal, base, allow_flat=allow_flat), fs, list(header.comments or []), names


#: Unit (lower case, as written in headers: 'mV', 'mv', 'uV', ...) -> factor to millivolts.
_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "\u00b5v": 1e-3, "\u03bcv": 1e-3, "v": 1e3}


def _unit_scale(header: Any, hea: Path) -> np.ndarray:
    """Per-signal factor to mV; an unknown unit is an error rather than a silently wrong scale."""
    units = list(header.units or ["mV"] * header.n_sig)
    out = []
    for u in units:
        key = str(u or "mV").strip().lower()
        if key not in _TO_MV:
            raise RecordError(hea, f"unknown signal unit {u!r} (expected mV, uV or V)")
        out.append(_TO_MV[key])
    return np.asarray(out, dtype=np.float64)


_SIGNAL_LINE = re.compile(
    r"^(?P<file>[^\s/]+) (?P<fmt>16) (?P<gain>[0-9.eE+-]+)\((?P<baseline>-?\d+)\)/(?P<units>\S+)"
    r" (?P<adcres>\d+) (?P<adczero>-?\d+) (?P<init>-?\d+) (?P<checksum>-?\d+) (?P<block>\d+) (?P<name>\S+)$"
)


def _plain_header(text: str) -> Any | None:
    """Parse the plain header layout of PTB-XL, MIMIC-IV-ECG and the Challenge files; None for anything else.

    Why not always ``wfdb.rdheader``: it parses each signal line through pandas lookups, ~25 ms per
    12-lead header on our machine (and ``rdrecord`` parses it a second time), which made reading a
    MIMIC-IV-ECG record ~5x slower than the rest of the cache build. This accepts only the exact form
    ``name nsig fs siglen [time date]`` + 12 x ``file 16 gain(baseline)/units adcres adczero init
    checksum blocksize name`` (format 16, no skew, offset or multi-segment); anything else returns None
    and goes to wfdb. Tests compare both parsers on every header of the real samples.
    """
    lines = [ln.strip() for ln in text.splitlines()]
    comments = [ln[1:].strip() for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    if not body:
        return None
    rec = body[0].split()
    if len(rec) < 4 or "/" in rec[0] or not all(t.isdigit() for t in (rec[1], rec[3])):
        return None
    try:
        fs = float(rec[2])
    except ValueError:
        return None
    n_sig, sig_len = int(rec[1]), int(rec[3])
    sigs = [_SIGNAL_LINE.match(ln) for ln in body[1:]]
    if n_sig == 0 or len(sigs) != n_sig or not all(sigs):
        return None
    m = [g.groupdict() for g in sigs if g is not None]
    return SimpleNamespace(
        n_sig=n_sig, fs=int(fs) if fs.is_integer() else fs, sig_len=sig_len, comments=comments,
        sig_name=[g["name"] for g in m], file_name=[g["file"] for g in m], fmt=[g["fmt"] for g in m],
        adc_gain=[float(g["gain"]) for g in m], baseline=[int(g["baseline"]) for g in m],
        units=[g["units"] for g in m], byte_offset=[None] * n_sig,
    )  # fmt: skip


def _read_dat(base: Path, header: Any, sig_len: int, files: list[str]) -> np.ndarray:
    import wfdb

    for fname in files:  # size check first: wfdb pads or fails obscurely on a short file
        idx = [i for i, f in enumerate(header.file_name) if f == fname]
        fmt = str(header.fmt[idx[0]])
        if fmt in _BYTES_PER_SAMPLE:
            offset = int((header.byte_offset or [0] * header.n_sig)[idx[0]] or 0)
            need = int(np.ceil(sig_len * len(idx) * _BYTES_PER_SAMPLE[fmt])) + offset
            have = (base.parent / fname).stat().st_size
            if have < need:
                raise RecordError(base.parent / fname, f"truncated signal file: {have} bytes, header implies {need}")
    if isinstance(header, SimpleNamespace) and len(files) == 1:  # plain format 16, one file: no second header parse
        d = np.fromfile(base.parent / files[0], dtype="<i2", count=sig_len * header.n_sig).reshape(
            sig_len, header.n_sig
        )
        gain = np.asarray(header.adc_gain, dtype=np.float64)
        sig = (d - np.asarray(header.baseline, dtype=np.float64)) / np.where(gain == 0, 200.0, gain)  # WFDB default
        sig[d == -32768] = np.nan  # the format-16 missing-sample value, as wfdb.rdrecord gives it
        return sig.T
    try:
        rec = wfdb.rdrecord(str(base), physical=True)
    except Exception as e:
        raise RecordError(base.parent / files[0], f"unreadable signal file: {type(e).__name__}: {e}") from e
    sig = rec.p_signal
    if sig is None or sig.shape != (sig_len, header.n_sig):
        raise RecordError(
            base.parent / files[0], f"signal shape {None if sig is None else sig.shape} != ({sig_len}, {header.n_sig})"
        )
    return np.asarray(sig, dtype=np.float64).T


def _read_challenge_mat(path: Path, header: Any, sig_len: int) -> np.ndarray:
    """CinC Challenge ``.mat``: variable ``val`` (n_sig, T) int16 ADC units; mV = (val - baseline) / gain."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as e:
        raise RecordError(path, f"unreadable or truncated .mat signal file: {type(e).__name__}: {e}") from e
    if "val" not in mat:
        raise RecordError(
            path, f".mat file has no 'val' variable (found {sorted(k for k in mat if not k.startswith('__'))})"
        )
    val = np.asarray(mat["val"])
    if val.shape != (header.n_sig, sig_len):
        raise RecordError(path, f"'val' has shape {val.shape}, header implies ({header.n_sig}, {sig_len}) (truncated?)")
    gain = np.asarray([g if g else 200.0 for g in header.adc_gain], dtype=np.float64)[:, None]  # WFDB default gain 200
    baseline = np.asarray(header.baseline if header.baseline is not None else [0] * header.n_sig, dtype=np.float64)[
        :, None
    ]
    phys = (val.astype(np.float64) - baseline) / gain
    if val.dtype == np.int16:  # WFDB format 16 marks missing samples with -32768 (as wfdb does for .dat)
        phys[val == -32768] = np.nan
    return phys


def parse_header_comments(comments: Iterable[str]) -> dict[str, str]:
    """``['Age: 84', 'Dx: 1,2']`` -> ``{'age': '84', 'dx': '1,2'}`` (keys lower-case)."""
    out: dict[str, str] = {}
    for c in comments:
        c = c.strip().lstrip("#").strip()
        if ":" in c:
            k, v = c.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return out


def split_codes(dx: str | None) -> list[str]:
    """``'164889003, 59118001'`` -> ``['164889003', '59118001']`` (exact codes, order kept, no empties)."""
    if clean_text(dx) is None:
        return []
    return [c.strip() for c in str(dx).split(",") if c.strip()]


def parse_age(v: str | None) -> float | None:
    try:
        t = clean_text(v)
        a = float(t) if t is not None and t.lower() != "unknown" else None
    except ValueError:
        return None
    return None if a is None or np.isnan(a) else a


def parse_sex(v: str | None) -> str | None:
    s = (clean_text(v) or "").lower()
    return {"male": "M", "m": "M", "female": "F", "f": "F", "0": "M", "1": "F"}.get(s)
