"""The encoder benchmark runs end to end on the tiny preset (no timing assertions)."""

from __future__ import annotations

import importlib

import pytest


def test_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    mod = importlib.import_module("benchmarks.perf.encoders")
    rows = mod.run(["wav2vec2"], ["tiny"], batch=1, reps=1, warmup=0, attention="both")
    (row,) = rows
    assert row["status"] == "ok"
    assert {"fwd_fused", "fwd_explicit", "fwdbwd_fused", "fwdbwd_explicit", "fused_speedup_fwd"} <= set(row)
    assert all(row[k] > 0 for k in ("fwd_fused", "fwd_explicit", "fwdbwd_fused", "fwdbwd_explicit"))
    table = mod._table(rows)
    assert "wav2vec2" in table and "fused speed-up" in table
