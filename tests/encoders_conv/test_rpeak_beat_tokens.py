"""MELP's real-heartbeat beat option pools encoder tokens around the project's one R-peak detector."""

from __future__ import annotations

import torch

from ecg_encoders.ecg.beats import rpeak_beat_tokens


def _spikes(offset: float = 0.0) -> torch.Tensor:
    t = torch.arange(5000) / 500.0
    beat = torch.zeros(5000)
    for r in torch.arange(0.4, 10, 0.8):  # 75 bpm, 12 beats in 10 s
        beat += torch.exp(-(((t - r) / 0.01) ** 2))
    torch.manual_seed(0)
    return beat.repeat(2, 12, 1) + offset + 0.01 * torch.randn(2, 12, 5000)


def test_one_token_mean_per_beat() -> None:
    tokens = torch.randn(2, 100, 8)
    out, mask = rpeak_beat_tokens(_spikes(), tokens, fs=500, max_beats=24)
    assert out.shape == (2, 24, 8) and mask.sum(1).tolist() == [12, 12]
    # the first beat (R at sample 200) pools samples [75, 400) -> tokens int(1.5)=1 .. ceil(8)=8
    torch.testing.assert_close(out[0, 0], tokens[0, 1:8].mean(0))


def test_baseline_offset_does_not_hide_the_beats() -> None:
    """The removed ecg_text_align detector lost every beat when lead II did not start near 0 mV (its
    derivative began with a jump from the raw first sample); the batched detector does not."""
    _, mask = rpeak_beat_tokens(_spikes(offset=1.5), torch.randn(2, 100, 8), fs=500, max_beats=24)
    assert mask.sum(1).tolist() == [12, 12]


def test_flat_record_falls_back_to_one_mean_beat() -> None:
    tokens = torch.randn(1, 50, 4)
    out, mask = rpeak_beat_tokens(torch.zeros(1, 12, 5000), tokens, fs=500, max_beats=6)
    assert mask[0].tolist() == [True] + [False] * 5
    torch.testing.assert_close(out[0, 0], tokens[0].mean(0))
