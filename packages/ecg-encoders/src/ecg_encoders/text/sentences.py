"""Sentence bookkeeping for local (sentence-level) alignment.

Why offsets instead of token ids: MELP splits on the id of '.' in its own vocabulary
(melp_model.py ``aggregate_sentence_emb``); character offsets from a fast tokenizer give the same
split for every vocabulary. A '.' token belongs to the sentence it ends.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: MELP's sentence end (melp_model.py splits on the '.' token)
MELP_ENDERS = "."
#: ESI's statement ends (a report statement may end in ';', '!' or '?' too, and a line break ends one)
STATEMENT_ENDERS = ".;!?"


def sentence_ends(
    text: str, *, enders: str = MELP_ENDERS, newlines: bool = False, skip_empty: bool = True
) -> list[int]:
    """Character indices that end a sentence: the project's one sentence splitter.

    A character of ``enders`` ends a sentence when followed by whitespace or the end of the text (so
    "0.5 mV" stays one sentence); with ``newlines`` a '\n' ends one too. ``skip_empty``: an end only counts
    when the sentence has content (so "..", ". ." do not create empty sentences)."""
    n = len(text)
    ends: list[int] = []
    content = False
    for i, ch in enumerate(text):
        if (ch in enders and (i + 1 == n or text[i + 1].isspace())) or (newlines and ch == "\n"):
            if content or not skip_empty:
                ends.append(i)
                content = False
        elif not ch.isspace() and ch not in enders:
            content = True
    return ends


def split_sentences(
    text: str | None, *, enders: str = STATEMENT_ENDERS, newlines: bool = True, strip: str = ".;"
) -> list[str]:
    """Text -> sentences, each stripped of whitespace and trailing ``strip`` characters, empties dropped.

    The defaults are ESI's statement split (baselines.esi.knowledge: '.;!?' followed by whitespace, or a line
    break); MELP's token split (``sentence_index_per_token``) uses only '.' and skips empty sentences."""
    text = text or ""
    pieces, start = [], 0
    for e in sentence_ends(text, enders=enders, newlines=newlines, skip_empty=False):
        pieces.append(text[start : e + 1])
        start = e + 1
    pieces.append(text[start:])
    parts = (p.strip().rstrip(strip).strip() for p in pieces)
    return [p for p in parts if p]


def sentence_index_per_token(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Sentence number (0, 1, ...) of each token, from character offsets (sentences: ``sentence_ends``
    with MELP's rule, '.' only, empty sentences skipped). A '.' token belongs to the sentence it ends."""
    n = len(text)
    ends = sentence_ends(text)
    raw = [bisect_left(ends, min(s, n)) for s, _ in offsets]  # sentence ends strictly before the token
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
