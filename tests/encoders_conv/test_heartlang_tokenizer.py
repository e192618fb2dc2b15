"""HeartLang heartbeat tokenizer and the R-peak detector on synthetic ECGs with known R-peaks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from ecg_encoders.ecg.beats import Peaks, beat_windows, detect_r_peaks
from ecg_encoders.ecg.heartlang import HeartbeatTokenizer, build_heartlang

W, H = 96, 48


def test_detector_finds_placed_peaks(spiky) -> None:
    placed = [np.array([40, 130, 215, 305, 390, 480, 570, 655, 745, 830, 920]), np.arange(60, 1000, 55)]
    x = spiky(placed, noise=0.02)
    found = detect_r_peaks(x[:, 0], fs=100).per_record()
    for p, f in zip(placed, found):
        assert f.size == p.size
        assert np.abs(f - p).max() <= 1


def test_detector_flat_nan_and_single_record(spiky) -> None:
    x = np.zeros((2, 1000))
    x[1, 100:200] = np.nan
    assert detect_r_peaks(x, fs=100).record.size == 0
    one = spiky([np.array([100, 300, 500])])[0, 0]
    assert detect_r_peaks(one, fs=100).per_record()[0].tolist() == [100, 300, 500]
    with pytest.raises(ValueError, match="unknown R-peak detector"):
        detect_r_peaks(one, fs=100, method="bogus")


@pytest.mark.slow
def test_xqrs_path_runs_like_the_original(spiky) -> None:
    pytest.importorskip("wfdb")
    x = spiky([np.arange(50, 1000, 80)], noise=0.0)[:, 0]
    found = detect_r_peaks(x, fs=100, method="xqrs").per_record()[0]
    assert found.size >= 8  # XQRS learns its thresholds on the first seconds, so it may miss early beats


def test_windows_centred_and_lead_major(spiky) -> None:
    peaks = np.array([100, 190, 280, 370, 460, 550, 640, 730, 820])  # RR 90 < 96: spans are midpoints
    x = spiky([peaks])
    tok = HeartbeatTokenizer()(torch.from_numpy(x))
    n = peaks.size
    assert int(tok.n_beats[0]) == n
    assert tok.lead_ids[0, : 12 * n].tolist() == [lead + 1 for lead in range(12) for _ in range(n)]
    assert tok.time_ids[0, :n].tolist() == (peaks // 100 + 1).tolist()
    assert not tok.padding_mask[0, : 12 * n].any() and tok.padding_mask[0, 12 * n :].all()
    assert (tok.beats[0, 12 * n :] == 0).all() and (tok.lead_ids[0, 12 * n :] == 0).all()
    for lead in (0, 5, 11):
        for j in range(1, n - 1):  # middle beats: [midpoint prev, midpoint next) with the R-peak at 48
            c = peaks[j]
            s, e = (peaks[j - 1] + c) // 2, (c + peaks[j + 1]) // 2
            win = tok.beats[0, lead * n + j].numpy()
            assert int(np.argmax(win)) == H
            np.testing.assert_allclose(win[H - (c - s) : H + (e - c)], x[0, lead, s:e])
            assert (win[: H - (c - s)] == 0).all() and (win[H + (e - c) :] == 0).all()


def test_long_rr_uses_full_centred_window(spiky) -> None:
    peaks = np.array([150, 400, 650, 900])  # RR 250 > 96: window = R +- 48
    x = spiky([peaks])
    tok = HeartbeatTokenizer()(torch.from_numpy(x))
    for j, c in enumerate(peaks[:-1]):
        np.testing.assert_allclose(tok.beats[0, j].numpy(), x[0, 0, c - H : c + H])


def test_cap_at_256_tokens(spiky) -> None:
    peaks = np.arange(20, 1000, 40)  # 25 beats x 12 leads = 300 > 256
    tok = HeartbeatTokenizer()(torch.from_numpy(spiky([peaks])))
    assert tok.beats.shape == (1, 256, W)
    assert not tok.padding_mask.any()
    # lead-major truncation: 10 full leads (250 tokens) and the first 6 beats of lead 11
    assert (tok.lead_ids[0] == 11).sum() == 6 and (tok.lead_ids[0] == 12).sum() == 0


def test_record_without_beats_gives_padding_and_valid_encoding(caplog: pytest.LogCaptureFixture, spiky) -> None:
    x = np.concatenate([spiky([np.arange(50, 1000, 100)]), np.zeros((1, 12, 1000), np.float32)])
    with caplog.at_level(logging.WARNING):
        tok = HeartbeatTokenizer()(torch.from_numpy(x))
    assert "1 of 2 records have no detected beat" in caplog.text
    assert tok.padding_mask[1].all() and int(tok.n_beats[1]) == 0
    for mask_padding in (False, True):
        enc = build_heartlang("tiny", mask_padding=mask_padding).eval()
        out = enc.encode_tokens(tok)
        assert torch.isfinite(out.tokens).all() and torch.isfinite(out.pooled).all()
    mean_enc = build_heartlang("tiny", pooling="mean").eval()
    assert torch.isfinite(mean_enc.encode_tokens(tok).pooled).all()


def _reference_window(c: int, prev: int | None, nxt: int | None, t: int) -> tuple[int, int, int]:
    """Per-beat reading of QRSTokenizer.extract_qrs_segments' rules (loop form, for comparison)."""
    if prev is None:
        start = max(c - H, 0)
        end = (c + nxt) // 2 if nxt is not None else min(start + W, t)
    elif nxt is None:
        start, end = (prev + c) // 2, min(c + H, t)
    else:
        start, end = (prev + c) // 2, (c + nxt) // 2
    start, end = max(start, 0), min(end, t)
    if end - start > W:
        start = max(c - H, 0)
        end = min(start + W, t)
    offset = max(H - (c - start), 0)
    if offset + end - start > W:
        end -= offset + end - start - W
    return start, end, offset


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_windows_match_per_beat_rules(seed: int) -> None:
    rng = np.random.default_rng(seed)
    recs, idxs = [], []
    for b in range(6):
        n = int(rng.integers(1, 20))
        pk = np.sort(rng.choice(np.arange(0, 1000), size=n, replace=False))
        recs.append(np.full(n, b)), idxs.append(pk)
    peaks = Peaks(np.concatenate(recs), np.concatenate(idxs), 6)
    start, end, offset = beat_windows(peaks, 1000)
    q = 0
    for pk in idxs:
        for j, c in enumerate(pk):
            ref = _reference_window(
                int(c), int(pk[j - 1]) if j else None, int(pk[j + 1]) if j + 1 < len(pk) else None, 1000
            )
            assert (int(start[q]), int(end[q]), int(offset[q])) == ref
            assert 0 <= ref[2] and ref[2] + ref[1] - ref[0] <= W
            q += 1


