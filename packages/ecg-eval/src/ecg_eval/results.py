"""Result files: one JSON per (method, checkpoint, task, mode, fraction, seed), with a versioned schema.

Path: ``<results_root>/<suite>/<method>/<task>/<mode>[-<percent>]-seed<k>.json`` where ``mode`` is a registered
mode (``ecg_eval.modes``) and ``percent`` is the training fraction in percent of a mode with one (0.01 -> ``1``,
0.1 -> ``10``, 1.0 -> ``100``), e.g. ``linear_probe-10-seed0.json``; a mode may name its files itself (transfer). Per-record predictions sit beside it as
``<same stem>.predictions.npz`` (record_ids, classes, y_true, scores) so every metric can be recomputed.
The schema is documented in docs/evaluation.md; bump SCHEMA_VERSION on any incompatible change.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecg_data.integrity import IntegrityError, verify_checksum, write_checksum
from ecg_data.paths import atomic_path, atomic_write_json
from ecg_eval.modes import get_mode, is_fraction_mode, mode_names

SCHEMA_VERSION = 1
SUITES = ("synthetic", "real")
STATUSES = ("ok", "not_applicable")
#: The packages whose versions move results most, listed by name at the top of every environment record.
PACKAGES = (
    "ecg-data",
    "ecg-encoders",
    "ecg-text-align",
    "ecg-eval",
    "torch",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "lightning",
    "transformers",
    "tokenizers",
    "safetensors",
    "huggingface-hub",
    "wfdb",
    "hydra-core",
    "omegaconf",
)
#: Lock files whose hashes are recorded (the committed resolution the environment was installed from).
LOCK_FILES = ("uv.lock", "constraints.txt")


def fraction_percent(fraction: float) -> str:
    """0.01 -> '1', 0.1 -> '10', 1.0 -> '100', 0.005 -> '0.5'. Fractions are (0, 1]; percent is only a name."""
    f = float(fraction)
    if not 0.0 < f <= 1.0:
        raise ValueError(f"training fraction must be in (0, 1] (e.g. 0.01, 0.1, 1.0), got {fraction!r}")
    return f"{round(f * 100, 6):g}"


def result_name(mode: str, fraction: float | None, seed: int, options: dict | None = None) -> str:
    """The file name of a cell: the mode's own naming (``Mode.file_name``; transfer's depends on ``options``), else
    ``<mode>-<percent>-seed<k>.json`` for a mode with a training fraction and ``<mode>-seed<k>.json`` otherwise."""
    if mode not in mode_names():
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(mode_names())}")
    spec = get_mode(mode)
    if spec.file_name is not None:
        from ecg_data.registry import locate

        naming = locate(spec.file_name) if isinstance(spec.file_name, str) else spec.file_name
        return naming(fraction, seed, options or {})
    if spec.fraction:
        if fraction is None:
            raise ValueError(f"{mode} needs a training fraction")
        return f"{mode}-{fraction_percent(fraction)}-seed{int(seed)}.json"
    if fraction is not None:
        raise ValueError(f"{mode} uses no training fraction: pass fraction=None")
    return f"{mode}-seed{int(seed)}.json"


def result_path(
    results_root: str | Path,
    suite: str,
    method: str,
    task: str,
    mode: str,
    fraction: float | None,
    seed: int,
    *,
    options: dict | None = None,
) -> Path:
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; valid suites: {', '.join(SUITES)}")
    for part, value in (("method", method), ("task", task)):
        if not value or "/" in value or value.startswith("."):
            raise ValueError(f"{part} name {value!r} cannot be a path component")
    return Path(results_root) / suite / method / task / result_name(mode, fraction, seed, options)


def predictions_path(result_file: str | Path) -> Path:
    p = Path(result_file)
    return p.with_name(p.stem + ".predictions.npz")


def write_predictions(
    path: str | Path, record_ids: Sequence[str], classes: Sequence[str], y_true: np.ndarray, scores: np.ndarray
) -> None:
    """Atomic compressed npz; record ids and class names as unicode arrays (no pickle needed to read)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                record_ids=np.asarray([str(r) for r in record_ids]),
                classes=np.asarray(list(classes)),
                y_true=np.asarray(y_true, dtype=np.int8),
                scores=np.asarray(scores, dtype=np.float32),
            )
    write_checksum(path)  # sha256 + size beside it (ecg_data.integrity): read_predictions checks it


def read_predictions(path: str | Path) -> dict[str, np.ndarray]:
    verify_checksum(path)  # CorruptFileError when it differs from what was written
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_result(path: str | Path, result: dict) -> Path:
    """Validate the mandatory fields and write atomically."""
    validate(result, source=str(path))
    atomic_write_json(path, result)
    write_checksum(path)  # sha256 + size beside it (ecg_data.integrity): read_result checks it
    return Path(path)


