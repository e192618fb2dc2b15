"""Print what a dataset root holds: records, label counts per task, split sizes, dropped classes.

    python -m ecg_data.inspect ptbxl --root /data/ptb-xl-1.0.3
    python -m ecg_data.inspect cpsc2018 --root /data/cpsc2018 --seed 1 --read 20

Why: the first thing to check after a download is that the reader sees the expected number of
records and the tasks the expected classes; this prints it without reading any signal (unless
``--read N`` asks to try the first N records, counting the problems).
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Sequence

from ecg_data.readers import READERS, get_reader, iter_records
from ecg_data.tasks import TASKS, get_task


def tasks_for(dataset: str) -> list[str]:
    return [n for n in TASKS.names() if TASKS.get(n).dataset == dataset and not TASKS.get(n).synthetic_preset]


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ecg_data.inspect", description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", choices=READERS.names())
    p.add_argument("--root", required=True, help="dataset root (the folder holding the official layout)")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--read", type=int, default=0, metavar="N", help="also read the first N records and count problems")
    args = p.parse_args(argv)

    reader = get_reader(args.dataset, args.root)
    md = reader.metadata()
    print(f"{reader.name} {reader.version} at {reader.root}")
    print(
        f"records: {len(md)}   patients: {md['patient_id'].nunique() if md['patient_id'].notna().any() else 'n/a'}"
        f"   with report: {int(md['report'].notna().sum())}   fingerprint: {reader.fingerprint()}"
    )
    if "report_problem" in md and md["report_problem"].notna().any():
        print(f"reports with problems: {int(md['report_problem'].notna().sum())}")
    if reader.skipped:
        print(f"not indexed: {len(reader.skipped)}")
        for rid, why in list(reader.skipped.items())[:10]:
            print(f"  {rid}: {why}")
    for name in tasks_for(args.dataset):
        task = get_task(name, root=args.root, seed=args.seed)
        print(
            f"\n== task {name} (seed {args.seed}): {len(task.labels)} records, {len(task.classes)} classes, "
            f"{len(task.excluded)} records not in the task"
        )
        print("split sizes: " + ", ".join(f"{s}={len(v)}" for s, v in task.splits.items()))
        if task.published is not None:
            n_abs = task.published["n_absent"]
            print(
                f"published split ({task.published['source']} @ {str(task.published['commit'])[:7]}): "
                f"absent here "
                + ", ".join(f"{s}={n}" for s, n in n_abs.items())
                + f"; {task.published['n_on_disk_not_in_split']} record(s) on disk not in it"
            )
        if task.classes:
            rows = [[c] + [int(task.labels.loc[v, c].sum()) for v in task.splits.values()] for c in task.classes]
            print(_table(["class", *task.splits], rows))
        if task.dropped:
            print("dropped classes:")
            for c, why in sorted(task.dropped.items()):
                print(f"  {c}: {why}")
        if task.excluded:
            reasons = collections.Counter(task.excluded.values())
            print("not in the task: " + "; ".join(f"{n} x {why}" for why, n in reasons.most_common()))
    if args.read:
        problems = collections.Counter()
        for _, _, reason in iter_records(reader, reader.record_ids()[: args.read]):
            if reason:
                problems[reason.split(": ", 1)[-1].split(":")[0]] += 1
        print(f"\nread {min(args.read, len(md))} records: {sum(problems.values())} problem(s)")
        for why, n in problems.most_common():
            print(f"  {n} x {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
