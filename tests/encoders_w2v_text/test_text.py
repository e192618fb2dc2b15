"""Text encoders on a locally built small BERT (no hub access)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ecg_encoders.text import HFTextEncoder, ModelNotAvailableError, build_text_preset
from ecg_encoders.text.offline import init_text_model_dir, small_bert_config, train_wordpiece_tokenizer
from ecg_encoders.text.sentences import sentence_index_per_token, split_sentences

REPORTS = [
    "Sinus rhythm. Normal ECG.",
    "Atrial fibrillation with rapid ventricular response. Left axis deviation. Abnormal ECG.",
    "Sinus bradycardia. Possible inferior infarct, age undetermined.",
    "Sinus tachycardia. Left ventricular hypertrophy with repolarization abnormality.",
    "Sinus rhythm with 1st degree A-V block. Right bundle branch block.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_text_model_dir(
        REPORTS * 2,
        tmp_path_factory.mktemp("text") / "small-bert",
        vocab_size=300,
        layers=3,
        width=32,
        heads=2,
        ffn_dim=64,
        max_positions=64,
    )


def _causal(model_dir: Path, **kw) -> HFTextEncoder:
    torch.manual_seed(0)
    enc = HFTextEncoder(model_dir, causal=True, add_trailing_cls=True, pooling="last", max_length=48, **kw)
    return enc.eval()


def test_model_dir_is_a_loadable_hf_dir(model_dir: Path) -> None:
    assert {"config.json", "tokenizer.json", "model.safetensors", "ecglang_text_model.json"} <= {
        p.name for p in model_dir.iterdir()
    }
    with pytest.raises(FileExistsError):
        init_text_model_dir(REPORTS, model_dir)
    cfg = small_bert_config(1000)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads) == (4, 256, 4)


def test_wordpiece_vocabulary_comes_from_the_reports(tmp_path: Path) -> None:
    tok = train_wordpiece_tokenizer(REPORTS + [None, ""], vocab_size=200, out_dir=tmp_path)
    assert "[BOS]" in tok.get_vocab() and "sinus" in tok.get_vocab()
    assert tok.convert_ids_to_tokens(tok("sinus rhythm")["input_ids"]) == ["[CLS]", "sinus", "rhythm", "[SEP]"]
    with pytest.raises(ValueError, match="no non-empty report"):
        train_wordpiece_tokenizer([None, "  "], vocab_size=50)


@pytest.mark.parametrize("pooling", ["cls", "mean", "pooler"])
def test_bidirectional_shapes(model_dir: Path, pooling: str) -> None:
    enc = HFTextEncoder(model_dir, pooling=pooling, max_length=48).eval()
    batch = enc.tokenize(REPORTS[:3])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["sentence_ids"].shape
    toks = enc.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    assert toks[0] == "[CLS]" and "[SEP]" in toks
    out = enc(batch["input_ids"], batch["attention_mask"])
    assert out.tokens.shape == (3, batch["input_ids"].shape[1], 32)
    assert out.pooled.shape == (3, 32)
    if pooling == "cls":
        assert torch.allclose(out.pooled, out.tokens[:, 0])


def test_causal_sequence_layout(model_dir: Path) -> None:
    enc = _causal(model_dir)
    batch = enc.tokenize(REPORTS[:2])
    toks = enc.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    n = int(batch["attention_mask"][0].sum())
    assert toks[0] == "[BOS]" and toks[n - 2 : n] == ["[SEP]", "[CLS]"]
    assert set(toks[n:]) <= {"[PAD]"}
    out = enc(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(out.pooled[0], out.tokens[0, n - 1])  # pooled = trailing [CLS] state


def test_causal_mask_future_tokens_do_not_change_the_past(model_dir: Path) -> None:
    enc = _causal(model_dir)
    batch = enc.tokenize(["Sinus rhythm. Left axis deviation. Abnormal ECG."])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    t = 4
    changed = ids.clone()
    changed[0, t + 1 : -1] = torch.randint(6, len(enc.tokenizer), (ids.shape[1] - t - 2,))
    with torch.no_grad():
        a = enc(ids, mask).tokens
        b = enc(changed, mask).tokens
    assert torch.allclose(a[0, : t + 1], b[0, : t + 1], atol=1e-5)
    assert not torch.allclose(a[0, t + 1 :], b[0, t + 1 :], atol=1e-4)
    # the same change does reach earlier tokens of the bidirectional model
    bi = HFTextEncoder(model_dir, pooling="cls").eval()
    with torch.no_grad():
        assert not torch.allclose(bi(ids, mask).tokens[0, :t], bi(changed, mask).tokens[0, :t], atol=1e-4)


def test_padding_does_not_change_a_report_embedding(model_dir: Path) -> None:
    enc = _causal(model_dir)
    with torch.no_grad():
        alone = enc.encode(REPORTS[:1]).pooled[0]
        batched = enc.encode([REPORTS[0], REPORTS[1]]).pooled[0]
    assert torch.allclose(alone, batched, atol=1e-5)


def test_frozen_layers_stay_fixed_after_an_optimiser_step(model_dir: Path) -> None:
    enc = _causal(model_dir, freeze_layers=2).train()
    layers = enc.layers()
    assert all(not p.requires_grad for layer in layers[:2] for p in layer.parameters())
    assert all(p.requires_grad for p in layers[2].parameters())
    before = [p.detach().clone() for layer in layers for p in layer.parameters()]
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-2, weight_decay=0.1)
    out = enc.encode(REPORTS[:3])
    (out.pooled.pow(2).sum() + out.tokens.mean()).backward()
    opt.step()
    after = [p.detach() for layer in layers for p in layer.parameters()]
    n_frozen = sum(1 for layer in layers[:2] for _ in layer.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before[:n_frozen], after[:n_frozen]))
    assert any(not torch.equal(a, b) for a, b in zip(before[n_frozen:], after[n_frozen:]))
    with pytest.raises(ValueError, match="has 3 layers"):
        enc.freeze(4)


def test_sentence_ids_and_embeddings(model_dir: Path) -> None:
    enc = _causal(model_dir)
    batch = enc.tokenize(REPORTS[:2])
    sid = batch["sentence_ids"]
    assert int(sid[0].max()) == 1 and int(sid[1].max()) == 2  # 2 and 3 sentences
    assert (sid[batch["attention_mask"] == 0] == -1).all() and (sid[:, 0] == -1).all()
    with torch.no_grad():
        out = enc(batch["input_ids"], batch["attention_mask"])
    emb, mask = enc.sentence_embeddings(out.tokens, sid, max_sentences=4)
    assert emb.shape == (2, 4, 32)
    assert mask.tolist() == [[True, True, False, False], [True, True, True, False]]
    manual = out.tokens[1][sid[1] == 2].mean(0)
    assert torch.allclose(emb[1, 2], manual, atol=1e-6)
    assert torch.all(emb[0, 2:] == 0)
    emb2, _ = enc.sentence_embeddings(out.tokens, sid, max_sentences=1)  # truncation keeps the first
    assert torch.allclose(emb2[:, 0], emb[:, 0])


def test_sentence_index_per_token_counts_non_empty_sentences() -> None:
    text = "A b.. C."
    offsets = [(0, 1), (2, 3), (3, 4), (4, 5), (6, 7), (7, 8)]
    assert sentence_index_per_token(text, offsets) == [0, 0, 0, 0, 1, 1]  # both dots end sentence 0
    text = "QT 0.45 s. Normal."  # a decimal point does not end a sentence
    offsets = [(0, 2), (3, 4), (4, 5), (5, 7), (8, 9), (9, 10), (11, 17), (17, 18)]
    assert sentence_index_per_token(text, offsets) == [0, 0, 0, 0, 0, 0, 1, 1]


def test_statement_split() -> None:
    """ESI's statement split (moved from tests/baselines/test_knowledge.py with the splitter)."""
    assert split_sentences("Sinus rhythm. Left bundle branch block.  Abnormal ECG.") == [
        "Sinus rhythm",
        "Left bundle branch block",
        "Abnormal ECG",
    ]
    assert split_sentences("") == [] and split_sentences(None) == []


