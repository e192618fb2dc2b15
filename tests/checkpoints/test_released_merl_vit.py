"""MERL's released ViT-tiny (``merl_vit_tiny``), tested without the weights or the authors' code: random state dicts
in the manifest's layout (names and shapes of the original ``ECGCLIP(vit_tiny)`` @38799b7) are converted into our
``ViT1D`` preset ``merl_vit_tiny`` + ``proj_e``. Outputs against the original itself were measured in a scratch
directory (docs/baselines/merl.md, docs/checkpoints.md)."""

from __future__ import annotations

import pytest
import torch

from ecg_encoders.ecg.vit1d import SelfAttention, build_vit1d
from ecg_encoders.released import ReleasedFormatError, convert_released, detect_format, manifest, random_state
from ecg_encoders.released.merl import MERLViT
from ecg_text_align.released import load_released

#: measured on the original (utils/vit1d.py vit_tiny, utils/utils_builder.py:90-96 proj_e) built in a scratch dir
ORIGINAL_TOWER_PARAMS = 5_473_152
ORIGINAL_PROJ_E_PARAMS = 116_224
ORIGINAL_TOWER_TENSORS = 148


def _keys() -> dict[str, list[int]]:
    return manifest("merl_vit_tiny")["keys"]


def _encoder_keys() -> dict[str, list[int]]:
    return {k[len("ecg_encoder.") :]: v for k, v in _keys().items() if k.startswith("ecg_encoder.")}


