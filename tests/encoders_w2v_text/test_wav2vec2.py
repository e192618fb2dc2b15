"""wav2vec2-style ECG encoder: shapes, presets, fused vs explicit attention, parameter counts."""

from __future__ import annotations

import pytest
import torch

from ecg_encoders.base import ECGEncoder
from ecg_encoders.ecg import wav2vec2
from ecg_encoders.ecg.melp_tower import build_melp_tower
from ecg_encoders.ecg.w2v_pretrain import Wav2Vec2Pretrainer
from ecg_encoders.registry import ECG_ENCODERS, build_ecg_encoder
from ecg_encoders.summary import count_parameters


@pytest.fixture(scope="module")
def tiny() -> wav2vec2.Wav2Vec2Encoder:
    torch.manual_seed(0)
    return build_ecg_encoder("wav2vec2", "tiny").eval()


def test_registry_and_module_conventions() -> None:
    assert ECG_ENCODERS.get("wav2vec2") is wav2vec2.build_wav2vec2
    assert "tiny" in wav2vec2.PRESETS
    assert wav2vec2.PAPER_PRESETS and set(wav2vec2.PAPER_PRESETS) <= set(wav2vec2.PRESETS)


def test_tiny_shapes_and_attributes(tiny: wav2vec2.Wav2Vec2Encoder) -> None:
    x = torch.randn(2, 12, 5000)
    out = tiny(x)
    assert isinstance(tiny, ECGEncoder)
    assert (tiny.fs, tiny.length, tiny.width, tiny.pooled_dim) == (500, 5000, 64, 64)
    # 5000 -> 2500 -> 1250 -> 625 -> 312 with four (kernel 2, stride 2) convs
    assert out.tokens.shape == (2, 312, 64)
    assert out.pooled.shape == (2, 64)
    assert torch.allclose(out.pooled, out.tokens.mean(1))
    assert torch.isfinite(out.tokens).all()


def test_conv_positional_embedding_keeps_length() -> None:
    pos = wav2vec2.ConvPositionalEmbedding(32, kernel=16, groups=4)
    assert pos(torch.randn(2, 37, 32)).shape == (2, 37, 32)


def test_fused_and_explicit_attention_agree(tiny: wav2vec2.Wav2Vec2Encoder) -> None:
    x = torch.randn(2, 12, 5000)
    with torch.no_grad():
        tiny.set_fused_attention(True)
        a = tiny(x).tokens
        tiny.set_fused_attention(False)
        b = tiny(x).tokens
    tiny.set_fused_attention(True)
    assert torch.allclose(a, b, atol=1e-5)


def test_mask_embedding_replaces_masked_steps(tiny: wav2vec2.Wav2Vec2Encoder) -> None:
    x = torch.randn(1, 12, 5000)
    mask = torch.zeros(1, 312, dtype=torch.bool)
    mask[0, 100:110] = True
    with torch.no_grad():
        plain = tiny.extract(x)
        masked = tiny.extract(x, mask)
    assert torch.equal(plain.features, masked.features)  # targets come from the unmasked features
    assert not torch.allclose(plain.tokens, masked.tokens)


def test_bad_input_is_a_clear_error(tiny: wav2vec2.Wav2Vec2Encoder) -> None:
    with pytest.raises(ValueError, match=r"expects \(batch, 12, samples\)"):
        tiny(torch.randn(2, 8, 5000))
    with pytest.raises(TypeError, match="unknown wav2vec2 option"):
        build_ecg_encoder("wav2vec2", "tiny", widht=3)
    with pytest.raises(KeyError, match="valid presets"):
        build_ecg_encoder("wav2vec2", "huge")


def test_backward_and_feature_grad_mult() -> None:
    torch.manual_seed(0)
    enc = build_ecg_encoder(
        "wav2vec2", "tiny", feature_grad_mult=1.0, dropout=0.0, dropout_input=0.0, attention_dropout=0.0
    )
    x = torch.randn(2, 12, 5000)
    enc(x).pooled.sum().backward()
    g1 = enc.feature_extractor.conv_layers[0][0].weight.grad.clone()
    torch.manual_seed(0)
    enc2 = build_ecg_encoder(
        "wav2vec2", "tiny", feature_grad_mult=0.1, dropout=0.0, dropout_input=0.0, attention_dropout=0.0
    )
    enc2(x).pooled.sum().backward()
    g2 = enc2.feature_extractor.conv_layers[0][0].weight.grad
    assert torch.allclose(g2, 0.1 * g1, rtol=1e-4, atol=1e-8)


