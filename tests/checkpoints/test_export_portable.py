"""Every method's run exports a self-contained model directory; moving or copying ``runs/`` never breaks a load.

Each method's tiny preset is pretrained for a few steps through the runner (``stages=[pretrain]``); then the
exported directory and the Lightning checkpoint are loaded before and after moving the whole run store, and
the encoders must give identical outputs. The export loads without ``torch.load`` (safetensors only).
MELP's three-stage run is marked slow (about 3 minutes here); ``test_melp_portable.py`` covers MELP fast."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from bl_e2e import compose, smoke_overrides

from benchmarks.pipeline import run
from ecg_text_align.module import PretrainModule
from ecg_text_align.pretrained import from_pretrained

MELP_FEW_STEPS = [
    "method.stages.0.steps=2",
    "method.stages.0.warmup_steps=1",
    "method.stages.0.batch_size=8",
    "method.stages.1.trainer_overrides.max_steps=2",
    "method.stages.1.total_steps=2",
    "method.stages.1.warmup_steps=1",
    "method.stages.1.data.batch_size=8",
    "method.stages.2.warmup_steps=1",
    "method.stages.2.data.batch_size=8",
    "~method.stages.2.zero_shot.synth_ptbxl_super.HYP",  # the small corpus has no HYP in val
]
TEXT_METHODS = {"melp", "merl", "esi"}


def _ecg(n: int, fs: int, length: int) -> torch.Tensor:
    """Spiky ECG-like signals (R-peaks every 0.8 s) so HeartLang's tokenizer finds beats."""
    t = torch.arange(length) / fs
    beat = torch.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.01**2))
    return beat.expand(n, 12, -1) + 0.05 * torch.randn(n, 12, length, generator=torch.Generator().manual_seed(0))


def _outputs(model, x):
    out = {"ecg": model.encode_ecg(x)}
    if callable(getattr(model, "encode_text", None)):
        out["text"] = model.encode_text(["Sinus rhythm. Normal ECG.", "Atrial fibrillation."])
    return out


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=f"{k} differs")


@pytest.mark.parametrize(
    "method", [pytest.param("melp", marks=pytest.mark.slow), "merl", "esi", "heartlang", "random_init"]
)
def test_run_exports_portable_model_and_moving_runs_keeps_loads(method, tmp_path, small_synthetic, monkeypatch):
    overrides = [*smoke_overrides(method, tmp_path), "stages=[pretrain]", *(MELP_FEW_STEPS if method == "melp" else [])]
    summary = run(compose(overrides))
    runs, run_dir = tmp_path / "runs", Path(summary["run_dir"])
    export = run_dir / "model"
    for name in ("model.safetensors", "config.json", "README.md"):
        assert (export / name).is_file(), name
    assert (export / "text_model").is_dir() == (method in TEXT_METHODS)
    config = json.loads((export / "config.json").read_text())
    card = (export / "README.md").read_text()
    assert config["card"]["method"] == method and config["input_spec"]["preset"]
    assert f"# {method}" in card and "| **total** |" in card and "pretraining steps" in card
    if method in TEXT_METHODS:  # the text tower lives inside the export, named relative to it
        assert config["init"]["text_encoder"]["path"] == "text_model"
        assert config["card"]["steps"][method] >= 1  # optimiser steps of the method's final stage
    spec = config["input_spec"]
    x = _ecg(2, spec["fs"], spec["length"])

    ref = _outputs(from_pretrained(export), x)
    ckpt = Path(summary["checkpoint"]) if summary["checkpoint"] else None
    if ckpt is not None:
        _same(_outputs(PretrainModule.from_checkpoint(ckpt), x), ref)

    moved = tmp_path / "elsewhere" / "store"
    shutil.move(str(runs), str(moved))  # the original location is gone: nothing may still point there
    new_run = moved / run_dir.relative_to(runs)

    def no_pickle(*a, **k):
        raise AssertionError("from_pretrained must not unpickle (torch.load)")

    with monkeypatch.context() as m:
        m.setattr(torch, "load", no_pickle)
        _same(_outputs(from_pretrained(new_run / "model"), x), ref)
    if ckpt is not None:
        moved_ckpt = moved / ckpt.relative_to(runs)
        loaded = PretrainModule.from_checkpoint(moved_ckpt)
        _same(_outputs(loaded, x), ref)
        if method in TEXT_METHODS:
            # a copy of the store reads its own text tower, not the source's
            copy = tmp_path / "copy"
            shutil.copytree(moved, copy)
            c = PretrainModule.from_checkpoint(copy / ckpt.relative_to(runs))
            assert c.text.name_or_path.startswith(str(copy)), c.text.name_or_path
            _same(_outputs(c, x), ref)


def test_model_card_lists_the_runs_scores_after_evaluation(tmp_path, small_synthetic):
    summary = run(compose(smoke_overrides("random_init", tmp_path, tasks="[synth_ptbxl_super]")))
    export = Path(summary["run_dir"]) / "model"
    cells = json.loads((export / "config.json").read_text())["card"]["leaderboard"]
    task_dir = tmp_path / "results" / "synthetic" / "random_init" / "synth_ptbxl_super"
    probe = json.loads((task_dir / "linear_probe-100-seed0.json").read_text())
    paper = json.loads((task_dir / "linear_probe_paper-100-seed0.json").read_text())
    # zero-shot is "not applicable" for random init: only the two probe cells are scores
    assert sorted(cells, key=lambda c: c["mode"]) == [
        {
            "suite": "synthetic",
            "task": "synth_ptbxl_super",
            "mode": "linear_probe-100%",
            "macro_auroc": probe["scores"]["macro_auroc"],
        },
        {
            "suite": "synthetic",
            "task": "synth_ptbxl_super",
            "mode": "linear_probe_paper-100%",
            "macro_auroc": paper["scores"]["macro_auroc"],
        },
    ]
    assert (
        f"| synthetic | synth_ptbxl_super | linear_probe-100% | {100 * probe['scores']['macro_auroc']:.1f} |"
        in (export / "README.md").read_text()
    )
