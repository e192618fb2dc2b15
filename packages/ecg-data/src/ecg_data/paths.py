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
    """Yield a temporary path in the same directory; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
