"""One entry point that scores an encoder on a task and writes the result file.

``evaluate`` = embeddings (cached) -> zero-shot scores or a linear probe -> AUROC, excluded classes and paired
bootstrap CIs on the test split -> result JSON + per-record predictions. It knows methods only through the
encoder protocol (``ecg_eval.protocol``).
"""

from __future__ import annotations

import dataclasses

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ecg_eval import bootstrap as bs
from ecg_eval.embeddings import SplitLoader, embed_split, resolve_device, stamp_input_preparation
from ecg_eval.metrics import FEW_POSITIVES, multilabel_auroc, test_positives, threshold_metrics
from ecg_eval.probe import PaperProbeConfig, ProbeConfig, fit_paper_probe, fit_probe
from ecg_eval.prompts import class_prompts, prompt_file_fingerprint
from ecg_eval.protocol import declared_task_presets, input_spec_dict, supports_zero_shot
from ecg_eval.results import (
    PROBE_MODES,
    SCHEMA_VERSION,
    environment,
    evaluation_identity,
    fraction_percent,
    is_complete,
    predictions_path,
    result_path,
    seen_in_pretraining,
    split_coverage,
    write_predictions,
    write_result,
)
from ecg_eval.zeroshot import class_embeddings, zero_shot_scores

log = logging.getLogger(__name__)

DEFAULT_RESULTS_ROOT = Path("leaderboard") / "results"


def expected_path(
    encoder: Any, task: Any, mode: str, fraction: float | None = None, seed: int = 0, *,
    results_root: str | Path = DEFAULT_RESULTS_ROOT, suite: str | None = None, method: str | None = None,
) -> Path:
    """Where ``evaluate`` writes this cell's result (``method`` defaults to ``encoder.card.name``)."""
    name = method or encoder.card.name
    return result_path(results_root, suite or task.suite, name, task.name, mode, fraction, seed)


#: Version of how the harness prepares a cell's inputs; part of every cell's identity, so a change re-scores cells
#: instead of reusing them (2: per-dataset presets, ``protocol.preset_for`` -- HeartLang's cells were fed raw mV
#: before; the runner decides "done" without loading the encoder, so the version stands in for its input_spec).
INPUT_PREPARATION = 2


def evaluation_settings(
    mode: str, *, prompt_file: str | Path | None = None, templates: Sequence[str] | None = None,
    split_commas: bool = False, lowercase: bool = False, probe_config: Any = None,
    n_resamples: int = bs.DEFAULT_RESAMPLES, bootstrap_seed: int = 0, mode_options: dict | None = None,
) -> dict:
    """The evaluation config that decides a cell's numbers (hashed into ``evaluated.eval_config_sha256``):
    prompts (file content hash, templates, flags) for zero-shot, probe kind and grid for a probe, bootstrap,
    and for the modes with their own module (finetune, retrieval, report generation) their ``mode_options``."""
    out: dict[str, Any] = {"mode": mode, "bootstrap": {"n_resamples": int(n_resamples), "seed": int(bootstrap_seed)},
                           "input_preparation": INPUT_PREPARATION}
    if mode in OWN_MODULE_MODES and mode_options:
        out["options"] = _options_json(mode_options)
    if mode == "zero_shot":
        out["prompts"] = {"sha256_16": prompt_file_fingerprint(prompt_file), "templates": list(templates) if templates else ["{}"],
                          "split_commas": bool(split_commas), "lowercase": bool(lowercase)}
    elif mode in PROBE_MODES:
        out["probe"] = _probe_config(mode, probe_config).to_dict() | {"kind": "paper" if mode == "linear_probe_paper" else "lbfgs"}
    return out


#: modes scored by their own module (``evaluate`` delegates; the identity and device are still the harness's)
OWN_MODULE_MODES = ("finetune", "retrieval", "report_generation")


