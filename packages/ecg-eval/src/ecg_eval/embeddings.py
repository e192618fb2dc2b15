"""Frozen ECG features of one split, computed once and cached on disk.

Why a cache: encoding is the only expensive step of evaluation; prompts, probe grids, seeds and bootstrap
settings must be changeable without re-encoding. The key is everything that changes the features and nothing
else: the encoder's checkpoint hash, the dataset (reader name + metadata fingerprint), the split's record ids
(after QC) and the key of the preset that prepared this task (``ecg_eval.protocol.preset_for``; a train-fitted preset
is keyed with its fitted statistics).

Layout: ``<cache_dir>/<key>/features.npy`` (N, d) float32 and ``meta.json`` (record ids, key parts). Both are
written atomically, ``meta.json`` last, so a directory without it is an unfinished entry and is recomputed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecg_data.integrity import sha256_file
from ecg_data.paths import atomic_path, atomic_write_json, exclusive_lock, stable_hash
from ecg_eval.protocol import declared_task_presets, preset_for

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path("runs") / "embeddings"  # runs/ (git-ignored) holds embeddings, addressed by content

SplitLoader = Callable[[Any, str, str], Any]  # (task, split name, preset name) -> CachedSplit-like


def model_rows(split: Any) -> Any:
    """What to index for model inputs: an ``ecg_data`` ``CachedSplit`` itself (``split[rows]`` is float32 and
    normalised, also for float16 or ``normalize="device"`` caches), else a CachedSplit-like's ``signals``
    (``record_ids`` + ``signals`` already as the model takes them)."""
    return split if callable(getattr(split, "batch", None)) else split.signals


@dataclass
class Embeddings:
    """Features aligned row by row with ``record_ids``."""

    features: np.ndarray
    record_ids: list[str]
    key: str
    from_cache: bool
    seconds: float

    def rows(self, wanted: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Features of ``wanted`` ids (in that order) and the ids not present (skipped by QC)."""
        pos = {r: i for i, r in enumerate(self.record_ids)}
        idx = [pos[w] for w in wanted if w in pos]
        return self.features[np.asarray(idx, dtype=np.int64)], [w for w in wanted if w not in pos]


def default_split_loader(task: Any, split: str, preset: str) -> Any:
    """``ecg_data.cache.cached_split`` (imported lazily: ecg-eval needs ecg-data's cache only when encoding)."""
    from ecg_data.cache import cached_split

    return cached_split(task, split, preset)


def preset_key(encoder: Any, task: Any = None) -> str:
    """Stable key of the preset that prepares ``task`` for ``encoder`` (``preset_for``; without a task, the
    encoder's ``input_spec.preset``): ``get_preset(name).key()``, for a train-fitted preset the key of the preset
    fitted on this task's train split (``ecg_data.cache.resolve_preset``), so a changed train split changes it."""
    spec = encoder.input_spec
    name = preset_for(encoder, task) if task is not None else spec.preset
    try:
        from ecg_data.preprocess import get_preset
    except ImportError:  # ecg-data without preprocessing (tests with fake splits): key on the spec itself
        log.warning("ecg_data.preprocess not importable; embedding cache keyed on the InputSpec fields")
        return stable_hash({"preset": name, "fs": spec.fs, "length": spec.length})
    preset = get_preset(name)
    if task is not None and preset.fit_step() is not None:
        from ecg_data.cache import resolve_preset

        preset = resolve_preset(task, preset)
    return preset.key()


def input_preparation(encoder: Any, task: Any, *, resolve: bool = False) -> dict:
    """How ``task``'s inputs are prepared for an encoder that declares task presets, for its result files: the
    preset's name and key; for a train-fitted preset also what it is fitted on (split and its ids hash: cheap, no
    data read), and with ``resolve=True`` the fitted statistics and the fitted preset's key."""
    from ecg_data.preprocess import get_preset
    from ecg_eval.results import ids_hash

    name = preset_for(encoder, task)
    preset = get_preset(name)
    out: dict[str, Any] = {"preset": name, "preset_key": preset.key(), "source": preset.source}
    step = preset.fit_step()
    if step is None:
        return out
    fit_ids = (getattr(task, "splits", None) or {}).get(step.fit_split)
    out["fit"] = {"split": step.fit_split, "split_sha256": ids_hash(fit_ids) if fit_ids is not None else None}
    if resolve:
        from ecg_data.cache import resolve_preset

        fitted = resolve_preset(task, preset)
        last = fitted.transforms[-1]
        out["fit"].update(mean=last.mean, std=last.std, fitted_on=last.fitted_on)
        out["fitted_preset_key"] = fitted.key()
    return out


