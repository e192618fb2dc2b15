"""Helpers for the end-to-end tests: compose the repository's Hydra config and run the benchmark in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

#: the small test corpora drop HYP from synth_ptbxl_super (no positive in val); a prompted class the task lacks is
#: an error of the validation data (PretrainDataModule selects labels by class name), so no HYP prompt in tests
NO_HYP = "~method.stages.1.zero_shot.synth_ptbxl_super.HYP"

#: per-method overrides that shrink the tiny preset to a CI smoke schedule (a few optimiser steps)
SHORT: dict[str, list[str]] = {
    "merl": [
        "method.stages.0.steps=3",
        "method.stages.0.warmup_steps=1",
        "method.stages.1.warmup_steps=1",
        "method.stages.1.data.batch_size=8",
        NO_HYP,
    ],
    "esi": [
        "method.stages.0.steps=3",
        "method.stages.0.warmup_steps=1",
        "method.stages.1.warmup_steps=1",
        "method.stages.1.data.batch_size=8",
        NO_HYP,
    ],
    "heartlang": [
        "method.stages.0.trainer_overrides.max_steps=3",
        "method.stages.0.warmup_steps=1",
        "method.stages.1.warmup_steps=1",
        "method.stages.0.data.batch_size=8",
        "method.stages.1.data.batch_size=8",
    ],
    "random_init": [],
}


def compose(overrides: list[str], search: Path | None = None) -> Any:
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    extra = [f"hydra.searchpath=[file://{search}]"] if search else []
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return hcompose("config", overrides=[*overrides, *extra])


def smoke_overrides(
    method: str,
    tmp: Path,
    *,
    steps: int = 3,
    fractions: str = "[1.0]",
    tasks: str = "[synth_ptbxl_super,synth_cpsc2018]",
) -> list[str]:
    return [
        f"method={method}",
        *SHORT.get(method, []),
        f"trainer.max_steps={steps}",
        "trainer.val_check_interval=null",
        "trainer.check_val_every_n_epoch=null",
        "eval=quick",
        f"eval.fractions={fractions}",
        "eval.bootstrap=20",
        f"dataset.tasks={tasks}",
        f"run_store={tmp / 'runs'}",
        f"results_dir={tmp / 'results'}",
        f"leaderboard_dir={tmp / 'leaderboard'}",
    ]