def _options_json(options: dict) -> dict:
    """Mode options as JSON data for hashing: configs as dicts, a reference file by its content hash."""
    from ecg_data.paths import file_hash

    out: dict[str, Any] = {}
    for k, v in sorted(options.items()):
        if k in ("progress", "vocab"):
            continue  # neither changes the numbers that are hashed here (vocab: the project's file, versioned)
        if hasattr(v, "to_dict"):
            v = {kk: vv for kk, vv in v.to_dict().items() if kk != "device"}
        elif k == "reference_file" and v is not None and Path(v).is_file():
            v = {"sha256_16": file_hash(Path(v))}
        out[k] = v if isinstance(v, (dict, list, str, int, float, bool, type(None))) else str(v)
    return out


def _probe_config(mode: str, cfg: Any) -> Any:
    """The probe config a mode runs with: ``linear_probe`` = ours (L-BFGS), ``linear_probe_paper`` = the papers'."""
    if mode == "linear_probe_paper":
        return cfg if isinstance(cfg, PaperProbeConfig) else PaperProbeConfig()
    return cfg if isinstance(cfg, ProbeConfig) else ProbeConfig()


def already_done(
    encoder: Any, task: Any, mode: str, fraction: float | None = None, seed: int = 0, *,
    results_root: str | Path = DEFAULT_RESULTS_ROOT, suite: str | None = None, method: str | None = None,
    **settings: Any,
) -> bool:
    """Skip-if-exists: a valid result for the same checkpoint, split/subset ids, dataset and evaluation config
    (``settings``: the keyword arguments of ``evaluation_settings``, as passed to ``evaluate``)."""
    path = expected_path(encoder, task, mode, fraction, seed, results_root=results_root, suite=suite, method=method)
    identity = evaluation_identity(task, mode, fraction, seed, evaluation_settings(mode, **settings))
    return is_complete(path, encoder.card.checkpoint_hash, identity)


def _plain(config: Any) -> dict:
    """The caller's config as plain JSON data (a Hydra/OmegaConf config is resolved, not stringified)."""
    if config is None:
        return {}
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(config):
            return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]
    except ImportError:
        pass
    return dict(config)


def _card_dict(encoder: Any) -> dict:
    card = encoder.card
    d = asdict(card) if hasattr(card, "__dataclass_fields__") else dict(vars(card))
    d["pretrained_on"] = list(d.get("pretrained_on") or ())
    return d


def start_result(
    encoder: Any, task: Any, mode: str, fraction: float | None, seed: int, *, results_root: Any = None,
    suite: str | None = None, method: str | None = None,
) -> tuple[Path, dict]:
    """(result file path, its common fields) of one cell: what every mode's module starts from."""
    suite = suite or task.suite
    root = results_root if results_root is not None else DEFAULT_RESULTS_ROOT
    path = expected_path(encoder, task, mode, fraction, seed, results_root=root, suite=suite, method=method)
    result = _base_result(encoder, task, mode, fraction, seed, suite)
    if method:
        result["method"] = method
    return path, result


def _base_result(encoder: Any, task: Any, mode: str, fraction: float | None, seed: int, suite: str) -> dict:
    card = encoder.card
    pretrained = list(getattr(card, "pretrained_on", ()) or ())
    seen = seen_in_pretraining(pretrained, task.name, task.dataset)
    out = {
        "schema_version": SCHEMA_VERSION,
        "status": "ok",
        "method": card.name,
        "checkpoint_hash": card.checkpoint_hash,
        "encoder_card": _card_dict(encoder),
        "input_spec": input_spec_dict(encoder.input_spec),
        "task": task.name,
        "dataset": task.dataset,
        "suite": suite,
        "mode": mode,
        "fraction": None if fraction is None else float(fraction),
        "fraction_percent": None if fraction is None else fraction_percent(fraction),
        "seed": int(seed),
        "split": "test",
        "classes": list(task.classes),
        "task_dropped_classes": dict(getattr(task, "dropped", {}) or {}),
        "pretrained_on": pretrained,
        "seen_in_pretraining": bool(seen),
        "seen_in_pretraining_datasets": seen,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": environment(),
    }
    if declared_task_presets(encoder):  # only then: other encoders' result files keep their exact fields
        from ecg_eval.embeddings import input_preparation

        out["input_preparation"] = input_preparation(encoder, task)
    return out


