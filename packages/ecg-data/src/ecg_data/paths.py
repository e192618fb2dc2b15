"""Where files go, and atomic writes.

Caches live under ``$ECG_CACHE`` (default ``~/.cache/ecglang-bench``), never inside the repository.
Every result or cache file is written to a temporary sibling and renamed, so a crash never leaves a
half-written file that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """``$ECG_CACHE`` or ``~/.cache/ecglang-bench``."""
    return Path(os.environ.get("ECG_CACHE", Path.home() / ".cache" / "ecglang-bench")).expanduser()


def data_root(dataset_dir: str) -> Path | None:
    """``$ECG_DATA_ROOT/<dataset_dir>`` when ECG_DATA_ROOT is set, else None."""
    base = os.environ.get("ECG_DATA_ROOT")
    return Path(base).expanduser() / dataset_dir if base else None


def stable_hash(obj: Any, n: int = 16) -> str:
    """Short sha256 of a JSON-serialisable object (keys sorted), for content-addressed cache keys."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def file_hash(path: str | Path, n: int = 16, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:n]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same directory; rename it onto ``path`` only if the block succeeds.

    A failed write (a full disk, a file-size limit, a read-only directory) leaves no file behind and is re-raised
    as an ``OSError`` naming ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OSError(err.errno, f"cannot write {path}: {err.strerror or err}") from err
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as err:
        if str(path) in str(err):
            raise
        raise OSError(err.errno, f"cannot write {path}: {err.strerror or err}") from err
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def exclusive_lock(lock_path: str | Path, waiting: str | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if needed) for the block; another process asking for
    the same lock waits (``waiting`` is logged once when it has to). The kernel drops the lock when its holder
    dies, so a killed process never leaves a stale lock. Local file systems (flock on NFS depends on the mount)."""
    import fcntl
    import logging

    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                logging.getLogger("ecg_data").info("%s", waiting)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
