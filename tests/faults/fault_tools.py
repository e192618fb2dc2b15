"""Tools of the fault-injection suite (``pytest -m faults``; docs/reliability.md): a ``benchmarks/run.py``
subprocess, the smallest configs that still run every stage, and a pickle that would run code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = [str(REPO / "packages" / p / "src") for p in ("ecg-data", "ecg-encoders", "ecg-text-align", "ecg-eval")]

#: the smallest real runs (seconds on one CPU core): one synthetic task, quick evaluation, 2-3 optimiser steps
QUICK = [
    "trainer.val_check_interval=null",
    "trainer.check_val_every_n_epoch=null",
    "trainer.enable_progress_bar=false",
    "pretrain_data.n=96",
    "dataset.tasks=[synth_ptbxl_super]",
    "eval=quick",
    "eval.bootstrap=20",
    "eval.fractions=[1.0]",
    "trainer.max_steps=2",
]
TINY = {
    "merl": [
        "method=merl",
        "method.stages.0.steps=3",
        "method.stages.0.batch_size=8",
        "method.stages.0.warmup_steps=1",
        "method.stages.1.data.batch_size=4",
    ],
    "heartlang": [
        "method=heartlang",
        "method.stages.0.trainer_overrides.max_steps=2",
        "method.stages.0.data.batch_size=4",
        "method.stages.1.data.batch_size=4",
    ],
    "random_init": ["method=random_init"],
}


def run_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join([*SRC, str(REPO), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_cmd(args: list[str]) -> list[str]:
    return [sys.executable, str(REPO / "benchmarks" / "run.py"), *args]


class Evil:
    """Unpickling this calls ``os.system`` -- what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def simulate_read_only(monkeypatch, root: Path) -> None:
    """SIMULATED read-only file system below ``root`` (for this process only): every write there made through
    ``os`` or ``open`` -- creating, opening for writing, renaming, removing, making directories -- fails with
    ``EROFS`` as on a read-only mount; reading is untouched. Root ignores mode bits (``chmod 0500`` does not stop
    it) and mounting a read-only file system needs privileges the test suite does not have: this is the stand-in.
    What it cannot show is code that writes through another route (a C extension's own ``open``)."""
    import builtins
    import errno
    import io

    root = Path(root).resolve()
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def under(p) -> bool:
        if isinstance(p, int):
            return False
        path = Path(os.fsdecode(p)).resolve()
        return path == root or root in path.parents

    def erofs(p) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(p))

    real = {name: getattr(os, name) for name in ("open", "mkdir", "rename", "replace", "unlink", "remove", "rmdir")}
    real_open = builtins.open

    def fake_os_open(path, flags, mode=0o777, *, dir_fd=None):
        if dir_fd is None and flags & write_flags and under(path):
            erofs(path)
        return real["open"](path, flags, mode, dir_fd=dir_fd)

    def fake_mkdir(path, mode=0o777, *, dir_fd=None):
        if dir_fd is None and under(path):
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(path))
            erofs(path)
        return real["mkdir"](path, mode, dir_fd=dir_fd)

    def two(name):
        def fake(src, dst, *a, **k):
            if under(src) or under(dst):
                erofs(dst)
            return real[name](src, dst, *a, **k)

        return fake

    def one(name):
        def fake(path, *a, **k):
            if under(path):
                erofs(path)
            return real[name](path, *a, **k)

        return fake

    def fake_open(file, mode="r", *a, **k):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and under(file):
            erofs(file)
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    for name in ("rename", "replace"):
        monkeypatch.setattr(os, name, two(name))
    for name in ("unlink", "remove", "rmdir"):
        monkeypatch.setattr(os, name, one(name))
    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
