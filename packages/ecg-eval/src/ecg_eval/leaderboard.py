"""Render leaderboard/README.md (and a probe plot) from result files.

One section per suite (synthetic and real results never share a table), one table per mode (zero-shot; linear
probe 1%, 10%, 100%), methods as rows, tasks as columns plus the mean. A cell is the mean over seeds of the
macro AUROC (x100) "± half-width" of the 95% bootstrap CI (mean over seeds of the CI bounds). The best value
of each column is bold. Papers' reported numbers (``leaderboard/reference.yaml``) are extra rows in the
real-data tables, marked as reported, never bolded and never mixed into the means.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecg_eval.results import read_result

TASK_ORDER = ["ptbxl_super", "ptbxl_sub", "ptbxl_form", "ptbxl_rhythm", "ptbxl_all", "cpsc2018", "csn"]
SUITE_TITLES = {"real": "Real data", "synthetic": "Synthetic data (pipeline check, not a clinical result)"}
HEADER = (
    "<!-- GENERATED FILE: written by `python benchmarks/publish.py` from leaderboard/results; "
    "do not edit by hand. -->\n"
)


@dataclass
class Cell:
    mean: float | None  # macro AUROC in [0, 1], mean over seeds
    ci: tuple[float, float] | None  # mean over seeds of the CI bounds
    n_seeds: int
    status: str = "ok"
    seen: bool = False


@dataclass
class Table:
    suite: str
    mode: str
    fraction: str | None  # percent as in the file name, None for zero-shot
    cells: dict[str, dict[str, Cell]] = field(default_factory=lambda: defaultdict(dict))  # method -> task -> cell

    @property
    def title(self) -> str:
        return "Zero-shot" if self.mode == "zero_shot" else f"Linear probe, {self.fraction}% of the training data"


def load_results(root: str | Path) -> list[dict]:
    """Every ``*.json`` under ``root`` (schema-checked; a bad file raises naming it)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [read_result(p) for p in sorted(root.rglob("*.json"))]


def _table_order(key: tuple[str, str, str | None]) -> tuple:
    suite, mode, frac = key
    return (0 if suite == "real" else 1, 0 if mode == "zero_shot" else 1, float(frac) if frac else 0.0)


def build_tables(results: Iterable[dict]) -> list[Table]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        if r["mode"] not in ("zero_shot", "linear_probe"):  # the other modes have their own sections (leaderboard_modes)
            continue
        groups[(r["suite"], r["mode"], r.get("fraction_percent"), r["method"], r["task"])].append(r)
    tables: dict[tuple, Table] = {}
    for (suite, mode, frac, method, task), rs in groups.items():
        table = tables.setdefault((suite, mode, frac), Table(suite, mode, frac))
        seen = any(r.get("seen_in_pretraining") for r in rs)
        ok = [r for r in rs if r["status"] == "ok" and r["scores"]["macro_auroc"] is not None]
        if not ok:
            table.cells[method][task] = Cell(None, None, len(rs), status=rs[0]["status"], seen=seen)
            continue
        macro = float(np.mean([r["scores"]["macro_auroc"] for r in ok]))
        cis = [r["ci"]["macro_auroc"] for r in ok if r.get("ci")]
        ci = (float(np.mean([c[0] for c in cis])), float(np.mean([c[1] for c in cis]))) if cis else None
        table.cells[method][task] = Cell(macro, ci, len(ok), seen=seen)
    return [tables[k] for k in sorted(tables, key=_table_order)]


def _tasks(table: Table, refs: list[dict]) -> list[str]:
    names = {t for row in table.cells.values() for t in row}
    names |= {t for r in refs for t in r["values"] if t != "mean"}
    return sorted(names, key=lambda t: (TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER), t))


def _fmt(cell: Cell | None, best: float | None) -> str:
    if cell is None:
        return "–"
    if cell.status == "not_applicable":
        return "n/a"
    if cell.mean is None:
        return "–"
    text = f"{100 * cell.mean:.1f}"
    if cell.ci is not None:
        text += f" ± {100 * (cell.ci[1] - cell.ci[0]) / 2:.1f}"
    if best is not None and round(100 * cell.mean, 1) == best:
        text = f"**{text}**"
    if cell.seen:
        text += " †"
    return text


