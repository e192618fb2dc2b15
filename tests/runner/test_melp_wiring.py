"""Real MELP (configs/method/melp.yaml: text LM -> stage 0 -> MELP) through the runner with a few steps,
scored zero-shot through ecg_eval on the real PTB-XL sample. Slow (a minute or more on 2 cores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.pipeline import run
from benchmarks.pipeline.store import RunStore

FEW_STEPS = [
    "pretrain_data.n=48",
    "method.stages.0.steps=2",
    "method.stages.0.warmup_steps=1",
    "method.stages.0.batch_size=8",
    "method.stages.1.trainer_overrides.max_steps=2",
    "method.stages.1.total_steps=2",
    "method.stages.1.warmup_steps=1",
    "method.stages.1.data.batch_size=8",
    "method.stages.2.warmup_steps=1",
    "method.stages.2.data.batch_size=8",
    "method.stages.2.zero_shot={}",
    "trainer.max_steps=2",
    "trainer.checkpoint_every_n_steps=1",
]


@pytest.mark.slow
def test_tiny_melp_pretrains_and_scores_zero_shot(tmp_path, ptbxl500, compose_cfg, monkeypatch):
    pytest.importorskip("ecg_text_align.stages")
    root = tmp_path / "data"
    root.mkdir()
    (root / "ptbxl").symlink_to(ptbxl500)
    monkeypatch.delenv("ECG_DATA_ROOT", raising=False)
    cfg = compose_cfg(
        [
            "method=melp",
            "dataset=ptbxl_super",
            "eval=quick",
            "stages=[pretrain,zero_shot,publish]",
            f"data_root={root}",
            f"run_store={tmp_path / 'runs'}",
            f"results_dir={tmp_path / 'results'}",
            f"leaderboard_dir={tmp_path / 'leaderboard'}",
            *FEW_STEPS,
        ]
    )
    summary = run(cfg)
    ran = [e["stage"] for e in RunStore(tmp_path / "runs").events() if e["status"] == "ran"]
    assert ran[:3] == ["pretrain/text_lm", "pretrain/stage0", "pretrain/melp"]
    result = json.loads((tmp_path / "results" / "real" / "melp" / "ptbxl_super" / "zero_shot-seed0.json").read_text())
    assert result["status"] == "ok" and result["checkpoint_hash"] == summary["checkpoint_hash"]
    assert result["pretrained_on"] == ["synth-mimic"]
    assert Path(summary["checkpoint"]).suffix == ".ckpt"
