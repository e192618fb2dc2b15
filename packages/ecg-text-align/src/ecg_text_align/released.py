"""Released weights (the authors' files) as encoders ecg-eval can score.

``ReleasedEncoder`` wraps an ``ecg_encoders.released.Released``: it applies the released model's own input
conventions (MIMIC lead order, per-lead z-score for ECG-FM) on top of the harness's preset, and its card
says where the weights came from (name ``"<method> (released weights)"``, the file's hash, the source).

A file that holds its text tower but not its tokenizer (D-BETA: flan-t5-base's T5 encoder) gets ``encode_text``
(``ReleasedTextEncoder``, so zero-shot and retrieval run) only when a tokenizer is given: ``text_tokenizer`` =
a local directory holding it, or its hub name (``google/flan-t5-base``) when it is in the local Hugging Face
cache. Nothing is downloaded at run time; without a tokenizer the encoder is ECG-only and its zero-shot cells
are "not applicable".
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecg_encoders.released import Released, convert_released
from ecg_encoders.released.errors import WeightsNotAvailableError
from ecg_eval.protocol import EncoderCard, InputSpec
from ecg_text_align.pretrained import file_hash, resolve_hub_id

RELEASED_SUFFIX = " (released weights)"


class TextTokenizerError(RuntimeError):
    """``text_tokenizer`` cannot be used: the tokenizer is neither a local directory nor in the local Hugging Face
    cache, or the released file has no text tower."""


TOKENIZER_FILES = ("tokenizer.json", "spiece.model")  # a T5 tokenizer's vocabulary: fast (json) or SentencePiece


def _tokenizer_dir(spec: str | Path) -> Path | None:
    """The local directory holding the tokenizer's files: ``spec`` itself, or the cached snapshot of hub name
    ``spec``; None when there is none (no network: ``local_files_only``)."""
    p = Path(str(spec)).expanduser()
    if not p.is_dir():
        try:
            p = resolve_hub_id(str(spec), local_only=True)
        except WeightsNotAvailableError:  # not in the cache, or not a hub name
            return None
    return p if any((p / f).is_file() for f in TOKENIZER_FILES) else None


def load_text_tokenizer(spec: str | Path, *, needed: str, source: str = "") -> Any:
    """A T5 tokenizer (``T5TokenizerFast``, as D-BETA's ``example.ipynb`` loads it) from a local directory or, by hub
    name, from the local Hugging Face cache; never from the network. The files must be there: transformers would
    otherwise build a blank T5 tokenizer (special tokens only) without a word."""
    from transformers import T5TokenizerFast

    where = _tokenizer_dir(spec)
    if where is None:
        raise TextTokenizerError(
            f"{source or 'released weights'}: the text tower needs the tokenizer {needed!r}, which the file does not "
            f"hold, and text_tokenizer={str(spec)!r} is neither a local directory holding it ({' or '.join(TOKENIZER_FILES)}) "
            f"nor a hub name in the local Hugging Face cache (nothing is downloaded at run time). Either put it in the "
            f"cache once (e.g. `huggingface-cli download {needed}`) and pass text_tokenizer={needed}, or pass "
            f"text_tokenizer=<a local directory with its tokenizer files>. Without text_tokenizer the encoder is "
            f"scored ECG-only (zero-shot not applicable)."
        )
    return T5TokenizerFast.from_pretrained(str(where), local_files_only=True)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """16 hex digits of the tokenizer's vocabulary and special tokens: part of the encoder's identity."""
    import hashlib
    import json

    blob = json.dumps(
        [sorted(tokenizer.get_vocab().items()), tokenizer.all_special_tokens, tokenizer.model_max_length],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ReleasedEncoder(nn.Module):
    """Encoder protocol over released weights, ECG side (``ReleasedTextEncoder`` adds the text side)."""

    def __init__(self, released: Released, *, name: str | None = None, checkpoint_hash: str = "", source: str = ""):
        super().__init__()
        self.released = released
        self.model = released.model
        self.adapter = released.adapter()
        self.input_spec = InputSpec(
            preset=released.preset, fs=released.fs, length=released.length, task_presets=released.task_presets
        )
        conv = released.conversion
        self.card = EncoderCard(
            name=name or f"{released.method}{RELEASED_SUFFIX}",
            checkpoint_hash=checkpoint_hash,
            n_parameters=sum(p.numel() for p in self.model.parameters()),
            pretrained_on=tuple(released.pretrained_on),
            preset="released",
            extra={
                "weights_source": source,
                "format": released.fmt,
                "provenance": released.provenance,
                "lead_order": list(released.lead_order),
                "scaling": released.scaling,
                "tensors_consumed": len(conv.consumed),
                "tensors_ignored": sorted(conv.ignored),
            },
        )
        self.eval()

    @torch.no_grad()
    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        self.eval()
        dev = next(self.model.parameters()).device
        return self.released.features(self.model, self.adapter(x.to(dev, torch.float32)))


class ReleasedTextEncoder(ReleasedEncoder):
    """A released model with its text tower and a tokenizer: ``encode_text`` as the authors' zero-shot runs it."""

    def __init__(self, released: Released, tokenizer: Any, *, tokenizer_source: str = "", **kw: Any):
        if released.text is None:
            raise ValueError(f"{released.fmt}: the released file has no text tower; text_tokenizer does not apply")
        super().__init__(released, **kw)
        self.tokenizer = tokenizer
        fp = tokenizer_fingerprint(tokenizer)
        # the tokenizer decides the text features, so it is part of the encoder's identity (a run without it wrote
        # "not applicable" zero-shot cells under the file's hash alone; a run with it must not reuse them)
        self.card = replace(
            self.card,
            checkpoint_hash=f"{self.card.checkpoint_hash}+tok-{fp}",
            extra={**self.card.extra, "text_tokenizer": {"source": tokenizer_source, "fingerprint": fp}},
        )

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """One text at a time, as D-BETA's ``example.ipynb`` (``extract_language_features``): ``tokenizer(text,
        truncation=True)`` (no padding; the tokenizer's ``model_max_length``, 512 for flan-t5-base), the T5
        encoder, the projection, tanh(pooler) of the first token."""
        self.eval()
        dev = next(self.model.parameters()).device
        out = []
        for text in texts:
            enc = self.tokenizer(text, truncation=True, return_tensors="pt")
            out.append(self.released.text(self.model, enc["input_ids"].to(dev), enc["attention_mask"].to(dev)))
        return torch.cat(out).float()


def load_released(
    path: str | Path, fmt: str | None = None, *, name: str | None = None, text_tokenizer: str | Path | None = None
) -> ReleasedEncoder:
    """A released file or directory (e.g. a hub snapshot) -> ``ReleasedEncoder``; with ``text_tokenizer`` (a local
    directory or a hub name in the local cache) and a file that holds its text tower -> ``ReleasedTextEncoder``."""
    from ecg_encoders.released.base import weights_file

    f = weights_file(path)
    rel = convert_released(f, fmt=fmt)
    kw = dict(name=name, checkpoint_hash=file_hash(f), source=str(path))
    if text_tokenizer is None or str(text_tokenizer).strip() == "":
        return ReleasedEncoder(rel, **kw)
    if rel.text is None:
        raise TextTokenizerError(
            f"{path}: the {rel.fmt} file has no text tower; text_tokenizer={text_tokenizer} is for one"
        )
    tok = load_text_tokenizer(text_tokenizer, needed=rel.text_tokenizer or "its tokenizer", source=str(path))
    return ReleasedTextEncoder(rel, tok, tokenizer_source=str(text_tokenizer), **kw)


def load_any(path: str | Path, **_: Any) -> Any:
    """An exported directory (``from_pretrained``) or a released file/directory; for ``method.load``-style use."""
    from ecg_text_align.pretrained import from_pretrained, is_export_dir

    return from_pretrained(path) if is_export_dir(path) else load_released(path)
