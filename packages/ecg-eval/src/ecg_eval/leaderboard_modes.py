"""Leaderboard sections of the modes beyond zero-shot/probe AUROC: zero-shot F1/accuracy, fine-tuning, transfer,
retrieval and report generation. Each function renders one markdown section per suite from result dicts.

Why separate from ``leaderboard.py``: these tables have their own columns (recalls, BLEU, source -> target), and
keeping them apart lets the AUROC tables change without touching them. Values are means over seeds. Each mode
names its section in the registry (``ecg_eval.modes``, ``Mode.section``); ``leaderboard.render_mode_sections``
renders them in registry order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

import numpy as np

from ecg_eval.leaderboard import TASK_ORDER
from ecg_eval.references import is_reference, reference_label, sort_key


def _tab(body: list[list[str]], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def _task_key(t: str) -> tuple:
    return (TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER), t)


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _fmt(v: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "–" if v is None else f"{scale * v:.{digits}f}"


def _ok(results: Iterable[dict], mode: str, suite: str) -> list[dict]:
    return [r for r in results if r["mode"] == mode and r["suite"] == suite]


def _by(rs: list[dict], key: Callable[[dict], tuple]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in rs:
        out[key(r)].append(r)
    return out


def _method_task_grid(rs: list[dict], cell: Callable[[list[dict]], str]) -> tuple[list[str], list[list[str]]]:
    """(task columns, rows): one row per method, ``cell(results of that method and task)`` per column."""
    groups = _by(rs, lambda r: (r["method"], r["task"]))
    tasks = sorted({t for _, t in groups}, key=_task_key)
    body = [
        [reference_label(m), *(cell(groups.get((m, t), [])) for t in tasks)]
        for m in sorted({m for m, _ in groups}, key=sort_key)
    ]
    return tasks, body


def _auroc_cell(g: list[dict]) -> str:
    """Macro AUROC x100 ± the mean CI half-width of the results of one cell."""
    mac = _mean(r["scores"]["macro_auroc"] for r in g)
    half = _mean((c[1] - c[0]) / 2 for c in (r["ci"]["macro_auroc"] for r in g if r.get("ci")))
    return "–" if mac is None else f"{_fmt(mac, 100)}" + (f" ± {_fmt(half, 100)}" if half is not None else "")


def zero_shot_threshold_section(results: list[dict], suite: str) -> str:
    """Zero-shot macro F1 and accuracy at the per-class max-F1 threshold chosen on validation (x100)."""
    rs = [r for r in _ok(results, "zero_shot", suite) if r["status"] == "ok" and r.get("threshold_metrics")]
    if not rs:
        return ""

    def cell(g: list[dict]) -> str:
        f1 = _mean(r["threshold_metrics"]["macro"]["f1"] for r in g)
        acc = _mean(r["threshold_metrics"]["macro"]["accuracy"] for r in g)
        return "–" if not g else f"{_fmt(f1, 100)} / {_fmt(acc, 100)}"

    tasks, body = _method_task_grid(rs, cell)
    return (
        "### Zero-shot macro F1 / accuracy at the max-F1 threshold\n\n"
        "Threshold per class chosen on the validation split, applied once on test (x100). The result files also "
        'hold the test-chosen ("oracle") values the original code reports.\n\n' + _tab(body, ["method", *tasks]) + "\n"
    )


def finetune_section(results: list[dict], suite: str) -> str:
    """Fine-tuning macro AUROC x100 ± CI half-width, one table per training fraction."""
    rs = [r for r in _ok(results, "finetune", suite) if r["status"] == "ok"]
    if not rs:
        return ""
    out = []
    for frac in sorted({r["fraction_percent"] for r in rs}, key=float):
        sub = [r for r in rs if r["fraction_percent"] == frac]
        tasks, body = _method_task_grid(sub, _auroc_cell)
        out.append(f"### Fine-tuning, {frac}% of the training data\n\n" + _tab(body, ["method", *tasks]) + "\n")
    return "\n".join(out)


def transfer_section(results: list[dict], suite: str) -> str:
    """Source -> target macro AUROC x100 on the shared classes, per method and training mode."""
    rs = [r for r in _ok(results, "transfer", suite) if r["status"] == "ok"]
    if not rs:
        return ""
    groups = _by(
        rs,
        lambda r: (r["method"], r["transfer"]["train_mode"], r["fraction_percent"], r["transfer"]["source"], r["task"]),
    )
    body = []
    for (m, tm, frac, src, tgt), g in sorted(groups.items()):
        body.append(
            [
                m,
                tm + (f" {frac}%" if frac else ""),
                f"{src} → {tgt}",
                str(len(g[0]["classes"])),
                _fmt(_mean(r["scores"]["macro_auroc"] for r in g), 100) + _partial(g),
            ]
        )
    return (
        "### Domain transfer (source → target, shared classes)\n\n"
        + _tab(body, ["method", "trained by", "source → target", "classes", "macro AUROC"])
        + "\n"
    )


def _partial(g: list[dict]) -> str:
    """ " ◊ p%" for a real-data cell whose target is a published task scored on part of its test split (as in the
    AUROC tables; " ◊ ?" when a file does not record its coverage), else ""."""
    from ecg_eval.leaderboard import PUBLISHED
    from ecg_eval.results import test_coverage

    if not g or g[0]["suite"] != "real" or g[0]["task"] not in PUBLISHED:
        return ""
    covs = [test_coverage(r) for r in g]
    if any(c is None for c in covs):
        return " ◊ ?"
    share = min(p / n if n else 1.0 for p, n in covs)  # type: ignore[misc]
    return f" ◊ {100 * share:.1f}%" if share < 1.0 else ""


def retrieval_section(results: list[dict], suite: str) -> str:
    """ECG -> report and report -> ECG Recall@1/5/10 (x100) and median rank."""
    rs = [r for r in _ok(results, "retrieval", suite)]
    if not rs:
        return ""
    groups = _by(rs, lambda r: (r["task"], r["split"], r["method"]))
    body = []
    for (task, split, m), g in sorted(
        groups.items(), key=lambda kv: (_task_key(kv[0][0]), kv[0][1], sort_key(kv[0][2]))
    ):
        ok = [r for r in g if r["status"] == "ok"]
        if not ok:
            body.append([f"{task} ({split})", reference_label(m)] + ["n/a"] * 8 + ["–"])
            continue
        row = [f"{task} ({split})", reference_label(m)]
        for d in ("ecg_to_report", "report_to_ecg"):
            row += [_fmt(_mean(r["scores"][d][f"recall@{k}"] for r in ok), 100) for k in (1, 5, 10)]
            row.append(_fmt(_mean(r["scores"][d]["median_rank"] for r in ok), 1, 0))
        row.append(f"{ok[0]['n_pairs']} / {ok[0]['n_distinct_reports']}")
        body.append(row)
    headers = [
        "task (split)",
        "method",
        "E→R R@1",
        "R@5",
        "R@10",
        "MdR",
        "R→E R@1",
        "R@5",
        "R@10",
        "MdR",
        "pairs / distinct reports",
    ]
    return (
        "### ECG ↔ report retrieval\n\nRecall@k x100 and median rank (MdR) on held-out pairs; identical reports "
        "are one gallery item and any ECG with the identical report is a hit; ties count against the model.\n\n"
        + _tab(body, headers)
        + "\n"
    )


def report_generation_section(results: list[dict], suite: str) -> str:
    """BLEU-1..4, chrF, ROUGE-L and the clinical statement macro F1 of each decoder and the trivial baselines."""
    rs = [r for r in _ok(results, "report_generation", suite) if r["status"] == "ok"]
    if not rs:
        return ""

    def cells(s: dict) -> list[str]:
        return [_fmt(s[f"bleu{n}"]) for n in (1, 2, 3, 4)] + [
            _fmt(s["chrf"]),
            _fmt(s["rouge_l"], 100),
            _fmt(s["clinical"]["macro_f1"], 100),
        ]

    body = []
    for (task, split), g in sorted(_by(rs, lambda r: (r["task"], r["split"])).items()):
        ordered = sorted(g, key=lambda r: sort_key(r["method"]))
        body.append(
            [f"{task} ({split})", "_most frequent report_", *cells(ordered[0]["scores"]["baselines"]["most_frequent"])]
        )
        for r in ordered:
            body.append([f"{task} ({split})", reference_label(r["method"]), *cells(r["scores"]["model"])])
            if not is_reference(r["method"]):  # the oracle's "nearest training report" is its own features' neighbour
                body.append(
                    [
                        f"{task} ({split})",
                        f"_{r['method']}: nearest training report_",
                        *cells(r["scores"]["baselines"]["nearest_neighbour"]),
                    ]
                )
    headers = ["task (split)", "system", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "chrF", "ROUGE-L", "statement F1"]
    return (
        "### Report generation\n\nsacrebleu BLEU/chrF (0-100), ROUGE-L F x100, and the macro F1 over the report "
        "statements recognised in generated vs reference reports (x100); the baselines need no decoder.\n\n"
        + _tab(body, headers)
        + "\n"
    )
