"""The record cache: a one-time conversion of a split into a memory-mapped array plus an index.

Why: training and evaluation must not parse WFDB files per item (that is what makes the original
loaders slow). ``build_cache`` converts a split once — in parallel, with a progress bar, resumable —
into ``signals.npy`` (N, 12, L) that ``np.load(mmap_mode="r")`` maps without reading it, plus
``index.csv`` (one row per kept record) and ``qc.csv`` (every skipped record and why).

Layout of ``cache_root()/records/<key>/`` (key = reader name + version + fingerprint + preset key +
hash of the record ids, so a changed reader, dataset or preprocessing never reads a stale cache):

- ``signals.partial.npy`` while building, renamed to ``signals.npy`` when done;
- ``parts/chunk-NNNNNN.json``: index and QC rows of each finished chunk;
- ``progress.json``: chunks done and rows written (updated atomically after each chunk; a rerun
  continues from there);
- ``index.csv``, ``qc.csv``, ``meta.json``; and ``complete.json``, written last and atomically: only
  its presence makes a cache usable.

Memory does not grow with the number of records: rows are written to the file with positioned writes
as chunks finish (no mapping of the output while building, so pages do not accumulate in the process),
at most ``2 * workers`` chunks are in flight, and the index is streamed to ``index.csv`` chunk by chunk.

Storage: ``float32`` (the original format) or ``float16`` (half the disk and half the bytes per batch;
``storage="auto"`` picks float16 from ``AUTO_FLOAT16_MIN_RECORDS`` records on, i.e. for MIMIC-IV-ECG).
Normalisation is baked in (default) or, with ``normalize="device"``, left to the loader, which
applies the preset's last step per batch on the device (``Preset.split_normalization``).

A preset ending in a train-fitted step (``TrainStandardScaler``) is resolved per task: ``resolve_preset`` builds the
task's train split with the chain before it, fits the statistics there (stored beside that cache as
``fitted-<key>.json``) and returns the preset with a fitted ``Standardize``; ``cached_split`` then serves every split
from the shared cache of the chain before it and applies the fitted step per batch.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ecg_data.paths import atomic_write_json, atomic_write_text, cache_root, stable_hash
from ecg_data.preprocess import Preset, Standardize, get_preset
from ecg_data.readers.base import clean_text, object_series
from ecg_data.record import LEADS, RecordError

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # the layout; the storage dtype is in meta.json and in the key (float32 keys are unchanged)
DEFAULT_CHUNK = 64
#: Storage dtypes of ``signals.npy``.
STORAGE_DTYPES = ("float32", "float16")
_F32_LE = np.dtype("<f4")  # the default row dtype of _shrink_npy
#: ``storage="auto"`` stores float16 from this many records on (100k x 12 x 5000 float32 = 24 GB).
AUTO_FLOAT16_MIN_RECORDS = 100_000
#: Seconds between progress log lines (records, rate, ETA) during a build, for logs without a terminal.
PROGRESS_LOG_SECONDS = 60.0
INDEX_COLUMNS = [
    "row", "record_id", "patient_id", "report", "codes",
    "fs_raw", "n_samples_raw", "n_samples_before_croppad", "padded", "cropped",
]  # fmt: skip

#: Test hook: called in the main process after each chunk is committed (chunk number). Used to simulate a crash.
_after_chunk_hook: Callable[[int], None] | None = None


class CacheError(Exception):
    """A cache directory is missing, incomplete or inconsistent; the message names it."""


class CorruptCacheError(CacheError):
    """``signals.npy`` differs from the size or sha256 recorded in ``meta.json`` when it was built."""


#: ``signals.npy`` up to this size is re-hashed (sha256) the first time a process opens it; larger ones get the
#: size check only (a full pass over e.g. MIMIC-IV-ECG's ~100 GB would cost minutes per process)
VERIFY_MAX_BYTES = int(os.environ.get("ECG_CACHE_VERIFY_MAX_BYTES", str(2 << 30)))
_VERIFIED: set[tuple[str, int, int]] = set()


def _verify_signals(path: Path, meta: dict[str, Any]) -> None:
    """Check ``signals.npy`` against the size and sha256 recorded at build time (caches from before: no record)."""
    from ecg_data.integrity import sha256_file

    f = path / "signals.npy"
    want_size, want_sha = meta.get("signals_bytes"), meta.get("signals_sha256")
    if want_size is None:
        return
    st = f.stat()
    if st.st_size != int(want_size):
        raise CorruptCacheError(f"{f}: {st.st_size} bytes, {want_size} were written (truncated or changed)")
    key = (str(f), st.st_size, st.st_mtime_ns)
    if want_sha and st.st_size <= VERIFY_MAX_BYTES and key not in _VERIFIED:
        if sha256_file(f) != want_sha:
            raise CorruptCacheError(f"{f}: sha256 differs from the one recorded in meta.json when it was built")
        _VERIFIED.add(key)


# --- keys --------------------------------------------------------------------------------------------------


def resolve_storage(storage: str, n_records: int) -> str:
    """``"auto"`` -> float16 for large datasets (``AUTO_FLOAT16_MIN_RECORDS``), else float32; checks the name."""
    if storage == "auto":
        return "float16" if n_records >= AUTO_FLOAT16_MIN_RECORDS else "float32"
    if storage not in STORAGE_DTYPES:
        raise ValueError(f"cache storage must be 'auto' or one of {STORAGE_DTYPES}, got {storage!r}")
    return storage


def cache_key(reader: Any, record_ids: Sequence[str], preset: Preset, storage: str = "float32") -> str:
    """reader name + version + fingerprint + preset key + hash of the record ids (order matters: it is the row
    order) + storage dtype. float32 keeps the key it had before storage dtypes existed, so old caches are reused."""
    parts: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "reader": reader.name,
        "version": reader.version,
        "fingerprint": reader.fingerprint(),
        "preset": preset.key(),
        "ids": stable_hash([str(r) for r in record_ids], n=32),
    }
    storage = resolve_storage(storage, len(record_ids))
    if storage != "float32":
        parts["storage"] = storage
    return stable_hash(parts, n=20)


def cache_dir_for(
    reader: Any, record_ids: Sequence[str], preset: Preset, out_dir: str | Path | None = None, storage: str = "float32"
) -> Path:
    base = Path(out_dir) if out_dir is not None else cache_root() / "records"
    storage = resolve_storage(storage, len(record_ids))
    tag = "" if storage == "float32" else f"{storage}-"
    return base / f"{reader.name}-{preset.name}-{tag}{cache_key(reader, record_ids, preset, storage)}"


# --- the cached split ----------------------------------------------------------------------------------------


@dataclass
class CachedSplit:
    """A finished cache: ``signals`` (N, 12, L) memmap, ``index`` (N rows), ``qc`` (skipped records).

    ``signals`` is the stored array (float32 or float16; before normalisation when ``normalizer`` is set).
    ``batch(rows)`` and ``split[i]`` give float32, normalised, for CPU consumers; training loaders move the
    stored rows to the device and convert there (``ecg_data.loader``).
    """

    path: Path
    signals: np.ndarray
    index: pd.DataFrame
    qc: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    normalizer: Any = None  # the preset's last step when built with normalize="device"; not stored in the cache

    @classmethod
    def open(cls, path: str | Path, normalizer: Any = None) -> CachedSplit:
        path = Path(path)
        if not (path / "complete.json").is_file():
            raise CacheError(f"{path}: not a finished cache (no complete.json); rebuild it with build_cache")
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        if int(meta.get("format", 0)) > CACHE_FORMAT:
            raise CacheError(f"{path}: cache format {meta.get('format')} is newer than this ecg-data reads "
                             f"({CACHE_FORMAT}); upgrade ecg-data or delete the directory to rebuild it")  # fmt: skip
        _verify_signals(path, meta)
        signals = np.load(path / "signals.npy", mmap_mode="r")
        storage = meta.get("storage", "float32")  # caches from before storage dtypes are float32
        if storage not in STORAGE_DTYPES or signals.dtype != np.dtype(storage):
            raise CacheError(f"{path}: signals.npy is {signals.dtype}, meta.json says {storage!r} "
                             f"(readable: {STORAGE_DTYPES}); delete the directory to rebuild it")  # fmt: skip
        index = _read_index(path / "index.csv")
        qc = pd.read_csv(path / "qc.csv", dtype=str, keep_default_na=False)
        if signals.shape[0] != len(index):
            raise CacheError(f"{path}: signals.npy has {signals.shape[0]} rows but index.csv {len(index)}")
        return cls(path=path, signals=signals, index=index, qc=qc, meta=meta, normalizer=normalizer)

    @property
    def storage(self) -> str:
        return str(self.signals.dtype)

    @property
    def record_ids(self) -> list[str]:
        return self.index["record_id"].tolist()

    @property
    def fs(self) -> float:
        return float(self.meta["preset"]["fs"])

    @property
    def length(self) -> int:
        return int(self.signals.shape[-1])

    def __len__(self) -> int:
        return int(self.signals.shape[0])

    def __getitem__(self, i: int | slice | Sequence[int] | np.ndarray) -> np.ndarray:
        """Row ``i`` (12, L), or rows (a slice or index array: (B, 12, L)), as writable float32, normalised.

        Why: consumers index a split like an array (``split[rows]``) and get what the model takes, whatever
        the storage (float16) or normalisation mode; ``split.signals`` is the raw stored array."""
        if isinstance(i, (int, np.integer)):
            return self.batch([int(i)])[0]
        return self.batch(i)

    def batch(self, rows: Sequence[int] | slice) -> np.ndarray:
        """Rows as float32 (B, 12, L), normalised when the cache holds pre-normalisation signals: one gather."""
        x = np.asarray(self.signals[rows] if isinstance(rows, slice) else self.signals[np.asarray(rows)], np.float32)
        x = np.array(x, copy=True) if not x.flags.writeable else x
        if self.normalizer is None:
            return x
        import torch

        return self.normalizer.batch(torch.from_numpy(x)).numpy()


def _read_index(path: Path) -> pd.DataFrame:
    df = pd.read_csv(
        path,
        dtype={"record_id": str, "patient_id": str, "report": str, "codes": str},
        keep_default_na=False,
        na_values={"patient_id": [""], "report": [""]},
    )
    df["codes"] = [json.loads(c) if c else [] for c in df["codes"]]
    for col in ("patient_id", "report"):
        df[col] = object_series((clean_text(v) for v in df[col]), df.index)
    df["padded"] = df["padded"].astype(bool)
    df["cropped"] = df["cropped"].astype(bool)
    return df


# --- conversion ----------------------------------------------------------------------------------------------

_WORKER_STATE: dict[str, Any] = {}


def _init_worker(reader: Any, preset: Preset, storage: str = "float32") -> None:
    _WORKER_STATE["reader"] = reader
    _WORKER_STATE["preset"] = preset
    _WORKER_STATE["storage"] = np.dtype(storage)


def _convert_chunk(ids: Sequence[str]) -> tuple[np.ndarray, list[dict[str, Any]], list[dict[str, str]]]:
    """Read + preprocess one chunk; a RecordError skips the record into the QC rows, anything else is a bug and raises."""
    reader, preset, dtype = _WORKER_STATE["reader"], _WORKER_STATE["preset"], _WORKER_STATE["storage"]
    arrays: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    qc: list[dict[str, str]] = []
    for rid in ids:
        try:
            rec = reader.read(rid)
            x, info = preset.apply_with_info(rec)
            x = _to_storage(x, dtype, rec.meta.get("path", f"record {rid}"))
        except RecordError as e:
            qc.append({"record_id": str(rid), "reason": e.problem, "path": e.path})
            continue
        arrays.append(x)
        rows.append(
            {
                "record_id": str(rid),
                "patient_id": None if rec.patient_id is None else str(rec.patient_id),
                "report": rec.report,
                "codes": json.dumps(list(rec.codes)),
                **asdict(info),
            }
        )
    out = np.stack(arrays) if arrays else np.zeros((0, len(LEADS), preset.length), dtype)
    return out, rows, qc


def _to_storage(x: np.ndarray, dtype: np.dtype, source: str) -> np.ndarray:
    """Cast to the storage dtype; a value float16 cannot hold (|x| > 65504) is a RecordError, not an Inf."""
    if x.dtype == dtype:
        return x
    with np.errstate(over="ignore"):
        y = x.astype(dtype)
    if not np.isfinite(y).all():
        raise RecordError(source, f"value out of {dtype} range: max |x| = {float(np.abs(x).max()):.4g}")
    return y


def _chunks(ids: Sequence[str], size: int) -> list[list[str]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def _ordered_results(
    chunks: list[list[str]], start: int, workers: int, reader: Any, preset: Preset, storage: str = "float32"
) -> Iterator[tuple[int, tuple[np.ndarray, list[dict[str, Any]], list[dict[str, str]]]]]:
    """Yield (chunk number, result) in order, with at most 2 * workers chunks in flight."""
    if workers <= 1:
        _init_worker(reader, preset, storage)
        for c in range(start, len(chunks)):
            yield c, _convert_chunk(chunks[c])
        return
    init = (reader, preset, storage)
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=init) as pool:
        pending: dict[int, Future[Any]] = {}
        nxt = start
        try:
            for c in range(start, len(chunks)):
                while nxt < len(chunks) and len(pending) < 2 * workers:
                    pending[nxt] = pool.submit(_convert_chunk, chunks[nxt])
                    nxt += 1
                yield c, pending.pop(c).result()
        finally:
            for f in pending.values():
                f.cancel()


def _npy_header_len(path: Path) -> int:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(f)
        else:
            np.lib.format.read_array_header_2_0(f)
        return f.tell()


def _shrink_npy(path: Path, n_rows: int, row_shape: tuple[int, ...], dtype: np.dtype = _F32_LE) -> None:
    """Rewrite the .npy header in place to ``n_rows`` and truncate the file: O(1), no copy of the data."""
    offset = _npy_header_len(path)
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
    prefix = 10 if version == (1, 0) else 12
    header = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n_rows, *row_shape)})
    room = offset - prefix - 1
    if len(header) > room:
        raise CacheError(f"{path}: header does not fit after shrinking (internal error)")
    with open(path, "r+b") as f:
        f.seek(prefix)
        f.write((header + " " * (room - len(header)) + "\n").encode("latin1"))
        f.truncate(offset + n_rows * int(np.prod(row_shape)) * dtype.itemsize)


def build_cache(
    reader: Any,
    record_ids: Sequence[str],
    preset: str | Preset,
    *,
    out_dir: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
    storage: str = "auto",
    normalize: str = "baked",
) -> CachedSplit:
    """Convert ``record_ids`` of ``reader`` with ``preset`` into a cache (or open the finished one).

    Records whose read or preprocessing raises ``RecordError`` are skipped, counted, listed in
    ``qc.csv`` and reported in the logged summary; any other exception aborts the build, which a
    rerun resumes from the last finished chunk. ``workers`` defaults to ``min(4, cpu_count)``.
    ``storage``: ``"float32"``, ``"float16"`` or ``"auto"`` (float16 from ``AUTO_FLOAT16_MIN_RECORDS``
    records). ``normalize``: ``"baked"`` (stored normalised) or ``"device"`` (stored before the preset's
    last per-record normalisation, which ``CachedSplit.normalizer`` then holds for the loader; melp, merl
    and esi share the ``raw500`` cache this way).
    """
    preset = get_preset(preset)
    if normalize not in ("baked", "device"):
        raise ValueError(f"normalize must be 'baked' or 'device', got {normalize!r}")
    if preset.fit_step() is not None:
        raise ValueError(
            f"preset {preset.name} has a train-fitted step: it depends on a task's train split; use "
            f"cached_split(task, ...) or resolve_preset(task, preset) first"
        )
    preset, normalizer = preset.split_normalization() if normalize == "device" else (preset, None)
    record_ids = [str(r) for r in record_ids]
    if not record_ids:
        raise ValueError(f"build_cache({reader.name}, {preset.name}): no record ids given")
    if len(set(record_ids)) != len(record_ids):
        raise ValueError(f"build_cache({reader.name}, {preset.name}): duplicate record ids")
    storage = resolve_storage(storage, len(record_ids))
    path = cache_dir_for(reader, record_ids, preset, out_dir, storage)
    if (path / "complete.json").is_file():
        try:
            return CachedSplit.open(path, normalizer)
        except CorruptCacheError as err:
            log.warning("%s; rebuilding it", err)
    path.mkdir(parents=True, exist_ok=True)
    with _exclusive(path / ".lock"):  # e.g. several DDP ranks asking for the same split: one builds, the others wait
        if (path / "complete.json").is_file():
            try:
                return CachedSplit.open(path, normalizer)
            except CorruptCacheError:  # a corrupt cache is rebuilt, never used
                (path / "complete.json").unlink()
        _build(reader, record_ids, preset, path, workers, progress, chunk_size, storage)
        return CachedSplit.open(path, normalizer)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build(
    reader: Any, record_ids: list[str], preset: Preset, path: Path, workers: int | None, progress: bool,
    chunk_size: int, storage: str = "float32",
) -> None:  # fmt: skip
    workers = min(4, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    parts = path / "parts"
    parts.mkdir(exist_ok=True)
    partial = path / "signals.partial.npy"
    n_total, row_shape = len(record_ids), (len(LEADS), int(preset.length))
    dtype = np.dtype(storage).newbyteorder("<")
    row_bytes = int(np.prod(row_shape)) * dtype.itemsize

    state = _load_progress(path, chunk_size, n_total)
    if state is None or not partial.is_file():
        for p in parts.glob("chunk-*.json"):
            p.unlink()
        mm = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=(n_total, *row_shape))
        del mm  # only the header and the file size; rows are written with positioned writes below
        state = {"chunks_done": 0, "rows": 0, "chunk_size": chunk_size, "n_total": n_total}
        atomic_write_json(path / "progress.json", state)
    elif state["chunks_done"]:
        log.info("resuming cache %s at chunk %d (%d rows written)", path, state["chunks_done"], state["rows"])
    offset = _npy_header_len(partial)

    chunks = _chunks(record_ids, chunk_size)
    done_records = min(n_total, state["chunks_done"] * chunk_size)
    bar = tqdm(
        total=n_total, initial=done_records, disable=not progress, unit="rec",
        desc=f"cache {reader.name}/{preset.name}",
    )  # fmt: skip
    rows_written = int(state["rows"])
    eta = _EtaLog(f"cache {reader.name}/{preset.name}", n_total, done_records)
    fd = os.open(partial, os.O_RDWR)
    try:
        for c, (arr, rows, qc) in _ordered_results(chunks, state["chunks_done"], workers, reader, preset, storage):
            if len(arr):
                _pwrite_all(fd, np.ascontiguousarray(arr, dtype=dtype), offset + rows_written * row_bytes)
            for k, row in enumerate(rows):
                row["row"] = rows_written + k
            os.fsync(fd)
            atomic_write_json(parts / f"chunk-{c:06d}.json", {"index": rows, "qc": qc})
            rows_written += len(rows)
            atomic_write_json(
                path / "progress.json",
                {"chunks_done": c + 1, "rows": rows_written, "chunk_size": chunk_size, "n_total": n_total},
            )
            bar.update(len(chunks[c]))
            eta.update(len(chunks[c]))
            if _after_chunk_hook is not None:
                _after_chunk_hook(c)
    finally:
        os.close(fd)
        bar.close()

    _finalise(path, reader, preset, record_ids, len(chunks), rows_written, row_shape, storage)


class _EtaLog:
    """Progress as log lines (records, rate, ETA) every ``PROGRESS_LOG_SECONDS``: the tqdm bar is lost in batch logs."""

    def __init__(self, what: str, total: int, done: int) -> None:
        self.what, self.total, self.done, self.start_done = what, total, done, done
        self.t0 = self.last = time.monotonic()

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last < PROGRESS_LOG_SECONDS or self.done >= self.total:
            return
        self.last = now
        rate = (self.done - self.start_done) / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        log.info("%s: %d of %d records, %.0f records/s, ETA %s", self.what, self.done, self.total, rate,
                 time.strftime("%H:%M:%S", time.gmtime(eta)) if eta < 86400 * 30 else "unknown")  # fmt: skip


def _pwrite_all(fd: int, arr: np.ndarray, pos: int) -> None:
    """Write the array's bytes at ``pos`` (looping: pwrite may write less than asked)."""
    view = memoryview(arr).cast("B")
    while view:
        n = os.pwrite(fd, view, pos)
        view, pos = view[n:], pos + n


