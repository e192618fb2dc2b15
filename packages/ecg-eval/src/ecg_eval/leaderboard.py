"""Render leaderboard/README.md (and a probe plot) from result files.

One section per suite (synthetic and real results never share a table); real data is split by protocol: the
published benchmark (the papers' split files and label columns, ``ecg_data.tasks.PUBLISHED_TASKS``) and our
corrected tasks (``cpsc2018_full``, ``csn_exact``, ``ptbxl_all``), which never share a column. One table per mode
(zero-shot; our L-BFGS probe and the papers' probe at 1%, 10%, 100%), methods as rows, tasks as columns plus the
mean. A cell is the mean over seeds of the macro AUROC (x100) "± half-width" of the 95% bootstrap CI (mean over
seeds of the CI bounds). The best value of each column is bold. Papers' reported numbers
(``leaderboard/reference.yaml``) appear only in the published section, in the tables of their protocol (zero-shot;
reported probe numbers beside the papers' probe), marked as reported with their source, never bolded and never
mixed into the means.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecg_eval.bootstrap import PairingError
from ecg_eval.results import read_result

log = logging.getLogger(__name__)

TASK_ORDER = ["ptbxl_super", "ptbxl_sub", "ptbxl_form", "ptbxl_rhythm", "ptbxl_all", "cpsc2018", "cpsc2018_full",
              "csn", "csn_exact"]
#: the published benchmark's tasks (``ecg_data.tasks.PUBLISHED_TASKS``; listed here so rendering needs no data)
PUBLISHED = ("ptbxl_super", "ptbxl_sub", "ptbxl_form", "ptbxl_rhythm", "cpsc2018", "csn")
PROTOCOL_TITLES = {
    "published": "Published benchmark (the papers' split files, label columns and CPSC2018 5 s input)",
    "corrected": "Our corrected tasks (same split membership, our label or input definition; no reported numbers)",
    "synthetic": "",
}
#: modes in which reported numbers may appear: the papers report zero-shot and their own epoch-loop probe
REPORTED_MODES = ("zero_shot", "linear_probe_paper")
SUITE_TITLES = {"real": "Real data", "synthetic": "Synthetic data (pipeline check, not a clinical result)"}
HEADER = (
    "<!-- GENERATED FILE: written by `python benchmarks/publish.py` from leaderboard/results; "
    "do not edit by hand. -->\n"
)


#: one-sided level of the "not significantly worse than the best" test behind bold cells
ALPHA = 0.05


@dataclass
class Cell:
    mean: float | None  # macro AUROC in [0, 1], mean over seeds
    ci: tuple[float, float] | None  # mean ± 1.96 sqrt(bootstrap variance + between-seed variance)
    n_seeds: int
    status: str = "ok"
    seen: bool = False
    few: bool = False  # some evaluated class has < FEW_POSITIVES test positives
    predictions: dict[int, Path] = field(default_factory=dict)  # seed -> predictions file
    task: str = ""


@dataclass
class Table:
    suite: str
    mode: str
    fraction: str | None  # percent as in the file name, None for zero-shot
    cells: dict[str, dict[str, Cell]] = field(default_factory=lambda: defaultdict(dict))  # method -> task -> cell
    protocol: str = "published"  # "published" | "corrected" (real suite); "synthetic"

    @property
    def title(self) -> str:
        if self.mode == "zero_shot":
            return "Zero-shot"
        probe = "papers' probe (AdamW epochs)" if self.mode == "linear_probe_paper" else "our L-BFGS probe"
        return f"Linear probe, {self.fraction}% of the training data — {probe}"


def protocol_of(suite: str, task: str) -> str:
    if suite != "real":
        return "synthetic"
    return "published" if task in PUBLISHED else "corrected"


def load_results(root: str | Path) -> list[dict]:
    """Every ``*.json`` under ``root`` (schema-checked; a bad file raises naming it); ``_path`` is added."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [{**read_result(p), "_path": str(p)} for p in sorted(root.rglob("*.json"))]


