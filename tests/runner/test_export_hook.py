"""The weights-only export at the end of each method stage (issue 11, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from benchmarks.pipeline.export_hook import load_stage_weights, on_stage_complete


def test_checkpoint_stage_gets_a_safetensors_export_that_loads_without_pickle(tmp_path: Path, monkeypatch) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    ckpt = {
        "state_dict": net.state_dict(),
        "optimizer_states": [{"state": {0: torch.ones(3)}}],
        "ecg_text_align_class": "pkg.mod:Cls",
        "global_step": 7,
    }
    path = tmp_path / "stage" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save(ckpt, path)
    out = on_stage_complete(method="m", stage="s", stage_dir=tmp_path / "stage", output=path)
    assert out == tmp_path / "stage" / "export"
    meta = json.loads((out / "export.json").read_text())
    assert meta["class"] == "pkg.mod:Cls" and meta["global_step"] == 7 and meta["tensors"] == 4

    def no_pickle(*a, **k):  # loading the export must never unpickle
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", no_pickle)
    got = load_stage_weights(out)
    assert set(got) == set(net.state_dict())
    for k, v in net.state_dict().items():
        assert torch.equal(got[k], v)
    assert not (tmp_path / "stage" / "export.tmp").exists()


def test_model_directory_outputs_are_left_alone(tmp_path: Path) -> None:
    d = tmp_path / "text_lm"
    d.mkdir()
    assert on_stage_complete(method="m", stage="lm", stage_dir=tmp_path, output=d) is None
    assert not (tmp_path / "export").exists()


def test_checkpoint_without_a_state_dict_is_a_logged_skip(tmp_path: Path, caplog) -> None:
    path = tmp_path / "last.ckpt"
    torch.save({"toy": 1}, path)  # e.g. a user's method writing its own checkpoint format
    with caplog.at_level("WARNING", logger="ecgbench"):
        assert on_stage_complete(method="toy", stage="main", stage_dir=tmp_path, output=path) is None
    assert "no Lightning state_dict" in caplog.text and not (tmp_path / "export").exists()
