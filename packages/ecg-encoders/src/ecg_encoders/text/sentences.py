"""Sentence bookkeeping for local (sentence-level) alignment.

Why offsets instead of token ids: MELP splits on the id of '.' in its own vocabulary
(melp_model.py ``aggregate_sentence_emb``); character offsets from a fast tokenizer give the same
split for every vocabulary. A '.' token belongs to the sentence it ends.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def sentence_index_per_token(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Sentence number (0, 1, ...) of each token, from character offsets.

    A '.' ends a sentence when followed by whitespace or the end of the text (so "0.5 mV" stays one
    sentence) and the sentence has content (so "..", ". ." do not create empty sentences).
    """
    n = len(text)
    ends_before = [0] * (n + 1)  # sentence boundaries strictly before each character position
    count, content = 0, False
    for i, ch in enumerate(text):
        ends_before[i] = count
        if ch == "." and content and (i + 1 == n or text[i + 1].isspace()):
            count, content = count + 1, False
        elif not ch.isspace() and ch != ".":
            content = True
    ends_before[n] = count
    raw = [ends_before[min(s, n)] for s, _ in offsets]
    renumber: dict[int, int] = {}
    return [renumber.setdefault(r, len(renumber)) for r in raw]


def sentence_embeddings(
    tokens: torch.Tensor, sentence_ids: torch.Tensor, max_sentences: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean token state per sentence: (B, L, d), (B, L) -> (B, S, d), mask (B, S) True = sentence present.

    Tokens with id -1 (special, padding) are ignored; sentences numbered >= ``max_sentences`` are cut
    (a fixed S keeps batches rectangular; the mask tells the loss which rows are real).
    """
    if tokens.shape[:2] != sentence_ids.shape:
        raise ValueError(f"tokens {tuple(tokens.shape)} and sentence_ids {tuple(sentence_ids.shape)} do not match")
    s = int(sentence_ids.max().clamp(min=0)) + 1 if max_sentences is None else max_sentences
    if s < 1:
        raise ValueError(f"max_sentences must be >= 1, got {s}")
    ids = sentence_ids.long()
    idx = torch.where((ids >= 0) & (ids < s), ids, torch.full_like(ids, s))
    onehot = F.one_hot(idx, s + 1)[..., :s].to(tokens.dtype)  # (B, L, S)
    sums = onehot.transpose(1, 2) @ tokens  # (B, S, d)
    counts = onehot.sum(dim=1)  # (B, S)
    return sums / counts.clamp(min=1).unsqueeze(-1), counts > 0