def combined_interval(macros: list[float], cis: list[tuple[float, float]]) -> tuple[float, float] | None:
    """95% interval over both test resampling and subset/initialisation seeds (law of total variance).

    Each seed's bootstrap variance is read from its percentile interval (half-width / 1.96, squared); the total
    variance is their mean plus the sample variance of the seeds' macro AUROCs (0 for one seed)."""
    if not cis or len(cis) != len(macros):
        return None
    boot = float(np.mean([((hi - lo) / (2 * 1.96)) ** 2 for lo, hi in cis]))
    between = float(np.var(macros, ddof=1)) if len(macros) > 1 else 0.0
    h = 1.96 * np.sqrt(boot + between)
    m = float(np.mean(macros))
    return (m - h, m + h)


_MODE_ORDER = {"zero_shot": 0, "linear_probe": 1, "linear_probe_paper": 2}
_PROTOCOL_ORDER = {"published": 0, "corrected": 1, "synthetic": 2}


def _table_order(key: tuple) -> tuple:
    suite, mode, frac, *rest = key
    protocol = rest[0] if rest else "published"
    return (0 if suite == "real" else 1, _PROTOCOL_ORDER.get(protocol, 3), _MODE_ORDER.get(mode, 3),
            float(frac) if frac else 0.0)


def build_tables(results: Iterable[dict]) -> list[Table]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        if r["mode"] not in ("zero_shot", "linear_probe", "linear_probe_paper"):  # others: leaderboard_modes
            continue
        groups[(r["suite"], r["mode"], r.get("fraction_percent"), r["method"], r["task"])].append(r)
    tables: dict[tuple, Table] = {}
    for (suite, mode, frac, method, task), rs in groups.items():
        protocol = protocol_of(suite, task)
        table = tables.setdefault((suite, mode, frac, protocol), Table(suite, mode, frac, protocol=protocol))
        seen = any(r.get("seen_in_pretraining") for r in rs)
        ok = [r for r in rs if r["status"] == "ok" and r["scores"]["macro_auroc"] is not None]
        if not ok:
            table.cells[method][task] = Cell(None, None, len(rs), status=rs[0]["status"], seen=seen)
            continue
        macros = [r["scores"]["macro_auroc"] for r in ok]
        cis = [tuple(r["ci"]["macro_auroc"]) for r in ok if r.get("ci")]
        preds = {int(r["seed"]): Path(r["_path"]).parent / r["predictions"] for r in ok if r.get("_path") and r.get("predictions")}
        few = any(r.get("few_positive_classes") for r in ok)
        table.cells[method][task] = Cell(float(np.mean(macros)), combined_interval(macros, cis), len(ok), seen=seen,
                                         few=few, predictions={k: v for k, v in preds.items() if v.is_file()}, task=task)
    return [tables[k] for k in sorted(tables, key=_table_order)]


def refs_for(table: Table, refs: list[dict]) -> list[dict]:
    """Reported rows of a table: only in the published section, only in a table of the reported protocol."""
    if table.suite != "real" or table.protocol != "published":
        return []
    return [r for r in refs if r.get("values") and r["mode"] == table.mode and _same_fraction(r.get("fraction"), table.fraction)]


def _tasks(table: Table, refs: list[dict]) -> list[str]:
    names = {t for row in table.cells.values() for t in row}
    names |= {t for r in refs for t in r["values"] if t != "mean"}
    return sorted(names, key=lambda t: (TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER), t))


def _fmt(cell: Cell | None, bold: bool, unpaired: bool = False) -> str:
    if cell is None:
        return "–"
    if cell.status == "not_applicable":
        return "n/a"
    if cell.mean is None:
        return "–"
    text = f"{100 * cell.mean:.1f}"
    if cell.ci is not None:
        text += f" ± {100 * (cell.ci[1] - cell.ci[0]) / 2:.1f}"
    if bold:
        text = f"**{text}**"
    if cell.seen:
        text += " †"
    if cell.few:
        text += " ‡"
    if unpaired:
        text += " §"
    return text


