"""The classification modes: zero-shot and the two linear probes, scored by macro AUROC with bootstrap CIs.

Each function scores one cell (``ecg_eval.cells.ModeCall``) and returns its result: embeddings (cached) ->
zero-shot scores or a probe fit -> AUROC, excluded classes and paired bootstrap CIs on the test split, with the
per-record predictions written beside the result file. ``ecg_eval.harness.evaluate`` stamps and writes it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ecg_eval import bootstrap as bs
from ecg_eval.cells import ModeCall, not_applicable
from ecg_eval.embeddings import embed_split
from ecg_eval.metrics import FEW_POSITIVES, multilabel_auroc, test_positives, threshold_metrics
from ecg_eval.probe import PaperProbeConfig, ProbeConfig, fit_paper_probe, fit_probe
from ecg_eval.prompts import class_prompts, prompt_file_fingerprint
from ecg_eval.protocol import supports_zero_shot
from ecg_eval.results import predictions_path, split_coverage, write_predictions
from ecg_eval.zeroshot import class_embeddings, zero_shot_scores

log = logging.getLogger("ecg_eval.harness")  # the logger these messages always had


def zero_shot_settings(kw: dict) -> dict:
    """What decides a zero-shot cell's numbers beyond the bootstrap: the prompts (file content hash, templates, flags)."""
    templates = kw.get("templates")
    return {
        "prompts": {
            "sha256_16": prompt_file_fingerprint(kw.get("prompt_file")),
            "templates": list(templates) if templates else ["{}"],
            "split_commas": bool(kw.get("split_commas", False)),
            "lowercase": bool(kw.get("lowercase", False)),
        }
    }


@dataclasses.dataclass(frozen=True)
class Probe:
    """One kind of linear probe: its config class, its fit function and the feature it probes. A probe mode's
    declaration (``ecg_eval.modes``) names its scoring and settings functions below, each bound to one of these."""

    kind: str  # recorded in the cell's settings: "lbfgs" (ours) or "paper"
    config: type
    fit: Any
    features: Any  # encoder -> what is embedded (the encoder itself, or its probe feature)


def probe_config(probe: Probe, cfg: Any) -> Any:
    """The probe config a cell runs with: the caller's when it is of the probe's config class, else the defaults."""
    return cfg if isinstance(cfg, probe.config) else probe.config()


def _settings(probe: Probe, kw: dict) -> dict:
    return {"probe": probe_config(probe, kw.get("probe_config")).to_dict() | {"kind": probe.kind}}


def probe_settings(kw: dict) -> dict:
    """A ``linear_probe`` cell's settings: the probe's kind and grid."""
    return _settings(OUR_PROBE, kw)


def paper_probe_settings(kw: dict) -> dict:
    """A ``linear_probe_paper`` cell's settings: the probe's kind and grid."""
    return _settings(PAPER_PROBE, kw)


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


#: ours: L-BFGS on ``encode_ecg`` (the shared zero-shot space); the papers': AdamW epochs on the probe feature
OUR_PROBE = Probe("lbfgs", ProbeConfig, fit_probe, lambda encoder: encoder)
PAPER_PROBE = Probe("paper", PaperProbeConfig, fit_paper_probe, probe_features)


def _start(call: ModeCall) -> dict:
    """The common fields, the published split and input window of the task, and the harness's config record."""
    task = call.task
    result = call.start()
    if getattr(task, "published", None):
        result["published_split"] = dict(task.published)
        result["coverage"] = split_coverage(task)  # present / published records per split (docs/evaluation.md)
    if getattr(task, "input_window", None):
        result["input_window"] = task.input_window.to_dict()
    result["config"] = {
        "caller": call.caller_config(),
        "n_resamples": call.n_resamples,
        "bootstrap_seed": call.bootstrap_seed,
        "batch_size": call.batch_size,
    }
    return result


def _embed(call: ModeCall, encoder: Any, split: str) -> Any:
    return embed_split(
        encoder,
        call.task,
        split,
        batch_size=call.batch_size,
        cache_dir=call.embed_cache,
        split_loader=call.split_loader,
        device=call.device,
        precision=call.precision,
    )


