"""Checkpoints and exports written before the one ``_target_`` convention still load (issue 16).

0.1 stored component specs as ``{"target": "pkg.mod:attr", ...}`` or ECG-registry ``{"name": "resnet18_1d", ...}``;
``ecg_text_align.components`` converts them where old data is read, and ``build`` accepts only ``_target_``.
"""

from __future__ import annotations

import json

import pytest
import torch

from baselines.merl.model import MERL
from ecg_text_align.components import build, upgrade_spec, upgrade_specs
from ecg_text_align.module import CLASS_KEY, PretrainModule

OLD_ECG = {"name": "resnet18_1d", "preset": "tiny"}
OLD_TEXT = {
    "target": "ecg_encoders.text.presets:build_text_preset",
    "name": "offline_default",
    "causal": False,
    "add_trailing_cls": False,
    "pooling": "pooler",
    "freeze_layers": 1,
}


def test_old_specs_convert_to_target() -> None:
    assert upgrade_spec(OLD_ECG) == {"_target_": "ecg_encoders.ecg.resnet1d.build_resnet18_1d", "preset": "tiny"}
    assert upgrade_spec({"name": "wav2vec2"}) == {
        "_target_": "ecg_encoders.ecg.wav2vec2.build_wav2vec2",
        "preset": "tiny",
    }  # build_ecg_encoder's default preset
    assert upgrade_spec(OLD_TEXT)["_target_"] == "ecg_encoders.text.presets.build_text_preset"
    assert upgrade_spec(OLD_TEXT)["name"] == "offline_default"  # the preset name stays an argument
    new = {"_target_": "a.b.c", "name": "x"}
    assert upgrade_spec(new) == new
    hp = upgrade_specs(
        {
            "ecg_encoder": OLD_ECG,
            "nested": {"tower": {"target": "m.n:f", "k": 1}},
            "zero_shot": {"task": {"name": "not a spec"}},
            "lr": 1e-3,
        }
    )
    assert hp["ecg_encoder"]["_target_"].endswith("build_resnet18_1d")
    assert hp["nested"]["tower"] == {"_target_": "m.n.f", "k": 1}
    assert hp["zero_shot"] == {"task": {"name": "not a spec"}} and hp["lr"] == 1e-3  # only spec keys convert


def test_build_accepts_only_target() -> None:
    enc = build({"_target_": "ecg_encoders.ecg.resnet1d.build_resnet18_1d", "preset": "tiny"})
    assert enc.pooled_dim > 0
    with pytest.raises(ValueError, match="_target_.*old form"):
        build(OLD_ECG)
    with pytest.raises(ValueError, match="_target_.*old form"):
        build({"target": "ecg_encoders.ecg.resnet1d:build_resnet18_1d"})


def _merl(tiny_bert_dir) -> MERL:
    torch.manual_seed(0)
    return MERL(
        ecg_encoder=upgrade_spec(OLD_ECG),
        text_encoder={**upgrade_spec(OLD_TEXT), "path": str(tiny_bert_dir)},
        proj_hidden=8,
    )


def test_old_checkpoint_loads_and_is_rewritten_in_target_form(tmp_path, tiny_bert_dir) -> None:
    m = _merl(tiny_bert_dir).eval()
    hp = dict(m.hparams)
    hp["ecg_encoder"], hp["text_encoder"] = dict(OLD_ECG), {**OLD_TEXT, "path": str(tiny_bert_dir)}  # as 0.1 wrote
    torch.save(
        {
            "state_dict": m.state_dict(),
            "hyper_parameters": hp,
            CLASS_KEY: f"{type(m).__module__}:{type(m).__qualname__}",  # 0.1/0.2.0's module:attr form
        },
        tmp_path / "old.ckpt",
    )
    loaded = PretrainModule.from_checkpoint(tmp_path / "old.ckpt")
    x = torch.randn(2, 12, 5000)
    torch.testing.assert_close(loaded.encode_ecg(x), m.encode_ecg(x))
    assert loaded.hparams["ecg_encoder"]["_target_"] == "ecg_encoders.ecg.resnet1d.build_resnet18_1d"
    assert "target" not in loaded.hparams["text_encoder"]


def test_old_export_directory_loads(tmp_path, tiny_bert_dir) -> None:
    m = _merl(tiny_bert_dir).eval()
    out = m.save_pretrained(tmp_path / "export")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["class"] == "baselines.merl.model.MERL"  # written: the one dotted form
    cfg["class"] = "baselines.merl.model:MERL"  # read: also the form exports before 0.2.1 wrote
    cfg["init"]["ecg_encoder"] = dict(OLD_ECG)
    cfg["init"]["text_encoder"] = {**cfg["init"]["text_encoder"], "target": OLD_TEXT["target"]}
    del cfg["init"]["text_encoder"]["_target_"]
    (out / "config.json").write_text(json.dumps(cfg))
    loaded = PretrainModule.from_pretrained(out)
    x = torch.randn(2, 12, 5000)
    torch.testing.assert_close(loaded.encode_ecg(x), m.encode_ecg(x))


def test_new_checkpoints_name_their_class_by_dotted_path(tmp_path, tiny_bert_dir) -> None:
    """One dotted-path form written (``pkg.module.Class``), read back by ``ecg_data.registry.locate``."""
    m = _merl(tiny_bert_dir).eval()
    ckpt = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams)}
    m.on_save_checkpoint(ckpt)
    assert ckpt[CLASS_KEY] == "baselines.merl.model.MERL"
    torch.save(ckpt, tmp_path / "new.ckpt")
    assert type(PretrainModule.from_checkpoint(tmp_path / "new.ckpt")) is MERL
