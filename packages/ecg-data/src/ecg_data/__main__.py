"""``python -m ecg_data download|verify NAME --root DIR`` (see ``ecg_data.download`` and ``ecg_data.verify``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ecg_data.sources import SOURCES


def _parser() -> argparse.ArgumentParser:
    names = ", ".join(SOURCES)
    p = argparse.ArgumentParser(prog="python -m ecg_data", description="Download and verify the real datasets.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="download (or complete) a dataset, verified against the publisher's checksums")
    d.add_argument("name", help=f"one of: {names}")
    d.add_argument("--root", required=True, help="the dataset's directory, e.g. $ECG_DATA_ROOT/ptbxl")
    d.add_argument(
        "--records",
        default="published",
        help="'published' (the published split files' records; every record where there are none), "
        "'all', or a number N (the first N records, for a trial)",
    )
    d.add_argument(
        "--mirror",
        default=None,
        help="address of a directory that holds the dataset's files in the "
        "publisher's layout, in place of the publisher's (e.g. a copy of https://physionet.org/files/ptb-xl/1.0.3/)",
    )
    d.add_argument("--jobs", type=int, default=4, help="parallel downloads (default 4)")
    d.add_argument("--yes", action="store_true", help="do not ask before a download over 10 GB")
    d.add_argument("--retries", type=int, default=3, help="resumes after a dropped connection, per file (default 3)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    v = sub.add_parser("verify", help="report release, checksums, missing files and published-split coverage")
    v.add_argument("name", help=f"one of: {names}")
    v.add_argument("--root", required=True, help="the dataset's directory")
    v.add_argument(
        "--tasks", default=None, help="comma-separated tasks to check (default: the dataset's published tasks)"
    )
    v.add_argument("--rehash", action="store_true", help="hash every file even when the download already verified it")
    v.add_argument("--json", default=None, metavar="PATH", help="also write the report as JSON ('-' = stdout only)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ecg_data.download import DownloadError
    from ecg_data.record import ECGDataError
    from ecg_data.registry import UnknownNameError

    try:
        if args.command == "download":
            from ecg_data.download import download
            from ecg_data.sources import get_source

            s = download(
                args.name,
                args.root,
                records=args.records,
                mirror=args.mirror,
                jobs=args.jobs,
                yes=args.yes,
                retries=args.retries,
                progress=not args.no_progress,
            )
            print(
                f"{s.dataset}: {s.n_files} files under {s.root} ({s.n_downloaded} downloaded, "
                f"{s.n_already} already verified) in {s.seconds:.1f} s"
            )
            print(f"check it with: python -m ecg_data verify {get_source(args.name).name} --root {s.root}")
            return 0
        from ecg_data.paths import atomic_write_json
        from ecg_data.verify import render, verify

        logging.getLogger("ecg_data.tasks.base").setLevel(logging.ERROR)  # the absent counts are in the report

        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
        report = verify(args.name, args.root, tasks=tasks, rehash=args.rehash)
        if args.json == "-":
            print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
        else:
            print(render(report))
            if args.json:
                atomic_write_json(args.json, report.to_dict())
        return 0 if report.ok else 1
    except (DownloadError, UnknownNameError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ECGDataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to continue where it stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
