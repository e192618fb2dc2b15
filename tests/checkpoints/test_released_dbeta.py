"""D-BETA's released weights (``dbeta``), tested without the weights or the authors' code: random state dicts in the
manifest's layout (names and shapes of the authors' whole ``DBETA`` @ manhph2211/D-BETA 92e07e7, built with random
weights in a scratch directory) are converted into our ``ecg_encoders.released.dbeta.DBETA``. The outputs against
the authors' modules themselves were measured in that scratch directory (docs/checkpoints.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecg_encoders.released import ReleasedFormatError, convert_released, detect_format, manifest, random_state

#: counted on the authors' modules (``sum(p.numel() for p in m.parameters())``): ECG side (ecg_encoder,
#: class_embedding, multi_modal_ecg_proj, unimodal_ecg_pooler) and text side (flan-t5-base encoder,
#: multi_modal_language_proj, unimodal_language_pooler)
ORIGINAL_ECG_PARAMS = 63_203_712
ORIGINAL_TEXT_PARAMS = 110_809_728
ECG_PREFIXES = ("ecg_encoder.", "class_embedding", "multi_modal_ecg_proj.", "unimodal_ecg_pooler.")
TEXT_PREFIXES = ("language_encoder.", "multi_modal_language_proj.", "unimodal_language_pooler.")
#: every width of the file shrunk, so the fast tests convert the real layout in well under a second
SMALL = {768: 96, 3072: 64, 2048: 64, 32128: 50, 256: 16, 48: 6, 128: 8, 384: 48, 1536: 64}


def _keys() -> dict[str, list[int]]:
    return manifest("dbeta")["keys"]


def _small() -> dict[str, torch.Tensor]:
    return random_state({k: [SMALL.get(d, d) for d in s] for k, s in _keys().items()})


def _count(prefixes: tuple[str, ...]) -> int:
    keys = _keys()
    return sum(
        torch.Size(s).numel()
        for k, s in keys.items()
        if k.startswith(prefixes) and k != "language_encoder.encoder.embed_tokens.weight"
    )  # tied to shared


def test_manifest_is_the_authors_layout():
    info = manifest("dbeta")
    assert info["source"]["repo"] == "manhph2211/D-BETA" and info["n_tensors"] == len(_keys()) == 645
    assert len(info["source"]["commit"]) == 40 and info["source"]["licence"].startswith("CC BY-NC 4.0")
    assert _count(ECG_PREFIXES) == ORIGINAL_ECG_PARAMS and _count(TEXT_PREFIXES) == ORIGINAL_TEXT_PARAMS
    assert _keys()["ecg_encoder.conv_pos.pos_conv.0.weight_v"] == [768, 48, 128]


def test_whole_file_converts_every_tensor_consumed_or_ignored():
    state = _small()
    assert detect_format(state) == "dbeta"  # not "ecgfm", although a fairseq-signals wav2vec2 sits under ecg_encoder.
    rel = convert_released(state, source="sample.pt")
    conv = rel.conversion
    assert rel.method == "d-beta" and rel.preset == "raw500" and rel.fs == 500 and rel.length == 5000
    assert set(conv.consumed) | set(conv.ignored) == set(state) and not set(conv.consumed) & set(conv.ignored)
    assert len(conv.consumed) == 263 and len(conv.ignored) == 382
    assert conv.ignored["language_encoder.encoder.embed_tokens.weight"].startswith("tied")
    assert all(
        k.startswith(
            (
                "multi_modal_ecg_layers",
                "multi_modal_language_layers",
                "multi_modal_ecg_pooler",
                "multi_modal_language_pooler",
                "modality_type_embeddings",
                "mlm_head",
                "mim_head",
                "itm_head",
                "language_encoder.encoder.embed_tokens",
            )
        )
        for k in conv.ignored
    )
    own = rel.model.state_dict()
    torch.testing.assert_close(own["ecg.class_embedding"], state["class_embedding"], rtol=0, atol=0)
    qkv = torch.cat([state[f"ecg_encoder.encoder.layers.5.self_attn.{x}_proj.weight"] for x in "qkv"])
    torch.testing.assert_close(own["ecg.w2v.encoder.layers.5.self_attn.qkv.weight"], qkv, rtol=0, atol=0)
    torch.testing.assert_close(own["ecg.pooler.weight"], state["unimodal_ecg_pooler.dense.weight"], rtol=0, atol=0)
    key = "encoder.block.11.layer.1.DenseReluDense.wi_1.weight"
    torch.testing.assert_close(own[f"text.t5.{key}"], state[f"language_encoder.{key}"], rtol=0, atol=0)
    x = torch.randn(2, 12, 5000)
    with torch.no_grad():
        feat = rel.features(rel.model, x)
        out = rel.model.ecg(x)
        torch.testing.assert_close(feat, torch.tanh(rel.model.ecg.pooler(out.tokens[:, 0])))  # the [CLS] row
        text = rel.model.text(torch.tensor([[3, 7, 11, 1]]))
    assert feat.shape == (2, 96) and out.tokens.shape == (2, 313, 96) and torch.isfinite(feat).all()
    assert text.shape == (1, 96) and torch.isfinite(text).all()


def test_mask_emb_in_the_file_is_ignored_and_the_row_is_named(tmp_path):
    from ecg_text_align.released import load_released

    state = {**_small(), "ecg_encoder.mask_emb": torch.zeros(96)}
    torch.save({"model": state}, tmp_path / "sample.pt")  # fairseq-style container, as the authors' loader reads it
    enc = load_released(tmp_path / "sample.pt")
    assert enc.card.name == "d-beta (released weights)" and enc.card.extra["format"] == "dbeta"
    assert "ecg_encoder.mask_emb" in enc.card.extra["tensors_ignored"]
    assert enc.encode_ecg(torch.randn(2, 12, 5000)).shape == (2, 96)


def test_missing_wrong_and_partial_files_are_refused():
    missing = _small()
    del missing["language_encoder.encoder.block.3.layer.0.SelfAttention.o.weight"]
    with pytest.raises(ReleasedFormatError, match=r"missing\.pt.*block\.3\.layer\.0\.SelfAttention\.o\.weight"):
        convert_released(missing, source="missing.pt")
    wrong = _small()
    wrong["multi_modal_ecg_proj.bias"] = torch.zeros(5)
    with pytest.raises(ReleasedFormatError, match=r"wrong\.pt.*shape mismatch.*ecg\.proj\.bias"):
        convert_released(wrong, source="wrong.pt")
    no_text = {k: v for k, v in _small().items() if not k.startswith("language_encoder.")}
    with pytest.raises(ReleasedFormatError, match=r"ecg_only\.pt.*language_encoder"):
        convert_released(no_text, fmt="dbeta", source="ecg_only.pt")


@pytest.mark.slow
def test_full_size_file_converts_to_the_authors_parameter_counts():
    rel = convert_released(random_state(_keys()), source="sample.pt")
    assert sum(p.numel() for p in rel.model.ecg.parameters()) == ORIGINAL_ECG_PARAMS
    assert sum(p.numel() for p in rel.model.text.parameters()) == ORIGINAL_TEXT_PARAMS
    with torch.no_grad():
        assert rel.features(rel.model, torch.randn(1, 12, 5000)).shape == (1, 768)


def _t5_tokenizer(path):
    """A tiny T5 tokenizer built offline (a Unigram model in the SentencePiece style of flan-t5's, `</s>` appended):
    stands in for google/flan-t5-base's, which the tests never download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    words = ["▁sinus", "▁rhythm", "▁atrial", "▁fibrillation", "▁left", "▁bundle", "▁branch", "▁block", "▁"]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(w, -1.0 - i) for i, w in enumerate(words)]
    vocab += [(c, -20.0) for c in "abcdefghijklmnopqrstuvwxyz"]  # 38 pieces: within the small vocabulary (50)
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = T5TokenizerFast(
        tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", extra_ids=0, model_max_length=512
    )
    fast.save_pretrained(path)
    return path


def test_text_tower_encodes_prompts_with_a_local_tokenizer(tmp_path):
    """With a tokenizer directory the converted file gets encode_text: each prompt alone, tokenised with truncation
    and no padding, T5 encoder -> projection -> tanh(pooler) of the first token (example.ipynb's text path)."""
    from ecg_text_align.released import ReleasedTextEncoder, load_released

    torch.save({"model": _small()}, tmp_path / "sample.pt")
    tok_dir = _t5_tokenizer(tmp_path / "tok")
    plain = load_released(tmp_path / "sample.pt")
    enc = load_released(tmp_path / "sample.pt", text_tokenizer=str(tok_dir))
    assert isinstance(enc, ReleasedTextEncoder) and callable(enc.encode_text)
    assert not hasattr(plain, "encode_text")  # no tokenizer given: ECG only, zero-shot "not applicable"
    assert enc.card.checkpoint_hash.startswith(plain.card.checkpoint_hash + "+tok-")  # a new identity
    assert enc.card.extra["text_tokenizer"]["source"] == str(tok_dir)
    prompts = ["sinus rhythm", "left bundle branch block", "atrial fibrillation"]
    feats = enc.encode_text(prompts)
    assert feats.shape == (3, 96) and feats.dtype == torch.float32 and torch.isfinite(feats).all()
    with torch.no_grad():
        for i, text in enumerate(prompts):
            ids = enc.tokenizer(text, truncation=True, return_tensors="pt")["input_ids"]
            assert ids[0, -1].item() == 1  # </s> appended, as T5's tokenizer does
            t = enc.model.text
            want = torch.tanh(t.pooler(t.proj(t.t5(input_ids=ids)[0])[:, 0]))
            torch.testing.assert_close(feats[i : i + 1], want, rtol=0, atol=1e-6)
    x = torch.randn(2, 12, 5000)
    torch.testing.assert_close(enc.encode_ecg(x), plain.encode_ecg(x), rtol=0, atol=0)  # the ECG side is unchanged
    from ecg_eval.protocol import supports_zero_shot
    from ecg_eval.zeroshot import class_embeddings, zero_shot_scores

    assert supports_zero_shot(enc) and not supports_zero_shot(plain)
    classes = {"NORM": ["sinus rhythm"], "AFIB": ["atrial fibrillation"]}
    scores = zero_shot_scores(enc.encode_ecg(x).numpy(), class_embeddings(enc.encode_text, classes, ["NORM", "AFIB"]))
    assert scores.shape == (2, 2) and np.isfinite(scores).all()  # the harness's cosine over the same space


def test_a_tokenizer_that_is_not_there_names_both_ways(tmp_path):
    from ecg_text_align.released import TextTokenizerError, load_released

    torch.save({"model": _small()}, tmp_path / "sample.pt")
    for missing in (str(tmp_path / "no_such_dir"), "no-such-org/no-such-tokenizer"):
        with pytest.raises(TextTokenizerError) as err:
            load_released(tmp_path / "sample.pt", text_tokenizer=missing)
        msg = str(err.value)
        assert "google/flan-t5-base" in msg and "local directory" in msg and "local Hugging Face cache" in msg
        assert f"text_tokenizer={missing!r}" in msg and "downloaded" in msg


def test_the_runner_passes_text_tokenizer_through(tmp_path):
    """ckpt=<D-BETA file> text_tokenizer=<dir>: encode_text; text_tokenizer unset: ECG only; missing: ConfigError."""
    from benchmarks.pipeline.checkpoints import classify_ckpt, load_external
    from benchmarks.pipeline.errors import ConfigError

    torch.save({"model": _small()}, tmp_path / "sample.pt")
    src = classify_ckpt(str(tmp_path / "sample.pt"))
    assert src.kind == "released" and src.fmt == "dbeta"
    assert callable(load_external(src, text_tokenizer=str(_t5_tokenizer(tmp_path / "tok"))).encode_text)
    assert not hasattr(load_external(src), "encode_text")
    with pytest.raises(ConfigError, match=r"ckpt=.*sample\.pt.*text_tokenizer='/nowhere'.*local directory"):
        load_external(src, text_tokenizer="/nowhere")
