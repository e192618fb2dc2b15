#!/usr/bin/env python
"""Pretrain a method and score it: ``python benchmarks/run.py [method=NAME] [dataset=NAME] [key=value ...]``.

Stages: pretrain (or reuse the run store / ``ckpt=``) -> zero-shot -> linear probe -> publish; each is
skipped when its output exists, so a rerun or an interrupted ``-m`` multirun resumes where it stopped.
Commands and options: docs/running.md. Bad input (a dataset not on disk, a broken method config) stops
with one clear message and exit code 2; Hydra itself lists the valid names of an unknown method/dataset.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/run.py` puts benchmarks/ on sys.path, not the repo
    sys.path.insert(0, str(REPO))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

log = logging.getLogger("ecgbench")
#: Errors that describe the user's input; printed as one message, never as a traceback.
CLEAN_ERRORS = {
    "DatasetNotFoundError",
    "UnknownNameError",
    "ConfigError",
    "ModelNotAvailableError",
    "LoggerConfigError",
    "UntrustedFileError",
    "CorruptFileError",
}
EXIT_BAD_INPUT = 2
EXIT_WRITE_FAILED = 1


def expand_method_dir(argv: list[str]) -> list[str]:
    """``method_dir=DIR``: add DIR to Hydra's config search path (DIR/method/<name>.yaml) and to sys.path
    (so the method's ``_target_`` module in DIR imports), without touching the repository."""
    out = list(argv)
    for arg in argv:
        if arg.startswith("method_dir="):
            raw = arg.split("=", 1)[1]
            if not raw or raw == "null":
                continue
            d = Path(raw).expanduser().resolve()
            if not d.is_dir():
                sys.stderr.write(f"error: method_dir={raw}: not a directory\n")
                raise SystemExit(EXIT_BAD_INPUT)
            if str(d) not in sys.path:
                sys.path.insert(0, str(d))
            if any(a.startswith("hydra.searchpath=") for a in argv):
                sys.stderr.write("error: give either method_dir= or hydra.searchpath=, not both\n")
                raise SystemExit(EXIT_BAD_INPUT)
            out.append(f"hydra.searchpath=[file://{d}]")
    return out


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> None:
    # Imported here so that Hydra's own errors (an unknown method or dataset) come back without loading torch.
    from benchmarks.pipeline import ConfigError, run
    from benchmarks.pipeline.ranks import env_snapshot, externally_launched, install_child_command, reset_after_job

    launcher_parent = not externally_launched()  # Lightning's launcher (trainer.devices=N) may start children here
    env_before = env_snapshot()
    if launcher_parent:
        install_child_command()
    try:
        run(cfg)
    except Exception as e:
        if type(e).__name__ in CLEAN_ERRORS or isinstance(e, ConfigError):
            msg = str(e.args[0]) if e.args else str(e)
            sys.stderr.write(f"error: {msg}\n")
            sys.stderr.flush()
            raise SystemExit(EXIT_BAD_INPUT) from None
        if isinstance(e, OSError) and str(e.strerror or "").startswith("cannot write "):
            # a full disk, a file-size limit, a read-only directory: one line naming the path (atomic writes left
            # no partial file; rerun the command once there is space)
            sys.stderr.write(f"error: {e.strerror}\n")
            sys.stderr.flush()
            raise SystemExit(EXIT_WRITE_FAILED) from None
        raise
    finally:
        if launcher_parent:
            reset_after_job(env_before)  # a multirun's next job launches its own DDP children


if __name__ == "__main__":
    sys.argv = [sys.argv[0], *expand_method_dir(sys.argv[1:])]
    main()
