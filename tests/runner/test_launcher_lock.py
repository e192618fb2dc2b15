"""The run-store address lock for jobs whose ranks torchrun or ``srun`` started (docs/reliability.md).

Two "jobs" of 2 gloo processes each on the CPU, launched as torchrun launches them (``RANK``, ``WORLD_SIZE``,
``TORCHELASTIC_RUN_ID``, ``MASTER_ADDR``/``MASTER_PORT``), ask for the same run-store address. Inside the lock a job
"trains": both ranks join a gloo process group and all-reduce (a rank that went ahead alone would hang there), rank 0
writes the completion marker. Job B's ranks are started while job A holds the lock, rank 1 first: both wait (each
says so in its log), and once A is done both reuse A's run. Nothing here waits on a clock: every step waits for a
line in a process's log (with a generous deadline against a hang).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = [str(REPO / "packages" / p / "src") for p in ("ecg-data", "ecg-encoders", "ecg-text-align", "ecg-eval")]
DEADLINE_S = 300  # against a hang only (the machine may be loaded): every wait below ends on a log line

_RANK = """
import logging, os, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
from benchmarks.pipeline.store import RunStore, read_marker, write_marker
run_dir, gate = Path(sys.argv[1]), Path(sys.argv[2])
rank, job = int(os.environ["RANK"]), os.environ["TORCHELASTIC_RUN_ID"]
with RunStore(run_dir.parent.parent).address_lock(run_dir):
    print(f"inside rank {rank}", flush=True)
    done = read_marker(run_dir)
    if done is not None:
        print(f"reused {done['checkpoint_hash']}", flush=True)
    else:
        while rank == 0 and not gate.exists():  # the test opens the gate once job B waits
            time.sleep(0.05)
        import torch, torch.distributed as dist
        dist.init_process_group("gloo", rank=rank, world_size=2)
        t = torch.tensor([rank + 1.0])
        dist.all_reduce(t)
        if rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "trained_by").write_text(job)
            write_marker(run_dir, None, checkpoint_hash=job)
        dist.barrier()
        dist.destroy_process_group()
        print(f"trained {t.item()}", flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(rank: int, job: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "SLURM_NTASKS", "SLURM_PROCID")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([*SRC, str(REPO)]),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "TORCHELASTIC_RUN_ID": job,
            "TORCHELASTIC_RESTART_COUNT": "0",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
    )
    return env


class _Rank:
    def __init__(self, tmp: Path, run_dir: Path, gate: Path, rank: int, job: str, port: int):
        self.log = tmp / f"{job}-rank{rank}.log"
        self.f = open(self.log, "w")
        self.p = subprocess.Popen(
            [sys.executable, "-c", _RANK, str(run_dir), str(gate)],
            env=_env(rank, job, port),
            stdout=self.f,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, needle: str) -> None:
        t0 = time.monotonic()
        while needle not in self.text():
            if self.p.poll() is not None and needle not in self.text():
                raise AssertionError(f"exited {self.p.returncode} before {needle!r}:\n{self.text()}")
            if time.monotonic() - t0 > DEADLINE_S:
                raise AssertionError(f"no {needle!r} after {DEADLINE_S} s:\n{self.text()}")
            time.sleep(0.05)

    def finish(self) -> str:
        try:
            rc = self.p.wait(DEADLINE_S)
        finally:
            if self.p.poll() is None:
                self.p.kill()
            self.f.close()
        assert rc == 0, self.text()
        return self.text()


@pytest.fixture
def ranks(tmp_path: Path):
    started: list[_Rank] = []
    run_dir = tmp_path / "runs" / "merl" / "abc-seed0"
    gate = tmp_path / "gate"

    def start(rank: int, job: str, port: int) -> _Rank:
        started.append(_Rank(tmp_path, run_dir, gate, rank, job, port))
        return started[-1]

    start.run_dir, start.gate = run_dir, gate  # type: ignore[attr-defined]
    yield start
    for r in started:  # a failed assertion must not leave a rank waiting forever
        if r.p.poll() is None:
            r.p.kill()
            r.p.wait()


