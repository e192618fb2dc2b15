"""Domain transfer: train on one task, test on another, on the classes they share by name.

The shared classes come from ``ecg_data.tasks.class_map`` (a file in ecg-data). Three ways to "train":

- ``linear_probe``: the probe is fitted on the source task's subset ``train_subset(fraction, seed)`` and
  selected on the source validation split (``ecg_eval.probe``), then scored once on the target test split;
- ``finetune``: the whole encoder + head fine-tuned on the source (``ecg_eval.finetune``), target test once;
- ``zero_shot``: no training; the target test split is scored with the target's class prompts, and the
  per-class max-F1 thresholds are chosen on the **source** validation split (how well a threshold carries over
  to another hospital is the transfer question for zero-shot).

A registered mode (``ecg_eval.modes``): ``harness.evaluate(encoder, target, "transfer", fraction, seed,
mode_options={"source": source, "train_mode": "linear_probe"})`` (``source`` a task or a task name; option
``finetune_config`` for ``train_mode="finetune"``). Result file:
``<suite>/<method>/<target>/transfer-<train_mode>[-<percent>]-from-<source>-seed<k>.json`` with
``mode: "transfer"``, the AUROC fields of the other modes over the shared classes (named as in the target), and
``transfer`` = {source, target, train_mode, shared: [{concept, source, target}]}.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TRAIN_MODES = ("linear_probe", "finetune", "zero_shot")


#: the options of a transfer cell (``mode_options``)
OPTIONS = ("source", "train_mode", "finetune_config")


def _source_name(source: Any) -> str:
    return str(getattr(source, "name", source))


def transfer_file_name(fraction: float | None, seed: int, options: dict) -> str:
    """``transfer-<train_mode>[-<percent>]-from-<source>-seed<k>.json`` (``Mode.file_name`` of transfer)."""
    from ecg_eval.results import fraction_percent

    train_mode, source = options.get("train_mode"), options.get("source")
    if train_mode not in TRAIN_MODES or not source:
        raise ValueError(
            f"transfer needs mode_options source (a task or its name) and train_mode ({', '.join(TRAIN_MODES)}), "
            f"got {options!r}"
        )
    pct = "" if fraction is None else f"-{fraction_percent(fraction)}"
    return f"transfer-{train_mode}{pct}-from-{_source_name(source)}-seed{int(seed)}.json"


def transfer_path(
    results_root: str | Path,
    suite: str,
    method: str,
    source: str,
    target: str,
    train_mode: str,
    fraction: float | None,
    seed: int,
) -> Path:
    from ecg_eval.results import result_path

    return result_path(
        results_root,
        suite,
        method,
        target,
        "transfer",
        fraction,
        seed,
        options={"source": source, "train_mode": train_mode},
    )


def transfer_settings(kw: dict) -> dict:
    """What decides a transfer cell's numbers beyond its options: the prompts (zero-shot) or the probe grid."""
    from ecg_eval.probe import ProbeConfig
    from ecg_eval.prompts import prompt_file_fingerprint

    train_mode = (kw.get("mode_options") or {}).get("train_mode")
    if train_mode == "zero_shot":
        return {"prompts": {"sha256_16": prompt_file_fingerprint(kw.get("prompt_file"))}}
    if train_mode == "linear_probe":
        cfg = kw.get("probe_config")
        return {"probe": (cfg if isinstance(cfg, ProbeConfig) else ProbeConfig()).to_dict() | {"kind": "lbfgs"}}
    return {}