def test_wav2vec2_paper_parameter_count() -> None:
    """MELP ECG tower (``model_size="small"``), counted by hand from the configuration.

    conv feature extractor (no conv bias; GroupNorm(256, 256) after conv 1):
        12*256*2 = 6,144 + GroupNorm 2*256 = 512 + 3 * (256*256*2 = 131,072) = 393,216  -> 399,872
    LayerNorm(256)                                                             ->     512
    post_extract_proj Linear(256, 768): 256*768 + 768                          -> 197,376
    mask_emb (768)                                                             ->     768
    conv positional embedding Conv1d(768, 768, k=128, groups=16), weight norm over dim 2:
        v = 768 * (768/16) * 128 = 4,718,592; g = 128; bias 768                -> 4,719,488
    encoder input LayerNorm(768)                                               ->   1,536
    per layer: q,k,v,out 4*(768*768 + 768) = 2,362,368; fc1 768*3072 + 3072 = 2,362,368;
        fc2 3072*768 + 768 = 2,360,064; two LayerNorms 2*1,536 = 3,072         -> 7,087,872
    8 layers                                                                   -> 56,702,976
    total                                                                      -> 62,022,528
    """
    conv = 12 * 256 * 2 + 2 * 256 + 3 * (256 * 256 * 2)
    pos = 768 * (768 // 16) * 128 + 128 + 768
    layer = 4 * (768 * 768 + 768) + (768 * 3072 + 3072) + (3072 * 768 + 768) + 2 * 2 * 768
    expected = conv + 2 * 256 + (256 * 768 + 768) + 768 + pos + 2 * 768 + 8 * layer
    assert expected == 62_022_528
    with torch.device("meta"):
        model = build_ecg_encoder("wav2vec2", "melp")
    assert count_parameters(model) == expected


def test_melp_tower_parameter_count_matches_released_65_6m() -> None:
    """MELP's released ECG encoder is ~65.6M parameters with its poolers. Reconciliation:

    backbone 62,022,528 (above)
    + contrast pooler: queries 12*256 = 3,072; MultiheadAttention(256, kdim=vdim=768):
      q 256*256, k 256*768, v 256*768, in-proj bias 768, out 256*256 + 256 = 525,312;
      ln_q 512, ln_k 1,536; ln_contrast 512; proj_contrast 256*256 = 65,536     -> 596,480
    + caption pooler: queries 128*768 = 98,304; MultiheadAttention(768): 4*(768*768 + 768)
      = 2,362,368; ln_q, ln_k 2*1,536; ln_caption 1,536                           -> 2,465,280
    = 65,084,288 for the tower; MELP's ``ECGFMModel`` also keeps the wav2vec2 pretraining modules
    (quantiser: codebook 2*320*128 = 81,920 + weight_proj 256*640 + 640 = 164,480; project_q
    256*256 + 256 = 65,792; final_proj 768*256 + 256 = 196,864 -> 509,056)
    = 65,593,344 ≈ 65.6M (plus one logit_scale scalar in the Lightning module).
    """
    contrast = 12 * 256 + (256 * 256 + 2 * 256 * 768 + 768 + 256 * 256 + 256) + 512 + 1536 + 512 + 256 * 256
    caption = 128 * 768 + 4 * (768 * 768 + 768) + 3 * 1536
    head = 2 * 320 * 128 + (256 * 640 + 640) + (256 * 256 + 256) + (768 * 256 + 256)
    with torch.device("meta"):
        tower = build_melp_tower("melp")
        pre = Wav2Vec2Pretrainer(tower.encoder)
    assert count_parameters(tower) == 62_022_528 + contrast + caption == 65_084_288
    total = count_parameters(tower) + count_parameters(pre) - count_parameters(tower.encoder)
    assert total == 65_084_288 + head == 65_593_344
    assert round(total / 1e6, 1) == 65.6


def test_melp_tower_tiny_shapes() -> None:
    torch.manual_seed(0)
    tower = build_melp_tower("tiny").eval()
    out = tower(torch.randn(2, 12, 5000))
    assert out.beats.shape == (2, 4, 32)
    assert out.pooled.shape == (2, 32)
    assert out.caption_tokens.shape == (2, 8, 64)
    assert out.tokens.shape == (2, 312, 64)
    with torch.no_grad():
        raw = tower.pool(out.tokens, project=False)  # MELP's probe features skip proj_contrast
    assert torch.allclose(raw.beats @ tower.proj_contrast, out.beats, atol=1e-5)