class _ProbeFeatures:
    """The encoder as its paper probes it: ``encode_ecg`` is its ``encode_ecg_probe`` (MELP: pooler -> LN -> mean
    without the projection; MERL: the backbone average with batch statistics), with its own embedding-cache key."""

    def __init__(self, inner: Any) -> None:
        if not dataclasses.is_dataclass(inner.card):
            raise TypeError("probe features need a dataclass card (EncoderCard) for their cache key")
        self.inner = inner
        self.input_spec = inner.input_spec
        self.card = dataclasses.replace(inner.card, checkpoint_hash=f"{inner.card.checkpoint_hash}+probe_feature")

    def encode_ecg(self, x: Any) -> Any:
        return self.inner.encode_ecg_probe(x)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr == "inner":
            raise AttributeError(attr)
        return getattr(self.__dict__["inner"], attr)


def probe_features(encoder: Any) -> Any:
    """What ``linear_probe_paper`` embeds: the encoder's ``encode_ecg_probe`` where it has one (the original's probe
    feature), else ``encode_ecg``. ``linear_probe`` (ours) always probes ``encode_ecg``, the shared zero-shot space."""
    return _ProbeFeatures(encoder) if callable(getattr(encoder, "encode_ecg_probe", None)) else encoder


def _evaluate_own_module(
    encoder: Any, task: Any, mode: str, fraction: float | None, seed: int, *, identity: dict, settings: dict,
    device: str, precision: str, n_resamples: int, bootstrap_seed: int, common: dict,
) -> dict:
    """Run a mode's own module on the device the harness picks, then stamp the result file with the cell's
    identity (so a rerun skips it only when split, subset, data and options are the same) and the device."""
    from ecg_eval.embeddings import place_encoder, resolve_device
    from ecg_eval.results import write_result

    target = resolve_device(device)
    place_encoder(encoder, target)  # retrieval, generation and the fine-tuning copy follow the encoder's device
    if mode == "retrieval":
        from ecg_eval.retrieval import evaluate_retrieval

        out = evaluate_retrieval(encoder, task, n_resamples=n_resamples, bootstrap_seed=bootstrap_seed, **common)
    elif mode == "finetune":
        from ecg_eval.finetune import FinetuneConfig, evaluate_finetune

        if fraction is None:
            raise ValueError("finetune needs fraction (0.01, 0.1 or 1.0)")
        cfg = common.pop("finetune_config", None)
        if isinstance(cfg, FinetuneConfig) and cfg.device is None:
            cfg = dataclasses.replace(cfg, device=str(target))
        elif cfg is None:
            from ecg_eval.finetune import config_for

            cfg = config_for(str(common.get("method") or encoder.card.name), device=str(target))
        out = evaluate_finetune(encoder, task, fraction, n_resamples=n_resamples, bootstrap_seed=bootstrap_seed,
                                finetune_config=cfg, **{k: v for k, v in common.items() if k != "embed_cache"})
    else:
        from ecg_eval.report_generation import evaluate_report_generation

        out = evaluate_report_generation(encoder, task, **common)
    path = Path(out.pop("result_path"))
    result = out  # what the module wrote, returned to us: stamped and written again, not read back
    stamp_input_preparation(result, encoder, task)
    if getattr(task, "published", None) and "coverage" not in result:
        result["coverage"] = split_coverage(task)
    result["evaluated"] = identity
    result["evaluation_settings"] = settings
    result.setdefault("config", {}).update(device=str(target), precision=precision)
    if _rank() == 0:  # fine-tuning under torchrun runs on every rank; only rank 0 writes (as the module does)
        write_result(path, result)
    return {**result, "result_path": str(path)}


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def evaluate(
    encoder: Any,
    task: Any,
    mode: str,
    fraction: float | None = None,
    seed: int = 0,
    *,
    results_root: str | Path = DEFAULT_RESULTS_ROOT,
    suite: str | None = None,
    prompt_file: str | Path | None = None,
    templates: Sequence[str] | None = None,
    split_commas: bool = False,
    lowercase: bool = False,
    probe_config: ProbeConfig | None = None,
    n_resamples: int = bs.DEFAULT_RESAMPLES,
    bootstrap_seed: int = 0,
    batch_size: int = 256,
    embed_cache: str | Path | None = None,
    split_loader: SplitLoader | None = None,
    config: dict | None = None,
    skip_existing: bool = False,
    method: str | None = None,
    device: str = "cpu",
    precision: str = "32",
    mode_options: dict | None = None,
) -> dict:
    """Score ``encoder`` on ``task`` (``mode`` = "zero_shot" | "linear_probe") and write the result file.

    ``fraction`` (0.01 / 0.1 / 1.0) and ``seed`` pick the fixed training subset ``task.train_subset`` for the
    probe; zero-shot takes ``fraction=None``. ``config`` is stored verbatim (the runner's resolved config).
    ``method`` names the leaderboard row and the result folder (default: ``encoder.card.name``).
    ``device`` (``auto``/``cpu``/``cuda[:k]``) runs the encoder and the probe fit there; ``precision="bf16"``
    embeds under bf16 autocast (the probe always fits in its own float32).
    The modes ``finetune``, ``retrieval`` and ``report_generation`` run in their own modules; ``mode_options`` are
    passed to them (e.g. ``finetune_config``, ``split``, ``reference_file``; docs/evaluation.md).
    Returns the result dict (also written to ``expected_path(...)``, with ``result_path`` added).
    """
    suite = suite or task.suite
    path = expected_path(encoder, task, mode, fraction, seed, results_root=results_root, suite=suite, method=method)
    settings = evaluation_settings(mode, prompt_file=prompt_file, templates=templates, split_commas=split_commas,
                                   lowercase=lowercase, probe_config=probe_config, n_resamples=n_resamples,
                                   bootstrap_seed=bootstrap_seed, mode_options=mode_options)
    identity = evaluation_identity(task, mode, fraction, seed, settings)
    if skip_existing and is_complete(path, encoder.card.checkpoint_hash, identity):
        from ecg_eval.results import read_result

        out = read_result(path)
        out["result_path"] = str(path)
        return out
    if mode in OWN_MODULE_MODES:  # modes beyond AUROC live in their own modules (docs/evaluation.md)
        return _evaluate_own_module(encoder, task, mode, fraction, seed, identity=identity, settings=settings,
                                    device=device, precision=precision, n_resamples=n_resamples,
                                    bootstrap_seed=bootstrap_seed, common=dict(
                                        seed=seed, results_root=results_root, suite=suite, method=method,
                                        batch_size=batch_size, embed_cache=embed_cache, split_loader=split_loader,
                                        config=config, **(mode_options or {})))  # fmt: skip
    t0 = time.perf_counter()
    result = _base_result(encoder, task, mode, fraction, seed, suite)
    if method:
        result["method"] = method
    result["evaluated"] = identity
    result["evaluation_settings"] = settings
    if getattr(task, "published", None):
        result["published_split"] = dict(task.published)
        result["coverage"] = split_coverage(task)  # present / published records per split (docs/evaluation.md)
    if getattr(task, "input_window", None):
        result["input_window"] = task.input_window.to_dict()
    result["config"] = {
        "caller": _plain(config),
        "n_resamples": n_resamples,
        "bootstrap_seed": bootstrap_seed,
        "batch_size": batch_size,
        "device": str(resolve_device(device)),  # the device that computes it (auto -> cpu / cuda), not the request
        "precision": precision,
    }

    if mode == "zero_shot" and not supports_zero_shot(encoder):
        result.update(status="not_applicable", reason="encoder has no text tower (no encode_text)", scores=None)
        result["wall_time_s"] = time.perf_counter() - t0
        write_result(path, result)
        result["result_path"] = str(path)
        return result

    classes = list(task.classes)
    features = probe_features(encoder) if mode == "linear_probe_paper" else encoder
    result["feature"] = "encode_ecg_probe" if features is not encoder else "encode_ecg"
    test = embed_split(features, task, "test", batch_size=batch_size, cache_dir=embed_cache, split_loader=split_loader,
                       device=device, precision=precision)
    y_test = task.y(test.record_ids)

    if mode == "zero_shot":
        prompts = class_prompts(
            classes, dataset=task.dataset, path=prompt_file, templates=templates,
            split_commas=split_commas, lowercase=lowercase,
        )
        class_emb = class_embeddings(encoder, prompts, classes)
        scores = zero_shot_scores(test.features, class_emb)
        # Max-F1 threshold per class chosen on validation, applied once on test (docs/evaluation.md).
        val = embed_split(encoder, task, "val", batch_size=batch_size, cache_dir=embed_cache, split_loader=split_loader,
                          device=device, precision=precision)
        result["threshold_metrics"] = threshold_metrics(
            task.y(val.record_ids), zero_shot_scores(val.features, class_emb), y_test, scores, classes
        )
        result["n_val"] = len(val.record_ids)
        result["config"]["zero_shot"] = {
            "prompt_file": str(prompt_file) if prompt_file else "ecg_eval/prompts/default.json",
            "prompt_file_sha256_16": prompt_file_fingerprint(prompt_file),
            "templates": list(templates) if templates else ["{}"],
            "split_commas": split_commas,
            "lowercase": lowercase,
            "score": "cosine similarity",
            "prompts": prompts,
        }
    elif mode in PROBE_MODES:
        if fraction is None:
            raise ValueError(f"{mode} needs fraction (0.01, 0.1 or 1.0)")
        cfg = _probe_config(mode, probe_config)
        train = embed_split(features, task, "train", batch_size=batch_size, cache_dir=embed_cache, split_loader=split_loader,
                            device=device, precision=precision)
        val = embed_split(features, task, "val", batch_size=batch_size, cache_dir=embed_cache, split_loader=split_loader,
                          device=device, precision=precision)
        subset = [str(r) for r in task.train_subset(fraction, seed)]
        x_train, missing = train.rows(subset)
        if missing:
            log.warning("%s: %d of %d subset records are absent from the cached train split (QC)", task.name, len(missing), len(subset))
        absent = set(missing)
        kept = [r for r in subset if r not in absent]
        fitter = fit_paper_probe if mode == "linear_probe_paper" else fit_probe
        fit = fitter(x_train, task.y(kept), val.features, task.y(val.record_ids), config=cfg, seed=seed,
                     device=str(resolve_device(device)))
        scores = fit.predict_proba(test.features)
        result["config"]["linear_probe"] = cfg.to_dict()
        result["selection"] = fit.selection()
        result["n_train"] = len(kept)
        result["n_train_missing_qc"] = len(missing)
        if result.get("coverage"):  # the subset is a fraction of the records present, not of the published split
            result["coverage"] = split_coverage(task, train_subset=kept, fraction=fraction)
        result["n_val"] = len(val.record_ids)
    else:
        raise ValueError(f"unknown mode {mode!r}; valid modes: zero_shot, linear_probe, linear_probe_paper")

    report = multilabel_auroc(y_test, scores, classes)
    if report.excluded:
        log.warning("%s: classes excluded from the test AUROC: %s", task.name, report.excluded)
    result["n_test"] = len(test.record_ids)
    result["scores"] = {"macro_auroc": report.macro, "per_class_auroc": report.per_class}
    result["excluded_classes"] = report.excluded
    positives = test_positives(y_test, classes)
    result["test_positives"] = positives
    result["few_positive_classes"] = {c: n for c, n in positives.items() if 0 < n < FEW_POSITIVES and c in report.per_class}
    if report.macro is not None:
        seed_bs = bs.bootstrap_seed(task.name, test.record_ids, bootstrap_seed)
        res = bs.draw_resamples(y_test, seed=seed_bs, n_resamples=n_resamples)
        result["ci"] = bs.bootstrap_ci(y_test, scores, classes, res).to_dict()
    else:
        result["ci"] = None
    result["embedding_cache_keys"] = {"test": test.key}
    stamp_input_preparation(result, encoder, task)
    pred = predictions_path(path)
    write_predictions(pred, test.record_ids, classes, y_test, scores)
    result["predictions"] = pred.name
    result["wall_time_s"] = time.perf_counter() - t0
    write_result(path, result)
    result["result_path"] = str(path)
    return result
