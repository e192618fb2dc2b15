"""ECG <-> report retrieval on held-out (ECG, report) pairs: Recall@k and median rank in both directions.

Why it exists: cross-modal retrieval is what an ECG-language model is for, and none of the original repositories
measures it. Both directions use cosine similarity of the L2-normalised ``encode_ecg`` / ``encode_text`` outputs.

Duplicate reports (machine reports repeat a lot: "Sinus rhythm. Normal ECG.") are handled as one *report class*:
reports are grouped by their text after folding white space and lower-casing, and

- ECG -> report: one query per record; the gallery is the set of distinct reports, so the record's own report
  text is the single correct item (any record with the identical report counts as a hit);
- report -> ECG: one query per distinct report; the gallery is every ECG, and the rank is that of the best-ranked
  ECG whose report is identical to the query.

Ranks are pessimistic in ties (a wrong item with the same similarity as the correct one ranks before it), so a
constant embedding scores chance level, never a perfect recall.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ecg_eval.cells import ModeCall, not_applicable

log = logging.getLogger(__name__)

DEFAULT_KS = (1, 5, 10)
#: Held-out split per task (the MIMIC-IV-ECG validation split as the issue asks; the test split elsewhere).
DEFAULT_SPLIT = {"mimic_iv_ecg": "val"}


def normalise_report(text: str) -> str:
    """The key that decides "identical report": white space folded, lower-cased."""
    return " ".join(str(text).split()).lower()


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def encode_texts(encoder: object, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """``encode_text`` in batches, without gradients -> (N, d) float32."""
    chunks = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            out = encoder.encode_text(list(texts[i : i + batch_size]))
            out = out.detach().float().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out, np.float32)
            chunks.append(out)
    emb = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    if emb.shape[0] != len(texts):
        raise ValueError(f"encode_text returned {emb.shape[0]} rows for {len(texts)} texts")
    return emb


@dataclass
class Pairs:
    """Held-out pairs: ECG row i has distinct-report index ``report_of[i]`` into ``reports``."""

    record_ids: list[str]
    reports: list[str]  # distinct reports (first spelling seen), gallery of ECG -> report
    report_of: np.ndarray  # (N,) int
    n_skipped_no_report: int = 0


def make_pairs(record_ids: Sequence[str], texts: Sequence[str | None]) -> Pairs:
    """Group identical reports; records without a report are skipped (counted)."""
    keep_ids: list[str] = []
    index: dict[str, int] = {}
    reports: list[str] = []
    owner: list[int] = []
    skipped = 0
    for rid, text in zip(record_ids, texts):
        if text is None or not str(text).strip():
            skipped += 1
            continue
        key = normalise_report(str(text))
        if key not in index:
            index[key] = len(reports)
            reports.append(" ".join(str(text).split()))
        keep_ids.append(str(rid))
        owner.append(index[key])
    return Pairs(keep_ids, reports, np.asarray(owner, dtype=np.int64), skipped)


def _ranks_ecg_to_report(ecg: np.ndarray, txt: np.ndarray, report_of: np.ndarray, chunk: int) -> np.ndarray:
    out = np.empty(ecg.shape[0], dtype=np.int64)
    for i in range(0, ecg.shape[0], chunk):
        sim = ecg[i : i + chunk] @ txt.T  # (b, M)
        true = sim[np.arange(sim.shape[0]), report_of[i : i + chunk]]
        out[i : i + chunk] = (sim >= true[:, None]).sum(axis=1)  # the true item itself counts once: rank >= 1
    return out


def _ranks_report_to_ecg(ecg: np.ndarray, txt: np.ndarray, report_of: np.ndarray, chunk: int) -> np.ndarray:
    out = np.empty(txt.shape[0], dtype=np.int64)
    for u0 in range(0, txt.shape[0], chunk):
        sim = txt[u0 : u0 + chunk] @ ecg.T  # (b, N)
        pos = report_of[None, :] == np.arange(u0, u0 + sim.shape[0])[:, None]  # (b, N) the matching ECGs
        best = np.where(pos, sim, -np.inf).max(axis=1)
        out[u0 : u0 + sim.shape[0]] = ((sim >= best[:, None]) & ~pos).sum(axis=1) + 1
    return out


def rank_summary(ranks: np.ndarray, n_gallery: int, ks: Sequence[int] = DEFAULT_KS) -> dict:
    """Recall@k (fraction of queries with rank <= k), median and mean rank, and chance-level Recall@k."""
    ranks = np.asarray(ranks)
    return {
        **{f"recall@{k}": float(np.mean(ranks <= k)) for k in ks},
        "median_rank": float(np.median(ranks)),
        "mean_rank": float(np.mean(ranks)),
        "n_queries": int(ranks.size),
        "n_gallery": int(n_gallery),
        "chance": {f"recall@{k}": min(1.0, k / n_gallery) for k in ks},
    }


def retrieval_scores(
    ecg_features: np.ndarray,
    report_features: np.ndarray,
    report_of: np.ndarray,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    chunk: int = 1024,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Scores of both directions and the raw ranks (per record / per distinct report)."""
    ecg, txt = _l2(ecg_features), _l2(report_features)
    if ecg.shape[1] != txt.shape[1]:
        raise ValueError(
            f"ECG features have dimension {ecg.shape[1]} but text embeddings {txt.shape[1]}: "
            "encode_ecg and encode_text must map into the same space for retrieval"
        )
    report_of = np.asarray(report_of, dtype=np.int64)
    r_e2t = _ranks_ecg_to_report(ecg, txt, report_of, chunk)
    r_t2e = _ranks_report_to_ecg(ecg, txt, report_of, chunk)
    scores = {
        "ecg_to_report": rank_summary(r_e2t, txt.shape[0], ks),
        "report_to_ecg": rank_summary(r_t2e, ecg.shape[0], ks),
    }
    return scores, {"ecg_to_report": r_e2t, "report_to_ecg": r_t2e}


