"""``HFTextEncoder``: a BERT-family model from the hub or a local directory, in the modes the methods use.

- bidirectional, pooled by ``cls`` / ``mean`` / ``pooler`` (BERT's tanh pooler, as MERL uses MedCPT);
- causal (MELP, melp_model.py ``init_text_encoder``): the model is loaded with ``is_decoder=True`` so
  every token sees only earlier ones, the sequence is ``[BOS] text [SEP] [CLS]`` and the trailing
  [CLS] state (``pooling="last"``) is the report embedding; the first ``freeze_layers`` layers are frozen;
- token states (``TextOutput.tokens``) for the captioning decoder and sentence embeddings for local
  alignment.

Deviation from MELP: MELP pads every report to 128 tokens and appends [CLS] after the padding; we
place it right after [SEP], so a report's embedding does not depend on how the batch was padded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecg_encoders.text.errors import ModelNotAvailableError
from ecg_encoders.text.sentences import sentence_embeddings, sentence_index_per_token

log = logging.getLogger(__name__)

POOLINGS = ("cls", "mean", "last", "pooler")
_NETWORK_MODULES = ("huggingface_hub", "httpx", "httpcore", "requests", "urllib3")


@dataclass
class TextOutput:
    tokens: torch.Tensor  # (B, L, d) last hidden states, aligned with input_ids
    pooled: torch.Tensor  # (B, d)


def offline_requested() -> bool:
    """True when the environment forbids hub access (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    return any(
        os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def load_tokenizer_and_model(
    name_or_path: str | Path, *, causal: bool, local_files_only: bool | None = None
) -> tuple[Any, Any]:
    """Load from a directory, the local HF cache, or (when allowed) the hub; else ModelNotAvailableError."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    name = str(name_or_path)
    path = Path(name).expanduser()
    is_dir = path.is_dir()
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1  # hub ids are "org/name"
    if not is_dir and looks_like_path:
        raise ModelNotAvailableError(
            name,
            "no such directory",
            hint=f"Pass an existing directory holding config.json, the weights and the tokenizer; {path} does not exist.",
        )
    local_only = bool(local_files_only) or is_dir or offline_requested()
    target = str(path) if is_dir else name
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # unused-MLM-head warnings are expected when loading BertForMaskedLM dirs
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=local_only)
        model = AutoModel.from_pretrained(target, local_files_only=local_only, is_decoder=causal)
    except Exception as err:  # missing files, no network, not cached -> one clean error; anything else propagates
        if not isinstance(err, (OSError, ValueError)) and not type(err).__module__.startswith(_NETWORK_MODULES):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        why = "offline: only local files were searched" if local_only and not is_dir else first
        raise ModelNotAvailableError(name, why) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return tokenizer, model


class HFTextEncoder(nn.Module):
    def __init__(
        self,
        name_or_path: str | Path,
        *,
        causal: bool = False,
        pooling: str = "cls",
        add_trailing_cls: bool = False,
        freeze_layers: int = 0,
        max_length: int = 128,
        local_files_only: bool | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if add_trailing_cls and pooling in ("cls", "pooler"):  # 'mean' averages it in; 'last' reads it
            log.warning(
                "add_trailing_cls=True: pooling=%r reads the first position, not the trailing [CLS] "
                "(use pooling='last')",
                pooling,
            )
        self.name_or_path = str(name_or_path)
        self.causal = causal
        self.pooling = pooling
        self.add_trailing_cls = add_trailing_cls
        self.max_length = max_length
        #: pad every batch to ``max_length`` (as MELP/MERL/ESI's originals do) instead of to its longest report;
        #: off by default -- only ``benchmarks/perf/pretrain_step.py``'s original-style baseline turns it on
        self.pad_to_max_length = False
        self.tokenizer, self.model = load_tokenizer_and_model(
            name_or_path, causal=causal, local_files_only=local_files_only
        )
        if not getattr(self.tokenizer, "is_fast", False):
            raise ModelNotAvailableError(
                self.name_or_path, "no fast (Rust) tokenizer: sentence offsets need tokenizer.json"
            )
        if pooling != "pooler" and getattr(self.model, "pooler", None) is not None:
            # BERT's tanh pooler only serves pooling="pooler"; left in, it is a parameter without a gradient,
            # which DDP with find_unused_parameters=False rejects (as add_pooling_layer=False)
            self.model.pooler = None
        if hasattr(self.model.config, "use_cache"):
            self.model.config.use_cache = False
        tok = self.tokenizer
        if tok.cls_token_id is None or tok.sep_token_id is None or tok.pad_token_id is None:
            raise ModelNotAvailableError(
                self.name_or_path, "tokenizer lacks [CLS]/[SEP]/[PAD] tokens (expected a BERT-style model)"
            )
        if causal:
            # MELP adds a [BOS] token and resizes the embeddings (melp_model.py init_text_encoder)
            if tok.bos_token_id is None:
                tok.add_special_tokens({"bos_token": "[BOS]"})
            if len(tok) > self.model.get_input_embeddings().num_embeddings:
                self.model.resize_token_embeddings(len(tok))
            self.start_id = tok.bos_token_id
        else:
            self.start_id = tok.cls_token_id
        self.width: int = self.model.config.hidden_size
        self.freeze_layers = self.freeze(freeze_layers)

    # --- structure -------------------------------------------------------------------------------
    def layers(self) -> nn.ModuleList:
        enc = getattr(self.model, "encoder", None)
        layers = getattr(enc, "layer", None) if enc is not None else getattr(self.model, "layers", None)
        if layers is None:
            raise TypeError(f"{type(self.model).__name__}: cannot find the transformer layers to freeze")
        return layers

    def freeze(self, k: int) -> int:
        """Freeze the first ``k`` transformer layers (MELP/MERL ``num_freeze_layers``, 6 of 12)."""
        layers = self.layers()
        if not 0 <= k <= len(layers):
            raise ValueError(f"freeze_layers={k} but {self.name_or_path} has {len(layers)} layers")
        for i, layer in enumerate(layers):
            for p in layer.parameters():
                p.requires_grad = i >= k
        return k

    # --- tokenisation ----------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """-> input_ids, attention_mask (B, L) and sentence_ids (sentence index per token, -1 for special/pad)."""
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"tokenize expects strings; items {bad[:5]} are {type(texts[bad[0]]).__name__}")
        tok = self.tokenizer
        tail = [tok.sep_token_id] + ([tok.cls_token_id] if self.add_trailing_cls else [])
        room = self.max_length - 1 - len(tail)
        if room < 1:
            raise ValueError(f"max_length={self.max_length} leaves no room for text")
        enc = tok(list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=room)
        rows_ids, rows_sent = [], []
        for text, ids, offs in zip(texts, enc["input_ids"], enc["offset_mapping"], strict=True):
            sent = sentence_index_per_token(text, offs)
            rows_ids.append([self.start_id, *ids, *tail])
            rows_sent.append([-1, *sent, *([-1] * len(tail))])
        width = self.max_length if self.pad_to_max_length else max(len(r) for r in rows_ids)
        b = len(rows_ids)
        input_ids = torch.full((b, width), tok.pad_token_id, dtype=torch.long)
        attention = torch.zeros((b, width), dtype=torch.long)
        sentence_ids = torch.full((b, width), -1, dtype=torch.long)
        for i, (ids, sent) in enumerate(zip(rows_ids, rows_sent, strict=True)):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
            sentence_ids[i, : len(sent)] = torch.tensor(sent)
        return {"input_ids": input_ids, "attention_mask": attention, "sentence_ids": sentence_ids}

    # --- forward ---------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextOutput:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        tokens = out.last_hidden_state
        if self.pooling == "cls":
            pooled = tokens[:, 0]
        elif self.pooling == "mean":
            m = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * m).sum(1) / m.sum(1).clamp(min=1)
        elif self.pooling == "last":  # right padding: the last attended position
            last = attention_mask.long().sum(1).clamp(min=1) - 1
            pooled = tokens[torch.arange(tokens.shape[0], device=tokens.device), last]
        else:
            if getattr(out, "pooler_output", None) is None:
                raise ValueError(f"{self.name_or_path} has no pooler; use pooling='cls'")
            pooled = out.pooler_output
        return TextOutput(tokens=tokens, pooled=pooled)

    def encode(self, texts: Sequence[str]) -> TextOutput:
        batch = self.tokenize(texts)
        device = next(self.parameters()).device
        return self(batch["input_ids"].to(device), batch["attention_mask"].to(device))

    @staticmethod
    def sentence_embeddings(
        tokens: torch.Tensor, sentence_ids: torch.Tensor, max_sentences: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean of each sentence's token states: (B, S, d) and mask (B, S)."""
        return sentence_embeddings(tokens, sentence_ids, max_sentences)
