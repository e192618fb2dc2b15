"""The integer-draw CPU dropout (ecg_encoders.cpu_dropout) is torch's dropout with another random stream, and the
channels-last positional conv is the same conv."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ecg_encoders.cpu_dropout import FastCPUDropout, attention, dropout, keep_mask, set_fast_cpu_dropout
from ecg_encoders.ecg.wav2vec2 import build_wav2vec2


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_mask_keeps_one_minus_p(p: float) -> None:
    torch.manual_seed(0)
    n = 400_000
    kept = keep_mask((n,), p).sum().item()
    sd = math.sqrt(n * p * (1 - p))
    assert abs(kept - n * (1 - p)) < 5 * sd  # binomial: 5 standard deviations
    torch.manual_seed(0)
    again = keep_mask((n,), p)
    assert torch.equal(again, keep_mask((n,), p)) is False  # a new draw each call ...
    torch.manual_seed(0)
    assert torch.equal(again, keep_mask((n,), p))  # ... fixed by the global seed


def test_dropout_zeroes_and_scales_with_one_mask_forward_and_backward() -> None:
    x = torch.randn(64, 300, requires_grad=True)
    torch.manual_seed(5)
    y = dropout(x, 0.25)
    torch.manual_seed(5)
    keep = keep_mask(x.shape, 0.25)
    torch.testing.assert_close(y, torch.where(keep, x / 0.75, 0.0), rtol=1e-6, atol=0)
    g = torch.randn_like(x)
    (y * g).sum().backward()
    torch.testing.assert_close(x.grad, torch.where(keep, g / 0.75, 0.0), rtol=1e-6, atol=0)


def test_dropout_is_torchs_where_it_does_not_apply() -> None:
    x = torch.randn(8, 16)
    assert torch.equal(dropout(x, 0.3, training=False), x)
    assert torch.equal(dropout(x, 0.0), x)
    torch.manual_seed(1)
    ref = F.dropout(x, 0.3, True)
    torch.manual_seed(1)
    assert torch.equal(dropout(x, 0.3, fast=False), ref)


def test_attention_equals_the_math_kernel_given_the_mask() -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 17, 8, generator=g) for _ in range(3))
    may = torch.rand(2, 1, 1, 17, generator=g) > 0.2
    torch.manual_seed(9)
    y = attention(q, k, v, attn_mask=may, dropout_p=0.2)
    torch.manual_seed(9)
    keep = keep_mask((2, 3, 17, 17), 0.2)
    att = (q @ k.transpose(-2, -1) / math.sqrt(8)).masked_fill(~may, float("-inf")).softmax(-1)
    torch.testing.assert_close(y, (att * keep / 0.8) @ v, rtol=1e-5, atol=1e-6)
    # no dropout: exactly torch's SDPA
    assert torch.equal(attention(q, k, v, attn_mask=may), F.scaled_dot_product_attention(q, k, v, attn_mask=may))


def test_switching_a_model_swaps_dropouts_and_keeps_state_and_mode() -> None:
    enc = build_wav2vec2("tiny")
    enc.encoder.layers[0].eval()
    keys = list(enc.state_dict())
    n_torch = sum(type(m) is nn.Dropout for m in enc.modules())
    assert n_torch > 0 and set_fast_cpu_dropout(enc, True) == n_torch + len(enc.encoder.layers)
    assert not any(type(m) is nn.Dropout for m in enc.modules())
    assert all(m.fast_cpu_dropout for m in enc.modules() if hasattr(m, "fast_cpu_dropout"))
    assert not enc.encoder.layers[0].dropout.training and enc.encoder.layers[1].dropout.training
    assert list(enc.state_dict()) == keys
    set_fast_cpu_dropout(enc, False)
    assert not any(isinstance(m, FastCPUDropout) for m in enc.modules())
    assert sum(type(m) is nn.Dropout for m in enc.modules()) == n_torch


def test_fast_dropout_tower_is_deterministic_and_the_same_in_eval() -> None:
    torch.manual_seed(0)
    enc = build_wav2vec2("tiny")
    x = torch.randn(2, 12, 5000)
    enc.eval()
    ref = enc(x).tokens
    set_fast_cpu_dropout(enc, True)
    assert torch.equal(enc(x).tokens, ref)  # eval: no dropout either way
    enc.train()
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(enc(x).tokens)
    assert torch.equal(outs[0], outs[1]) and not torch.allclose(outs[0], ref)


@pytest.mark.parametrize("preset", ["tiny", "melp"])
def test_channels_last_positional_conv_is_the_same_conv(preset: str) -> None:
    torch.manual_seed(0)
    pc = build_wav2vec2(preset).pos_conv
    h = torch.randn(2, 312, pc.conv.in_channels, requires_grad=True)
    wp = pc.conv.parametrizations.weight
    weights = [h, pc.conv.bias, wp.original0, wp.original1]
    ref = pc(h)
    ref_grads = torch.autograd.grad(ref.square().sum(), weights)
    pc.channels_last_conv = True
    out = pc(h)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    for a, b in zip(torch.autograd.grad(out.square().sum(), weights), ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())