def test_one_splitter_keeps_each_callers_rule() -> None:
    """ESI's statements: '.;!?' + whitespace or a line break, trailing '.;' stripped; MELP's tokens: '.' only,
    empty sentences skipped. The removed regex of baselines.esi.knowledge is the reference for the first."""
    import re

    old = re.compile(r"(?<=[.;!?])\s+|\n+")
    texts = [
        "A. . B",
        "QT 0.45 s. Normal.",
        "Rate 70; axis normal! Any? yes",
        "line one\nline two\n\nthree.",
        "A.\nB;",
        "..  ;; x",
        "No end",
        "",
        "e.g. this. And that.\r\nNext",
        "Sinus rhythm.Abnormal ECG.",
    ]
    for t in texts:
        ref = [p for p in (q.strip().rstrip(".;").strip() for q in old.split(t)) if p]
        assert split_sentences(t) == ref, t
    # the same text, MELP's rule: ';' and line breaks do not end a sentence
    offsets = [(0, 4), (5, 7), (7, 8), (9, 13)]  # "Rate", "70", ";", "axis"
    assert sentence_index_per_token("Rate 70; axis", offsets) == [0, 0, 0, 0]


def test_offline_missing_model_is_a_clean_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    name = "nonexistent-org/never-cached-model"
    with pytest.raises(ModelNotAvailableError) as info:
        HFTextEncoder(name)
    msg = str(info.value)
    assert name in msg and "huggingface-cli download" in msg and "--local-dir" in msg
    assert "Traceback" not in msg
    assert info.value.__cause__ is None  # no chained traceback for the CLI to print


