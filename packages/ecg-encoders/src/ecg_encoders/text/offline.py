"""The offline default text model: a small BERT whose WordPiece vocabulary is trained on the corpus's
own reports, so the default run needs no download.

``init_text_model_dir`` writes a normal Hugging Face directory (tokenizer + randomly initialised
``BertForMaskedLM``); MELP's cardiology language-model stage (``ecg_text_align``) trains it with MLM
and ``HFTextEncoder(dir)`` / ``build_text_preset("offline_default", path=dir)`` load it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[BOS]"]
PROVENANCE_FILE = "ecglang_text_model.json"


def _clean_texts(texts: Iterable[str | None]) -> list[str]:
    """Reports may be missing (None/empty): they are counted and skipped, never silently."""
    items = list(texts)
    kept = [t for t in items if isinstance(t, str) and t.strip()]
    if not kept:
        raise ValueError(f"no non-empty report among {len(items)} texts: cannot train a vocabulary")
    if len(kept) < len(items):
        import logging

        logging.getLogger(__name__).info("skipped %d empty/missing reports of %d", len(items) - len(kept), len(items))
    return kept


def _continuing_chars(corpus: list[str], tok: Any) -> set[str]:
    """The characters that occur after the first one of a pre-tokenised word (the trainer's "##c" tokens).

    The texts are first cut at ASCII spaces, tabs and newlines (whitespace to the normaliser and the pre-tokeniser
    too, so no word spans a cut); only the distinct pieces go through them, one call each."""
    cut = str.maketrans("\t\n\r", "   ")
    pieces = {p for text in corpus for p in text.translate(cut).split(" ") if p}
    norm, pre = tok.normalizer, tok.pre_tokenizer
    words = {w for p in pieces for w, _ in pre.pre_tokenize_str(norm.normalize_str(p))}
    return {c for w in words for c in w[1:]}


def train_wordpiece_tokenizer(
    texts: Iterable[str | None],
    vocab_size: int,
    out_dir: str | Path | None = None,
    *,
    lowercase: bool = True,
    max_length: int = 128,
) -> Any:
    """Train a BERT-style WordPiece tokenizer; returns a fast HF tokenizer (saved to ``out_dir`` if given)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = _clean_texts(texts)

    def fresh(model: Any) -> Any:
        t = Tokenizer(model)
        t.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
        t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        t.decoder = decoders.WordPiece()
        return t

    tok = fresh(models.WordPiece(unk_token="[UNK]"))
    # Deterministic vocabulary. The trainer (BPE underneath) gives the "##c" continuing-character tokens ids in
    # hash-map order, different in every process, and breaks ties between merges of equal count by those ids: the
    # same corpus gave different token sets and ids run to run (measured: 423 tokens, 12 of them different and
    # 38-76 ids moved, with RAYON_NUM_THREADS=1 too). Handing the trainer those tokens up front, sorted, as extra
    # leading tokens fixes their ids (it reuses a known token's id) and so every tie-break; they are plain
    # vocabulary entries again in the tokenizer built below (only SPECIAL_TOKENS are special).
    cont = sorted(_continuing_chars(corpus, tok), key=ord)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIAL_TOKENS + ["##" + c for c in cont]
    )
    tok.train_from_iterator(corpus, trainer)
    tok = fresh(
        models.WordPiece(tok.get_vocab(with_added_tokens=False), unk_token="[UNK]", continuing_subword_prefix="##")
    )
    tok.add_special_tokens(SPECIAL_TOKENS)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        bos_token="[BOS]",
        model_max_length=max_length,
    )
    if out_dir is not None:
        fast.save_pretrained(str(out_dir))
    return fast


def small_bert_config(
    vocab_size: int,
    *,
    layers: int = 4,
    width: int = 256,
    heads: int = 4,
    ffn_dim: int = 1024,
    max_positions: int = 256,
    dropout: float = 0.1,
    attention_dropout: float | None = None,
) -> Any:
    """A small BERT (4 layers, width 256, 4 heads): trainable on CPU for the default run. ``dropout`` (BERT's
    0.1 on hidden states and attention) set to 0 makes training deterministic (the DDP equivalence test).
    ``attention_dropout`` (default: ``dropout``) alone: on CPU, attention dropout keeps torch's attention on its
    unfused path (the tiny ESI recipe turns it off and keeps the hidden-state dropout)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn_dim,
        max_position_embeddings=max_positions,
        pad_token_id=0,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout if attention_dropout is None else attention_dropout,
    )


def init_text_model_dir(
    texts: Iterable[str | None],
    out_dir: str | Path,
    *,
    vocab_size: int = 4000,
    seed: int = 0,
    overwrite: bool = False,
    **config_kw: Any,
) -> Path:
    """Write tokenizer + randomly initialised ``BertForMaskedLM`` to ``out_dir`` (atomically: temp dir, rename)."""
    import torch
    from transformers import BertForMaskedLM

    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    corpus = _clean_texts(texts)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tokenizer = train_wordpiece_tokenizer(corpus, vocab_size, tmp)
        cfg = small_bert_config(len(tokenizer), **config_kw)
        cfg.pad_token_id = tokenizer.pad_token_id
        torch.manual_seed(seed)
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            BertForMaskedLM(cfg).save_pretrained(str(tmp))
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        corpus_hash = hashlib.sha256("\n".join(corpus).encode("utf-8")).hexdigest()[:16]
        (tmp / PROVENANCE_FILE).write_text(
            json.dumps(
                {
                    "kind": "offline_default",
                    "trained": False,
                    "n_texts": len(corpus),
                    "corpus_sha256_16": corpus_hash,
                    "vocab_size": len(tokenizer),
                    "seed": seed,
                    "config": {
                        k: getattr(cfg, k)
                        for k in (
                            "num_hidden_layers",
                            "hidden_size",
                            "num_attention_heads",
                            "intermediate_size",
                            "max_position_embeddings",
                        )
                    },
                },
                indent=2,
            )
            + "\n"
        )
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out