def read_result(path: str | Path) -> dict:
    p = Path(path)
    verify_checksum(p)  # CorruptFileError when it differs from what was written (files without a record: legacy)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from None
    validate(data, source=str(p))
    return data


def load_results(root: str | Path, *, skip_unreadable: bool = False) -> list[dict]:
    """Every result file (``*.json``) under ``root``, each read by ``read_result`` (checksum and schema checked),
    with ``_path`` added; [] when ``root`` is not a directory. A bad file raises naming it, or is left out with
    ``skip_unreadable`` (a model card's summary of whatever was scored, ``ecg_text_align.pretrained``)."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.rglob("*.json")):
        try:
            out.append({**read_result(p), "_path": str(p)})
        except (OSError, ValueError, IntegrityError):
            if not skip_unreadable:
                raise
    return out


REQUIRED = ("schema_version", "status", "method", "checkpoint_hash", "task", "suite", "mode", "fraction", "seed")


def validate(result: dict, *, source: str = "<result>") -> None:
    """Raise ValueError naming the file and the problem when a result does not follow the schema."""
    missing = [k for k in REQUIRED if k not in result]
    if missing:
        raise ValueError(f"{source}: missing field(s) {', '.join(missing)}")
    if result["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"{source}: schema_version {result['schema_version']!r}, this ecg-eval reads {SCHEMA_VERSION}")
    if result["status"] not in STATUSES:
        raise ValueError(f"{source}: status {result['status']!r} not in {STATUSES}")
    if result["mode"] not in mode_names():
        raise ValueError(f"{source}: mode {result['mode']!r} not in {mode_names()}")
    if result["status"] == "ok":
        scores = result.get("scores") or {}
        spec = get_mode(result["mode"])
        if spec.auroc and ("macro_auroc" not in scores or "per_class_auroc" not in scores):
            raise ValueError(f"{source}: status ok needs scores.macro_auroc and scores.per_class_auroc")
        lacking = [k for k in spec.score_keys if k not in scores]
        if lacking:
            raise ValueError(f"{source}: status ok of mode {result['mode']} needs scores.{', scores.'.join(lacking)}")


# --- coverage of the published split ------------------------------------------------------------------------------


def split_coverage(
    task: Any, *, train_subset: Sequence[str] | None = None, fraction: float | None = None
) -> dict | None:
    """How much of a published task's split this disk holds: ``{split: {present, published}}`` (None for a task
    that is not on a shipped published split).

    Why: a run on part of the data (e.g. a 500-record sample) must never pass for the published benchmark; the
    leaderboard marks every published-task cell below full test coverage. ``train_subset`` (the probe's fixed
    subset) is recorded as ``train_subset`` = {n, fraction_percent, of: "present"}: a 1 % or 10 % subset of a
    partial split is that fraction of the records present, not of the published split.
    """
    pub = getattr(task, "published", None)
    if not pub or not pub.get("sizes"):
        return None
    present = getattr(task, "splits", None) or {}
    out: dict[str, Any] = {
        s: {"present": len(present.get(s, [])), "published": int(n)} for s, n in pub["sizes"].items()
    }
    if train_subset is not None:
        out["train_subset"] = {
            "n": len(train_subset),
            "of": "present",
            "fraction_percent": None if fraction is None else fraction_percent(fraction),
        }
    return out


def test_coverage(result: dict) -> tuple[int, int] | None:
    """(present, published) test records of a result on a published task; None when the file does not say.

    Read from ``coverage.test``, or for files written before that field from ``published_split`` (its published
    ``sizes`` minus ``n_absent``)."""
    cov = (result.get("coverage") or {}).get("test")
    if cov:
        return int(cov["present"]), int(cov["published"])
    pub = result.get("published_split") or {}
    if "test" in (pub.get("sizes") or {}):
        n = int(pub["sizes"]["test"])
        return n - int((pub.get("n_absent") or {}).get("test", 0)), n
    return None


test_coverage.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported into a test module


def ids_hash(record_ids: Sequence[str]) -> str:
    """Order-sensitive hash of record ids (the row order of the scored split)."""
    return hashlib.sha256("\n".join(map(str, record_ids)).encode()).hexdigest()[:16]


def evaluation_identity(task: Any, mode: str, fraction: float | None, seed: int, settings: dict) -> dict:
    """What a cell evaluated, beyond the checkpoint: split and subset ids, the dataset, the evaluation config.

    Why: a cell is complete only when all of these match, so changing the prompts, the probe or its grid, the
    bootstrap, the split membership or the data on disk never silently reuses an old cell. ``settings`` is the
    evaluation config (``ecg_eval.harness.evaluation_settings``).
    """
    from ecg_data.paths import stable_hash

    # Modes with their own split choice (retrieval, report generation) may get task-like objects without the
    # train/val/test membership: hash what the task has.
    have = getattr(task, "splits", None) or {}
    wanted = ("train", "val", "test") if is_fraction_mode(mode) else ("test",)
    splits = {k: have[k] for k in wanted if k in have}
    if hasattr(task, "fingerprint"):
        fp = task.fingerprint()
    else:
        fp = task.reader().fingerprint() if hasattr(task, "reader") else None
    subset = (
        task.train_subset(fraction, seed)
        if is_fraction_mode(mode) and fraction and hasattr(task, "train_subset")
        else None
    )
    return {
        "split_sha256": {k: ids_hash(v) for k, v in sorted(splits.items())},
        "subset_sha256": ids_hash(subset) if subset is not None else None,
        "dataset_fingerprint": fp,
        "published_sha256": (getattr(task, "published", None) or {}).get("content_sha256"),
        "eval_config_sha256": stable_hash(settings, n=16),
    }


def is_complete(path: str | Path, checkpoint_hash: str | None = None, identity: dict | None = None) -> bool:
    """True when a valid result exists for the same checkpoint (when given) and, when ``identity`` is given,
    the same split/subset ids, dataset fingerprint and evaluation config (``evaluation_identity``)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        data = read_result(p)
    except (ValueError, IntegrityError):  # corrupt: the cell is computed again, never used
        return False
    if checkpoint_hash is not None and data.get("checkpoint_hash") != checkpoint_hash:
        return False
    if identity is not None and data.get("evaluated") != identity:
        return False
    if data["status"] == "ok" and data.get("predictions"):
        pred = p.parent / data["predictions"]
        try:
            verify_checksum(pred, required=False)
        except IntegrityError:
            return False
        if not pred.is_file():
            return False
    return True