def stamp_input_preparation(result: dict, encoder: Any, task: Any) -> None:
    """Write the resolved ``input_preparation`` into a finished ``ok`` result of an encoder that declares task
    presets (the data were loaded by then, so resolving reads no new data); other results are left as they are."""
    if declared_task_presets(encoder) and result.get("status") == "ok":
        result["input_preparation"] = input_preparation(encoder, task, resolve=True)


_FINGERPRINTS: dict[tuple[str, str, str], str] = {}


def dataset_fingerprint(task: Any) -> str:
    """Reader name + version + metadata fingerprint of the task's dataset (memoised per dataset root)."""
    memo = (task.name, task.dataset, str(getattr(task, "root", "")))
    if memo not in _FINGERPRINTS:
        reader = task.reader()
        _FINGERPRINTS[memo] = stable_hash([task.dataset, getattr(reader, "version", ""), reader.fingerprint()])
    return _FINGERPRINTS[memo]


def cache_key(checkpoint_hash: str, dataset_fp: str, record_ids: Sequence[str], preset: str) -> str:
    return stable_hash(
        {
            "checkpoint": checkpoint_hash,
            "dataset": dataset_fp,
            "records": stable_hash(list(record_ids)),
            "preset": preset,
        },
        n=24,
    )


def _model_device(encoder: Any) -> torch.device | None:
    params = getattr(encoder, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return None


PRECISIONS = ("32", "bf16")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` = the first GPU when one is present, else the CPU; ``cpu``, ``cuda``, ``cuda:k`` as given.

    A CUDA device asked for on a machine without one is a clear error (not a silent fall-back to CPU)."""
    name = "auto" if device is None else str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"eval.device={name!r}: expected auto, cpu, cuda or cuda:<k>") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"eval.device={name}: no CUDA device on this machine (use eval.device=auto or cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"eval.device={name}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return dev


def place_encoder(encoder: Any, device: torch.device) -> torch.device | None:
    """Move the encoder to ``device`` when it can move (an ``nn.Module`` or anything with ``.to``); return the
    device its parameters are on afterwards (None for an encoder without parameters)."""
    to = getattr(encoder, "to", None)
    if callable(to):
        to(device)
    elif device.type != "cpu":
        log.warning("%s has no .to(); it encodes on its own device", type(encoder).__name__)
    return _model_device(encoder)


def encode_split(
    encoder: Any,
    signals: Any,
    n: int,
    batch_size: int,
    *,
    device: str | torch.device | None = None,
    precision: str = "32",
    desc: str | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Run ``encode_ecg`` over ``signals[i:j]`` batches, in eval mode without gradients.

    ``signals``: an array or a ``CachedSplit`` (indexing it gives float32 normalised rows, whatever its storage).

    ``device`` (``auto``/``cpu``/``cuda[:k]``; None = wherever the encoder already is) receives the encoder and
    the batches (from pinned host memory, copied asynchronously); ``precision="bf16"`` runs the encoder under
    bf16 autocast (features are returned as float32). ``desc`` names the tqdm bar (one per split)."""
    if precision not in PRECISIONS:
        raise ValueError(f"eval.precision={precision!r}: expected one of {PRECISIONS}")
    if hasattr(encoder, "eval") and callable(encoder.eval):
        encoder.eval()
    target = resolve_device(device) if device is not None else None
    dev = place_encoder(encoder, target) if target is not None else _model_device(encoder)
    pin = dev is not None and dev.type == "cuda"
    autocast = torch.autocast(
        device_type=dev.type if dev is not None else "cpu", dtype=torch.bfloat16, enabled=precision == "bf16"
    )
    from tqdm.auto import tqdm

    chunks: list[np.ndarray] = []
    bar = tqdm(total=n, desc=desc or "embed", unit="rec", disable=not progress or n == 0, leave=False)
    with torch.no_grad(), autocast, bar:
        for start in range(0, n, batch_size):
            batch = torch.from_numpy(
                np.array(signals[start : start + batch_size], dtype=np.float32)
            )  # copy: memmaps are read-only
            if pin:
                batch = batch.pin_memory()
            if dev is not None:
                batch = batch.to(dev, non_blocking=pin)
            out = encoder.encode_ecg(batch)
            out = out.detach().float().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out, np.float32)
            if out.ndim != 2 or out.shape[0] != batch.shape[0]:
                raise ValueError(f"encode_ecg must return (B, d); got {out.shape} for a batch of {batch.shape[0]}")
            chunks.append(out.astype(np.float32))
            bar.update(batch.shape[0])
    if not chunks:
        raise ValueError("cannot embed an empty split")
    feats = np.concatenate(chunks)
    if not np.all(np.isfinite(feats)):
        raise ValueError("encode_ecg returned NaN or inf features")
    return feats


def embed_split(
    encoder: Any,
    task: Any,
    split: str,
    *,
    batch_size: int = 256,
    cache_dir: str | Path | None = None,
    split_loader: SplitLoader | None = None,
    device: str | None = None,
    precision: str = "32",
) -> Embeddings:
    """Features of ``task``'s cached ``split`` for ``encoder``, from the cache when present.

    One process at a time computes an entry: parallel jobs asking for the same encoder, task, split and precision
    wait for the first and then read its entry (a lock file under ``<cache_dir>/.locks``). An entry whose
    features differ from the sha256 recorded when they were written is recomputed, never used."""
    root = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR)
    who = [str(encoder.card.checkpoint_hash), str(getattr(task, "name", task)), str(split), str(precision)]
    with exclusive_lock(
        root / ".locks" / f"{stable_hash(who)}.lock",
        waiting=f"embedding {who[1]}/{split}: another process computes it; waiting",
    ):
        return _embed_split(
            encoder,
            task,
            split,
            batch_size=batch_size,
            cache_dir=root,
            split_loader=split_loader,
            device=device,
            precision=precision,
        )


def _read_entry(meta_path: Path, feat_path: Path) -> tuple[dict | None, np.ndarray | None]:
    """An embedding cache entry, or (None, None) when it is unreadable or differs from its recorded sha256."""
    try:
        meta = json.loads(meta_path.read_text())
        digest = meta.get("features_sha256")  # entries written before checksums: the shape check only
        if digest is not None and sha256_file(feat_path) != digest:
            raise ValueError("features.npy differs from the sha256 recorded when it was written")
        return meta, np.load(feat_path)
    except (ValueError, OSError, EOFError) as err:
        log.warning("embedding cache entry %s is corrupt (%s); recomputing", meta_path.parent, err)
        return None, None


def _embed_split(
    encoder: Any,
    task: Any,
    split: str,
    *,
    batch_size: int = 256,
    cache_dir: str | Path | None = None,
    split_loader: SplitLoader | None = None,
    device: str | None = None,
    precision: str = "32",
) -> Embeddings:
    """Features of ``task``'s cached ``split`` for ``encoder``, from the cache when present (``embed_split``).

    bf16 features differ from fp32 ones, so ``precision="bf16"`` is part of the cache key (fp32 keys are unchanged)."""
    loader = split_loader or default_split_loader
    preset = preset_for(encoder, task)
    cached = loader(task, split, preset)
    record_ids = [str(r) for r in cached.record_ids]
    pkey = preset_key(encoder, task)
    pkey = pkey if precision == "32" else f"{pkey}+{precision}"
    key = cache_key(encoder.card.checkpoint_hash, dataset_fingerprint(task), record_ids, pkey)
    entry = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR) / key
    meta_path, feat_path = entry / "meta.json", entry / "features.npy"
    if meta_path.is_file() and feat_path.is_file():
        meta, feats = _read_entry(meta_path, feat_path)
        if meta is not None and meta.get("record_ids") == record_ids and feats.shape[0] == len(record_ids):
            return Embeddings(feats, record_ids, key, from_cache=True, seconds=0.0)
        log.warning("embedding cache entry %s does not match its split; recomputing", entry)
    t0 = time.perf_counter()
    if callable(getattr(encoder, "encode_records", None)):  # a reference row reads the records' identity (references)
        feats = np.asarray(encoder.encode_records(task, split, record_ids), dtype=np.float32)
        if feats.ndim != 2 or feats.shape[0] != len(record_ids):
            raise ValueError(f"encode_records must return (N, d) for N={len(record_ids)} records; got {feats.shape}")
    else:
        feats = encode_split(
            encoder,
            model_rows(cached),
            len(record_ids),
            batch_size,
            device=device,
            precision=precision,
            desc=f"embed {task.name}/{split}",
        )
    seconds = time.perf_counter() - t0
    with atomic_path(feat_path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, feats)
    atomic_write_json(
        meta_path,
        {
            "record_ids": record_ids,
            "shape": list(feats.shape),
            "checkpoint_hash": encoder.card.checkpoint_hash,
            "method": encoder.card.name,
            "task": task.name,
            "dataset": task.dataset,
            "split": split,
            "preset": preset,
            "precision": precision,
            "seconds": seconds,
            "features_sha256": sha256_file(feat_path),  # checked on every read (_read_entry)
        },
    )
    return Embeddings(feats, record_ids, key, from_cache=False, seconds=seconds)


def embed(
    encoder: Any,
    task: Any,
    split: str,
    *,
    batch_size: int = 256,
    cache_dir: str | Path | None = None,
    split_loader: SplitLoader | None = None,
    device: str | None = None,
    precision: str = "32",
) -> np.ndarray:
    """(N, d) features aligned with the cached split's record ids (see ``embed_split`` for the ids)."""
    return embed_split(
        encoder,
        task,
        split,
        batch_size=batch_size,
        cache_dir=cache_dir,
        split_loader=split_loader,
        device=device,
        precision=precision,
    ).features