def _mean_cell(row: dict[str, Cell], tasks: list[str]) -> Cell | None:
    """Mean over all task columns; only when the method has a value in every column (no partial means).

    Its interval is ``mean_interval``: a bootstrap of the mean over tasks on shared resamples (not an average of
    the tasks' intervals); none when a predictions file is missing."""
    cells = [row.get(t) for t in tasks]
    if not tasks or any(c is None or c.mean is None for c in cells):
        if cells and all(c is not None and c.status == "not_applicable" for c in cells):
            return Cell(None, None, 0, status="not_applicable")
        return None
    ok = [c for c in cells if c is not None]
    m = float(np.mean([c.mean for c in ok]))
    return Cell(m, mean_interval(ok), min(c.n_seeds for c in ok))


def mean_interval(cells: list[Cell]) -> tuple[float, float] | None:
    """95% interval of the mean over tasks: per seed, resample b of the mean is the mean over tasks of each task's
    resample-b macro AUROC (resamples shared, ``bootstrap.resampled_macro``); its variance over resamples, averaged
    over seeds, plus the sample variance of the seeds' means over tasks (as ``combined_interval`` does for a cell).

    Seeds are those every task has predictions for; None when there is none."""
    seeds = sorted(set.intersection(*(set(c.predictions) for c in cells))) if cells else []
    if not seeds:
        return None
    boot_vars, points = [], []
    for s in seeds:
        per_task = [_resampled_macro(c.predictions[s], c.task) for c in cells]
        boot_vars.append(float(np.var(np.mean([r for _, r in per_task], axis=0), ddof=1)))
        points.append(float(np.mean([m for m, _ in per_task])))
    between = float(np.var(points, ddof=1)) if len(points) > 1 else 0.0
    h = 1.96 * float(np.sqrt(np.mean(boot_vars) + between))
    m = float(np.mean([c.mean for c in cells]))
    return (m - h, m + h)


_RESAMPLED: dict[tuple[str, float, str], tuple[float, np.ndarray]] = {}


def _resampled_macro(path: Path, task: str) -> tuple[float, np.ndarray]:
    """(macro AUROC, ``bootstrap.resampled_macro``) of a predictions file: one read, computed once per file
    version in a publish."""
    from ecg_eval.bootstrap import resampled_macro
    from ecg_eval.metrics import macro_auroc
    from ecg_eval.results import read_predictions

    key = (str(path), Path(path).stat().st_mtime, task)
    if key not in _RESAMPLED:
        pred = read_predictions(path)
        _RESAMPLED[key] = (float(macro_auroc(pred["y_true"], pred["scores"])), resampled_macro(pred, task=task))
    return _RESAMPLED[key]


def not_worse_than_best(best: Cell, other: Cell, *, alpha: float = ALPHA) -> bool | None:
    """Paired bootstrap on every shared seed (pooled): True unless best - other > 0 at one-sided level alpha.

    None when the predictions files are missing (then only the best is bold). Pairing (identical test ids) is
    verified by ``ecg_eval.bootstrap.verify_pairing``; a mismatch raises ``PairingError`` naming both cells
    (``render_table`` shows it under the table and marks the cell with §)."""
    from ecg_eval.bootstrap import paired_resampled_difference
    from ecg_eval.results import read_predictions

    seeds = sorted(set(best.predictions) & set(other.predictions))
    if not seeds:
        return None
    diffs = [paired_resampled_difference(read_predictions(best.predictions[s]), read_predictions(other.predictions[s]),
                                         task=best.task, what_a=str(best.predictions[s]), what_b=str(other.predictions[s]))
             for s in seeds]
    return bool(np.quantile(np.concatenate(diffs), alpha) <= 0.0)


