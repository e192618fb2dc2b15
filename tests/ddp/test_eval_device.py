"""Evaluation on the device it is given: ``eval.device`` (auto/cpu/cuda[:k]), ``eval.precision`` (32/bf16),
the probe fit on the same device, one progress bar per split. CUDA cases run only where a GPU is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ecg_eval.embeddings import encode_split, resolve_device
from ecg_eval.probe import fit_probe

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


class Conv(nn.Module):
    """A tiny ECG encoder with parameters (so it can be moved), deterministic."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(12, 8, 25, stride=25)

    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        assert x.device == self.conv.weight.device, "batches must arrive on the encoder's device"
        return self.conv(x).mean(-1)


def _signals(n: int = 10) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 12, 500)).astype(np.float32)


def test_auto_is_cpu_without_gpu_and_bad_devices_are_clear_errors() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="expected auto, cpu, cuda"):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda:0")


def test_cpu_encoding_is_unchanged_and_bf16_is_close(capsys) -> None:
    enc, x = Conv(), _signals()
    ref = enc.encode_ecg(torch.from_numpy(x)).detach().numpy()
    got = encode_split(enc, x, len(x), batch_size=4, device="cpu", desc="embed toy/test")
    np.testing.assert_array_equal(got, ref)  # CPU fp32: exactly what it was before
    bf16 = encode_split(enc, x, len(x), batch_size=4, device="cpu", precision="bf16")
    assert bf16.dtype == np.float32 and not np.array_equal(bf16, ref)  # autocast really ran
    np.testing.assert_allclose(bf16, ref, atol=0.05, rtol=0.05)
    assert "embed toy/test" in capsys.readouterr().err  # the per-split tqdm bar
    with pytest.raises(ValueError, match="eval.precision"):
        encode_split(enc, x, len(x), batch_size=4, precision="fp8")


def _probe_data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 5)).astype(np.float32)
    y = (x[:, :2] > 0).astype(np.float32)
    return x[:40], y[:40], x[40:], y[40:]


def test_probe_fit_on_cpu_device_matches_default() -> None:
    a = fit_probe(*_probe_data(), seed=0)
    b = fit_probe(*_probe_data(), seed=0, device="cpu")
    np.testing.assert_array_equal(a.weight, b.weight)
    assert a.weight_decay == b.weight_decay and a.iterations == b.iterations


@CUDA
def test_gpu_encoding_and_probe_match_cpu() -> None:
    x = _signals(33)
    cpu = encode_split(Conv(), x, len(x), batch_size=8, device="cpu")
    enc = Conv()
    gpu = encode_split(enc, x, len(x), batch_size=8, device="cuda")
    assert enc.conv.weight.device.type == "cuda"  # the encoder was moved, the batches followed (pinned)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4, rtol=1e-4)
    a, b = fit_probe(*_probe_data(), seed=0), fit_probe(*_probe_data(), seed=0, device="cuda")
    np.testing.assert_allclose(a.predict_proba(_probe_data()[2]), b.predict_proba(_probe_data()[2]), atol=1e-3)