def score_zero_shot(call: ModeCall) -> dict:
    """Cosine similarity of each record to each class's prompt embedding; max-F1 thresholds chosen on validation."""
    encoder, task = call.encoder, call.task
    result = _start(call)
    if not supports_zero_shot(encoder):
        return not_applicable(result, "encoder has no text tower (no encode_text)")
    classes = list(task.classes)
    result["feature"] = "encode_ecg"
    test = _embed(call, encoder, "test")
    y_test = task.y(test.record_ids)
    prompts = class_prompts(
        classes,
        dataset=task.dataset,
        path=call.prompt_file,
        templates=call.templates,
        split_commas=call.split_commas,
        lowercase=call.lowercase,
    )
    class_emb = class_embeddings(encoder.encode_text, prompts, classes)
    scores = zero_shot_scores(test.features, class_emb)
    # Max-F1 threshold per class chosen on validation, applied once on test (docs/evaluation.md).
    val = _embed(call, encoder, "val")
    result["threshold_metrics"] = threshold_metrics(
        task.y(val.record_ids), zero_shot_scores(val.features, class_emb), y_test, scores, classes
    )
    result["n_val"] = len(val.record_ids)
    result["config"]["zero_shot"] = {
        "prompt_file": str(call.prompt_file) if call.prompt_file else "ecg_eval/prompts/default.json",
        "prompt_file_sha256_16": prompt_file_fingerprint(call.prompt_file),
        "templates": list(call.templates) if call.templates else ["{}"],
        "split_commas": call.split_commas,
        "lowercase": call.lowercase,
        "score": "cosine similarity",
        "prompts": prompts,
    }
    return _auroc(call, result, test, y_test, scores)


def score_probe(call: ModeCall) -> dict:
    """Our linear probe (``linear_probe``): L-BFGS on ``encode_ecg``; see ``_score_probe``."""
    return _score_probe(call, OUR_PROBE)


def score_paper_probe(call: ModeCall) -> dict:
    """The papers' linear probe (``linear_probe_paper``): AdamW epochs on the encoder's probe feature."""
    return _score_probe(call, PAPER_PROBE)


def _score_probe(call: ModeCall, probe: Probe) -> dict:
    """A linear probe on the fixed training subset ``task.train_subset(fraction, seed)``, selected on validation."""
    encoder, task, mode, fraction, seed = call.encoder, call.task, call.mode, call.fraction, call.seed
    if fraction is None:
        raise ValueError(f"{mode} needs fraction (0.01, 0.1 or 1.0)")
    result = _start(call)
    features = probe.features(encoder)
    result["feature"] = "encode_ecg_probe" if features is not encoder else "encode_ecg"
    test = _embed(call, features, "test")
    y_test = task.y(test.record_ids)
    cfg = probe_config(probe, call.probe_config)
    train = _embed(call, features, "train")
    val = _embed(call, features, "val")
    subset = [str(r) for r in task.train_subset(fraction, seed)]
    x_train, missing = train.rows(subset)
    if missing:
        log.warning(
            "%s: %d of %d subset records are absent from the cached train split (QC)",
            task.name,
            len(missing),
            len(subset),
        )
    absent = set(missing)
    kept = [r for r in subset if r not in absent]
    fit = probe.fit(
        x_train, task.y(kept), val.features, task.y(val.record_ids), config=cfg, seed=seed, device=str(call.target)
    )
    scores = fit.predict_proba(test.features)
    result["config"]["linear_probe"] = cfg.to_dict()
    result["selection"] = fit.selection()
    result["n_train"] = len(kept)
    result["n_train_missing_qc"] = len(missing)
    if result.get("coverage"):  # the subset is a fraction of the records present, not of the published split
        result["coverage"] = split_coverage(task, train_subset=kept, fraction=fraction)
    result["n_val"] = len(val.record_ids)
    return _auroc(call, result, test, y_test, scores)


def _auroc(call: ModeCall, result: dict, test: Any, y_test: Any, scores: Any) -> dict:
    """Macro/per-class AUROC, few-positive classes and the paired bootstrap CI; the predictions beside the result."""
    task, classes = call.task, list(call.task.classes)
    report = multilabel_auroc(y_test, scores, classes)
    if report.excluded:
        log.warning("%s: classes excluded from the test AUROC: %s", task.name, report.excluded)
    result["n_test"] = len(test.record_ids)
    result["scores"] = {"macro_auroc": report.macro, "per_class_auroc": report.per_class}
    result["excluded_classes"] = report.excluded
    positives = test_positives(y_test, classes)
    result["test_positives"] = positives
    result["few_positive_classes"] = {
        c: n for c, n in positives.items() if 0 < n < FEW_POSITIVES and c in report.per_class
    }
    if report.macro is not None:
        seed_bs = bs.bootstrap_seed(task.name, test.record_ids, call.bootstrap_seed)
        res = bs.draw_resamples(y_test, seed=seed_bs, n_resamples=call.n_resamples)
        result["ci"] = bs.bootstrap_ci(y_test, scores, classes, res).to_dict()
    else:
        result["ci"] = None
    result["embedding_cache_keys"] = {"test": test.key}
    pred = predictions_path(call.path)
    write_predictions(pred, test.record_ids, classes, y_test, scores)
    result["predictions"] = pred.name
    return result
