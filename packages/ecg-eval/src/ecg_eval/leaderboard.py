"""Render leaderboard/README.md (and a probe plot) from result files.

One section per suite (synthetic and real results never share a table); real data is split by protocol: the
published benchmark (the papers' split files and label columns, ``ecg_data.tasks.PUBLISHED_TASKS``) and our
corrected tasks (``cpsc2018_full``, ``csn_exact``, ``ptbxl_all``), which never share a column. One table per mode
(zero-shot; our L-BFGS probe and the papers' probe at 1%, 10%, 100%), methods as rows, tasks as columns plus the
mean. A cell is the mean over seeds of the macro AUROC (x100) "± half-width" of the 95% bootstrap CI (mean over
seeds of the CI bounds). The best value of each column is bold. Papers' reported numbers
(``leaderboard/reference.yaml``) appear only in the published section, in the tables of their protocol (zero-shot;
reported probe numbers beside the papers' probe), marked as reported with their source, never bolded and never
mixed into the means. A reported row copied by a later paper says "as reported in" that paper; a cell on which
two primary copies of a table disagree shows both values with a footnote naming both sources. Reported zero-shot
transfer rows sit beside our ``transfer`` mode's zero-shot cells on the same source -> target pairs.

Partial data never passes for the published benchmark: a published-task cell evaluated on fewer test records than
the published split holds (or whose result file does not record its coverage) is marked with its coverage, is never
bold and is never compared with the other cells.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecg_eval.bootstrap import PairingError
from ecg_eval.modes import get_mode, reported_modes
from ecg_eval.references import is_reference, reference_cell, reference_label
from ecg_eval.results import load_results  # noqa: F401  (leaderboard.load_results: its old home)

log = logging.getLogger(__name__)

TASK_ORDER = [
    "ptbxl_super",
    "ptbxl_sub",
    "ptbxl_form",
    "ptbxl_rhythm",
    "ptbxl_all",
    "cpsc2018",
    "cpsc2018_full",
    "csn",
    "csn_exact",
]
#: the published benchmark's tasks (``ecg_data.tasks.PUBLISHED_TASKS``; listed here so rendering needs no data)
PUBLISHED = ("ptbxl_super", "ptbxl_sub", "ptbxl_form", "ptbxl_rhythm", "cpsc2018", "csn")
PROTOCOL_TITLES = {
    "published": "Published benchmark (the papers' split files, label columns and CPSC2018 5 s input)",
    "corrected": "Our corrected tasks (same split membership, our label or input definition; no reported numbers)",
    "synthetic": "",
}
#: how a reported transfer row was trained: zero-shot (no training), or trained on the source's training split
REPORTED_TRANSFER_MODES = ("zero_shot", "source_trained")
#: footnote marks of disagreeing reported cells
_MARKS = "¹²³⁴⁵⁶⁷⁸⁹"
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
    #: published tasks only: True when some seed was scored on fewer test records than the published split holds,
    #: or its file does not record its coverage; ``coverage`` is the smallest present / published share (None: unknown)
    partial: bool = False
    coverage: float | None = None


@dataclass
class Table:
    suite: str
    mode: str
    fraction: str | None  # percent as in the file name, None for zero-shot
    cells: dict[str, dict[str, Cell]] = field(default_factory=lambda: defaultdict(dict))  # method -> task -> cell
    protocol: str = "published"  # "published" | "corrected" (real suite); "synthetic"

    @property
    def title(self) -> str:
        """The mode's declared heading (``ecg_eval.modes``: ``Mode.title``)."""
        return get_mode(self.mode).table_title(self.fraction)


def protocol_of(suite: str, task: str) -> str:
    if suite != "real":
        return "synthetic"
    return "published" if task in PUBLISHED else "corrected"


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


def _table_modes() -> list[str]:
    """The modes of the main AUROC tables (``Mode.table``: zero-shot, the probes), in registry order."""
    from ecg_eval.modes import all_modes

    return [m.name for m in all_modes() if m.table]


