"""What the measurement against the original code established (docs/baselines/merl.md "ECG tower",
docs/baselines/heartlang.md "sentence encoder" / "VQ-HBR"), pinned without the authors' code: the manifests hold
the originals' parameter counts (MERL-ICML2024 @38799b7, HeartLang @a08afd8, counted on the original modules built
in a scratch directory), the converted modules have ours, and a converted VQ-HBR assigns beats to the *released*
codebook (no k-means re-initialisation on the first call, as an untrained quantiser would do)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ecg_encoders.ecg.heartlang import BeatTokens
from ecg_encoders.released import convert_released, manifest, random_state

BN_STATS = ("running_mean", "running_var", "num_batches_tracked")
#: counted on the original modules (``sum(p.numel() for p in m.parameters())``)
ORIGINAL = {
    # ECGCLIP(resnet18): ecg_encoder (ResNet18, incl. the unused linear 512 -> 10), downconv, att_pool_head
    "merl_resnet18": {
        "ecg_encoder.": 3_853_962,
        "ecg_encoder.linear.": 5_130,
        "downconv.": 131_328,
        "att_pool_head.": 409_600,
    },
    # ST_ECGFormer 'HeartLang' (modeling_pretrain.py:263-281): backbone + lm_head (8192 codes)
    "heartlang": {"": 44_562_176, "lm_head.": 6_299_648},
    # VQHBR 'vqhbr' (modeling_vqhbr.py:344-378): the EMA codebook is three requires_grad=False Parameters
    "heartlang_vqhbr": {
        "": 25_698_528,
        "quantize.embedding.": 2_105_344,
        "encoder.mask_token": 768,
        "decoder.mask_token": 768,
    },
}
OURS = {"merl_resnet18": 4_389_760, "heartlang": 38_262_528, "heartlang_vqhbr": 23_591_648}


def _count(keys: dict[str, list[int]], prefix: str, buffers: tuple[str, ...] = ()) -> int:
    return sum(torch.Size(s).numel() for k, s in keys.items() if k.startswith(prefix) and not k.endswith(buffers))


@pytest.mark.parametrize("fmt", ["merl_resnet18", "heartlang", "heartlang_vqhbr"])
def test_manifest_counts_are_the_originals_and_the_converted_module_has_ours(fmt):
    keys = manifest(fmt)["keys"]
    buffers = BN_STATS + ("quantize.cluster_size", "quantize.embedding.initted")  # buffers, not parameters
    for prefix, n in ORIGINAL[fmt].items():
        assert _count(keys, prefix, buffers) == n, prefix
    rel = convert_released(random_state(keys))
    assert sum(p.numel() for p in rel.model.parameters()) == OURS[fmt]
    o = ORIGINAL[fmt]
    if fmt == "merl_resnet18":  # the unused 10-class head is the only difference
        assert OURS[fmt] == o["ecg_encoder."] - o["ecg_encoder.linear."] + o["downconv."] + o["att_pool_head."]
    elif fmt == "heartlang":  # the masked-beat head is ignored (pretraining only)
        assert OURS[fmt] == o[""] - o["lm_head."]
    else:  # 23,593,184 trainable in the original, less the two never-used [MASK] vectors
        assert o[""] - o["quantize.embedding."] == 23_593_184
        assert OURS[fmt] == 23_593_184 - o["encoder.mask_token"] - o["decoder.mask_token"]


def test_converted_vqhbr_assigns_beats_to_the_released_codebook():
    keys = manifest("heartlang_vqhbr")["keys"]
    state = random_state(keys)
    g = torch.Generator().manual_seed(0)
    code = F.normalize(torch.randn(8192, 128, generator=g), dim=-1)  # norm_ema_inplace keeps the rows unit-norm
    state["quantize.embedding.weight"] = code
    for i in (0, 2):  # spread the features over many codes (random layers at init give near-constant features)
        state[f"encode_task_layer.{i}.weight"] = 0.05 * torch.randn(keys[f"encode_task_layer.{i}.weight"], generator=g)
    vq = convert_released(state).model.eval()
    assert bool(vq.quantizer.initted)
    n_real = torch.tensor([100, 256])
    pad = torch.arange(256)[None] >= n_real[:, None]
    beats = torch.randn(2, 256, 96, generator=g).masked_fill(pad[..., None], 0.0)
    lead = torch.randint(1, 13, (2, 256), generator=g).masked_fill(pad, 0)
    time = torch.randint(1, 11, (2, 256), generator=g).masked_fill(pad, 0)
    tokens = BeatTokens(beats, lead, time, pad, n_real)
    ids = vq.codebook_ids(tokens)
    out = vq(tokens)  # eval-mode forward: no codebook update
    torch.testing.assert_close(vq.quantizer.codebook, code, rtol=0, atol=0)  # still the released one
    with torch.no_grad():
        feats = vq.encoder(beats, lead, time, padding_mask=pad)[:, 1:].masked_fill(pad[..., None], 0.0)
        z = F.normalize(vq.encode_task_layer(feats), dim=-1)
    expected = (z @ code.t()).argmax(-1)  # unit codes: nearest in squared distance (norm_ema_quantizer.py:149-153)
    assert torch.equal(ids[~pad], expected[~pad]) and (ids[pad] == -100).all()
    assert torch.equal(out.ids[~pad], expected[~pad])
    assert expected[~pad].unique().numel() > 50  # many codes in play, not one


def test_vqhbr_all_zero_real_beat_gets_the_code_of_a_zeroed_feature_as_in_the_original():
    g = torch.Generator().manual_seed(1)
    state = random_state(manifest("heartlang_vqhbr")["keys"])
    state["quantize.embedding.weight"] = F.normalize(torch.randn(8192, 128, generator=g), dim=-1)
    for i in (0, 2):
        state[f"encode_task_layer.{i}.weight"] = 0.05 * torch.randn(
            state[f"encode_task_layer.{i}.weight"].shape, generator=g
        )
    vq = convert_released(state).model.eval()
    pad = torch.arange(256)[None] >= 120
    beats = torch.randn(1, 256, 96, generator=g).masked_fill(pad[..., None], 0.0)
    lead = (torch.arange(256)[None] // 10 + 1).masked_fill(pad, 0)  # 12 leads x 10 beats, then padding
    time = (torch.arange(256)[None] % 10 + 1).masked_fill(pad, 0)
    beats[lead == 12] = 0.0  # lead V6 zero-filled: real tokens (lead id 12) whose beats are all zero
    ids = vq.codebook_ids(BeatTokens(beats, lead, time, pad, torch.tensor([10])), ignore_index=None)
    with torch.no_grad():  # the original: feature 0 -> encode_task_layer(0) -> nearest code
        zero_code = (F.normalize(vq.encode_task_layer(torch.zeros(768)), dim=-1) @ vq.quantizer.codebook.t()).argmax()
    assert (ids[pad] == zero_code).all()  # padding: same in both
    assert (ids[lead == 12] == zero_code).all()


def test_released_heartlang_weights_get_the_per_dataset_downstream_inputs():
    """Released HeartLang weights are scored with the same per-dataset inputs as the trained baseline (one table)."""
    from baselines.heartlang.model import DOWNSTREAM_PRESETS
    from ecg_data.preprocess import HEARTLANG_DOWNSTREAM
    from ecg_eval.protocol import preset_for
    from ecg_text_align.released import ReleasedEncoder

    enc = ReleasedEncoder(convert_released(random_state(manifest("heartlang")["keys"])))
    assert dict(enc.input_spec.task_presets) == HEARTLANG_DOWNSTREAM == DOWNSTREAM_PRESETS
    task = type("T", (), {"name": "cpsc2018", "dataset": "cpsc2018"})()
    assert preset_for(enc, task) == "heartlang-cpsc2018"
    other = type("T", (), {"name": "g12ec", "dataset": "g12ec"})()
    assert preset_for(enc, other) == "heartlang"
