"""MELP, fast: a checkpoint whose text tower was named by an absolute path loads after the run is moved or
copied, and ``save_pretrained`` / ``from_pretrained`` round-trips it with the text tower inside the export."""

from __future__ import annotations

import json
import shutil

import torch

from ecg_text_align.melp import MELP
from ecg_text_align.module import CLASS_KEY, PretrainModule
from ecg_text_align.portable import relocate


def _melp(text_dir):
    torch.manual_seed(0)
    return MELP(
        ecg_tower={"_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower", "preset": "tiny"},
        text_encoder={
            "_target_": "ecg_encoders.text.presets.build_text_preset",
            "name": "offline_default",
            "path": str(text_dir),
            "freeze_layers": 1,
        },
        shared_dim=32,
        decoder_layers=1,
        decoder_heads=2,
    )


def _save_like_lightning(m, path):
    """What ``from_checkpoint`` reads from a Lightning checkpoint (state dict, hyperparameters, class path)."""
    path.parent.mkdir(parents=True)
    torch.save(
        {
            "state_dict": m.state_dict(),
            "hyper_parameters": dict(m.hparams),
            CLASS_KEY: f"{type(m).__module__}:{type(m).__qualname__}",
        },
        path,
    )


def test_moved_and_copied_melp_run_loads_its_own_text_tower(tmp_path, tiny_bert_dir):
    run = tmp_path / "runs" / "melp" / "abc-seed0"
    shutil.copytree(tiny_bert_dir, run / "text_lm" / "text_model")
    m = _melp(run / "text_lm" / "text_model")
    ckpt = run / "melp" / "checkpoints" / "last.ckpt"
    _save_like_lightning(m, ckpt)
    x = torch.randn(2, 12, 5000)
    ref_ecg, ref_txt = m.encode_ecg(x), m.encode_text(["Sinus rhythm. Normal ECG."])

    moved = tmp_path / "moved"
    shutil.move(str(tmp_path / "runs"), str(moved))
    loaded = PretrainModule.from_checkpoint(moved / "melp" / "abc-seed0" / "melp" / "checkpoints" / "last.ckpt")
    assert loaded.text.name_or_path == str(moved / "melp" / "abc-seed0" / "text_lm" / "text_model")
    torch.testing.assert_close(loaded.encode_ecg(x), ref_ecg, rtol=0, atol=1e-6)
    torch.testing.assert_close(loaded.encode_text(["Sinus rhythm. Normal ECG."]), ref_txt, rtol=0, atol=1e-6)

    copy = tmp_path / "copy"
    shutil.copytree(moved, copy)  # the source still exists: the copy must still read its own files
    c = PretrainModule.from_checkpoint(copy / "melp" / "abc-seed0" / "melp" / "checkpoints" / "last.ckpt")
    assert c.text.name_or_path.startswith(str(copy))


def test_relocate_keeps_existing_paths_and_needs_two_components(tmp_path):
    (tmp_path / "a" / "text_lm" / "text_model").mkdir(parents=True)
    anchor = tmp_path / "a" / "melp" / "last.ckpt"
    assert relocate("/old/place/text_lm/text_model", anchor) == str(tmp_path / "a" / "text_lm" / "text_model")
    assert (
        relocate("/old/place/text_model", tmp_path / "b" / "x.ckpt") == "/old/place/text_model"
    )  # not found: unchanged
    assert relocate("relative/dir", anchor) == "relative/dir"


def test_melp_save_pretrained_round_trip_with_text_tower_inside(tmp_path, tiny_bert_dir):
    m = _melp(tiny_bert_dir)
    out = m.save_pretrained(tmp_path / "export", card={"pretrained_on": ["synth-mimic"], "steps": {"melp": 3}})
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["init"]["text_encoder"]["path"] == "text_model" and cfg["init"]["ecg_tower_ckpt"] is None
    assert (out / "text_model" / "tokenizer.json").is_file() and (out / "text_model" / "config.json").is_file()
    assert cfg["card"]["parameters"]["total"] == sum(p.numel() for p in m.parameters())
    card = (out / "README.md").read_text()
    assert "From Token to Rhythm" in card and "synth-mimic" in card and "melp: 3" in card
    shutil.move(str(out), str(tmp_path / "elsewhere"))
    back = PretrainModule.from_pretrained(tmp_path / "elsewhere")
    x = torch.randn(2, 12, 5000)
    torch.testing.assert_close(back.encode_ecg(x), m.encode_ecg(x), rtol=0, atol=1e-6)
    t = ["Atrial fibrillation. Abnormal ECG."]
    torch.testing.assert_close(back.encode_text(t), m.encode_text(t), rtol=0, atol=1e-6)
    assert back.card.checkpoint_hash and back.text.name_or_path == str(tmp_path / "elsewhere" / "text_model")