class _ModeOrder:
    """Table order of a mode: the registry order of the main-table modes, every other mode after them."""

    def get(self, mode: str, default: int) -> int:
        order = _table_modes()
        return order.index(mode) if mode in order else default


_MODE_ORDER = _ModeOrder()
_PROTOCOL_ORDER = {"published": 0, "corrected": 1, "synthetic": 2}


def _table_order(key: tuple) -> tuple:
    suite, mode, frac, *rest = key
    protocol = rest[0] if rest else "published"
    return (
        0 if suite == "real" else 1,
        _PROTOCOL_ORDER.get(protocol, 3),
        _MODE_ORDER.get(mode, 3),
        float(frac) if frac else 0.0,
    )


def build_tables(results: Iterable[dict]) -> list[Table]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    table_modes = _table_modes()
    for r in results:
        if r["mode"] not in table_modes:  # the other modes: their own sections (Mode.section)
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
        preds = {
            int(r["seed"]): Path(r["_path"]).parent / r["predictions"]
            for r in ok
            if r.get("_path") and r.get("predictions")
        }
        few = any(r.get("few_positive_classes") for r in ok)
        partial, coverage = _coverage(ok) if protocol == "published" else (False, None)
        table.cells[method][task] = Cell(
            float(np.mean(macros)),
            combined_interval(macros, cis),
            len(ok),
            seen=seen,
            few=few,
            predictions={k: v for k, v in preds.items() if v.is_file()},
            task=task,
            partial=partial,
            coverage=coverage,
        )
    return [tables[k] for k in sorted(tables, key=_table_order)]


def _coverage(results: list[dict]) -> tuple[bool, float | None]:
    """(partial, smallest present/published test share) over the seeds of a published-task cell."""
    from ecg_eval.results import test_coverage

    covs = [test_coverage(r) for r in results]
    if any(c is None for c in covs):
        return True, None  # written without a coverage record: not shown as the published benchmark
    share = min(p / n if n else 1.0 for p, n in covs)  # type: ignore[misc]
    return share < 1.0, share


def refs_for(table: Table, refs: list[dict]) -> list[dict]:
    """Reported rows of a table: only in the published section, only in a table of the reported protocol."""
    if table.suite != "real" or table.protocol != "published":
        return []
    return [
        r
        for r in refs
        if r.get("values") and r["mode"] == table.mode and _same_fraction(r.get("fraction"), table.fraction)
    ]


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
    if cell.partial:
        text += " ◊ " + ("?" if cell.coverage is None else f"{100 * cell.coverage:.1f}%")
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
    partial = [c for c in ok if c.partial]
    coverage = None if any(c.coverage is None for c in partial) else min((c.coverage for c in partial), default=None)
    return Cell(m, mean_interval(ok), min(c.n_seeds for c in ok), partial=bool(partial), coverage=coverage)


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
    diffs = [
        paired_resampled_difference(
            read_predictions(best.predictions[s]),
            read_predictions(other.predictions[s]),
            task=best.task,
            what_a=str(best.predictions[s]),
            what_b=str(other.predictions[s]),
        )
        for s in seeds
    ]
    return bool(np.quantile(np.concatenate(diffs), alpha) <= 0.0)


def render_table(table: Table, refs: list[dict]) -> str:
    from tabulate import tabulate

    refs = refs_for(table, refs)
    tasks = _tasks(table, refs)
    columns = tasks + ["mean"]
    # reference rows (oracle, chance: ecg_eval.references) come last, are never ranked and never bold
    methods = sorted(table.cells, key=lambda m: (is_reference(m), m))
    rows_cells = {m: {**table.cells[m], "mean": _mean_cell(table.cells[m], tasks)} for m in methods}
    bold: dict[tuple[str, str], bool] = {}
    refused: dict[tuple[str, str], str] = {}  # (method, column) -> why the paired test was refused
    for col in columns:
        # a partial-coverage cell is never bold and never compared: it did not score the published test split
        have = [
            m
            for m in methods
            if (c := rows_cells[m].get(col)) is not None
            and c.mean is not None
            and not c.partial
            and not is_reference(m)
        ]
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
        cells = [_fmt(rows_cells[m].get(c), bold.get((m, c), False), (m, c) in refused) for c in columns]
        if is_reference(m):
            cells = [reference_cell(x) for x in cells]
        body.append([reference_label(m), ",".join(map(str, seeds)) or "–"] + cells)
    footnotes: list[str] = []
    for r in refs:
        body.append([ref_label(r), "–"] + [_ref_cell(r, c, footnotes) for c in columns])
    headers = ["method", "seeds"] + columns
    text = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
    if refused:
        notes = [f"- § {m}, {col}: not compared with the best ({why})" for (m, col), why in sorted(refused.items())]
        text += "\n\n" + "\n".join(notes)
    if footnotes:
        text += "\n\n" + "\n".join(footnotes)
    return text


