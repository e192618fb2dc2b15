"""Released-weights converters, tested without the weights: a random state dict in each released layout (built
from the committed manifest of names and shapes) is converted; every tensor must be consumed or ignored with a
reason, shapes are checked, and the forward pass runs. Bad files fail with a message naming the file and key."""

from __future__ import annotations

import json

import pytest
import torch

from ecg_encoders.released import FORMATS, ReleasedFormatError, convert_released, detect_format, manifest, random_state
from ecg_encoders.released.base import MIMIC_LEADS, STANDARD_LEADS, InputAdapter
from ecg_text_align.released import load_released

INPUT = {
    "melp_encoder": (500, 5000),
    "ecgfm": (500, 5000),
    "merl_resnet18": (500, 5000),
    "merl_vit_tiny": (500, 5000),
    "heartlang": (100, 1000),
}
#: tensors each format is known to leave out of the encoder (from the authors' code), by name
IGNORED = {
    "melp_encoder": {
        "logit_scale",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
        "ecg_encoder.quantizer.vars",
        "ecg_encoder.quantizer.weight_proj.weight",
        "ecg_encoder.quantizer.weight_proj.bias",
        "ecg_encoder.project_q.weight",
        "ecg_encoder.project_q.bias",
        "ecg_encoder.final_proj.weight",
        "ecg_encoder.final_proj.bias",
    },
    "ecgfm": {
        "quantizer.vars",
        "quantizer.weight_proj.weight",
        "quantizer.weight_proj.bias",
        "project_q.weight",
        "project_q.bias",
        "final_proj.weight",
        "final_proj.bias",
    },
    "merl_resnet18": {"ecg_encoder.linear.weight", "ecg_encoder.linear.bias", "linear1.weight", "linear2.weight"},
    "merl_vit_tiny": {"linear1.weight", "linear2.weight"},
    "heartlang": {"lm_head.weight", "lm_head.bias"},
    "heartlang_vqhbr": set(),  # filled below: EMA bookkeeping
}


def _spiky(n: int, fs: int, length: int) -> torch.Tensor:
    t = torch.arange(length) / fs
    beat = torch.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.01**2))
    return beat.expand(n, 12, -1) + 0.05 * torch.randn(n, 12, length, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "dbeta"])  # dbeta (174M, CC BY-NC): test_released_dbeta.py
def test_manifest_has_provenance_and_every_key_is_consumed_or_ignored(fmt):
    info = manifest(fmt)
    src = info["source"]
    assert src["repo"] and len(src["commit"]) == 40 and src["files"] and src["licence"] == "MIT"
    state = random_state(info["keys"])
    assert detect_format(state) == fmt
    rel = convert_released(state, source=f"random {fmt}")
    conv = rel.conversion
    assert set(conv.consumed) | set(conv.ignored) == set(state), "every released tensor is accounted for"
    assert not set(conv.consumed) & set(conv.ignored)
    if fmt == "heartlang_vqhbr":
        assert set(conv.ignored) == {
            "quantize.embedding.cluster_size",
            "quantize.embedding.embed_avg",
            "quantize.embedding.initted",
            # never used by VQ-HBR; our tokenizer has none (removed for DDP, issue 11)
            "encoder.mask_token",
            "decoder.mask_token",
        }
    else:
        assert set(conv.ignored) == IGNORED[fmt]
    assert all(why for why in conv.ignored.values())
    own = rel.model.state_dict()
    for k, v in conv.state.items():  # the converted tensors are the ones in the model
        torch.testing.assert_close(own[k].float(), v.float(), rtol=0, atol=0)


@pytest.mark.parametrize("fmt", ["melp_encoder", "ecgfm", "merl_resnet18", "merl_vit_tiny", "heartlang"])
def test_converted_released_model_runs_through_the_encoder_protocol(fmt, tmp_path):
    from safetensors.torch import save_file

    state = random_state(manifest(fmt)["keys"], dtype=torch.bfloat16 if fmt == "melp_encoder" else torch.float32)
    f = tmp_path / ("model.safetensors" if fmt == "melp_encoder" else "checkpoint.pth")
    if f.suffix == ".safetensors":  # MELP_Encoder on the hub: bf16 safetensors
        save_file(state, str(f))
    else:
        torch.save({"model": state, "epoch": 1}, f)
    enc = load_released(tmp_path)  # a directory holding the one weights file, like a hub snapshot
    assert enc.card.name.endswith("(released weights)") and enc.card.extra["format"] == fmt
    assert enc.card.extra["provenance"]["source"]["repo"] and enc.card.checkpoint_hash
    assert not callable(getattr(enc, "encode_text", None))  # ECG only
    fs, length = INPUT[fmt]
    assert (enc.input_spec.fs, enc.input_spec.length) == (fs, length)
    # wav2vec2 is convolutional: 2 s keep the full-size forward cheap (MERL's pooler needs the declared 10 s)
    n = 1000 if fmt in ("melp_encoder", "ecgfm") else length
    out = enc.encode_ecg(_spiky(2, fs, length)[..., :n])
    assert out.ndim == 2 and out.shape[0] == 2 and torch.isfinite(out).all()
    expected_order = STANDARD_LEADS if fmt == "ecgfm" else MIMIC_LEADS
    assert tuple(enc.card.extra["lead_order"]) == expected_order


