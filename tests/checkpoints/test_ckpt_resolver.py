"""``ckpt=``: a project checkpoint, an exported directory, a released file/directory or ``hf:ORG/NAME`` (from the
local Hugging Face cache when offline); absent or unknown inputs are one clear ``ConfigError``. A released
file is scored end to end and its rows are named ``<method> (released weights)`` with the source on the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from bl_e2e import compose, smoke_overrides

from benchmarks.pipeline import run
from benchmarks.pipeline.checkpoints import classify_ckpt
from benchmarks.pipeline.errors import ConfigError
from ecg_encoders.released import manifest, random_state


def _merl_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_state(manifest("merl_resnet18")["keys"]), path)  # MERL saves a bare state dict
    return path


def _fake_hub_cache(root: Path, repo_id: str, files: dict[str, Path]) -> None:
    """The layout huggingface_hub's cache uses (models--ORG--NAME/refs/main -> snapshots/<commit>/...)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, src in files.items():
        (snap / name).write_bytes(src.read_bytes())


def test_classify_project_export_released_and_errors(tmp_path):
    from baselines.random_init.model import RandomInitEncoder
    from ecg_text_align.pretrained import save_pretrained

    (tmp_path / "last.ckpt").write_bytes(b"x")
    assert classify_ckpt(str(tmp_path / "last.ckpt")).kind == "project"
    export = save_pretrained(RandomInitEncoder(), tmp_path / "export")
    assert classify_ckpt(str(export)).kind == "export"
    src = classify_ckpt(str(_merl_file(tmp_path / "merl" / "resnet18_ckpt.pth")))
    assert (src.kind, src.fmt, src.method) == ("released", "merl_resnet18", "merl")
    assert classify_ckpt(str(tmp_path / "merl")).kind == "released"  # a directory holding the file
    with pytest.raises(ConfigError, match="no such file or directory"):
        classify_ckpt(str(tmp_path / "absent.pt"))
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "foo.pt")
    with pytest.raises(ConfigError, match=r"ckpt=.*foo\.pt.*matches none of the known formats"):
        classify_ckpt(str(tmp_path / "foo.pt"))


def test_hub_id_resolves_from_the_local_cache_offline_or_says_how(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    _fake_hub_cache(tmp_path / "hub", "someorg/merl-resnet18", {"pytorch_model.bin": _merl_file(tmp_path / "w.pth")})
    src = classify_ckpt("hf:someorg/merl-resnet18")
    assert src.kind == "released" and src.fmt == "merl_resnet18" and "snapshots" in str(src.path)
    with pytest.raises(ConfigError) as err:
        classify_ckpt("hf:fuyingw/MELP_Encoder")
    msg = str(err.value)
    assert (
        "fuyingw/MELP_Encoder" in msg
        and "not in the local Hugging Face cache" in msg
        and "huggingface-cli download" in msg
    )
    assert "Traceback" not in msg


def test_export_loads_from_hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    from baselines.random_init.model import RandomInitEncoder
    from ecg_text_align.pretrained import from_pretrained, save_pretrained

    enc = RandomInitEncoder(seed=3)
    export = save_pretrained(enc, tmp_path / "export", card={"method": "random_init"})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    _fake_hub_cache(tmp_path / "hub", "me/random-init", {p.name: p for p in export.iterdir() if p.is_file()})
    back = from_pretrained("hf:me/random-init")
    x = torch.randn(2, 12, 5000)
    torch.testing.assert_close(back.encode_ecg(x), enc.encode_ecg(x), rtol=0, atol=0)


def test_released_weights_scored_end_to_end_with_their_own_row(tmp_path, small_synthetic):
    f = _merl_file(tmp_path / "released" / "resnet18_ckpt.pth")
    overrides = [
        o for o in smoke_overrides("merl", tmp_path, tasks="[synth_ptbxl_super]") if not o.startswith("method.")
    ]
    summary = run(compose([*overrides, f"ckpt={f}", "stages=[zero_shot,linear_probe,publish]"]))
    base = tmp_path / "results" / "synthetic" / "merl (released weights)" / "synth_ptbxl_super"
    zs = json.loads((base / "zero_shot-seed0.json").read_text())
    assert zs["status"] == "not_applicable"  # the released file's text tower is not converted
    probe = json.loads((base / "linear_probe-100-seed0.json").read_text())
    assert probe["status"] == "ok" and probe["method"] == "merl (released weights)"
    card = probe["encoder_card"]
    assert card["name"] == "merl (released weights)" and card["extra"]["format"] == "merl_resnet18"
    assert card["extra"]["weights_source"] == str(f) and card["extra"]["lead_order"][4] == "aVF"
    assert probe["checkpoint_hash"] == summary["checkpoint_hash"]
    assert "merl (released weights)" in (tmp_path / "leaderboard" / "README.md").read_text()