def test_missing_directory_and_offline_default_without_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        HFTextEncoder(tmp_path / "nope" / "model")
    with pytest.raises(ModelNotAvailableError, match="init_text_model_dir"):
        build_text_preset("offline_default")
    with pytest.raises(KeyError, match="valid presets"):
        build_text_preset("gpt")


def test_offline_default_preset_loads_a_local_dir(model_dir: Path) -> None:
    enc = build_text_preset("offline_default", path=model_dir, max_length=32)
    assert enc.causal and enc.add_trailing_cls and enc.pooling == "last" and enc.freeze_layers == 2
    assert enc.encode(REPORTS[:2]).pooled.shape == (2, 32)


def test_build_text_encoder_accepts_presets_and_dirs(model_dir: Path) -> None:
    from ecg_encoders.text import build_text_encoder

    assert build_text_encoder(model_dir, pooling="mean").pooling == "mean"
    assert build_text_encoder("offline_default", path=model_dir).causal
    with pytest.raises(ModelNotAvailableError, match="offline_default"):
        build_text_encoder("offline_default")


def test_registry_names_resolve() -> None:
    from ecg_encoders.registry import TEXT_ENCODERS

    assert TEXT_ENCODERS.get("hf") is HFTextEncoder
    assert TEXT_ENCODERS.get("preset") is build_text_preset


def test_small_bert_attention_dropout_is_set_apart_from_the_hidden_dropout():
    """The tiny ESI recipe turns BERT's attention dropout off (fused attention on CPU) and keeps the hidden one."""
    from ecg_encoders.text.offline import small_bert_config

    both = small_bert_config(100, dropout=0.1)
    assert both.hidden_dropout_prob == 0.1 and both.attention_probs_dropout_prob == 0.1
    apart = small_bert_config(100, dropout=0.1, attention_dropout=0.0)
    assert apart.hidden_dropout_prob == 0.1 and apart.attention_probs_dropout_prob == 0.0