def render_table(table: Table, refs: list[dict]) -> str:
    from tabulate import tabulate

    refs = refs_for(table, refs)
    tasks = _tasks(table, refs)
    columns = tasks + ["mean"]
    methods = sorted(table.cells)
    rows_cells = {m: {**table.cells[m], "mean": _mean_cell(table.cells[m], tasks)} for m in methods}
    bold: dict[tuple[str, str], bool] = {}
    refused: dict[tuple[str, str], str] = {}  # (method, column) -> why the paired test was refused
    for col in columns:
        have = [m for m in methods if (c := rows_cells[m].get(col)) is not None and c.mean is not None]
        if not have:
            continue
        top = max(have, key=lambda m: rows_cells[m][col].mean)
        for m in have:
            c = rows_cells[m][col]
            tied = round(100 * c.mean, 1) == round(100 * rows_cells[top][col].mean, 1)
            try:
                test = None if col == "mean" or tied else not_worse_than_best(rows_cells[top][col], c)
            except PairingError as e:
                # cells from different test records or class lists (e.g. results of another code version): no
                # significance claim for this cell, said under the table; the rest of the board still renders
                log.warning("leaderboard: %s", e)
                refused[(m, col)], test = str(e), False
            bold[(m, col)] = tied or bool(test)
    body = []
    for m in methods:
        seeds = sorted({c.n_seeds for c in table.cells[m].values() if c.mean is not None})
        body.append([m, ",".join(map(str, seeds)) or "–"]
                    + [_fmt(rows_cells[m].get(c), bold.get((m, c), False), (m, c) in refused) for c in columns])
    for r in refs:
        values = r["values"]
        label = f"_{r['method']}_ (reported{', ' + r['note'] if r.get('note') else ''}) [{r['id']}]"
        body.append([label, "–"] + [f"_{100 * values[c]:.1f}_" if c in values else "" for c in columns])
    headers = ["method", "seeds"] + columns
    text = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
    if refused:
        notes = [f"- § {m}, {col}: not compared with the best ({why})" for (m, col), why in sorted(refused.items())]
        text += "\n\n" + "\n".join(notes)
    return text


def _same_fraction(ref_fraction: object, table_fraction: str | None) -> bool:
    if table_fraction is None:
        return ref_fraction in (None, "")
    return ref_fraction is not None and f"{float(ref_fraction):g}" == f"{float(table_fraction):g}"


def load_reference(path: str | Path | None) -> list[dict]:
    """Reported numbers: a YAML list of {id, method, source, table, mode, fraction, values: {task|mean: auroc}}."""
    if path is None or not Path(path).is_file():
        return []
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    entries = data.get("entries", []) if isinstance(data, dict) else data
    out = []
    for i, e in enumerate(entries):
        for key in ("method", "source", "mode", "values"):
            if key not in e:
                raise ValueError(f"{path}: entry {i} lacks {key!r}")
        if e["mode"] not in REPORTED_MODES:
            raise ValueError(f"{path}: entry {i} mode {e['mode']!r}: reported numbers are {' or '.join(REPORTED_MODES)} "
                             "(a paper's probe is its own epoch loop, shown beside our linear_probe_paper)")
        if not e["values"] and not e.get("no_numbers"):
            raise ValueError(f"{path}: entry {i} has no values; say why in 'no_numbers'")
        for task, v in (e["values"] or {}).items():
            if task != "mean" and task not in PUBLISHED:
                raise ValueError(f"{path}: entry {i} reports {task!r}, which is not a published task ({', '.join(PUBLISHED)})")
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"{path}: entry {i} value {task}={v} is not an AUROC in [0, 1]")
        out.append({**e, "id": e.get("id", f"r{i + 1}")})
    return out


