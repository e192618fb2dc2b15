"""Tools of the fault-injection suite (``pytest -m faults``; docs/reliability.md): a ``benchmarks/run.py``
subprocess, the smallest configs that still run every stage, and a pickle that would run code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = [str(REPO / "packages" / p / "src") for p in ("ecg-data", "ecg-encoders", "ecg-text-align", "ecg-eval")]

#: the smallest real runs (seconds on one CPU core): one synthetic task, quick evaluation, 2-3 optimiser steps
QUICK = ["trainer.val_check_interval=null", "trainer.check_val_every_n_epoch=null", "trainer.enable_progress_bar=false",
         "pretrain_data.n=96", "dataset.tasks=[synth_ptbxl_super]", "eval=quick", "eval.bootstrap=20",
         "eval.fractions=[1.0]", "trainer.max_steps=2"]
TINY = {
    "merl": ["method=merl", "method.stages.0.steps=3", "method.stages.0.batch_size=8", "method.stages.0.warmup_steps=1",
             "method.stages.1.data.batch_size=4"],
    "heartlang": ["method=heartlang", "method.stages.0.trainer_overrides.max_steps=2",
                  "method.stages.0.data.batch_size=4", "method.stages.1.data.batch_size=4"],
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
