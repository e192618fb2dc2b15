"""``python -m ecg_data verify NAME --root DIR``: what a dataset tree holds, however it was obtained.

Reports the release it detects, the files that fail the publisher's checksum or are missing, and for every
published task and split how many records are present out of how many: the same count evaluation reports
(``ecg_data.tasks.base.build_published_task``, ``Task.absent``). ``ok`` is False (exit status 1) when a file or
record that the requested tasks need is missing or corrupt. Nothing is written.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ecg_data.record import ECGDataError
from ecg_data.sources import Source, algorithm, get_source, parse_checksums

log = logging.getLogger(__name__)

#: PTB-XL ecg_ids that releases before 1.0.3 hold and 1.0.3 removed as duplicates. Only those among ecg_id 1-500
#: are listed (verified on the project's PTB-XL sample, ../shared/data/README.md); any of them marks an older release.
PTBXL_REMOVED_IN_103 = ("137", "139", "140", "141", "142", "143", "145", "456", "458", "459", "461", "462")
PTBXL_103_RECORDS = 21_799


@dataclass
class Report:
    dataset: str
    root: str
    release: dict[str, Any]
    checksums: dict[str, Any]
    tasks: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    download_command: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def task_names(source: Source) -> list[str]:
    """The dataset's published tasks (one per published membership), else its real rule tasks."""
    from ecg_data.tasks import TASKS

    specs = [TASKS.get(n) for n in TASKS.names()]
    specs = [s for s in specs if s.data_dir == source.data_dir and not s.synthetic_preset]
    seen: dict[str, str] = {}
    for s in specs:
        if s.published and s.published not in seen.values():
            seen[s.name] = s.published
    return list(seen) if seen else [s.name for s in specs]


def detect_release(source: Source, root: Path, sums: dict[str, str]) -> dict[str, Any]:
    """What release this tree is, with the evidence."""
    out: dict[str, Any] = {"expected": source.release, "detected": None, "evidence": ""}
    if source.name == "ptbxl" and (root / "ptbxl_database.csv").is_file():
        import pandas as pd

        ids = pd.read_csv(root / "ptbxl_database.csv", usecols=["ecg_id"])["ecg_id"].astype(int).astype(str)
        old = [i for i in PTBXL_REMOVED_IN_103 if i in set(ids)]
        if old or len(ids) > PTBXL_103_RECORDS:
            out["detected"] = "before 1.0.3"
            out["evidence"] = (
                f"ptbxl_database.csv holds ecg_id {', '.join(old)} (duplicates that 1.0.3 removed)"
                if old
                else f"ptbxl_database.csv has {len(ids)} rows (1.0.3 has {PTBXL_103_RECORDS})"
            )
            return out
    if source.name == "cpsc2018" and (root / "REFERENCE.csv").is_file() and not any(root.rglob("A*.hea")):
        out["detected"] = "CPSC 2018 original release (REFERENCE.csv + .mat)"
        out["evidence"] = "REFERENCE.csv and no Challenge headers; read it with get_reader('cpsc2018_original', root)"
        return out
    return out


def check_files(
    source: Source, root: Path, *, rehash: bool, hashes: bool = True
) -> tuple[dict[str, Any], dict[str, str]]:
    """Checksum pass over the publisher's list kept under root (``sums``: local path -> digest)."""
    from ecg_data.download import read_state

    listing = root / source.checksums
    if not listing.is_file():
        return {"list": None, "listed": 0, "present": 0, "verified": 0, "failed": [], "missing": []}, {}
    sums: dict[str, str] = {}
    for remote, hexd in parse_checksums(listing.read_text(encoding="utf-8"), where=str(listing)):
        local = source.local_path(remote)
        if local is not None and local != source.checksums:
            sums[local] = f"{algorithm(hexd)}:{hexd}"
    state = {} if rehash else read_state(root)
    failed, missing, present, verified = [], [], 0, 0
    for local, digest in sums.items():
        path = root / local
        if not path.is_file():
            alt = root / (source.subtree + local)  # a copy of the publisher's whole tree
            if source.subtree and alt.is_file():
                path = alt
            else:
                missing.append(local)
                continue
        present += 1
        if not hashes:
            continue
        st = path.stat()
        known = state.get(local)
        if known and known[0] == st.st_size and known[1] == st.st_mtime_ns and known[2] == digest:
            verified += 1
            continue
        algo, hexd = digest.split(":", 1)
        if _digest(path, algo) == hexd:
            verified += 1
        else:
            failed.append(local)
    return {
        "list": str(listing),
        "listed": len(sums),
        "present": present,
        "verified": verified if hashes else None,
        "failed": failed,
        "missing": missing,
    }, sums


def _published_coverage(name: str, root: Path) -> tuple[dict[str, dict[str, int]], set[str]]:
    """Per split {present, published}, from the task evaluation builds; and the absent record ids."""
    from ecg_data.tasks import get_task

    task = get_task(name, root=root)
    cov = {
        s: {"present": len(task.splits[s]), "published": len(task.splits[s]) + len(task.absent.get(s, []))}
        for s in task.splits
    }
    return cov, {r for v in task.absent.values() for r in v}