def ref_label(r: dict) -> str:
    """A reported row's label: method, whose table it was read in ("as reported in" for a copy), and its id."""
    if r.get("reported_in"):
        how = f"as reported in {r['reported_in']}"
    else:
        how = "reported" + (f", {r['note']}" if r.get("note") else "")
    also = [c["note"] for c in r.get("copies") or [] if c.get("note")]
    if also:
        how += "; also " + ", ".join(also)
    return f"_{r['method']}_ ({how}) [{r['id']}]"


def _ref_cell(r: dict, column: str, footnotes: list[str]) -> str:
    """A reported value as printed (x100, with the entry's ``decimals``, default 1: the papers' probe and transfer
    tables print two); both values and a footnote where primary copies disagree."""
    values, d = r["values"], int(r.get("decimals", 1))
    if column not in values:
        return ""
    copies = r.get("disagreements", {}).get(column)
    if not copies:
        return f"_{100 * values[column]:.{d}f}_"
    n = len(footnotes)
    mark = _MARKS[n] if n < len(_MARKS) else f"^{n + 1}"
    where = f", {r['fraction']}%" if r.get("fraction") not in (None, "") else ""
    footnotes.append(
        f"{mark} {r['method']}, {column}{where}: the two primary copies disagree: "
        + "; ".join(f"{100 * v:.2f} in {cite}" for v, cite in copies)
        + ". Both are shown; neither is picked."
    )
    return " / ".join(f"_{100 * v:.{d}f}_" for v, _ in copies) + f" {mark}"


def _cite(e: dict) -> str:
    """Where a reported value was read: table note, repository, commit and image (what the footnotes print)."""
    where = " ".join(
        x
        for x in (
            f"{e['repository']}@{str(e['commit'])[:7]}"
            if e.get("repository") and e.get("commit")
            else e.get("repository", ""),
            e.get("image", ""),
        )
        if x
    )
    return f"{e.get('note') or e.get('table') or e['source']}" + (f" ({where})" if where else "")


def _same_fraction(ref_fraction: object, table_fraction: str | None) -> bool:
    if table_fraction is None:
        return ref_fraction in (None, "")
    return ref_fraction is not None and f"{float(ref_fraction):g}" == f"{float(table_fraction):g}"


def _check_values(path: object, where: str, mode: str, values: dict) -> None:
    for key, v in (values or {}).items():
        if mode == "transfer":
            src, _, tgt = str(key).partition("->")
            if src not in PUBLISHED or tgt not in PUBLISHED or src == tgt:
                raise ValueError(
                    f"{path}: {where} reports {key!r}: transfer values are keyed 'source->target', two "
                    f"different published tasks ({', '.join(PUBLISHED)})"
                )
        elif key != "mean" and key not in PUBLISHED:
            raise ValueError(f"{path}: {where} reports {key!r}, which is not a published task ({', '.join(PUBLISHED)})")
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{path}: {where} value {key}={v} is not an AUROC in [0, 1]")


