"""Domain transfer: train on one task, test on another, on the classes they share by name.

The shared classes come from ``ecg_data.tasks.class_map`` (a file in ecg-data). Three ways to "train":

- ``linear_probe``: the probe is fitted on the source task's subset ``train_subset(fraction, seed)`` and
  selected on the source validation split (``ecg_eval.probe``), then scored once on the target test split;
- ``finetune``: the whole encoder + head fine-tuned on the source (``ecg_eval.finetune``), target test once;
- ``zero_shot``: no training; the target test split is scored with the target's class prompts, and the
  per-class max-F1 thresholds are chosen on the **source** validation split (how well a threshold carries over
  to another hospital is the transfer question for zero-shot).

Result file: ``<suite>/<method>/<target>/transfer-<train_mode>[-<percent>]-from-<source>-seed<k>.json`` with
``mode: "transfer"``, the AUROC fields of the other modes over the shared classes (named as in the target), and
``transfer`` = {source, target, train_mode, shared: [{concept, source, target}]}.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TRAIN_MODES = ("linear_probe", "finetune", "zero_shot")


def transfer_path(results_root: str | Path, suite: str, method: str, source: str, target: str, train_mode: str,
                  fraction: float | None, seed: int) -> Path:
    from ecg_eval.results import fraction_percent, result_path

    base = result_path(results_root, suite, method, target, "zero_shot", None, seed).parent
    pct = "" if fraction is None else f"-{fraction_percent(fraction)}"
    return base / f"transfer-{train_mode}{pct}-from-{source}-seed{int(seed)}.json"


def evaluate_transfer(
    encoder: Any, source: Any, target: Any, train_mode: str, fraction: float | None = None, seed: int = 0, *,
    results_root: str | Path | None = None, method: str | None = None, batch_size: int = 256,
    embed_cache: Any = None, split_loader: Any = None, probe_config: Any = None, finetune_config: Any = None,
    n_resamples: int = 1000, bootstrap_seed: int = 0, config: dict | None = None, prompt_file: str | Path | None = None,
) -> dict:
    """Train on ``source`` (per ``train_mode``), score ``target``'s test split on the shared classes, write the file."""
    from ecg_data.tasks.class_map import shared_classes

    from ecg_eval import bootstrap as bs
    from ecg_eval.embeddings import default_split_loader, embed_split, input_preparation, model_rows
    from ecg_eval.harness import DEFAULT_RESULTS_ROOT, _base_result, _plain
    from ecg_eval.metrics import multilabel_auroc, threshold_metrics
    from ecg_eval.protocol import declared_task_presets, preset_for, supports_zero_shot
    from ecg_eval.results import predictions_path, split_coverage, write_predictions, write_result

    if train_mode not in TRAIN_MODES:
        raise ValueError(f"unknown transfer train_mode {train_mode!r}; valid: {', '.join(TRAIN_MODES)}")
    if source.suite != target.suite:
        raise ValueError(f"transfer {source.name} -> {target.name}: suites differ ({source.suite} vs {target.suite})")
    if (train_mode == "zero_shot") != (fraction is None):
        raise ValueError("zero_shot transfer takes fraction=None; linear_probe / finetune need a fraction")
    t0 = time.perf_counter()
    name = method or encoder.card.name
    root = results_root if results_root is not None else DEFAULT_RESULTS_ROOT
    path = transfer_path(root, target.suite, name, source.name, target.name, train_mode, fraction, seed)
    shared = shared_classes(source.name, list(source.classes), target.name, list(target.classes))
    if not shared:
        raise ValueError(f"{source.name} and {target.name} share no class (ecg_data/tasks/class_map.csv)")
    src_cls, tgt_cls = [s.source for s in shared], [s.target for s in shared]
    result = _base_result(encoder, target, "transfer", fraction, seed, target.suite)
    result["method"] = name
    result["classes"] = tgt_cls
    result["transfer"] = {"source": source.name, "target": target.name, "train_mode": train_mode,
                          "shared": [vars(s) for s in shared]}
    if getattr(target, "published", None) or getattr(source, "published", None):  # partial data is marked
        result["coverage"] = split_coverage(target)  # the target's test split: what the cell is scored on
        result["transfer"]["source_coverage"] = split_coverage(source)
    result["config"] = {"caller": _plain(config), "n_resamples": n_resamples, "bootstrap_seed": bootstrap_seed}
    if declared_task_presets(encoder):  # both sides (each task is prepared by its own preset); resolved when scored
        result["input_preparation"] = {"source": input_preparation(encoder, source),
                                       "target": input_preparation(encoder, target)}
    loader = split_loader or default_split_loader

    def emb(task: Any, split: str):
        return embed_split(encoder, task, split, batch_size=batch_size, cache_dir=embed_cache, split_loader=loader)

    def y_of(task: Any, ids: list[str], cls: list[str]) -> np.ndarray:
        return task.labels.loc[ids, cls].to_numpy(dtype=np.float32)

    if train_mode == "zero_shot" and not supports_zero_shot(encoder):
        result.update(status="not_applicable", reason="encoder has no text tower (no encode_text)", scores=None)
        result["wall_time_s"] = time.perf_counter() - t0
        write_result(path, result)
        return {**result, "result_path": str(path)}

    if train_mode == "zero_shot":
        from ecg_eval.prompts import class_prompts
        from ecg_eval.zeroshot import class_embeddings, zero_shot_scores

        test = emb(target, "test")
        test_ids = list(test.record_ids)
        prompts = class_prompts(tgt_cls, dataset=target.dataset, path=prompt_file)
        ce = class_embeddings(encoder, prompts, tgt_cls)
        scores = zero_shot_scores(test.features, ce)
        src_val = emb(source, "val")
        val_scores = zero_shot_scores(src_val.features, ce)
        y_test = y_of(target, test_ids, tgt_cls)
        result["threshold_metrics"] = threshold_metrics(y_of(source, list(src_val.record_ids), src_cls), val_scores,
                                                        y_test, scores, tgt_cls)
        result["threshold_metrics"]["threshold_split"] = f"{source.name}/val"
        result["config"]["zero_shot"] = {"prompt_file": str(prompt_file) if prompt_file else "ecg_eval/prompts/default.json",
                                         "prompts": prompts}
    elif train_mode == "linear_probe":
        from ecg_eval.probe import ProbeConfig, fit_probe

        cfg = probe_config or ProbeConfig()
        train, val, test = emb(source, "train"), emb(source, "val"), emb(target, "test")
        subset = [str(r) for r in source.train_subset(fraction, seed)]
        x_train, missing = train.rows(subset)
        kept = [r for r in subset if r not in set(missing)]
        fit = fit_probe(x_train, y_of(source, kept, src_cls), val.features, y_of(source, list(val.record_ids), src_cls),
                        config=cfg, seed=seed)
        test_ids = list(test.record_ids)
        scores = fit.predict_proba(test.features)
        y_test = y_of(target, test_ids, tgt_cls)
        result["selection"] = fit.selection()
        result["config"]["linear_probe"] = cfg.to_dict()
        result.update(n_train=len(kept), n_val=len(val.record_ids))
    else:
        from ecg_eval.finetune import _predict, config_for, fit_finetune, supports_finetune

        if not supports_finetune(encoder):
            result.update(status="not_applicable", scores=None, reason="encoder exposes no trainable embed_ecg")
            result["wall_time_s"] = time.perf_counter() - t0
            write_result(path, result)
            return {**result, "result_path": str(path)}
        cfg = finetune_config or config_for(name)
        src_preset, tgt_preset = preset_for(encoder, source), preset_for(encoder, target)  # each task its own
        tr, va = loader(source, "train", src_preset), loader(source, "val", src_preset)
        te = loader(target, "test", tgt_preset)
        pos = {str(r): i for i, r in enumerate(tr.record_ids)}
        kept = [str(r) for r in source.train_subset(fraction, seed) if str(r) in pos]
        val_ids = [str(r) for r in va.record_ids]
        fit = fit_finetune(encoder, model_rows(tr), np.asarray([pos[r] for r in kept]), y_of(source, kept, src_cls),
                           model_rows(va), np.arange(len(val_ids)), y_of(source, val_ids, src_cls), config=cfg, seed=seed)
        test_ids = [str(r) for r in te.record_ids]
        device = next(fit.model.parameters()).device
        scores = _predict(fit.model, model_rows(te), np.arange(len(test_ids)), cfg.eval_batch_size, device)
        y_test = y_of(target, test_ids, tgt_cls)
        result["selection"] = fit.selection()
        result["config"]["finetune"] = cfg.to_dict()
        result.update(n_train=len(kept), n_val=len(val_ids))

    report = multilabel_auroc(y_test, scores, tgt_cls)
    result["n_test"] = len(test_ids)
    result["scores"] = {"macro_auroc": report.macro, "per_class_auroc": report.per_class}
    result["excluded_classes"] = report.excluded
    if report.macro is not None:
        res = bs.draw_resamples(y_test, seed=bs.bootstrap_seed(target.name, test_ids, bootstrap_seed), n_resamples=n_resamples)
        result["ci"] = bs.bootstrap_ci(y_test, scores, tgt_cls, res).to_dict()
    else:
        result["ci"] = None
    if declared_task_presets(encoder):  # each side's inputs, resolved (both were loaded above)
        result["input_preparation"] = {"source": input_preparation(encoder, source, resolve=True),
                                       "target": input_preparation(encoder, target, resolve=True)}
    pred = predictions_path(path)
    write_predictions(pred, test_ids, tgt_cls, y_test, scores)
    result["predictions"] = pred.name
    result["wall_time_s"] = time.perf_counter() - t0
    write_result(path, result)
    return {**result, "result_path": str(path)}
