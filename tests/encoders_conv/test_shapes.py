"""Every encoder of this folder: registry name, preset conventions, tiny forward shapes, input checks."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from ecg_data.registry import UnknownNameError
from ecg_encoders.base import ECGEncoder, EncoderOutput
from ecg_encoders.registry import build_ecg_encoder

MODULES = {
    "resnet18_1d": "ecg_encoders.ecg.resnet1d",
    "vit1d": "ecg_encoders.ecg.vit1d",
    "convnextv2_1d": "ecg_encoders.ecg.convnextv2_1d",
    "heartlang": "ecg_encoders.ecg.heartlang",
}
# expected (tokens N, width) of the tiny presets at their native input (500 Hz x 5000 / 100 Hz x 1000)
EXPECTED = {"resnet18_1d": (313, 32), "vit1d": (100, 32), "convnextv2_1d": (156, 64), "heartlang": (256, 32)}


def _input(name: str, length: int, spiky) -> torch.Tensor:
    """Random signals; HeartLang gets spiky ECGs so its tokenizer finds beats (two different rhythms)."""
    if name == "heartlang":
        return torch.from_numpy(spiky([np.arange(50, length, 90), np.arange(30, length, 70)], length))
    return torch.randn(2, 12, length)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_declares_presets(name: str) -> None:
    mod = importlib.import_module(MODULES[name])
    assert "tiny" in mod.PRESETS
    assert mod.PAPER_PRESETS and set(mod.PAPER_PRESETS) <= set(mod.PRESETS)
    assert "tiny" not in mod.PAPER_PRESETS


@pytest.mark.parametrize("name", sorted(MODULES))
def test_tiny_forward_shapes(name: str, spiky) -> None:
    torch.manual_seed(0)
    enc = build_ecg_encoder(name, "tiny").eval()
    assert isinstance(enc, ECGEncoder)
    x = _input(name, enc.length, spiky)
    with torch.no_grad():
        out = enc(x)
    assert isinstance(out, EncoderOutput)
    n, d = EXPECTED[name]
    assert out.tokens.shape == (2, n, d) and d == enc.width
    assert out.pooled.shape == (2, enc.pooled_dim)
    assert torch.isfinite(out.tokens).all() and torch.isfinite(out.pooled).all()
    # records differ -> pooled embeddings differ (the encoder is not constant)
    assert not torch.allclose(out.pooled[0], out.pooled[1])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_backward_reaches_parameters(name: str, spiky) -> None:
    enc = build_ecg_encoder(name, "tiny", length=1000)
    out = enc(_input(name, 1000, spiky))
    (out.pooled.square().mean() + out.tokens.mean()).backward()
    grads = [p.grad for p in enc.parameters() if p.requires_grad]
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) > len(grads) // 2


@pytest.mark.parametrize("name", sorted(MODULES))
def test_wrong_input_shape_is_a_clear_error(name: str) -> None:
    enc = build_ecg_encoder(name, "tiny")
    with pytest.raises(ValueError, match=r"expects"):
        enc(torch.randn(1, 11, enc.length))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_unknown_preset_lists_valid_ones(name: str) -> None:
    with pytest.raises(UnknownNameError, match="tiny"):
        build_ecg_encoder(name, "no-such-preset")


def test_declared_rates_and_lengths() -> None:
    for name in ("resnet18_1d", "vit1d", "convnextv2_1d"):
        enc = build_ecg_encoder(name, "tiny")
        assert (enc.fs, enc.length) == (500, 5000)
    hl = build_ecg_encoder("heartlang", "tiny")
    assert (hl.fs, hl.length) == (100, 1000)


def test_overrides_change_length() -> None:
    enc = build_ecg_encoder("resnet18_1d", "tiny", length=1000)
    out = enc(torch.randn(1, 12, 1000))
    assert out.tokens.shape[1] == 63  # ceil(1000 / 2**4)