def verify(
    name: str, root: str | Path, *, tasks: list[str] | None = None, rehash: bool = False, hashes: bool = True
) -> Report:
    """Inspect ``root``; ``hashes=False`` checks presence only (the runner's preflight)."""
    source = get_source(name)
    root = Path(root).expanduser()
    report = Report(
        source.name,
        str(root),
        {"expected": source.release, "detected": None, "evidence": ""},
        {},
        download_command=source.download_command(root.absolute()),
    )  # a symlinked root stays as named
    if not root.is_dir():
        report.checksums = {"list": None}
        report.problems.append(f"{root} does not exist")
        return report
    files, sums = check_files(source, root, rehash=rehash, hashes=hashes)
    report.checksums = files
    report.release = detect_release(source, root, sums)
    old = report.release["detected"] not in (None, source.release)
    if files["list"] is None:
        report.notes.append(f"no {source.checksums} under {root}: files not checked against the publisher's checksums")
    elif hashes and not files["failed"] and files["present"] and not old:
        report.release["detected"] = source.release
        report.release["evidence"] = f"every present file matches {source.checksums}"
    wanted = tasks or task_names(source)
    from ecg_data.tasks import TASKS

    absent: set[str] = set()
    for t in wanted:
        spec = TASKS.get(t)
        if spec.data_dir != source.data_dir:
            raise ValueError(f"task {t} reads {spec.data_dir}, not {source.name}")
        try:
            if spec.published:
                cov, gone = _published_coverage(t, root)
                report.tasks[t] = cov
                absent |= gone
                n_abs = sum(v["published"] - v["present"] for v in cov.values())
                if n_abs:
                    total = sum(v["published"] for v in cov.values())
                    report.problems.append(f"task {t}: {n_abs} of {total} published records are absent")
        except ECGDataError as e:
            report.problems.append(f"task {t}: {e}".splitlines()[0])
    if not any(TASKS.get(t).published for t in wanted):  # no published membership: every listed record counts
        try:
            from ecg_data.readers import get_reader

            reader = get_reader(source.reader, root)
            on_disk = len(reader.metadata())
            listed = len({source.record_of(p) for p in sums if source.record_of(p)}) if sums else None
            report.records = {"on_disk": on_disk, "listed": listed, "skipped": len(reader.skipped)}
            if listed is not None and on_disk < listed:
                report.problems.append(f"{listed - on_disk} of {listed} listed records are not on disk")
        except ECGDataError as e:
            report.problems.append(str(e).splitlines()[0])
    # files: metadata files are always required; record files when their record is required
    required_missing = [p for p in files.get("missing", []) if _required(source, p, wanted, absent)]
    if required_missing:
        report.problems.append(
            f"{len(required_missing)} required file(s) missing, e.g. {', '.join(required_missing[:5])}"
        )
    if files.get("failed"):
        why = (
            f" (the tree is {report.release['detected']}: {source.release} checksums do not apply to changed files)"
            if old
            else ""
        )
        report.problems.append(
            f"{len(files['failed'])} file(s) fail their checksum, e.g. {', '.join(files['failed'][:5])}{why}"
        )
    if old:
        report.problems.append(
            f"release {report.release['detected']}, not {source.release}: {report.release['evidence']}"
        )
    return report


def _required(source: Source, local: str, tasks: list[str], absent: set[str]) -> bool:
    from ecg_data.tasks import TASKS

    rec = source.record_of(local)
    if rec is None:
        return local in source.required_meta
    if any(TASKS.get(t).published for t in tasks):
        return rec in absent
    return True


def render(r: Report) -> str:
    """The human summary (also what the runner's preflight prints)."""
    rel = r.release
    lines = [
        f"{r.dataset} under {r.root}: {'complete' if r.ok else 'INCOMPLETE'}",
        f"  release: {rel.get('detected') or 'not determined'} (expected {rel['expected']})"
        + (f"; {rel['evidence']}" if rel.get("evidence") else ""),
    ]
    c = r.checksums
    if c.get("list"):
        checked = (
            f"{c['verified']} verified, {len(c['failed'])} failed checksum"
            if c["verified"] is not None
            else "checksums not checked here"
        )
        lines.append(
            f"  files: {c['present']} of {c['listed']} listed present ({checked}), {len(c['missing'])} missing"
        )
    for t, cov in r.tasks.items():
        parts = ", ".join(f"{s} {v['present']:,} of {v['published']:,}" for s, v in cov.items())
        lines.append(f"  {t}: {parts} published records present")
    if r.records:
        lines.append(
            f"  records on disk: {r.records['on_disk']:,}"
            + (f" of {r.records['listed']:,} listed" if r.records.get("listed") is not None else "")
        )
    lines += [f"  note: {n}" for n in r.notes]
    lines += [f"  problem: {p}" for p in r.problems]
    if not r.ok:
        lines.append(f"  to complete it: {r.download_command}")
    return "\n".join(lines)
