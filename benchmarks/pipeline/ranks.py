"""Rank awareness of the runner: which process evaluates and writes, and how Lightning's launcher restarts us.

Launch styles (docs/running.md):
- Lightning's own launcher (``trainer.devices=N`` in one process): at the first ``Trainer.fit`` global rank 0
  restarts this script N-1 times. Lightning's stock command repeats ``sys.argv`` -- with ``-m`` that is the whole
  sweep, once per child -- so ``install_child_command`` replaces it by *this job's* overrides. After each job
  the launcher's environment is removed again (``reset_after_job``), so the next job of a multirun launches
  its own children instead of waiting for ranks that have exited.
- An external launcher (torchrun, SLURM ``srun``) starts every rank itself; global rank 0 takes the run-store
  lock for the job and the other ranks wait until it holds it (``RunStore.address_lock``, ``launch_id``).
Every rank runs the pretraining stages in the same order (DDP needs all of them in each ``fit``); only global
rank 0 writes the run store's markers and events, evaluates and publishes (``is_global_zero``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def _dist():
    """torch.distributed if torch is loaded already (a toy run or a Hydra error never loads torch for this)."""
    if "torch" not in sys.modules:
        return None
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def launched_rank() -> int:
    """``ecg_text_align.distributed.launched_rank`` without importing torch when it is not loaded."""
    if _dist() is not None or "torch" in sys.modules:
        from ecg_text_align.distributed import launched_rank as lr

        return lr()
    for name in ("RANK",):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    if os.environ.get("LOCAL_RANK", "").isdigit():
        local, node = int(os.environ["LOCAL_RANK"]), int(os.environ.get("NODE_RANK", "0") or 0)
        return local if node == 0 else node * 1_000_000 + local
    if int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1:
        return int(os.environ.get("SLURM_PROCID", "0") or 0)
    return 0


def is_global_zero() -> bool:
    return launched_rank() == 0


def barrier() -> None:
    d = _dist()
    if d is not None and d.get_world_size() > 1:
        d.barrier()


log = logging.getLogger("ecgbench")

__all__ = [
    "barrier",
    "is_global_zero",
    "launched_rank",
    "install_child_command",
    "reset_after_job",
    "externally_launched",
    "launcher_started_all_ranks",
    "launch_id",
]

#: what Lightning's subprocess launcher puts into the parent's environment
_LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
_SCRIPT = Path(__file__).resolve().parents[1] / "run.py"


def _srun_tasks() -> bool:
    """``srun`` started several tasks of this job."""
    return int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1


def externally_launched() -> bool:
    """True when a launcher (torchrun, srun with several tasks, or Lightning for a child) started this process."""
    return launcher_started_all_ranks() or "LOCAL_RANK" in os.environ


def launcher_started_all_ranks() -> bool:
    """True when torchrun or ``srun`` (several tasks) started every rank of this job itself -- not a child that
    Lightning's own launcher started from the user's process (that one has ``LOCAL_RANK`` but no ``RANK``)."""
    return "RANK" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ or _srun_tasks()


def launch_id() -> str:
    """One string that every rank of this launch computes alike and another launch does not: torchrun's run id and
    restart count (a restart is a new launch), else SLURM's job and step ids, else the rendezvous address.
    The run-store lock's holder file names it (``RunStore.address_lock``)."""
    env = os.environ
    if "TORCHELASTIC_RUN_ID" in env:
        keys = ("TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE")
    elif _srun_tasks() and "SLURM_JOB_ID" in env:
        keys = ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_NTASKS")
    else:
        keys = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE")
    return ";".join(f"{k}={env.get(k, '')}" for k in keys)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def child_command(
    task_overrides: Sequence[str], hydra_overrides: Sequence[str], output_dir: str, local_rank: int
) -> list[str]:
    """The command a DDP child runs: this script with this job's overrides (never the whole multirun sweep)."""
    cmd = [sys.executable, str(_SCRIPT), *task_overrides]
    if not any(o.startswith("method_dir=") for o in task_overrides):  # run.py turns method_dir= into searchpath
        cmd += [o for o in hydra_overrides if o.startswith("hydra.searchpath=")]
    cmd += [f"hydra.run.dir={_quote(output_dir)}", f"hydra.job.name=ddp_rank{local_rank}", "hydra.output_subdir=null"]
    return cmd


def _hydra_child_cmd(local_rank: int) -> tuple[list[str], str]:
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    hc = HydraConfig.get()
    return child_command(
        list(hc.overrides.task), list(hc.overrides.hydra), str(hc.runtime.output_dir), local_rank
    ), get_original_cwd()


def install_child_command() -> None:
    """Make Lightning's subprocess launcher start children with this job's overrides (see module docstring)."""
    try:
        from lightning.pytorch.strategies.launchers import subprocess_script as launcher
    except ImportError:  # pragma: no cover - lightning is a dependency of ecg-text-align
        return
    if not hasattr(launcher, "_hydra_subprocess_cmd"):
        log.warning(
            "lightning %s has no _hydra_subprocess_cmd; DDP children repeat sys.argv (a -m sweep is then "
            "run by every child)",
            getattr(launcher, "__version__", "?"),
        )
        return
    launcher._hydra_subprocess_cmd = _hydra_child_cmd


def reset_after_job(env_before: dict[str, str | None]) -> None:
    """In the process that launched DDP children itself: end the process group and drop the launcher's
    environment, so the next job of a multirun starts its own children on a fresh port."""
    d = _dist()
    if d is not None:
        d.destroy_process_group()
    for k in _LAUNCHER_ENV:
        if env_before.get(k) is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = env_before[k]  # type: ignore[assignment]


def env_snapshot() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in _LAUNCHER_ENV}