def _load_progress(path: Path, chunk_size: int, n_total: int) -> dict[str, Any] | None:
    """The saved progress if it belongs to this build (same chunking and size), else None (start over)."""
    try:
        state = json.loads((path / "progress.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if state.get("chunk_size") != chunk_size or state.get("n_total") != n_total:
        log.warning("cache %s: progress marker from a different chunking; starting over", path)
        return None
    return state


def _finalise(
    path: Path, reader: Any, preset: Preset, record_ids: list[str], n_chunks: int, n_rows: int,
    row_shape: tuple[int, ...], storage: str = "float32",
) -> None:  # fmt: skip
    """index.csv streamed chunk by chunk (memory flat in N), qc.csv, the shrunk signals.npy, meta, complete.json."""
    qc_rows: list[dict[str, str]] = []
    n_index, padded, cropped = 0, 0, 0
    with_tmp = path / ".index.csv.tmp"
    with open(with_tmp, "w", encoding="utf-8", newline="") as f:
        for c in range(n_chunks):
            part = json.loads((path / "parts" / f"chunk-{c:06d}.json").read_text(encoding="utf-8"))
            rows = pd.DataFrame(part["index"], columns=INDEX_COLUMNS)
            rows.to_csv(f, index=False, header=c == 0, lineterminator="\n")
            n_index += len(rows)
            padded += int(rows["padded"].astype(bool).sum())
            cropped += int(rows["cropped"].astype(bool).sum())
            qc_rows += part["qc"]  # skipped records only: few
        f.flush()
        os.fsync(f.fileno())
    if n_index != n_rows or n_index + len(qc_rows) != len(record_ids):
        raise CacheError(
            f"{path}: {n_index} kept + {len(qc_rows)} skipped != {len(record_ids)} records "
            f"(or != {n_rows} rows written); delete the directory and rebuild"
        )
    os.replace(with_tmp, path / "index.csv")
    qc = pd.DataFrame(qc_rows, columns=["record_id", "reason", "path"])
    atomic_write_text(path / "qc.csv", qc.to_csv(index=False))

    _shrink_npy(path / "signals.partial.npy", n_rows, row_shape, np.dtype(storage).newbyteorder("<"))
    os.replace(path / "signals.partial.npy", path / "signals.npy")
    from ecg_data.integrity import sha256_file

    signals_sha256, signals_bytes = sha256_file(path / "signals.npy"), (path / "signals.npy").stat().st_size

    reasons = Counter(_reason_class(r) for r in qc["reason"])
    summary = {
        "records": len(record_ids),
        "written": n_rows,
        "skipped": len(qc_rows),
        "skipped_by_reason": dict(reasons),
        "padded": padded,
        "cropped": cropped,
    }
    meta = {
        "format": CACHE_FORMAT,
        "storage": storage,
        "reader": {"name": reader.name, "version": reader.version, "fingerprint": reader.fingerprint()},
        "preset": preset.spec() | {"key": preset.key(), "source": preset.source},
        "ids_hash": stable_hash(record_ids, n=32),
        "shape": [n_rows, *row_shape],
        "summary": summary,
        "signals_bytes": signals_bytes,  # checked whenever the cache is opened
        "signals_sha256": signals_sha256,  # checked on first open per process (up to VERIFY_MAX_BYTES)
    }
    atomic_write_json(path / "meta.json", meta)
    atomic_write_json(path / "complete.json", {"format": CACHE_FORMAT, "rows": n_rows})
    shutil.rmtree(path / "parts", ignore_errors=True)
    (path / "progress.json").unlink(missing_ok=True)
    log.info("%s", format_summary(reader.name, preset.name, summary, path))


def _reason_class(reason: str) -> str:
    """Group QC reasons for the summary: the text before the first ':' (details such as counts follow it)."""
    return reason.split(":", 1)[0].strip() or reason


def format_summary(reader_name: str, preset_name: str, summary: dict[str, Any], path: Path | str) -> str:
    by_reason = ", ".join(f"{k}: {v}" for k, v in sorted(summary["skipped_by_reason"].items())) or "none"
    return (
        f"cache {reader_name}/{preset_name}: {summary['written']} of {summary['records']} records written, "
        f"{summary['skipped']} skipped ({by_reason}); {summary['padded']} padded, {summary['cropped']} cropped "
        f"-> {path}"
    )


def cached_split(task: Any, split: str, preset: str | Preset, **kw: Any) -> CachedSplit:
    """The cache of ``task.splits[split]`` (built on first use); QC-skipped records are absent from ``.index``.

    A preset with a train-fitted step is first fitted on this task's train split (``resolve_preset``); the split is
    then stored without that step and ``.normalizer`` applies it (``normalize="device"`` unless the caller says)."""
    if split not in task.splits:
        raise KeyError(f"task {task.name} has no split {split!r}; splits: {', '.join(task.splits)}")
    preset = get_preset(preset)
    if preset.fit_step() is not None:
        preset = resolve_preset(task, preset, **{k: v for k, v in kw.items() if k in _FIT_BUILD_KW})
        kw.setdefault("normalize", "device")
    return build_cache(task.reader(), task.splits[split], preset, **kw)


#: ``build_cache`` options that also apply to the train-split cache a fitted step is computed on.
_FIT_BUILD_KW = ("out_dir", "workers", "progress", "chunk_size", "storage")
#: Bump when the fitting (what is pooled, how) changes: part of every fitted step's ``fitted_on``.
FIT_VERSION = 1
#: Fitted steps already resolved in this process: (cache base directory, fitted_on) -> Standardize.
_FITTED: dict[tuple[str, str], Standardize] = {}


def fit_key(task: Any, preset: str | Preset, storage: str = "auto") -> str:
    """What a preset's train-fitted step is fitted on, as a hash: the fit split's cache key (reader, fingerprint,
    record ids, the chain before the step, storage), the step and ``FIT_VERSION``. No data is read.

    Why a hash of the inputs rather than only the numbers: a changed train split (or reader, or chain) must give a
    new preset key even where the statistics would come out the same."""
    preset = get_preset(preset)
    step = preset.fit_step()
    if step is None:
        raise ValueError(f"preset {preset.name} has no train-fitted step")
    if step.fit_split not in task.splits:
        raise KeyError(f"task {task.name} has no split {step.fit_split!r} to fit preset {preset.name} on")
    ids = [str(r) for r in task.splits[step.fit_split]]
    stored = preset.without_last()
    key = cache_key(task.reader(), ids, stored, resolve_storage(storage, len(ids)))
    return stable_hash({"cache": key, "step": step.spec(), "fit_version": FIT_VERSION}, n=20)


def resolve_preset(
    task: Any,
    preset: str | Preset,
    *,
    out_dir: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
    storage: str = "auto",
) -> Preset:
    """``preset`` as it applies to ``task``: unchanged without a train-fitted step; otherwise with that step fitted on
    the task's train split (never val or test) and replaced by ``Standardize(mean, std, fitted_on=fit_key(...))``.

    The fit split is cached with the chain before the step (``Preset.without_last``; for heartlang-ptbxl that is
    ``raw100``, shared with other users); the statistics go to ``fitted-<fit_key>.json`` in that cache directory and
    are read back from there (and memoised in the process) afterwards."""
    preset = get_preset(preset)
    step = preset.fit_step()
    if step is None:
        return preset
    fkey = fit_key(task, preset, storage)
    memo = (str(out_dir if out_dir is not None else cache_root()), fkey)
    if memo not in _FITTED:
        ids = [str(r) for r in task.splits[step.fit_split]]
        train = build_cache(
            task.reader(),
            ids,
            preset.without_last(),
            out_dir=out_dir,
            workers=workers,
            progress=progress,
            chunk_size=chunk_size,
            storage=storage,
        )
        stats_path = train.path / f"fitted-{fkey}.json"
        if stats_path.is_file():
            stats = json.loads(stats_path.read_text(encoding="utf-8"))
            fitted = Standardize(mean=float(stats["mean"]), std=float(stats["std"]), fitted_on=fkey)
        else:
            batches = (train.batch(slice(i, i + 256)) for i in range(0, len(train), 256))
            fitted, n_values = step.fit(batches, fitted_on=fkey)
            atomic_write_json(stats_path, {
                "mean": fitted.mean, "std": fitted.std, "fitted_on": fkey, "fit_version": FIT_VERSION,
                "step": step.spec(), "preset": preset.name, "task": getattr(task, "name", None),
                "fit_split": step.fit_split, "n_records": len(train), "n_values": n_values,
                "ids_hash": stable_hash(ids, n=32), "stored_preset": train.meta["preset"]["name"],
            })  # fmt: skip
        _FITTED[memo] = fitted
    return preset.with_fitted(_FITTED[memo])