def render(results: list[dict], refs: list[dict], *, plots: dict[str, str] | None = None) -> str:
    tables = build_tables(results)
    have = {(t.suite, t.mode, t.fraction, t.protocol) for t in tables}
    for r in refs:  # reported numbers get their published-section table even before we have results of our own
        if not r.get("values"):
            continue
        frac = None if r.get("fraction") in (None, "") else f"{float(r['fraction']):g}"
        if ("real", r["mode"], frac, "published") not in have:
            tables.append(Table("real", r["mode"], frac, protocol="published"))
            have.add(("real", r["mode"], frac, "published"))
    tables.sort(key=lambda t: _table_order((t.suite, t.mode, t.fraction, t.protocol)))
    lines = [HEADER, "# Leaderboard\n"]
    lines.append(
        "Cells: macro AUROC x100 on the test split, mean over seeds, ± half-width of a 95% interval that covers both "
        "the test resampling and the spread across subset seeds: 1.96 x sqrt(mean bootstrap variance of the seeds "
        "(1,000 shared resamples) + variance of the seeds' AUROCs). **Bold**: the best in the column and every method "
        f"not significantly worse than it (paired bootstrap on identical test records, one-sided alpha = {ALPHA}; "
        "only the best when predictions files are absent). §: not compared with the best, the paired test was refused "
        "(other test records or classes; the reason is listed under the table). ‡: some class has fewer than 5 test "
        "positives. "
        "`n/a`: the method has no text encoder, so no zero-shot score. †: the evaluated dataset was part of the "
        "checkpoint's pretraining data. `mean`: over all task columns, shown only when every task is present "
        "(± half-width of a bootstrap of the mean over tasks on shared resamples, plus the spread across seeds). "
        "Real data has two sections that never share a column: the published benchmark (the papers' split files; "
        "the only place for reported numbers, each with its source) and our corrected tasks. "
        "Schema and protocol: docs/evaluation.md.\n"
    )
    if not tables:
        lines.append("_No results yet._\n")
    for suite in ("real", "synthetic"):
        suite_tables = [t for t in tables if t.suite == suite]
        if not suite_tables:
            continue
        lines.append(f"## {SUITE_TITLES[suite]}\n")
        for protocol in ("published", "corrected", "synthetic"):
            group = [t for t in suite_tables if t.protocol == protocol]
            if not group:
                continue
            if PROTOCOL_TITLES[protocol]:
                lines.append(f"### {PROTOCOL_TITLES[protocol]}\n")
            for t in group:
                lines.append(f"{'####' if PROTOCOL_TITLES[protocol] else '###'} {t.title}\n")
                lines.append(render_table(t, refs) + "\n")
        if plots and suite in plots:
            lines.append(f"![Linear probe AUROC per training fraction ({suite})]({plots[suite]})\n")
    from ecg_eval.leaderboard_modes import render_mode_sections  # F1/accuracy, fine-tune, transfer, retrieval, reports

    extra = render_mode_sections(results)
    if extra:
        lines.append(extra)
    if refs:
        lines.append("## Sources of the reported numbers\n")
        for r in refs:
            table = f", {r['table']}" if r.get("table") else ""
            tail = f" — reports no numbers on this benchmark: {r['no_numbers']}" if not r.get("values") else ""
            lines.append(f"- [{r['id']}] {r['method']}: {r['source']}{table}{tail}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def plot_probe(tables: list[Table], suite: str, out: str | Path) -> Path | None:
    """Mean-over-tasks probe AUROC against the training fraction, one line per method (PNG, Agg backend)."""
    probe = [t for t in tables if t.suite == suite and t.mode == "linear_probe" and t.protocol != "corrected"]
    if not probe:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t in sorted(probe, key=lambda t: float(t.fraction or 0)):
        for method, row in t.cells.items():
            vals = [c.mean for c in row.values() if c.mean is not None]
            if vals:
                series[method].append((float(t.fraction), 100 * float(np.mean(vals))))
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for method in sorted(series):
        xs, ys = zip(*series[method])
        ax.plot(xs, ys, marker="o", label=method)
    ax.set_xscale("log")
    ax.set_xlabel("training data (%)")
    ax.set_ylabel("macro AUROC x100 (mean over tasks)")
    ax.set_title(f"Linear probe ({suite})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from ecg_data.paths import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out


def render_per_class(results: list[dict]) -> str:
    """Per-class AUROC tables: one per (suite, task, mode, fraction), methods as rows, classes as columns.

    A value is the mean over seeds x100; ``‡`` marks a class with fewer than 5 test positives, ``–`` a class that
    was excluded (no positive or no negative in the test split)."""
    from tabulate import tabulate

    from ecg_eval.metrics import FEW_POSITIVES

    from ecg_data.tasks.names import canonical_class  # old padded PTB-XL names (NST_) read as their published names

    groups: dict[tuple, list[dict]] = defaultdict(list)
    from ecg_eval.results import AUROC_MODES

    for r in results:
        if r["status"] == "ok" and r.get("scores") and r["mode"] in AUROC_MODES:  # retrieval/generation: own sections
            r = {**r, "classes": [canonical_class(c) for c in r.get("classes") or r["scores"]["per_class_auroc"]],
                 "scores": {**r["scores"], "per_class_auroc": {canonical_class(c): v for c, v in r["scores"]["per_class_auroc"].items()}},
                 "few_positive_classes": {canonical_class(c): n for c, n in (r.get("few_positive_classes") or {}).items()}}
            groups[(r["suite"], r["task"], r["mode"], r.get("fraction_percent"))].append(r)
    lines = [HEADER, "# Per-class AUROC\n",
             f"Mean over seeds of each class's test AUROC x100. ‡: fewer than {FEW_POSITIVES} test positives; "
             "–: excluded from the macro mean (no positive or no negative in the test split).\n"]

    def order(k: tuple) -> tuple:
        suite, task, mode, frac = k
        return (0 if suite == "real" else 1, TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), task,
                _MODE_ORDER.get(mode, 3), float(frac) if frac else 0.0)

    for key in sorted(groups, key=order):
        suite, task, mode, frac = key
        rs = groups[key]
        classes = list(dict.fromkeys(c for r in rs for c in r["classes"]))
        few = {c for r in rs for c in (r.get("few_positive_classes") or {})}
        by_method: dict[str, list[dict]] = defaultdict(list)
        for r in rs:
            by_method[r["method"]].append(r)
        body = []
        for m in sorted(by_method):
            row = [m]
            for c in classes:
                vals = [r["scores"]["per_class_auroc"][c] for r in by_method[m] if c in r["scores"]["per_class_auroc"]]
                row.append(f"{100 * float(np.mean(vals)):.1f}" if vals else "–")
            body.append(row)
        title = "zero-shot" if mode == "zero_shot" else f"{mode}, {frac}%"
        lines.append(f"## {suite} / {task} / {title}\n")
        lines.append(tabulate(body, headers=["method"] + [f"{c} ‡" if c in few else c for c in classes],
                              tablefmt="github", disable_numparse=True) + "\n")
    return "\n".join(lines).rstrip() + "\n"


def publish(
    results_root: str | Path, out: str | Path, *, reference: str | Path | None = None, plot: bool = True
) -> Path:
    """Write the leaderboard markdown (and probe plots beside it) atomically; returns the markdown path."""
    from ecg_data.paths import atomic_write_text

    results = load_results(results_root)
    refs = load_reference(reference)
    out = Path(out)
    plots: dict[str, str] = {}
    if plot:
        tables = build_tables(results)
        for suite in ("real", "synthetic"):
            png = plot_probe(tables, suite, out.parent / f"probe-{suite}.png")
            if png is not None:
                plots[suite] = png.name
    atomic_write_text(out, render(results, refs, plots=plots))
    atomic_write_text(out.parent / "per_class" / "README.md", render_per_class(results))
    return out