def score_transfer(call: Any) -> dict:
    """Train on ``call.options["source"]`` (per ``train_mode``), score the target's (``call.task``) test split on
    the shared classes; return the result (the harness writes it)."""
    from ecg_data.tasks import get_task
    from ecg_data.tasks.class_map import shared_classes
    from ecg_eval import bootstrap as bs
    from ecg_eval.cells import not_applicable
    from ecg_eval.embeddings import default_split_loader, embed_split, input_preparation, model_rows, place_encoder
    from ecg_eval.metrics import multilabel_auroc, threshold_metrics
    from ecg_eval.protocol import declared_task_presets, preset_for, supports_zero_shot
    from ecg_eval.results import predictions_path, split_coverage, write_predictions

    unknown = set(call.options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"transfer: unknown option(s) {sorted(unknown)}; valid: {', '.join(OPTIONS)}")
    encoder, target, fraction, seed = call.encoder, call.task, call.fraction, call.seed
    source, train_mode = call.options.get("source"), call.options.get("train_mode")
    if isinstance(source, str):
        source = get_task(source)
    finetune_config, probe_config, prompt_file = (
        call.options.get("finetune_config"),
        call.probe_config,
        call.prompt_file,
    )
    batch_size, embed_cache, n_resamples, bootstrap_seed = (
        call.batch_size,
        call.embed_cache,
        call.n_resamples,
        call.bootstrap_seed,
    )
    if train_mode not in TRAIN_MODES:
        raise ValueError(f"unknown transfer train_mode {train_mode!r}; valid: {', '.join(TRAIN_MODES)}")
    if source.suite != target.suite:
        raise ValueError(f"transfer {source.name} -> {target.name}: suites differ ({source.suite} vs {target.suite})")
    if (train_mode == "zero_shot") != (fraction is None):
        raise ValueError("zero_shot transfer takes fraction=None; linear_probe / finetune need a fraction")
    name = call.name
    path = call.path
    place_encoder(encoder, call.target)
    shared = shared_classes(source.name, list(source.classes), target.name, list(target.classes))
    if not shared:
        raise ValueError(f"{source.name} and {target.name} share no class (ecg_data/tasks/class_map.csv)")
    src_cls, tgt_cls = [s.source for s in shared], [s.target for s in shared]
    result = call.start()
    result["method"] = name
    result["classes"] = tgt_cls
    result["transfer"] = {
        "source": source.name,
        "target": target.name,
        "train_mode": train_mode,
        "shared": [vars(s) for s in shared],
    }
    if getattr(target, "published", None) or getattr(source, "published", None):  # partial data is marked
        result["coverage"] = split_coverage(target)  # the target's test split: what the cell is scored on
        result["transfer"]["source_coverage"] = split_coverage(source)
    result["config"] = {"caller": call.caller_config(), "n_resamples": n_resamples, "bootstrap_seed": bootstrap_seed}
    if declared_task_presets(encoder):  # both sides (each task is prepared by its own preset); resolved when scored
        result["input_preparation"] = {
            "source": input_preparation(encoder, source),
            "target": input_preparation(encoder, target),
        }
    loader = call.split_loader or default_split_loader

    def emb(task: Any, split: str):
        return embed_split(
            encoder,
            task,
            split,
            batch_size=batch_size,
            cache_dir=embed_cache,
            split_loader=loader,
            device=call.device,
            precision=call.precision,
        )

    def y_of(task: Any, ids: list[str], cls: list[str]) -> np.ndarray:
        return task.labels.loc[ids, cls].to_numpy(dtype=np.float32)

    if train_mode == "zero_shot" and not supports_zero_shot(encoder):
        return not_applicable(result, "encoder has no text tower (no encode_text)")

    if train_mode == "zero_shot":
        from ecg_eval.prompts import class_prompts
        from ecg_eval.zeroshot import class_embeddings, zero_shot_scores

        test = emb(target, "test")
        test_ids = list(test.record_ids)
        prompts = class_prompts(tgt_cls, dataset=target.dataset, path=prompt_file)
        ce = class_embeddings(encoder.encode_text, prompts, tgt_cls)
        scores = zero_shot_scores(test.features, ce)
        src_val = emb(source, "val")
        val_scores = zero_shot_scores(src_val.features, ce)
        y_test = y_of(target, test_ids, tgt_cls)
        result["threshold_metrics"] = threshold_metrics(
            y_of(source, list(src_val.record_ids), src_cls), val_scores, y_test, scores, tgt_cls
        )
        result["threshold_metrics"]["threshold_split"] = f"{source.name}/val"
        result["config"]["zero_shot"] = {
            "prompt_file": str(prompt_file) if prompt_file else "ecg_eval/prompts/default.json",
            "prompts": prompts,
        }
    elif train_mode == "linear_probe":
        from ecg_eval.probe import ProbeConfig, fit_probe

        cfg = probe_config or ProbeConfig()
        train, val, test = emb(source, "train"), emb(source, "val"), emb(target, "test")
        subset = [str(r) for r in source.train_subset(fraction, seed)]
        x_train, missing = train.rows(subset)
        kept = [r for r in subset if r not in set(missing)]
        fit = fit_probe(
            x_train,
            y_of(source, kept, src_cls),
            val.features,
            y_of(source, list(val.record_ids), src_cls),
            config=cfg,
            seed=seed,
        )
        test_ids = list(test.record_ids)
        scores = fit.predict_proba(test.features)
        y_test = y_of(target, test_ids, tgt_cls)
        result["selection"] = fit.selection()
        result["config"]["linear_probe"] = cfg.to_dict()
        result.update(n_train=len(kept), n_val=len(val.record_ids))
    else:
        from ecg_eval.finetune import FinetuneConfig, _predict, fit_finetune, supports_finetune

        if not supports_finetune(encoder):
            return not_applicable(result, "encoder exposes no trainable embed_ecg")
        cfg = FinetuneConfig.from_option(finetune_config)  # the caller's (the method's) recipe
        src_preset, tgt_preset = preset_for(encoder, source), preset_for(encoder, target)  # each task its own
        tr, va = loader(source, "train", src_preset), loader(source, "val", src_preset)
        te = loader(target, "test", tgt_preset)
        pos = {str(r): i for i, r in enumerate(tr.record_ids)}
        kept = [str(r) for r in source.train_subset(fraction, seed) if str(r) in pos]
        val_ids = [str(r) for r in va.record_ids]
        fit = fit_finetune(
            encoder,
            model_rows(tr),
            np.asarray([pos[r] for r in kept]),
            y_of(source, kept, src_cls),
            model_rows(va),
            np.arange(len(val_ids)),
            y_of(source, val_ids, src_cls),
            config=cfg,
            seed=seed,
        )
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
        res = bs.draw_resamples(
            y_test, seed=bs.bootstrap_seed(target.name, test_ids, bootstrap_seed), n_resamples=n_resamples
        )
        result["ci"] = bs.bootstrap_ci(y_test, scores, tgt_cls, res).to_dict()
    else:
        result["ci"] = None
    if declared_task_presets(encoder):  # each side's inputs, resolved (both were loaded above)
        result["input_preparation"] = {
            "source": input_preparation(encoder, source, resolve=True),
            "target": input_preparation(encoder, target, resolve=True),
        }
    pred = predictions_path(path)
    write_predictions(pred, test_ids, tgt_cls, y_test, scores)
    result["predictions"] = pred.name
    return result