def _mean_cell(row: dict[str, Cell], tasks: list[str]) -> Cell | None:
    """Mean over all task columns; only when the method has a value in every column (no partial means)."""
    cells = [row.get(t) for t in tasks]
    if not tasks or any(c is None or c.mean is None for c in cells):
        if cells and all(c is not None and c.status == "not_applicable" for c in cells):
            return Cell(None, None, 0, status="not_applicable")
        return None
    cis = [c.ci for c in cells if c.ci is not None]
    ci = (float(np.mean([c[0] for c in cis])), float(np.mean([c[1] for c in cis]))) if len(cis) == len(cells) else None
    return Cell(float(np.mean([c.mean for c in cells])), ci, min(c.n_seeds for c in cells))


def render_table(table: Table, refs: list[dict]) -> str:
    from tabulate import tabulate

    refs = [r for r in refs if r["mode"] == table.mode and _same_fraction(r.get("fraction"), table.fraction)]
    tasks = _tasks(table, refs)
    columns = tasks + ["mean"]
    methods = sorted(table.cells)
    rows_cells = {m: {**table.cells[m], "mean": _mean_cell(table.cells[m], tasks)} for m in methods}
    best: dict[str, float | None] = {}
    for col in columns:
        vals = [round(100 * c.mean, 1) for m in methods if (c := rows_cells[m].get(col)) is not None and c.mean is not None]
        best[col] = max(vals) if vals else None
    body = []
    for m in methods:
        seeds = sorted({c.n_seeds for c in table.cells[m].values() if c.mean is not None})
        body.append([m, ",".join(map(str, seeds)) or "–"] + [_fmt(rows_cells[m].get(c), best[c]) for c in columns])
    for r in refs:
        values = r["values"]
        label = f"{r['method']} (reported{', ' + r['note'] if r.get('note') else ''}) [{r['id']}]"
        body.append([label, "–"] + [f"_{100 * values[c]:.1f}_" if c in values else "" for c in columns])
    headers = ["method", "seeds"] + columns
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


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
        for task, v in e["values"].items():
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"{path}: entry {i} value {task}={v} is not an AUROC in [0, 1]")
        out.append({**e, "id": e.get("id", f"r{i + 1}")})
    return out


def render(results: list[dict], refs: list[dict], *, plots: dict[str, str] | None = None) -> str:
    tables = build_tables(results)
    have = {(t.suite, t.mode, t.fraction) for t in tables}
    for r in refs:  # reported numbers get their real-data table even before we have results of our own
        frac = None if r.get("fraction") in (None, "") else f"{float(r['fraction']):g}"
        if ("real", r["mode"], frac) not in have:
            tables.append(Table("real", r["mode"], frac))
            have.add(("real", r["mode"], frac))
    tables.sort(key=lambda t: _table_order((t.suite, t.mode, t.fraction)))
    lines = [HEADER, "# Leaderboard\n"]
    lines.append(
        "Cells: macro AUROC x100 on the test split, mean over seeds, ± half-width of the 95% paired-bootstrap CI "
        "(1,000 resamples; the same resamples for every method). **Bold**: best in the column. "
        "`n/a`: the method has no text encoder, so no zero-shot score. †: the evaluated dataset was part of the "
        "checkpoint's pretraining data. `mean`: over all task columns, shown only when every task is present. "
        "Schema and protocol: docs/evaluation.md.\n"
    )
    if not tables:
        lines.append("_No results yet._\n")
    for suite in ("real", "synthetic"):
        suite_tables = [t for t in tables if t.suite == suite]
        if not suite_tables:
            continue
        lines.append(f"## {SUITE_TITLES[suite]}\n")
        for t in suite_tables:
            lines.append(f"### {t.title}\n")
            lines.append(render_table(t, refs if suite == "real" else []) + "\n")
        if plots and suite in plots:
            lines.append(f"![Linear probe AUROC per training fraction ({suite})]({plots[suite]})\n")
    from ecg_eval.leaderboard_modes import render_mode_sections  # F1/accuracy, fine-tune, transfer, retrieval, reports

    extra = render_mode_sections(results)
    if extra:
        lines.append(extra)
    used = refs
    if used:
        lines.append("## Sources of the reported numbers\n")
        for r in used:
            table = f", {r['table']}" if r.get("table") else ""
            lines.append(f"- [{r['id']}] {r['method']}: {r['source']}{table}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def plot_probe(tables: list[Table], suite: str, out: str | Path) -> Path | None:
    """Mean-over-tasks probe AUROC against the training fraction, one line per method (PNG, Agg backend)."""
    probe = [t for t in tables if t.suite == suite and t.mode == "linear_probe"]
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
    return out
