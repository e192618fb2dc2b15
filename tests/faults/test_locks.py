"""The locks parallel jobs rely on (docs/reliability.md), in seconds: a second process asking for a held run-store
address waits for the first and then sees its completion marker; a killed holder never leaves a stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_tools import REPO, SRC

from ecg_data.paths import exclusive_lock

pytestmark = pytest.mark.faults

_HOLDER = """
import sys, time
from pathlib import Path
from benchmarks.pipeline.store import RunStore, write_marker
run_dir = Path(sys.argv[1])
with RunStore(run_dir.parent.parent).address_lock(run_dir):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    if sys.argv[3] == "finish":
        run_dir.mkdir(parents=True, exist_ok=True)
        write_marker(run_dir, None, checkpoint_hash="h")
"""


def _holder(run_dir: Path, seconds: float, finish: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*SRC, str(REPO)])}
    for k in ("RANK", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        env.pop(k, None)
    p = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(run_dir), str(seconds), "finish" if finish else "x"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_job_for_the_same_address_waits_then_reuses(tmp_path) -> None:
    from benchmarks.pipeline.store import RunStore, read_marker

    run_dir = tmp_path / "runs" / "merl" / "abc-seed0"
    holder = _holder(run_dir, 1.5, finish=True)
    t0 = time.time()
    with RunStore(tmp_path / "runs").address_lock(run_dir):
        waited = time.time() - t0
        assert read_marker(run_dir) is not None  # the first job's run, complete: reused, not retrained
    assert waited > 0.5
    assert holder.wait(30) == 0


def test_a_killed_holder_leaves_no_stale_lock(tmp_path) -> None:
    run_dir = tmp_path / "runs" / "merl" / "abc-seed0"
    holder = _holder(run_dir, 60, finish=False)
    holder.send_signal(signal.SIGKILL)
    holder.wait(30)
    t0 = time.time()
    with exclusive_lock(tmp_path / "runs" / ".locks" / "merl-abc-seed0.lock"):
        assert time.time() - t0 < 5
