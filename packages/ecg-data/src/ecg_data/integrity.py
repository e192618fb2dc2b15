"""What the suite reads runs no code, and is what it wrote.

Two guarantees for every file the suite reads back (docs/reliability.md):

- **No code runs from a file.** A PyTorch/Lightning checkpoint is a pickle, and a pickle can call any function
  while it is read. :func:`safe_torch_load` reads with ``torch.load(weights_only=True)``, which builds only tensors,
  plain containers and the types in :data:`SAFE_GLOBALS`; anything else is refused with an
  :class:`UntrustedFileError` that names the file and the offending type. A dotted path a file names for the code
  to call (a checkpoint's class, a component ``_target_``) is checked by :func:`check_file_targets`. The one
  escape hatch is ``ECGBENCH_ALLOW_PICKLE=<file>[:<file>...]``: the files a user names there as trusted are read
  with a full unpickle, and each such read is logged as a warning.
- **A file is used only if it is the file that was written.** :func:`write_checksum` records a sha256 and size
  beside a file (``<name>.sha256``) when it is written; :func:`verify_checksum` compares before use and raises
  :class:`CorruptFileError` (callers rebuild or refuse). Files written before checksums existed have no record and
  are read as before.

The one implementation of these checks; every package that reads checkpoints, caches or result files uses it.
"""

from __future__ import annotations

import argparse
import enum
import hashlib
import logging
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

log = logging.getLogger("ecg_data.integrity")

ALLOW_PICKLE_ENV = "ECGBENCH_ALLOW_PICKLE"

#: Types a checkpoint may hold beyond torch's own weights-only set (tensors, dtypes, sizes, dict/OrderedDict,
#: list, tuple, set, str, bytes, int, float, complex, bool, None). Measured on the Lightning checkpoints of all
#: five methods (2026-12-07): nothing else -- hyperparameters are converted to plain data when they are saved
#: (:func:`to_plain`). ``argparse.Namespace`` is a plain attribute bag: the ``args`` entry of released
#: timm/BEiT-style checkpoints (HeartLang's).
SAFE_GLOBALS: tuple[type, ...] = (argparse.Namespace,)

#: Top-level packages whose callables a file may name (a checkpoint's class, a component ``_target_``).
PROJECT_PACKAGES: tuple[str, ...] = ("ecg_data", "ecg_encoders", "ecg_text_align", "ecg_eval", "baselines")


class IntegrityError(Exception):
    """A file the suite reads cannot be trusted: it would run code, or it is not what was written."""


class UntrustedFileError(IntegrityError):
    """A file holds more than tensors and plain data, or names code outside the project to call."""


class CorruptFileError(IntegrityError):
    """A file differs from the checksum recorded when it was written (truncated, bit-flipped, replaced)."""


# ----- no code from a file ------------------------------------------------------------------------------------------
def trusted_files() -> set[Path]:
    """The files named in ``$ECGBENCH_ALLOW_PICKLE`` (``os.pathsep``-separated), resolved."""
    raw = os.environ.get(ALLOW_PICKLE_ENV, "")
    return {Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()}


def is_trusted(path: str | Path) -> bool:
    """True when the user named ``path`` in ``$ECGBENCH_ALLOW_PICKLE``; logged, since it allows a full unpickle."""
    p = Path(path).expanduser().resolve()
    if p in trusted_files():
        log.warning("%s: read with a full unpickle (not weights-only): %s names it as trusted", path, ALLOW_PICKLE_ENV)
        return True
    return False


_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL|Trying to load unsupported GLOBAL)\s+([\w.]+)")


def _offending(err: BaseException) -> str:
    text = str(err)
    m = _GLOBAL.search(text)
    if m:
        return f"it holds {m.group(1)!r}, which is not plain data"
    first = (text.strip().splitlines() or [type(err).__name__])[0]
    return first[:200]


