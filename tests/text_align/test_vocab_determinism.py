"""The WordPiece vocabulary of the text-LM stage (MELP, MERL, ESI) is the same every time it is trained.

``tokenizers``' trainer numbers the "##c" continuing-character tokens in hash-map order, which differs between
trainings (also within one process), and breaks ties between merges of equal count by those numbers: the same
corpus gave different token sets and ids from run to run (docs/reliability.md). ``train_wordpiece_tokenizer`` fixes
those ids up front. Without that fix the first test below fails on its second training.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

#: many words of equal count: every tie-break of the trainer is exercised
TEXTS = [
    "sinus rhythm. normal ecg.",
    "atrial fibrillation with rapid ventricular response. abnormal ecg.",
    "sinus bradycardia. left bundle branch block. possible inferior infarct, age undetermined.",
    "sinus tachycardia. st elevation in anterior leads. abnormal ecg.",
    "left axis deviation. probable left ventricular hypertrophy, voltage criteria.",
    "paced rhythm. first degree av block. nonspecific t wave abnormality.",
] * 6
TINY = dict(layers=1, width=16, heads=2, ffn_dim=32, max_positions=64)


def test_wordpiece_vocabulary_is_identical_every_time() -> None:
    from ecg_encoders.text.offline import SPECIAL_TOKENS, train_wordpiece_tokenizer

    for vocab_size in (2000, 120):  # all merges (MERL's tiny vocab_size on a small corpus), and a cut-off vocabulary
        toks = [train_wordpiece_tokenizer(TEXTS, vocab_size) for _ in range(3)]
        first = toks[0].backend_tokenizer.to_str()
        assert all(t.backend_tokenizer.to_str() == first for t in toks[1:])  # vocabulary, ids, settings
        assert all(t(TEXTS)["input_ids"] == toks[0](TEXTS)["input_ids"] for t in toks[1:])
    tok = toks[0]
    assert len(tok) == 120
    # only the real special tokens are special; the "##c" tokens handed to the trainer are plain vocabulary
    assert [tok.convert_ids_to_tokens(i) for i in range(len(SPECIAL_TOKENS))] == SPECIAL_TOKENS
    assert sorted(str(t) for t in tok.added_tokens_decoder.values()) == sorted(SPECIAL_TOKENS)
    assert "##a" in tok.get_vocab() and tok.tokenize("sinus") == ["sinus"]
    assert tok("##a")["input_ids"][1:-1] != [tok.convert_tokens_to_ids("##a")]  # text "##a" is not that token


def test_two_text_lm_stages_give_identical_vocab_and_weights(tmp_path: Path) -> None:
    """Two uninterrupted tiny MLM stages (the text_lm stage of MERL's tiny recipe, smaller): the same tokenizer
    files and the same weights, bit for bit."""
    from safetensors.torch import load_file

    from ecg_text_align.lm import train_text_lm

    outs = [
        train_text_lm(
            tmp_path / f"lm{i}",
            TEXTS,
            vocab_size=2000,
            model_config=TINY,
            steps=3,
            batch_size=8,
            warmup_steps=1,
            seed=0,
        )
        for i in range(2)
    ]
    for name in sorted(p.name for p in outs[0].iterdir() if p.name != "model.safetensors"):
        a, b = ((o / name).read_bytes() for o in outs)
        assert a == b, name
    wa, wb = (load_file(str(o / "model.safetensors")) for o in outs)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    prov = [json.loads((o / "ecglang_text_model.json").read_text()) for o in outs]
    assert prov[0]["final_mlm_loss"] == prov[1]["final_mlm_loss"]


def test_vocabulary_does_not_depend_on_the_order_of_the_texts() -> None:
    """The ids follow from the corpus, not from the order the trainer happens to visit words in."""
    from ecg_encoders.text.offline import train_wordpiece_tokenizer

    a = train_wordpiece_tokenizer(TEXTS, 2000).get_vocab()
    b = train_wordpiece_tokenizer(list(reversed(TEXTS)), 2000).get_vocab()
    assert a == b