def test_a_torchrun_job_takes_the_lock_and_a_second_one_waits_then_reuses(ranks) -> None:
    port_a, port_b = _free_port(), _free_port()
    a1 = ranks(1, "job-a", port_a)  # rank 1 first: it must wait for its rank 0, not go ahead alone
    a1.wait_for("waits for global rank 0")
    a0 = ranks(0, "job-a", port_a)
    a0.wait_for("inside rank 0")
    a1.wait_for("inside rank 1")  # rank 0 of its own launch holds the lock: job A goes on together
    b1 = ranks(1, "job-b", port_b)
    b1.wait_for("waits for global rank 0")  # the holder file names job A: B's rank 1 waits
    b0 = ranks(0, "job-b", port_b)
    b0.wait_for("is being trained by another process; waiting for it")  # B's rank 0 waits on the flock
    assert "inside" not in b1.text() and "inside" not in b0.text()
    ranks.gate.write_text("go")  # type: ignore[attr-defined]
    for r in (a0, a1):
        assert "trained 3.0" in r.finish()  # both ranks of A took part (1 + 2)
    for r in (b0, b1):
        assert "reused job-a" in r.finish()  # B found A's marker: nothing trained twice
    assert (ranks.run_dir / "trained_by").read_text() == "job-a"  # type: ignore[attr-defined]
    lock_dir = ranks.run_dir.parents[1] / ".locks"  # type: ignore[attr-defined]
    assert not list(lock_dir.glob("*.holder"))  # each holder removed its holder file on release


def test_a_stale_holder_file_of_a_killed_rank_zero_is_not_trusted(ranks) -> None:
    """A rank 0 killed inside the lock leaves its holder file; the kernel drops its lock. A relaunch that happens to
    get the same launch id (torchrun's default run id, the same port): rank 1 still waits for its own rank 0."""
    from benchmarks.pipeline.ranks import launch_id

    port = _free_port()
    job = "job-c"
    env = _env(1, job, port)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        me = launch_id()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    lock = ranks.run_dir.parents[1] / ".locks" / "merl-abc-seed0.lock"  # type: ignore[attr-defined]
    lock.parent.mkdir(parents=True)
    lock.touch()
    lock.with_name(lock.name + ".holder").write_text(me)  # what the killed rank 0 left
    ranks.gate.write_text("go")  # type: ignore[attr-defined]
    c1 = ranks(1, job, port)
    c1.wait_for("waits for global rank 0")  # it read the stale file and did not go ahead
    assert "inside" not in c1.text()
    c0 = ranks(0, job, port)
    for r in (c0, c1):
        assert "trained 3.0" in r.finish()


LAUNCH_VARS = (
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
    "TORCHELASTIC_RESTART_COUNT",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_JOB_ID",
    "SLURM_STEP_ID",
)