def safe_torch_load(
    path: str | Path, *, map_location: Any = "cpu", mmap: bool = False, extra_globals: Iterable[type] = ()
) -> Any:
    """``torch.load(path, weights_only=True)`` with :data:`SAFE_GLOBALS`; refuse anything else in one line.

    A file the user named in ``$ECGBENCH_ALLOW_PICKLE`` is read with a full unpickle instead (logged).
    Raises :class:`UntrustedFileError` (arbitrary objects) or :class:`CorruptFileError` (not a readable file).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if is_trusted(path):
        return torch.load(path, map_location=map_location, mmap=mmap, weights_only=False)
    try:
        with torch.serialization.safe_globals([*SAFE_GLOBALS, *extra_globals]):
            return torch.load(path, map_location=map_location, mmap=mmap, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UntrustedFileError(
            f"{path}: refused to load: {_offending(err)} (a checkpoint is read with weights_only=True, so a file "
            f"cannot run code); if you trust this file, set {ALLOW_PICKLE_ENV}={path.resolve()}"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise CorruptFileError(
            f"{path}: not a readable checkpoint (truncated or corrupt?): {_offending(err)}"
        ) from None


def to_plain(obj: Any, where: str = "") -> Any:
    """``obj`` as tensors and plain data only (what :func:`safe_torch_load` reads back): mappings -> dict, lists and
    other sequences -> list (tuples stay tuples), paths -> str, numpy scalars/arrays -> Python numbers/lists,
    enums -> their value. Config objects (OmegaConf's DictConfig/ListConfig are a Mapping/Sequence) become dicts
    and lists. Anything else is kept as its ``str`` and logged.

    Not the runner's config conversion (``benchmarks.pipeline.store.plain``, which resolves Hydra interpolations and
    fails on nothing): this one makes a *checkpoint* safe to read with ``weights_only=True`` (tensors kept, numpy,
    paths and enums converted, anything unknown stringified rather than pickled), whatever a module's hyperparameters
    hold, so it has its own job and stays."""
    import numpy as np
    import torch

    if obj is None or isinstance(
        obj, (bool, int, float, complex, str, bytes, torch.Tensor, torch.dtype, torch.device, torch.Size)
    ):
        return obj
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value, where)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Mapping):
        return {to_plain(k, where): to_plain(v, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj))
    if isinstance(obj, (list, tuple, set, frozenset)) or (
        hasattr(obj, "__iter__") and hasattr(obj, "__len__") and hasattr(obj, "__getitem__")
    ):
        return [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    log.warning("%s: %s is not plain data; saved as its str", where or "value", type(obj).__qualname__)
    return str(obj)


def file_targets(obj: Any) -> list[str]:
    """Every dotted path a loaded file names for the code to call: ``_target_`` values and old ``target: "m:attr"``."""
    out: list[str] = []
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if k == "_target_" and isinstance(v, str):
                out.append(v)
            elif k == "target" and isinstance(v, str) and ":" in v:
                out.append(v)
            else:
                out.extend(file_targets(v))
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out.extend(file_targets(v))
    return out


def check_file_targets(obj: Any, source: str | Path, allowed: Iterable[str] = ()) -> None:
    """Refuse a loaded file that names code outside the project's packages (and ``allowed`` top-level packages).

    A checkpoint's hyperparameters and an exported ``config.json`` name component factories by dotted path; a
    file that names ``os.system`` would otherwise have it called with the file's arguments."""
    ok = {*PROJECT_PACKAGES, *allowed}
    for target in file_targets(obj):
        top = target.replace(":", ".").split(".", 1)[0]
        if top not in ok:
            raise UntrustedFileError(
                f"{source}: refused to load: it names {target!r} to call, outside the packages a checkpoint may "
                f"name ({', '.join(sorted(ok))}); if you trust this file, set {ALLOW_PICKLE_ENV}="
                f"{Path(source).resolve()}"
            )


# ----- the file is the file that was written ------------------------------------------------------------------------
CHECKSUM_SUFFIX = ".sha256"


def checksum_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_checksum(path: str | Path, digest: str | None = None, *, record: str | Path | None = None) -> Path:
    """Record ``path``'s sha256 and size in ``<record or path>.sha256`` (atomically). ``record``: the name the
    file will have (write the record for a temporary file before renaming it onto its final name)."""
    from ecg_data.paths import atomic_write_text

    path = Path(path)
    digest = digest or sha256_file(path)
    out = checksum_path(record if record is not None else path)
    atomic_write_text(out, f"{digest}  {path.stat().st_size}\n")
    return out


def verify_checksum(path: str | Path, *, required: bool = False, retries: int = 3) -> bool:
    """True when ``path`` matches its recorded checksum; False when no record exists (and ``required`` is False).

    Raises :class:`CorruptFileError` naming the file when the size or sha256 differ, the record is unreadable, or
    the file is missing while a record exists. A mismatch is re-checked ``retries`` times (0.05, 0.1, 0.2 s apart):
    a writer in another process replaces the file and then its record, and a reader between the two renames is
    not looking at a corrupt file."""
    import time

    for attempt in range(retries + 1):
        try:
            return _verify_once(Path(path), required)
        except CorruptFileError:
            if attempt == retries:
                raise
            time.sleep(0.05 * 2**attempt)
    return False  # not reached


def _verify_once(path: Path, required: bool) -> bool:
    rec = checksum_path(path)
    if not rec.is_file():
        if required:
            raise CorruptFileError(f"{path}: no checksum record ({rec.name}); the file was not completely written")
        return False
    parts = rec.read_text(encoding="utf-8", errors="replace").split()
    if len(parts) != 2 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]) or not parts[1].isdigit():
        raise CorruptFileError(f"{rec}: unreadable checksum record")
    if not path.is_file():
        raise CorruptFileError(f"{path}: missing, but a checksum record exists ({rec.name})")
    size = path.stat().st_size
    if size != int(parts[1]):
        raise CorruptFileError(f"{path}: {size} bytes, but {int(parts[1])} were written (truncated or changed)")
    if sha256_file(path) != parts[0]:
        raise CorruptFileError(f"{path}: sha256 differs from the one recorded when it was written (corrupt)")
    return True


def remove_with_checksum(path: str | Path) -> None:
    """Delete a file and its checksum record (a corrupt file before it is rebuilt)."""
    for p in (Path(path), checksum_path(path)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass
