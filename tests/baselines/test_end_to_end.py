"""Each method's tiny preset through ``benchmarks/run.py``'s pipeline: pretrain on synth-mimic, then zero-shot
and linear probe on synth-ptbxl (super) and synth-cpsc2018, result files and a leaderboard row.

Default set: a smoke schedule (3 optimiser steps per stage, the 100% probe, small corpora). ``-m slow``: the
tiny preset's own schedule with the quick eval grid (1/10/100%)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bl_e2e import compose, smoke_overrides

from benchmarks.pipeline import run

TASKS = ("synth_ptbxl_super", "synth_cpsc2018")


def _check(tmp: Path, method: str, zero_shot: bool, fractions: list[str]) -> None:
    from ecg_eval.results import read_result

    for task in TASKS:
        base = tmp / "results" / "synthetic" / method / task
        zs = read_result(base / "zero_shot-seed0.json")
        assert zs["status"] == ("ok" if zero_shot else "not_applicable"), zs["status"]
        if zero_shot:
            assert 0.0 <= zs["scores"]["macro_auroc"] <= 1.0
        for pct in fractions:
            res = read_result(base / f"linear_probe-{pct}-seed0.json")
            assert res["status"] == "ok" and 0.0 <= res["scores"]["macro_auroc"] <= 1.0
            assert res["encoder_card"]["name"] == method
            assert res["pretrained_on"] == ([] if method == "random_init" else ["synth-mimic"])
    board = (tmp / "leaderboard" / "README.md").read_text()
    assert f"| {method} " in board


@pytest.mark.parametrize(
    "method,zero_shot", [("merl", True), ("esi", True), ("heartlang", False), ("random_init", False)]
)
def test_tiny_method_smoke_to_leaderboard(method, zero_shot, tmp_path, small_synthetic):
    run(compose(smoke_overrides(method, tmp_path)))
    _check(tmp_path, method, zero_shot, ["100"])
    res = json.loads(
        (tmp_path / "results" / "synthetic" / method / TASKS[0] / "linear_probe-100-seed0.json").read_text()
    )
    # random init: the card's hash is derived from tower config + seed (no checkpoint file)
    assert res["checkpoint_hash"].startswith("init-") == (method == "random_init")
    # per-dataset inputs through the runner (checkpoint loaded, wrapped): HeartLang only, the others as before
    cpsc = json.loads(
        (tmp_path / "results" / "synthetic" / method / TASKS[1] / "linear_probe-100-seed0.json").read_text()
    )
    if method == "heartlang":
        assert res["input_preparation"]["preset"] == "heartlang-ptbxl" and res["input_preparation"]["fit"]["std"] > 0
        assert cpsc["input_preparation"]["preset"] == "heartlang-cpsc2018"
    else:
        assert "input_preparation" not in res and "input_preparation" not in cpsc
        assert set(res["input_spec"]) == {"preset", "fs", "length"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "method,zero_shot", [("merl", True), ("esi", True), ("heartlang", False), ("random_init", False)]
)
def test_tiny_preset_full_schedule(method, zero_shot, tmp_path, small_synthetic):
    overrides = [
        o
        for o in smoke_overrides(method, tmp_path, fractions="[0.1,1.0]")
        if not o.startswith("method.") and not o.startswith("trainer.max_steps")
    ]  # keeps bl_e2e.NO_HYP
    run(compose(overrides))
    _check(tmp_path, method, zero_shot, ["10", "100"])
    cfg = (
        json.loads(next((tmp_path / "runs" / method).glob("*/COMPLETE.json")).read_text())
        if method != "random_init"
        else {}
    )
    assert method == "random_init" or cfg