def load_reference(path: str | Path | None) -> list[dict]:
    """Reported numbers: a YAML list of {id, method, source, table, mode, fraction, values: {task|mean: auroc}}.

    Optional per entry: ``row``, ``repository``, ``commit``, ``image`` (where the table was read), ``reported_in``
    (the later paper whose copy of the row was read: the row is labelled "as reported in" it), ``decimals`` (how
    many the paper prints, x100; default 1), ``checkpoint``
    (which checkpoint the numbers came from, where the source says), ``train_mode`` (transfer: ``zero_shot`` or
    ``source_trained``) and ``copies``: other primary copies of the same row, each with its own citation and
    ``values``. Cells on which the copies disagree are returned in ``disagreements`` (column -> [(value,
    citation), ...]) and rendered with both values and a footnote; a copy never silently replaces a value."""
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
        reported = reported_modes()  # the modes declared ``reported`` (ecg_eval.modes)
        if e["mode"] not in reported:
            raise ValueError(
                f"{path}: entry {i} mode {e['mode']!r}: reported numbers are {' or '.join(reported)} "
                "(a paper's probe is its own epoch loop, shown beside our linear_probe_paper)"
            )
        if e["mode"] == "transfer" and e.get("train_mode") not in REPORTED_TRANSFER_MODES:
            raise ValueError(f"{path}: entry {i} (transfer) needs train_mode, one of {REPORTED_TRANSFER_MODES}")
        if not e["values"] and not e.get("no_numbers"):
            raise ValueError(f"{path}: entry {i} has no values; say why in 'no_numbers'")
        _check_values(path, f"entry {i}", e["mode"], e["values"])
        disagreements: dict[str, list[tuple[float, str]]] = {}
        for j, c in enumerate(e.get("copies") or []):
            if "source" not in c or "values" not in c:
                raise ValueError(f"{path}: entry {i} copy {j} needs 'source' and 'values'")
            _check_values(path, f"entry {i} copy {j}", e["mode"], c["values"])
            for key, v in c["values"].items():
                if key not in e["values"]:
                    raise ValueError(f"{path}: entry {i} copy {j} has {key!r}, which the entry itself lacks")
                if round(float(v), 6) != round(float(e["values"][key]), 6):
                    seen = disagreements.setdefault(key, [(float(e["values"][key]), _cite(e))])
                    seen.append((float(v), _cite(c)))
        out.append({**e, "id": e.get("id", f"r{i + 1}"), "disagreements": disagreements})
    return out


def render_mode_sections(results: list[dict]) -> str:
    """The sections of the modes that declare one (``Mode.section``, in registry order), grouped per suite (real
    first); empty string when there is nothing to show."""
    from ecg_data.registry import locate
    from ecg_eval.modes import all_modes

    sections = [locate(m.section) if isinstance(m.section, str) else m.section for m in all_modes() if m.section]
    parts = []
    for suite in ("real", "synthetic"):
        body = [s for s in (f(results, suite) for f in sections) if s]
        if body:
            parts.append(f"## {SUITE_TITLES[suite]}: other evaluation modes\n\n" + "\n".join(body))
    return "\n".join(parts)


def render(results: list[dict], refs: list[dict], *, plots: dict[str, str] | None = None) -> str:
    tables = build_tables(results)
    have = {(t.suite, t.mode, t.fraction, t.protocol) for t in tables}
    for r in refs:  # reported numbers get their published-section table even before we have results of our own
        if not r.get("values") or r["mode"] == "transfer":  # transfer: render_published_transfer
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
        "◊ p%: a published-task cell scored on only p % of the published test records (partial data, e.g. a "
        "sample; ◊ ?: its result file does not record coverage): not the published benchmark, never bold, never "
        "compared; its 1 % / 10 % probe subsets are those shares of the records present. "
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
            if not group and not (
                suite == "real" and protocol == "published" and _has_published_transfer(results, refs)
            ):
                continue
            if PROTOCOL_TITLES[protocol]:
                lines.append(f"### {PROTOCOL_TITLES[protocol]}\n")
            for t in group:
                lines.append(f"{'####' if PROTOCOL_TITLES[protocol] else '###'} {t.title}\n")
                lines.append(render_table(t, refs) + "\n")
            if suite == "real" and protocol == "published":
                transfer = render_published_transfer(results, refs)
                if transfer:
                    lines.append(transfer)
        if plots and suite in plots:
            lines.append(f"![Linear probe AUROC per training fraction ({suite})]({plots[suite]})\n")
    extra = render_mode_sections(results)  # F1/accuracy, fine-tune, transfer, retrieval, reports
    if extra:
        lines.append(extra)
    if refs:
        lines.append("## Sources of the reported numbers\n")
        for r in refs:
            lines.append(source_line(r))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _where(e: dict) -> str:
    parts = []
    if e.get("repository"):
        parts.append(e["repository"] + (f" @ {e['commit']}" if e.get("commit") else ""))
    if e.get("image"):
        parts.append(f"image {e['image']}")
    return "; ".join(parts)