@pytest.mark.parametrize(
    "env, all_ranks",
    [
        ({}, False),  # one process
        ({"LOCAL_RANK": "1", "NODE_RANK": "0", "WORLD_SIZE": "2"}, False),  # a child of Lightning's launcher
        ({"RANK": "1", "LOCAL_RANK": "1", "TORCHELASTIC_RUN_ID": "x"}, True),  # torchrun
        ({"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_JOB_ID": "7"}, True),  # srun
        ({"SLURM_NTASKS": "1", "SLURM_PROCID": "0", "SLURM_JOB_ID": "7"}, False),  # an sbatch job, one task
    ],
)
def test_which_launcher_started_every_rank(env: dict, all_ranks: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.pipeline import ranks as r

    for k in LAUNCH_VARS:
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert r.launcher_started_all_ranks() is all_ranks


def test_launch_id_is_the_same_on_every_rank_and_new_for_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.pipeline.ranks import launch_id

    for k in LAUNCH_VARS:
        monkeypatch.delenv(k, raising=False)

    def ident(**env: str) -> str:
        for k in LAUNCH_VARS:
            monkeypatch.delenv(k, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        return launch_id()

    torchrun = dict(
        TORCHELASTIC_RUN_ID="abc", TORCHELASTIC_RESTART_COUNT="0", MASTER_ADDR="h", MASTER_PORT="29500", WORLD_SIZE="4"
    )
    assert ident(RANK="0", LOCAL_RANK="0", **torchrun) == ident(RANK="3", LOCAL_RANK="1", **torchrun)
    assert ident(RANK="0", **{**torchrun, "TORCHELASTIC_RESTART_COUNT": "1"}) != ident(RANK="0", **torchrun)
    assert ident(RANK="0", **{**torchrun, "TORCHELASTIC_RUN_ID": "def"}) != ident(RANK="0", **torchrun)
    srun = dict(SLURM_NTASKS="2", SLURM_JOB_ID="7", SLURM_STEP_ID="0")
    assert ident(SLURM_PROCID="0", **srun) == ident(SLURM_PROCID="1", **srun)
    assert ident(SLURM_PROCID="0", **{**srun, "SLURM_STEP_ID": "1"}) != ident(SLURM_PROCID="0", **srun)


# ----- end to end: two torchrun jobs of benchmarks/run.py on one run-store address ------------------------------------
DDP = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.precision=32-true"]
QUICK = [
    "trainer.val_check_interval=null",
    "trainer.check_val_every_n_epoch=null",
    "trainer.enable_progress_bar=false",
    "pretrain_data.n=96",
    "dataset.tasks=[synth_ptbxl_super]",
    "eval=quick",
    "trainer.max_steps=2",
]
HEARTLANG_TINY = [
    "method=heartlang",
    "method.stages.0.trainer_overrides.max_steps=2",
    "method.stages.0.data.batch_size=4",
    "method.stages.1.data.batch_size=4",
]


@pytest.mark.slow
def test_two_torchrun_jobs_of_run_py_train_one_address_once(tmp_path: Path) -> None:
    """``torchrun --standalone --nproc-per-node 2 benchmarks/run.py ...`` twice on one run store. Once job A's rank 0
    holds the address lock (its holder file exists), job A is paused (SIGSTOP to its process group: torchrun and both
    ranks) and job B is started; B's rank 0 must wait on the lock and B's rank 1 for its rank 0 (each says so in B's
    log). Then A goes on (SIGCONT), trains, and B reuses A's run: one "ran" and one "skipped" in the run store's
    events, the pretraining stages ran once, both jobs exit 0. The pause only orders the events: nothing waits on a
    clock."""
    store = tmp_path / "runs"
    args = [*DDP, *QUICK, *HEARTLANG_TINY, f"run_store={store}", "stages=[pretrain]"]
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("RANK", "LOCAL_RANK", "TORCHELASTIC_RUN_ID", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_NTASKS")
    }
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([*SRC, str(REPO), env.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1",
            "ECG_CACHE": str(tmp_path / "cache"),
        }
    )
    jobs: dict[str, tuple[subprocess.Popen, object]] = {}

    def start(name: str) -> subprocess.Popen:
        (tmp_path / name).mkdir()
        log = open(tmp_path / f"{name}.log", "w")
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(REPO / "benchmarks" / "run.py"),
            *args,
            f"output_dir={tmp_path / name / 'out'}",
        ]
        p = subprocess.Popen(
            cmd, cwd=tmp_path / name, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        jobs[name] = (p, log)
        return p

    def text(name: str) -> str:
        return (tmp_path / f"{name}.log").read_text(errors="replace")

    def wait_until(done, name: str, what: str) -> None:
        t0 = time.monotonic()
        while not done():
            assert jobs[name][0].poll() is None, f"{name} exited before {what}:\n{text(name)[-4000:]}"
            assert time.monotonic() - t0 < 1500, f"no {what} in 1500 s:\n{text(name)[-4000:]}"
            time.sleep(0.1)

    try:
        a = start("a")
        wait_until(lambda: any((store / ".locks").glob("heartlang-*.holder")), "a", "holder file")
        os.killpg(a.pid, signal.SIGSTOP)  # A holds the lock and stands still
        start("b")
        wait_until(lambda: "is being trained by another process; waiting for it" in text("b"), "b", "rank 0 waiting")
        wait_until(lambda: "waits for global rank 0" in text("b"), "b", "rank 1 waiting")
        assert "pretrain: skipped" not in text("b") and "pretrain/vqhbr: ran" not in text("b")
        os.killpg(a.pid, signal.SIGCONT)
        for name, (p, log) in jobs.items():
            rc = p.wait(1500)
            log.close()
            assert rc == 0 and "Traceback" not in text(name), text(name)[-4000:]
    finally:
        for p, _ in jobs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGCONT)
                os.killpg(p.pid, signal.SIGKILL)
    events = [json.loads(l) for l in (store / "events.jsonl").read_text().splitlines() if l.strip()]
    whole = [(e["status"], e.get("reason")) for e in events if e["stage"] == "pretrain"]
    assert whole == [("ran", None), ("skipped", "output exists")], whole
    assert [e["status"] for e in events if e["stage"] in ("pretrain/vqhbr", "pretrain/msm")] == ["ran", "ran"]
    assert text("b").count("pretrain: skipped (output exists") == 2  # both of B's ranks reused A's run