def _n(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_original():
    keys = _keys()
    tower = {k: v for k, v in keys.items() if k.startswith("ecg_encoder.")}
    assert len(tower) == ORIGINAL_TOWER_TENSORS
    assert sum(torch.Size(s).numel() for s in tower.values()) == ORIGINAL_TOWER_PARAMS  # the manifest is the original's
    proj = {
        k: v
        for k, v in keys.items()
        if k.startswith("proj_e.") and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }
    assert sum(torch.Size(s).numel() for s in proj.values()) == ORIGINAL_PROJ_E_PARAMS
    assert _n(build_vit1d("merl_vit_tiny")) == ORIGINAL_TOWER_PARAMS
    assert _n(MERLViT(build_vit1d("merl_vit_tiny")).proj_ecg) == ORIGINAL_PROJ_E_PARAMS


def test_whole_model_file_round_trips_into_tower_and_proj_e():
    state = random_state(_keys())
    state.update(
        {
            "lm_model.embeddings.word_embeddings.weight": torch.zeros(4, 8),  # text tower, by pattern
            "proj_t.0.weight": torch.zeros(8, 8),
        }
    )
    assert detect_format(state) == "merl_vit_tiny"
    rel = convert_released(state, source="vit_tiny_ckpt.pth")
    conv = rel.conversion
    assert isinstance(rel.model, MERLViT) and rel.method == "merl" and rel.preset == "merl"
    assert len(conv.consumed) == 162 and set(conv.consumed) | set(conv.ignored) == set(state)
    assert set(conv.ignored) == {
        "linear1.weight",
        "linear2.weight",
        "lm_model.embeddings.word_embeddings.weight",
        "proj_t.0.weight",
    }
    own = rel.model.state_dict()
    assert set(own) == set(conv.state)  # no missing, no unexpected keys
    torch.testing.assert_close(
        own["ecg.blocks.3.attn.qkv.weight"], state["ecg_encoder.block3.attn.fn.to_qkv.weight"], rtol=0, atol=0
    )
    torch.testing.assert_close(
        own["ecg.blocks.11.mlp.3.bias"], state["ecg_encoder.block11.ff.fn.net.3.bias"], rtol=0, atol=0
    )
    torch.testing.assert_close(own["proj_ecg.4.running_var"], state["proj_e.4.running_var"], rtol=0, atol=0)
    rel.model.eval()
    x = torch.randn(2, 12, 5000)
    with torch.no_grad():
        feat = rel.features(rel.model, x)
        torch.testing.assert_close(feat, rel.model.proj_ecg(rel.model.ecg(x).pooled))  # ext_ecg_emb: proj_e(LN(mean))
    assert feat.shape == (2, 256) and torch.isfinite(feat).all()


def test_encoder_only_file_gives_the_tower_and_its_pooled_feature(tmp_path):
    torch.save(random_state(_encoder_keys()), tmp_path / "vit_tiny_encoder.pth")  # MERL saves a bare state dict
    enc = load_released(tmp_path / "vit_tiny_encoder.pth")
    assert enc.card.extra["format"] == "merl_vit_tiny" and enc.card.extra["tensors_ignored"] == []
    assert enc.card.extra["tensors_consumed"] == ORIGINAL_TOWER_TENSORS
    assert enc.card.n_parameters == ORIGINAL_TOWER_PARAMS
    x = torch.randn(2, 12, 5000)
    out = enc.encode_ecg(x)
    assert out.shape == (2, 192)
    with torch.no_grad():
        torch.testing.assert_close(out, enc.model(enc.adapter(x)).pooled)  # LN(mean of tokens): MERL's probe feature


def test_converted_tensors_load_into_the_merl_model_under_the_same_names(tiny_bert_dir):
    from baselines.merl.model import MERL

    rel = convert_released(random_state(_keys()))
    merl = MERL(
        ecg_encoder={"_target_": "ecg_encoders.ecg.vit1d.build_vit1d", "preset": "merl_vit_tiny"},
        text_encoder={
            "_target_": "ecg_encoders.text.presets.build_text_preset",
            "name": "offline_default",
            "path": str(tiny_bert_dir),
        },
    )
    ours = {k: v for k, v in merl.state_dict().items() if k.startswith(("ecg.", "proj_ecg."))}
    assert {k: tuple(v.shape) for k, v in rel.conversion.state.items()} == {k: tuple(v.shape) for k, v in ours.items()}


def test_wrong_shape_unknown_key_missing_key_and_other_sizes_are_refused():
    keys = _keys()
    wrong = random_state(keys)
    wrong["ecg_encoder.block5.ff.fn.net.0.weight"] = torch.zeros(512, 192)
    with pytest.raises(ReleasedFormatError, match=r"wrong\.pth.*shape mismatch.*ecg\.blocks\.5\.mlp\.0\.weight"):
        convert_released(wrong, source="wrong.pth")
    extra = {**random_state(keys), "ecg_encoder.block0.attn.fn.surprise.weight": torch.zeros(3)}
    with pytest.raises(ReleasedFormatError, match=r"extra\.pth.*unexpected key.*surprise"):
        convert_released(extra, source="extra.pth")
    missing = random_state(keys)
    del missing["ecg_encoder.block7.attn.fn.to_out.0.bias"]
    with pytest.raises(ReleasedFormatError, match=r"missing\.pth.*block7\.attn\.fn\.to_out\.0\.bias"):
        convert_released(missing, source="missing.pth")
    small = {k: [384 if d == 192 else d for d in s] for k, s in _encoder_keys().items()}  # vit_small's width
    with pytest.raises(ReleasedFormatError, match=r"width 384.*only vit_tiny"):
        convert_released(random_state(small), source="vit_small_encoder.pth")


def test_attention_splits_qkv_like_the_original():
    """The original chunks ``to_qkv`` into q, k, v, then splits heads ``(h d)``; our fused attention must agree."""
    torch.manual_seed(0)
    attn = SelfAttention(192, heads=3, dim_head=64).eval()
    x = torch.randn(2, 7, 192)
    q, k, v = (t.reshape(2, 7, 3, 64).transpose(1, 2) for t in attn.qkv(x).chunk(3, dim=-1))
    ref = torch.softmax(q @ k.transpose(-1, -2) * 64**-0.5, dim=-1) @ v
    ref = attn.proj(ref.transpose(1, 2).reshape(2, 7, 192))
    with torch.no_grad():
        torch.testing.assert_close(attn(x), ref, atol=1e-5, rtol=0)
