"""Report generation for methods with a decoder (``generate_report``), with the trivial baselines beside them.

Why baselines: on machine-style corpora a constant "Sinus rhythm. Normal ECG." already scores a high BLEU, so a
generated report means something only next to (a) the most frequent training report, and (b) the report of the
nearest training ECG in the method's own embedding space (retrieval, no decoder). Every system is scored with
the same metrics on the same references:

- BLEU-1..4 (sacrebleu corpus BLEU with ``max_ngram_order`` n, 13a tokenisation, lower-cased; 0-100);
- chrF (sacrebleu, 0-100) — used instead of METEOR, which needs WordNet data files at run time;
- ROUGE-L (rouge-score, mean F-measure over reports, 0-1);
- a clinical score: the statements recognised in generated vs reference reports (``ecg_eval.statements``),
  per-statement F1 and their macro mean over statements with a reference positive.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecg_eval.embeddings import model_rows
from ecg_eval.metrics import binary_f1
from ecg_eval.protocol import supports_report_generation
from ecg_eval.statements import StatementVocabulary, default_vocabulary

log = logging.getLogger(__name__)

BLEU_ORDERS = (1, 2, 3, 4)


def generate_reports(
    encoder: Any, signals: Any, n: int, *, batch_size: int = 32, progress: bool = True, **generate_kw: Any
) -> list[str]:
    """``encoder.generate_report`` over ``signals[i:j]`` batches (eval mode, no gradients), with a progress bar."""
    from tqdm.auto import tqdm

    if hasattr(encoder, "eval") and callable(encoder.eval):
        encoder.eval()
    device = None
    params = getattr(encoder, "parameters", None)
    if callable(params):
        device = next(iter(params()), torch.empty(0)).device
    out: list[str] = []
    with torch.no_grad():
        for start in tqdm(range(0, n, batch_size), desc="generating reports", unit="batch", disable=not progress):
            x = torch.from_numpy(np.array(signals[start : start + batch_size], dtype=np.float32))
            if device is not None:
                x = x.to(device)
            got = list(encoder.generate_report(x, **generate_kw))
            if len(got) != x.shape[0]:
                raise ValueError(f"generate_report returned {len(got)} reports for a batch of {x.shape[0]}")
            out += [str(g) for g in got]
    return out


def text_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """BLEU-1..4 and chrF (sacrebleu), ROUGE-L F (rouge-score); one reference per record."""
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    hyps, refs = [str(h) for h in hypotheses], [str(r) for r in references]
    out: dict[str, float] = {}
    for n in BLEU_ORDERS:
        out[f"bleu{n}"] = float(BLEU(max_ngram_order=n, lowercase=True).corpus_score(hyps, [refs]).score)
    out["chrf"] = float(CHRF(lowercase=True).corpus_score(hyps, [refs]).score)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    out["rouge_l"] = float(np.mean([scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs)]))
    return out


def clinical_metrics(hypotheses: Sequence[str], references: Sequence[str], vocab: StatementVocabulary) -> dict:
    """Per-statement F1 of recognised statements (generated vs reference) and their macro mean."""
    y_ref = vocab.matrix(references)
    y_gen = vocab.matrix(hypotheses)
    per, excluded = {}, {}
    for j, s in enumerate(vocab.names):
        if not y_ref[:, j].any():
            excluded[s] = "no reference report states it"
            continue
        per[s] = binary_f1(y_ref[:, j], y_gen[:, j])
    return {
        "macro_f1": float(np.mean(list(per.values()))) if per else None,
        "per_statement_f1": per,
        "excluded_statements": excluded,
        "reference_coverage": float(np.mean(y_ref.any(axis=1))),  # references with >= 1 recognised statement
    }


def score_system(hypotheses: Sequence[str], references: Sequence[str], vocab: StatementVocabulary) -> dict:
    return {**text_metrics(hypotheses, references), "clinical": clinical_metrics(hypotheses, references, vocab)}


def most_frequent_report(train_reports: Sequence[str | None]) -> str:
    """The most frequent training report (white space folded, case kept from its first spelling)."""
    keys: Counter[str] = Counter()
    first: dict[str, str] = {}
    for r in train_reports:
        if r is None or not str(r).strip():
            continue
        text = " ".join(str(r).split())
        key = text.lower()
        keys[key] += 1
        first.setdefault(key, text)
    if not keys:
        raise ValueError("no training report: the most-frequent-report baseline needs one")
    return first[keys.most_common(1)[0][0]]


def nearest_neighbour_reports(
    query: np.ndarray, gallery: np.ndarray, gallery_reports: Sequence[str], chunk: int = 1024
) -> list[str]:
    """For each query ECG, the report of the most cosine-similar gallery (training) ECG."""

    def l2(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    q, g = l2(query), l2(gallery)
    idx = np.concatenate([np.argmax(q[i : i + chunk] @ g.T, axis=1) for i in range(0, q.shape[0], chunk)])
    return [gallery_reports[int(i)] for i in idx]


def read_reference_split(path: str | Path) -> tuple[list[str], list[str]]:
    """A published report split (e.g. MELP's ``data_split/ptbxl/report/ptbxl_test.csv``): ``ecg_id`` + ``report``."""
    from ecg_data.readers.base import clean_text, read_csv_checked

    df = read_csv_checked(Path(path), ("ecg_id", "report"), dtype={"ecg_id": str})
    ids = [str(i).split(".")[0] for i in df["ecg_id"]]
    reps = [clean_text(r) for r in df["report"]]
    bad = [i for i, r in zip(ids, reps) if r is None]
    if bad:
        raise ValueError(f"{path}: {len(bad)} record(s) without a report, e.g. {bad[:5]}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate ecg_id values")
    return ids, reps  # type: ignore[return-value]


#: the options of report generation (``mode_options``; the runner's ``eval.report_generation`` via ``runner_options``)
OPTIONS = ("split", "reference_file", "split_name", "vocab", "progress", "generate_kw")


def runner_options(section: dict) -> dict:
    """``eval.report_generation`` -> mode options: the decoding keys become ``generate_kw``, and ``reference_file``."""
    opts = dict(section)
    gen = {k: opts.pop(k) for k in ("beam_size", "max_len", "length_penalty") if k in opts}
    out: dict[str, Any] = {"generate_kw": gen} if gen else {}
    if opts.get("reference_file"):
        out["reference_file"] = str(opts["reference_file"])
    return out


def score_report_generation(call: Any) -> dict:
    """Generate reports for the task's ``split`` (or the records of ``reference_file``, whose reports are then the
    references), score them and the two baselines, and return the ``report_generation-seed<k>`` result (the harness
    writes it). Options (``call.options``): ``OPTIONS``.

    ``reference_file`` is a published split such as MELP's PTB-XL report test split (500 records; the result's
    ``split`` is then ``split_name`` or ``"melp-ptbxl-report-test-500"``, ``<file stem>-<n>`` for other sizes); its records must be in ``task``'s test
    split. Generated reports are saved beside the result (``.reports.npz``: record_ids, references, generated,
    nearest_neighbour, most_frequent).
    """
    unknown = set(call.options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"report_generation: unknown option(s) {sorted(unknown)}; valid: {', '.join(OPTIONS)}")
    from ecg_eval.embeddings import place_encoder

    place_encoder(call.encoder, call.target)
    o = call.options
    return _score(
        call,
        encoder=call.encoder,
        task=call.task,
        batch_size=call.batch_size,
        embed_cache=call.embed_cache,
        split_loader=call.split_loader,
        split=o.get("split") or "test",
        reference_file=o.get("reference_file"),
        split_name=o.get("split_name"),
        vocab=o.get("vocab"),
        progress=o.get("progress", True),
        generate_kw=o.get("generate_kw"),
    )


def _score(
    call: Any,
    *,
    encoder: Any,
    task: Any,
    batch_size: int,
    embed_cache: Any,
    split_loader: Any,
    split: str,
    reference_file: str | Path | None,
    split_name: str | None,
    vocab: StatementVocabulary | None,
    progress: bool,
    generate_kw: dict | None,
) -> dict:
    from ecg_data.paths import atomic_path
    from ecg_eval.cells import not_applicable
    from ecg_eval.embeddings import default_split_loader, embed_split
    from ecg_eval.protocol import preset_for
    from ecg_eval.retrieval import split_reports

    path = call.path
    result = call.start()
    vocab = vocab or default_vocabulary()
    result["config"] = {
        "caller": call.caller_config(),
        "batch_size": batch_size,
        "generate": dict(generate_kw or {}),
        "bleu": "sacrebleu corpus BLEU, 13a, lowercase",
        "chrf": "sacrebleu chrF, lowercase",
        "rouge_l": "rouge-score rougeL F, no stemmer",
        "statements": vocab.source,
        "reference_file": str(reference_file) if reference_file else None,
    }
    if not supports_report_generation(encoder):
        return not_applicable(result, "encoder has no report decoder (no generate_report)")
    loader = split_loader or default_split_loader
    preset = preset_for(encoder, task)
    cached = loader(task, split, preset)
    ids = [str(r) for r in cached.record_ids]
    refs_all = split_reports(cached)
    if reference_file is not None:
        want, want_refs = read_reference_split(reference_file)
        pos = {r: i for i, r in enumerate(ids)}
        missing = [w for w in want if w not in pos]
        if missing:
            raise ValueError(
                f"{reference_file}: {len(missing)} record(s) not in {task.name}/{split} (after QC), e.g. {missing[:5]}"
            )
        rows = [pos[w] for w in want]
        references = list(want_refs)
        default_name = "melp-ptbxl-report-test-500" if len(want) == 500 else f"{Path(reference_file).stem}-{len(want)}"
        result["split"] = split_name or default_name
    else:
        rows = [i for i, r in enumerate(refs_all) if r]
        references = [refs_all[i] for i in rows]
        result["split"] = split_name or split
        if len(rows) < len(ids):
            log.warning("%s/%s: %d record(s) without a report skipped", task.name, split, len(ids) - len(rows))
    if not rows:
        raise ValueError(f"{task.name}/{split}: no record with a reference report")
    if callable(getattr(encoder, "generate_records_reports", None)):  # a reference row (ecg_eval.references)
        generated = list(encoder.generate_records_reports(task, split, [ids[i] for i in rows]))
    else:
        source = model_rows(cached)
        signals = source[np.asarray(rows)] if len(rows) != len(ids) else source
        generated = generate_reports(
            encoder, signals, len(rows), batch_size=batch_size, progress=progress, **(generate_kw or {})
        )

    train_cached = loader(task, "train", preset)
    train_reports = split_reports(train_cached)
    train_emb = embed_split(encoder, task, "train", cache_dir=embed_cache, split_loader=lambda *_: train_cached)
    test_emb = embed_split(encoder, task, split, cache_dir=embed_cache, split_loader=lambda *_: cached)
    keep = [i for i, r in enumerate(train_reports) if r]
    nn = nearest_neighbour_reports(
        test_emb.features[np.asarray(rows)], train_emb.features[np.asarray(keep)], [train_reports[i] for i in keep]
    )  # type: ignore[misc]
    frequent = most_frequent_report(train_reports)
    result["scores"] = {
        "model": score_system(generated, references, vocab),
        "baselines": {
            "most_frequent": {**score_system([frequent] * len(references), references, vocab), "report": frequent},
            "nearest_neighbour": score_system(nn, references, vocab),
        },
    }
    result["n_test"] = len(rows)
    result["n_train"] = len(keep)
    result["embedding_cache_keys"] = {"train": train_emb.key, split: test_emb.key}
    reports_file = Path(path).with_name(Path(path).stem + ".reports.npz")  # not .json: the leaderboard reads those
    with atomic_path(reports_file) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                record_ids=np.asarray([ids[i] for i in rows]),
                references=np.asarray(references),
                generated=np.asarray(generated),
                nearest_neighbour=np.asarray(nn),
                most_frequent=np.asarray(frequent),
            )
    result["predictions"] = reports_file.name
    return result
