"""Fixtures of the fault-injection suite (``pytest -m faults``; docs/reliability.md)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # fault_tools, also for the subprocesses some tests start
    sys.path.insert(0, HERE)

from fault_tools import Evil, run_cmd, run_env  # noqa: E402


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """``python benchmarks/run.py ARGS`` in a subprocess (cwd = tmp_path)."""

    def _run(args: list[str], env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            run_cmd(args), cwd=tmp_path, env=run_env(env), capture_output=True, text=True, timeout=timeout
        )

    return _run


@pytest.fixture
def evil_ckpt(tmp_path: Path) -> Callable[[Path], Path]:
    """Write a Lightning-looking checkpoint whose pickle would create ``<tmp>/pwned``; returns its path."""
    import torch

    def _write(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "state_dict": {"w": torch.zeros(2)},
                "ecg_text_align_class": "x:y",
                "global_step": 1,
                "hyper_parameters": {"x": Evil(tmp_path / "pwned")},
            },
            path,
        )
        return path

    return _write