def test_mimic_lead_adapter_swaps_avl_and_avf_and_zscore():
    x = torch.arange(12.0)[None, :, None].expand(1, 12, 4).clone()
    y = InputAdapter(MIMIC_LEADS)(x)
    assert y[0, :, 0].tolist() == [0, 1, 2, 3, 5, 4, 6, 7, 8, 9, 10, 11]
    z = InputAdapter(STANDARD_LEADS, "zscore_lead")(torch.randn(2, 12, 100) * 3 + 1)
    torch.testing.assert_close(z.mean(-1), torch.zeros(2, 12), atol=1e-5, rtol=0)


def test_merl_cls_token_folds_the_positional_embedding_counted_twice():
    state = random_state(manifest("merl_resnet18")["keys"])
    rel = convert_released(state)
    pos, cls = state["att_pool_head.positional_embedding"], state["att_pool_head.cls_token"]
    torch.testing.assert_close(rel.model.pool.cls_token, cls + pos[:, :1])


def test_merl_encoder_only_file_uses_the_resnet_map(tmp_path):
    keys = {
        k[len("ecg_encoder.") :]: v
        for k, v in manifest("merl_resnet18")["keys"].items()
        if k.startswith("ecg_encoder.")
    }
    torch.save(random_state(keys), tmp_path / "resnet18_encoder.pth")
    enc = load_released(tmp_path / "resnet18_encoder.pth")
    assert enc.encode_ecg(torch.randn(1, 12, 5000)).shape == (1, 512)


def test_unexpected_key_wrong_shape_and_missing_key_name_the_file(tmp_path):
    keys = manifest("merl_resnet18")["keys"]
    bad = {**random_state(keys), "ecg_encoder.layer1.0.surprise.weight": torch.zeros(3)}
    with pytest.raises(ReleasedFormatError, match=r"bad\.pt.*unexpected key.*surprise"):
        torch.save({"model": bad}, tmp_path / "bad.pt")
        load_released(tmp_path / "bad.pt")
    wrong = random_state(keys)
    wrong["ecg_encoder.layer2.1.conv1.weight"] = torch.zeros(7, 128, 3)
    with pytest.raises(ReleasedFormatError, match=r"shape mismatch.*layers\.3\.conv1"):
        convert_released(wrong, source="wrong.pt")
    missing = random_state(manifest("ecgfm")["keys"])
    del missing["encoder.layers.0.self_attn.k_proj.bias"]
    with pytest.raises(ReleasedFormatError, match=r"missing\.pt.*k_proj\.bias"):
        convert_released(missing, source="missing.pt")
    with pytest.raises(ReleasedFormatError, match="matches none of the known formats"):
        convert_released({"foo.weight": torch.zeros(2)}, source="foo.pt")


def test_old_weight_norm_names_are_accepted():
    """Older fairseq-signals (torch.nn.utils.weight_norm) store the positional conv as weight_g / weight_v."""
    state = random_state(manifest("ecgfm")["keys"])
    p = "conv_pos.pos_conv.0."
    state[p + "weight_g"] = state.pop(p + "parametrizations.weight.original0")
    state[p + "weight_v"] = state.pop(p + "parametrizations.weight.original1")
    rel = convert_released(state)
    assert p + "weight_g" in rel.conversion.consumed


class Cfg:  # stands for fairseq's cfg object inside a checkpoint
    pass


def test_pickled_objects_are_refused_without_opt_in(tmp_path, monkeypatch):
    torch.save({"model": random_state(manifest("merl_resnet18")["keys"]), "cfg": Cfg()}, tmp_path / "fairseq.pt")
    with pytest.raises(ReleasedFormatError, match="weights_only=True.*ECGBENCH_ALLOW_PICKLE"):
        load_released(tmp_path / "fairseq.pt")


def test_equivalence_with_fairseq_signals_when_importable():
    """Numerical equivalence against the authors' module (only where fairseq_signals_backbone is installed)."""
    fs = pytest.importorskip("fairseq_signals_backbone.models.wav2vec2.wav2vec2_cmsc")
    cfg = fs.Wav2Vec2CMSCConfig(
        encoder_embed_dim=768,
        encoder_attention_heads=12,
        in_d=12,
        encoder_layers=2,
        encoder_ffn_embed_dim=3072,
        final_dim=256,
    )
    torch.manual_seed(0)
    theirs = fs.Wav2Vec2CMSCModel(cfg).eval()
    rel = convert_released({k: v for k, v in theirs.state_dict().items()})
    x = torch.randn(1, 12, 5000)
    with torch.no_grad():
        ref = theirs(source=x, mask=False, features_only=True)["x"]
        torch.testing.assert_close(rel.model(x).tokens, ref, atol=1e-4, rtol=0)


def test_manifests_are_names_and_shapes_only():
    for fmt in FORMATS:
        info = manifest(fmt)
        assert all(isinstance(k, str) and all(isinstance(d, int) for d in s) for k, s in info["keys"].items())
        assert info["n_tensors"] == len(info["keys"])
        json.dumps(info)  # plain data
