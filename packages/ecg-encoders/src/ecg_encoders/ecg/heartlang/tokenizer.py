"""HeartLang's heartbeat tokenizer: a 12-lead record -> an "ECG sentence" of beat "words".

Source: PKUDigitalHealth/HeartLang, ``QRSTokenizer.py`` (called with fs=100, max_len=256, token_len=96):
R-peaks are found on lead I only (``ecg_signal[0]``); every lead is cut at those same beats into
96-sample windows (see ``beats.beat_windows``); the sentence is lead-major (all beats of lead I, then
lead II, ...), truncated to 256 tokens and zero-padded. Lead ids are ``lead index + 1`` (1..12), time ids
``R-peak sample // fs + 1`` (1-second blocks, 1..10 for 10 s), both 0 on padding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from ecg_encoders.ecg.beats import Peaks, beat_windows, detect_r_peaks

log = logging.getLogger(__name__)


@dataclass
class BeatTokens:
    """One batch of ECG sentences (N = ``max_tokens`` positions)."""

    beats: torch.Tensor  # (B, N, token_len) beat windows, zeros on padding
    lead_ids: torch.Tensor  # (B, N) int64, 1..12, 0 = padding
    time_ids: torch.Tensor  # (B, N) int64, 1.. (1-second blocks), 0 = padding
    padding_mask: torch.Tensor  # (B, N) bool, True = padding (no beat)
    n_beats: torch.Tensor  # (B,) int64 R-peaks detected on the detection lead

    def to(self, device: torch.device | str) -> BeatTokens:
        return BeatTokens(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


class HeartbeatTokenizer:
    """Callable ``(B, L, T) tensor/array at ``fs`` -> BeatTokens``; no learned parameters.

    ``detector``: ``"numpy"`` (vectorised, default) or ``"xqrs"`` (wfdb, as the original, slower).
    ``window``: ``"heartlang"`` (the original's spans) or ``"centred"`` (R-peak always at the centre).
    """

    def __init__(
        self,
        fs: float = 100,
        max_tokens: int = 256,
        token_len: int = 96,
        *,
        leads: Sequence[int] = tuple(range(12)),
        detection_lead: int = 0,
        time_block_s: float = 1.0,
        max_time_id: int = 15,
        detector: str = "numpy",
        window: str = "heartlang",
    ) -> None:
        self.fs, self.max_tokens, self.token_len = fs, max_tokens, token_len
        self.leads = list(leads)
        self.detection_lead = detection_lead  # HeartLang: ecg_signal[0] = lead I
        self.time_block = fs * time_block_s  # HeartLang: assign_time_blocks(interval_length=100) at 100 Hz
        self.max_time_id = max_time_id  # HeartLang's time embedding has 16 rows (0 = padding)
        self.detector, self.window = detector, window

    def peaks(self, x: np.ndarray) -> Peaks:
        return detect_r_peaks(x[:, self.detection_lead], self.fs, method=self.detector)

    def __call__(self, x: torch.Tensor | np.ndarray) -> BeatTokens:
        xt = torch.as_tensor(x)
        if xt.ndim != 3 or xt.shape[1] <= max(self.leads):
            raise ValueError(
                f"HeartbeatTokenizer expects (B, leads, T) with {max(self.leads) + 1}+ leads, got {tuple(xt.shape)}"
            )
        if not xt.is_floating_point():
            xt = xt.float()
        return self.from_peaks(xt, self.peaks(xt.detach().cpu().numpy()))

    def from_peaks(self, x: torch.Tensor, peaks: Peaks) -> BeatTokens:
        """Cut windows at given R-peaks (also lets tests and callers bring their own detector)."""
        bsz, _, t = x.shape
        dev, n_tok, w = x.device, self.max_tokens, self.token_len
        counts = peaks.counts()
        if (counts == 0).any():
            log.warning(
                "HeartbeatTokenizer: %d of %d records have no detected beat; their sentences are all padding",
                int((counts == 0).sum()),
                bsz,
            )
        start, end, offset = beat_windows(peaks, t, w, self.window)
        k = np.arange(w)
        src = start[:, None] + k[None, :] - offset[:, None]  # (Q, w) source sample of each window slot
        valid = (k[None, :] >= offset[:, None]) & (k[None, :] < (offset + end - start)[:, None])
        src = np.clip(src, 0, t - 1)
        lead_idx = torch.as_tensor(self.leads, device=dev)
        rec_t = torch.as_tensor(peaks.record, device=dev)
        windows = x[rec_t[:, None, None], lead_idx[None, :, None], torch.as_tensor(src, device=dev)[:, None, :]]
        windows = windows * torch.as_tensor(valid, device=dev, dtype=x.dtype)[:, None, :]  # (Q, L, w)
        # lead-major positions: lead l, beat j of record b -> l * n_beats[b] + j
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        j = np.arange(peaks.record.size) - first[peaks.record]
        n_leads = len(self.leads)
        pos = np.arange(n_leads)[None, :] * counts[peaks.record][:, None] + j[:, None]  # (Q, L)
        keep = pos < n_tok
        q_idx, l_idx = np.nonzero(keep)
        b_idx, p_idx = peaks.record[q_idx], pos[q_idx, l_idx]
        beats = x.new_zeros(bsz, n_tok, w)
        lead_ids = torch.zeros(bsz, n_tok, dtype=torch.long)
        time_ids = torch.zeros(bsz, n_tok, dtype=torch.long)
        bt, pt = torch.as_tensor(b_idx), torch.as_tensor(p_idx)
        beats[bt.to(dev), pt.to(dev)] = windows[torch.as_tensor(q_idx, device=dev), torch.as_tensor(l_idx, device=dev)]
        lead_ids[bt, pt] = torch.as_tensor(np.asarray(self.leads)[l_idx] + 1, dtype=torch.long)
        tid = np.minimum(peaks.index[q_idx] // self.time_block + 1, self.max_time_id).astype(np.int64)
        time_ids[bt, pt] = torch.as_tensor(tid)
        return BeatTokens(
            beats=beats,
            lead_ids=lead_ids.to(dev),
            time_ids=time_ids.to(dev),
            padding_mask=(lead_ids == 0).to(dev),
            n_beats=torch.as_tensor(counts, device=dev),
        )