def bootstrap_recall_ci(
    ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS, *, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float]]:
    """Percentile CI of Recall@k over resampled queries (seeded, so every method on the same pairs gets the same draws)."""
    ranks = np.asarray(ranks)
    idx = np.random.default_rng(seed).integers(0, ranks.size, size=(n_resamples, ranks.size))
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    out = {}
    for k in ks:
        vals = (ranks[idx] <= k).mean(axis=1)
        out[f"recall@{k}"] = [float(np.percentile(vals, lo)), float(np.percentile(vals, hi))]
    return out


def split_reports(cached: object) -> list[str | None]:
    """Reports of a cached split, aligned with its ``record_ids`` (None where a record has none)."""
    index = getattr(cached, "index", None)
    if index is None or "report" not in getattr(index, "columns", ()):
        raise ValueError(
            f"{getattr(cached, 'path', cached)}: the cached split has no 'report' column; retrieval needs reports"
        )
    from ecg_data.readers.base import clean_text

    return [clean_text(v) for v in index["report"]]


def score_retrieval(call: ModeCall) -> dict:
    """Score ECG <-> report retrieval on the task's held-out split (``call.options["split"]``, default
    ``DEFAULT_SPLIT`` or test) and return the ``retrieval-seed<k>`` result (the harness writes it).

    An encoder without ``encode_text`` gets a ``not_applicable`` result (nothing faked). The ranks are saved beside
    the result (``.ranks.npz``) so any other cut-off can be recomputed. Options: ``split``, ``ks``.
    """
    from pathlib import Path

    from ecg_data.paths import atomic_path
    from ecg_eval import bootstrap as bs
    from ecg_eval.embeddings import default_split_loader, embed_split, place_encoder
    from ecg_eval.protocol import preset_for, supports_zero_shot

    encoder, task, opts = call.encoder, call.task, dict(call.options)
    unknown = set(opts) - {"split", "ks"}
    if unknown:
        raise TypeError(f"retrieval: unknown option(s) {sorted(unknown)}; valid: split, ks")
    ks = tuple(opts.get("ks") or DEFAULT_KS)
    batch_size, n_resamples, bootstrap_seed = call.batch_size, call.n_resamples, call.bootstrap_seed
    place_encoder(encoder, call.target)
    split = opts.get("split") or DEFAULT_SPLIT.get(task.name, "test")
    path = call.path
    result = call.start()
    result["split"] = split
    result["config"] = {
        "caller": call.caller_config(),
        "ks": list(ks),
        "batch_size": batch_size,
        "n_resamples": n_resamples,
        "bootstrap_seed": bootstrap_seed,
        "similarity": "cosine",
        "duplicates": "identical reports (white space folded, lower-cased) are one gallery item / all hits",
        "ties": "pessimistic",
    }
    if not supports_zero_shot(encoder):
        return not_applicable(result, "encoder has no text tower (no encode_text)")
    loader = call.split_loader or default_split_loader
    cached = loader(task, split, preset_for(encoder, task))
    emb = embed_split(
        encoder, task, split, batch_size=batch_size, cache_dir=call.embed_cache, split_loader=lambda *_: cached
    )
    pairs = make_pairs(emb.record_ids, split_reports(cached))
    if pairs.n_skipped_no_report:
        log.warning(
            "%s/%s: %d record(s) without a report skipped for retrieval", task.name, split, pairs.n_skipped_no_report
        )
    if len(pairs.reports) < 2:
        raise ValueError(f"{task.name}/{split}: {len(pairs.reports)} distinct report(s); retrieval needs at least 2")
    rows, _ = emb.rows(pairs.record_ids)
    text = encode_texts(encoder, pairs.reports, batch_size)
    scores, ranks = retrieval_scores(rows, text, pairs.report_of, ks=ks)
    seed_bs = bs.bootstrap_seed(task.name, pairs.record_ids, bootstrap_seed)
    result["ci"] = {
        "level": 0.95,
        "n_resamples": n_resamples,
        "seed": seed_bs,
        **{d: bootstrap_recall_ci(ranks[d], ks, n_resamples=n_resamples, seed=seed_bs) for d in ranks},
    }
    result["scores"] = scores
    result["n_pairs"] = len(pairs.record_ids)
    result["n_distinct_reports"] = len(pairs.reports)
    result["n_skipped_no_report"] = pairs.n_skipped_no_report
    result["n_test"] = len(pairs.record_ids)
    result["embedding_cache_keys"] = {split: emb.key}
    ranks_file = Path(path).with_name(Path(path).stem + ".ranks.npz")
    with atomic_path(ranks_file) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                record_ids=np.asarray(pairs.record_ids),
                report_of=pairs.report_of,
                ecg_to_report=ranks["ecg_to_report"],
                report_to_ecg=ranks["report_to_ecg"],
            )
    result["predictions"] = ranks_file.name
    return result
