"""The run store: content-addressed run directories, stage markers and the per-stage event log.

Why content addressing: a rerun (or an interrupted multirun) with the same method, pretraining data,
trainer and seed lands in the same directory and finds the finished stages there; a changed
hyperparameter gets a fresh directory instead of silently reusing a stale checkpoint.
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ecg_data.paths import atomic_write_json, atomic_write_text, exclusive_lock, file_hash, stable_hash

#: Method keys that do not change what pretraining produces (so editing them never retrains; ``eval``: how the
#: method is scored, e.g. its fine-tuning recipe).
_NOT_HASHED = ("load", "zero_shot", "description", "eval")
#: Trainer keys that only change what is shown, not what is trained (``perf``: speed switches with the same
#: loss and gradients within float tolerance, ecg_text_align.perf).
_TRAINER_NOT_HASHED = ("enable_progress_bar", "logger", "checkpoint_best_k", "snapshot_every_n_epochs", "perf")
MARKER = "COMPLETE.json"
#: how often a waiting non-zero rank looks at the lock's holder file (seconds)
HOLDER_POLL_S = 0.2
log = logging.getLogger("ecgbench")


def plain(cfg: Any) -> Any:
    """A Hydra/OmegaConf config (or part of one) as plain dicts, lists and values, interpolations resolved.

    The runner's one conversion: every config it hands to a library (stage functions, ``load``, the harness) goes
    through here, so the libraries take plain data only and none of them imports omegaconf."""
    if cfg is None:
        return None
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def run_address(cfg: DictConfig) -> tuple[str, str]:
    """(method name, hash) of what pretraining depends on: method stages, pretraining data, trainer, seed."""
    method = {k: v for k, v in plain(cfg.method).items() if k not in _NOT_HASHED}
    keyed = {
        "method": method,
        "pretrain_data": plain(cfg.get("pretrain_data")),
        "trainer": {k: v for k, v in (plain(cfg.get("trainer")) or {}).items() if k not in _TRAINER_NOT_HASHED},
        "seed": int(cfg.seed),
    }
    return str(cfg.method.name), stable_hash(keyed)


def path_hash(path: Path) -> str:
    """Checkpoint hash: sha256 of a file, or of the sorted (name, hash) list of a directory's files."""
    path = Path(path)
    if path.is_file():
        return file_hash(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return stable_hash([(str(p.relative_to(path)), file_hash(p)) for p in files])


@dataclass
class RunStore:
    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def run_dir(self, cfg: DictConfig) -> Path:
        name, key = run_address(cfg)
        return self.root / name / f"{key}-seed{int(cfg.seed)}"

    @contextmanager
    def address_lock(self, run_dir: Path) -> Iterator[None]:
        """One job at a time trains a run-store address: a second job asking for the same address (a SLURM array, a
        parallel multirun, another torchrun) waits here, then finds the completion marker and reuses the run.

        - A single process, or the user's process under Lightning's own launcher: it takes the ``flock``; the DDP
          children Lightning starts inside it run inside its lock.
        - A job whose ranks torchrun or ``srun`` started: global rank 0 takes the ``flock`` and writes the job's
          ``launch_id`` into ``<lock>.holder``; every other rank waits until that file names its own launch while
          the lock is held (then it goes on with rank 0, which now decides alone for the job), or until the run's
          completion marker exists (then every rank reuses the run). The other ranks hold nothing, so they can
          block no one: no deadlock between the ranks of one job or between jobs.
        """
        from benchmarks.pipeline.ranks import externally_launched, is_global_zero, launch_id, launcher_started_all_ranks

        lock = self.root / ".locks" / f"{run_dir.parent.name}-{run_dir.name}.lock"
        holder = lock.with_name(lock.name + ".holder")
        all_ranks = launcher_started_all_ranks()
        if externally_launched() and not all_ranks:
            yield  # a child of Lightning's launcher: inside the lock of the process that started it
            return
        if not is_global_zero():
            _wait_for_rank_zero(lock, holder, launch_id(), run_dir)
            yield
            return
        me = launch_id() if all_ranks else f"process={uuid.uuid4().hex}"  # overwrites any stale holder file
        with exclusive_lock(lock, waiting=f"pretrain: {run_dir} is being trained by another process; waiting for it"):
            atomic_write_text(holder, me)
            try:
                yield
            finally:
                holder.unlink(missing_ok=True)  # still under the lock: the next holder writes its own

    # -- events: one JSON line per stage decision, the audit trail of "ran" vs "skipped" -------------
    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    def log_event(self, run: str, stage: str, status: str, **detail: Any) -> None:
        """Append one line; only global rank 0 writes (under DDP every rank runs the pretraining stages)."""
        from benchmarks.pipeline.ranks import is_global_zero

        if not is_global_zero():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "run": run, "stage": stage, "status": status, **detail},
            default=str,
        )
        with open(self.events_path, "a", encoding="utf-8") as f:  # one short line: append is atomic enough
            f.write(line + "\n")

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.is_file():
            return []
        return [json.loads(l) for l in self.events_path.read_text(encoding="utf-8").splitlines() if l.strip()]


def _is_locked(lock: Path) -> bool:
    """Whether some process holds the exclusive ``flock`` on ``lock`` now (a shared lock cannot be had)."""
    try:
        f = open(lock)
    except FileNotFoundError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def _wait_for_rank_zero(lock: Path, holder: Path, me: str, run_dir: Path) -> None:
    """A non-zero rank of a torchrun/srun job: return once global rank 0 of this launch holds the address lock, or
    once the run is complete (rank 0 then finds the same marker under the lock and reuses the run too). The holder
    file alone is not trusted (a killed rank 0 leaves it behind): the lock must be held as well."""
    from benchmarks.pipeline.ranks import launched_rank

    said = False
    while True:
        try:
            named = holder.read_text(encoding="utf-8")
        except FileNotFoundError:
            named = None
        if named == me and _is_locked(lock):
            return
        if read_marker(run_dir) is not None:
            return
        if not said:
            log.info(
                "pretrain: rank %d waits for global rank 0 to take the run-store lock of %s", launched_rank(), run_dir
            )
            said = True
        time.sleep(HOLDER_POLL_S)


def read_marker(directory: Path) -> dict[str, Any] | None:
    """The completion marker of a stage (or of a whole pretraining run) if it exists and its output is still there."""
    marker = Path(directory) / MARKER
    if not marker.is_file():
        return None
    data = json.loads(marker.read_text(encoding="utf-8"))
    output = data.get("output")
    if output is not None and not (Path(directory) / output).exists():
        return None
    return data


def write_marker(directory: Path, output: Path | None, **extra: Any) -> None:
    """Written atomically *after* the output, so its presence means the output is complete (global rank 0 only)."""
    from benchmarks.pipeline.ranks import is_global_zero

    if not is_global_zero():
        return
    directory = Path(directory)
    rel = None
    if output is not None:
        output = Path(output).resolve()
        try:
            rel = str(output.relative_to(directory.resolve()))
        except ValueError:
            rel = str(output)  # outside the stage dir (absolute): still checked for existence
    atomic_write_json(directory / MARKER, {"output": rel, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra})


def marker_output(directory: Path, marker: dict[str, Any]) -> Path | None:
    out = marker.get("output")
    return None if out is None else (Path(directory) / out)