def source_line(r: dict) -> str:
    """One line of the sources list: paper, table, row, repository, commit, image, checkpoint and other copies."""
    text = f"- [{r['id']}] {r['method']}: {r['source']}"
    for key in ("table", "row"):
        if r.get(key):
            text += f", {r[key]}"
    if _where(r):
        text += f" ({_where(r)})"
    if r.get("reported_in"):
        text += f"; the row as reported in {r['reported_in']}"
    if r.get("checkpoint"):
        text += f"; checkpoint: {r['checkpoint']}"
    for c in r.get("copies") or []:
        text += (
            f"; also in {c['source']}"
            + (f", {c['table']}" if c.get("table") else "")
            + (f" ({_where(c)})" if _where(c) else "")
        )
    if not r.get("values"):
        text += f" — reports no numbers on this benchmark: {r['no_numbers']}"
    elif r.get("disagreements"):
        text += "; the copies disagree on " + ", ".join(sorted(r["disagreements"])) + " (both values shown)"
    return text


def _published_transfer_results(results: list[dict]) -> list[dict]:
    return [
        r
        for r in results
        if r["mode"] == "transfer"
        and r["suite"] == "real"
        and r.get("transfer")
        and r["transfer"].get("train_mode") == "zero_shot"
        and r["transfer"].get("source") in PUBLISHED
        and r["task"] in PUBLISHED
    ]


def _has_published_transfer(results: list[dict], refs: list[dict]) -> bool:
    return bool(_published_transfer_results(results)) or any(r["mode"] == "transfer" and r.get("values") for r in refs)