def test_centred_mode_always_puts_r_at_centre(spiky) -> None:
    peaks = np.array([30, 150, 190, 400, 440, 990])  # irregular: the original would left-align some
    x = spiky([peaks], noise=0.0)
    tok = HeartbeatTokenizer(window="centred").from_peaks(torch.from_numpy(x), Peaks(np.zeros(6, np.int64), peaks, 1))
    assert tok.beats[0, :6].argmax(dim=1).tolist() == [H] * 6
    orig = HeartbeatTokenizer().from_peaks(torch.from_numpy(x), Peaks(np.zeros(6, np.int64), peaks, 1))
    assert orig.beats[0, :6].argmax(dim=1).tolist() != [H] * 6  # the documented left-aligned quirk


def test_time_ids_clip_to_embedding_rows(spiky) -> None:
    peaks = np.arange(50, 2000, 100)  # 20 s record: blocks 1..20, embedding has 16 rows
    tok = HeartbeatTokenizer(leads=[0]).from_peaks(
        torch.from_numpy(spiky([peaks], length=2000, leads=1)), Peaks(np.zeros(peaks.size, np.int64), peaks, 1)
    )
    assert int(tok.time_ids.max()) == 15 and int(tok.time_ids[0, 0]) == 1


def test_gradients_flow_through_windows(spiky) -> None:
    x = torch.from_numpy(spiky([np.arange(50, 1000, 90)])).requires_grad_(True)
    tok = HeartbeatTokenizer()(x)
    tok.beats.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