# --- provenance -------------------------------------------------------------------------------------------------


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = _module_version(name)
    return out


def installed_distributions() -> dict[str, str]:
    """Every installed distribution, ``name -> version`` (names normalised as PyPI does), sorted by name."""
    out: dict[str, str] = {}
    for d in md.distributions():
        name = d.metadata.get("Name") if d.metadata else None
        if name:
            out.setdefault(name.lower().replace("_", "-"), d.version)
    return dict(sorted(out.items()))


def lock_hashes(start: str | Path | None = None) -> dict[str, str] | None:
    """sha256 (first 16 hex) of the lock files in the nearest folder holding ``uv.lock`` above ``start``
    (default: the working directory, then this package's own source, which an editable install keeps in the repo).

    Why: two result files produced from the same committed lock were installed from the same resolution,
    even when ``installed`` differs by a hand-installed extra. ``None`` outside a checkout.
    """
    starts = [Path(start)] if start else [Path(os.getcwd()), Path(__file__)]
    for d in (p for s in starts for p in (s.resolve(), *s.resolve().parents)):
        if (d / LOCK_FILES[0]).is_file():
            return {
                name: hashlib.sha256((d / name).read_bytes()).hexdigest()[:16]
                for name in LOCK_FILES
                if (d / name).is_file()
            }
    return None


def _module_version(dist: str) -> str | None:
    """Workspace packages run from src/ without installation: read their ``__version__``."""
    try:
        mod = __import__(dist.replace("-", "_"))
    except ImportError:
        return None
    return getattr(mod, "__version__", None)


def git_commit(cwd: str | Path | None = None) -> str | None:
    """HEAD commit (with '+dirty' when the tree has changes), or None outside a git checkout."""
    try:
        where = str(cwd or os.getcwd())
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "installed": installed_distributions(),
        "lock": lock_hashes(),
        "git_commit": git_commit(),
        "hardware": hardware(),
    }


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def seen_in_pretraining(pretrained_on: Sequence[str], task_name: str, dataset: str) -> list[str]:
    """Pretraining datasets that overlap the evaluated one.

    A pretraining name p matches when, ignoring case and punctuation, it equals the task's reader name or the
    task name starts with it (``ptbxl`` ~ ``ptbxl_super``; ``synth-ptbxl`` ~ ``synth_ptbxl_sub``).
    """
    t, d = _norm(task_name), _norm(dataset)
    return sorted(p for p in pretrained_on if _norm(p) and (_norm(p) == d or t.startswith(_norm(p))))