def render_published_transfer(results: list[dict], refs: list[dict]) -> str:
    """The published section's domain-transfer tables: our ``transfer`` zero-shot cells beside the reported zero-shot
    transfer rows on the same source -> target pairs; reported rows trained on the source in a table of their own
    (no cell of ours follows that protocol)."""
    from tabulate import tabulate

    from ecg_eval.results import test_coverage

    ours = _published_transfer_results(results)
    zs = [r for r in refs if r["mode"] == "transfer" and r.get("train_mode") == "zero_shot" and r.get("values")]
    trained = [
        r for r in refs if r["mode"] == "transfer" and r.get("train_mode") == "source_trained" and r.get("values")
    ]
    if not ours and not zs and not trained:
        return ""

    def pair_key(p: str) -> tuple:
        src, _, tgt = p.partition("->")
        return (PUBLISHED.index(src), PUBLISHED.index(tgt))

    out = []
    pairs = sorted(
        {f"{r['transfer']['source']}->{r['task']}" for r in ours} | {p for r in zs for p in r["values"]}, key=pair_key
    )
    if pairs:
        groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for r in ours:
            groups[(r["method"], f"{r['transfer']['source']}->{r['task']}")].append(r)
        body = []
        for m in sorted({m for m, _ in groups}):
            row = [m, ",".join(map(str, sorted({len(g) for (mm, _), g in groups.items() if mm == m})))]
            for p in pairs:
                g = groups.get((m, p), [])
                ok = [r for r in g if r["status"] == "ok" and r["scores"]["macro_auroc"] is not None]
                if not ok:
                    row.append("n/a" if g and all(r["status"] == "not_applicable" for r in g) else "–")
                    continue
                cell = Cell(
                    float(np.mean([r["scores"]["macro_auroc"] for r in ok])),
                    combined_interval(
                        [r["scores"]["macro_auroc"] for r in ok],
                        [tuple(r["ci"]["macro_auroc"]) for r in ok if r.get("ci")],
                    ),
                    len(ok),
                )
                covs = [test_coverage(r) for r in ok]
                cell.partial = any(c is None or c[0] < c[1] for c in covs)
                cell.coverage = None if any(c is None for c in covs) else min(c[0] / c[1] for c in covs)  # type: ignore[index]
                row.append(_fmt(cell, False))
            body.append(row)
        footnotes: list[str] = []
        for r in zs:
            body.append([ref_label(r), "–"] + [_ref_cell(r, p, footnotes) for p in pairs])
        text = tabulate(
            body,
            headers=["method", "seeds"] + [p.replace("->", " → ") for p in pairs],
            tablefmt="github",
            disable_numparse=True,
        )
        if footnotes:
            text += "\n\n" + "\n".join(footnotes)
        out.append(
            "#### Domain transfer, zero-shot (source → target)\n\n"
            "Ours: the `transfer` mode with `train_mode: zero_shot`, the target's test split scored with the "
            "target's class prompts on the classes the two tasks share (`ecg_data/tasks/class_map.csv`); the "
            "papers' class mapping is not printed beside their table, so the class lists may differ. No cell "
            "is bold (no paired test across these columns).\n\n" + text + "\n"
        )
    if trained:
        tpairs = sorted({p for r in trained for p in r["values"]}, key=pair_key)
        footnotes = []
        body = [[ref_label(r)] + [_ref_cell(r, p, footnotes) for p in tpairs] for r in trained]
        text = tabulate(
            body,
            headers=["method"] + [p.replace("->", " → ") for p in tpairs],
            tablefmt="github",
            disable_numparse=True,
        )
        if footnotes:
            text += "\n\n" + "\n".join(footnotes)
        out.append(
            "#### Domain transfer, trained on the source (reported only)\n\n"
            "Reported rows trained on the source task's training data (100 %) and tested on the target. The "
            "table that reports them does not state the probe, so no cell of ours stands beside them; they are "
            "listed for completeness, not for comparison with the zero-shot table above.\n\n" + text + "\n"
        )
    return "\n".join(out)


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

    from ecg_data.tasks.names import canonical_class  # old padded PTB-XL names (NST_) read as their published names
    from ecg_eval.metrics import FEW_POSITIVES

    groups: dict[tuple, list[dict]] = defaultdict(list)
    from ecg_eval.modes import all_modes

    auroc_modes = {m.name for m in all_modes() if m.auroc}
    for r in results:
        if r["status"] == "ok" and r.get("scores") and r["mode"] in auroc_modes:  # retrieval/generation: own sections
            r = {
                **r,
                "classes": [canonical_class(c) for c in r.get("classes") or r["scores"]["per_class_auroc"]],
                "scores": {
                    **r["scores"],
                    "per_class_auroc": {canonical_class(c): v for c, v in r["scores"]["per_class_auroc"].items()},
                },
                "few_positive_classes": {
                    canonical_class(c): n for c, n in (r.get("few_positive_classes") or {}).items()
                },
            }
            groups[(r["suite"], r["task"], r["mode"], r.get("fraction_percent"))].append(r)
    lines = [
        HEADER,
        "# Per-class AUROC\n",
        f"Mean over seeds of each class's test AUROC x100. ‡: fewer than {FEW_POSITIVES} test positives; "
        "–: excluded from the macro mean (no positive or no negative in the test split).\n",
    ]

    def order(k: tuple) -> tuple:
        suite, task, mode, frac = k
        return (
            0 if suite == "real" else 1,
            TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER),
            task,
            _MODE_ORDER.get(mode, 3),
            float(frac) if frac else 0.0,
        )

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
        lines.append(
            tabulate(
                body,
                headers=["method"] + [f"{c} ‡" if c in few else c for c in classes],
                tablefmt="github",
                disable_numparse=True,
            )
            + "\n"
        )
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
