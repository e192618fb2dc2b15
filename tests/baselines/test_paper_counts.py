"""Issue 14: parameter counts of every paper preset, pinned against the original code's counts.

The hub text models are not available offline, so the text tower is a BERT-base built from its config (vocabulary
of the real model: MedCPT / heart_bert 30,522, BioLinkBERT-base 28,895) on the ``meta`` device: the counts are
exact and nothing is allocated. Each original count is reconciled term by term with ours; the terms that
exist only in the original are computed from the original's module definitions (file:line in each test).

Two of our parameters may be removed by the unused-parameter work (the BERT pooler where it is not used, the
wav2vec2 ``mask_emb`` outside stage 0); the pins hold with or without them (``_unused``).
"""

from __future__ import annotations

import torch

BERT_LAYERS_768 = 12 * (4 * (768 * 768 + 768) + 2 * 1536 + 768 * 3072 + 3072 + 3072 * 768 + 768)  # 85,054,464
POOLER = 768 * 768 + 768  # 590,592


def _n(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _unused(model: torch.nn.Module) -> int:
    """Parameters another change may remove (BERT pooler, wav2vec2 mask_emb): excluded from the pins."""
    n = 0
    for name, p in model.named_parameters():
        if ".pooler." in name or name.endswith("encoder.mask_emb"):
            n += p.numel()
    return n


def test_melp_paper_count_reconciles_with_the_original(bert_from_config):
    """MELP official 284,074,813 with n_q 12 (main_pretrain.py:162, passed at melp_model.py:340)."""
    from transformers import BertConfig, BertLMHeadModel

    from ecg_encoders.ecg.w2v_pretrain import Wav2Vec2Pretrainer
    from ecg_text_align.melp import MELP

    bert_from_config(30522)
    pooler = {"shared_dim": 256, "caption_dim": 768, "n_queries_caption": 128, "n_queries_contrast": 12, "heads": 8}
    with torch.device("meta"):
        m = MELP(
            ecg_tower={"_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower", "preset": "melp", "pooler": pooler},
            text_encoder={"_target_": "ecg_encoders.text.presets.build_text_preset", "name": "heart_bert"},
        )
        w2v_heads = _n(Wav2Vec2Pretrainer(m.ecg_tower.encoder)) - _n(m.ecg_tower.encoder)
        lm_head_bert = _n(BertLMHeadModel(BertConfig(vocab_size=30523, is_decoder=True)))
    mask_emb = 768
    ours = _n(m) - _unused(m) + mask_emb  # mask_emb is part of the original's encoder in every stage
    assert ours == 282_943_105  # ours without the unused BERT pooler (283,533,697 with it)
    assert w2v_heads == 509_056  # quantiser 246,400 + project_q 65,792 + final_proj 196,864 (kept by MELP's ECGFMModel)
    # the original's text model is AutoModelForCausalLM (melp_model.py:351): BertLMHeadModel = no pooler, plus
    # the MLM head (transform 590,592 + LayerNorm 1,536 + output bias 30,523; decoder weight tied)
    mlm_head = lm_head_bert - (_n(m.text.model) - _unused(m.text))
    assert mlm_head == 622_651
    ecgfm_logit_scale = 1  # ecgfm_model.py:117, unused in stage 2
    assert ours + w2v_heads + mlm_head + ecgfm_logit_scale == 284_074_813


def test_merl_paper_count_reconciles_with_the_original(bert_from_config):
    """MERL official 114,270,858 (ResNet18 + MedCPT + proj_t + linear1/2, utils_builder.py:37-120)."""
    from baselines.merl.model import MERL

    bert_from_config(30522)
    with torch.device("meta"):
        m = MERL(
            ecg_encoder={"_target_": "ecg_encoders.ecg.resnet1d.build_resnet18_1d", "preset": "merl"},
            text_encoder={
                "_target_": "ecg_encoders.text.presets.build_text_preset",
                "name": "medcpt",
                "causal": False,
                "add_trailing_cls": False,
                "pooling": "pooler",
                "freeze_layers": 6,
                "max_length": 256,
            },
        )
    ours = _n(m)  # MERL uses the BERT pooler (pooler_output), so it counts
    assert ours == 114_265_728
    unused_fc = 512 * 10 + 10  # utils/resnet1d.py:64,74: ResNet's classifier Linear(512, num_classes=10), never called
    assert ours + unused_fc == 114_270_858
    assert sum(p.numel() for p in m.parameters() if p.requires_grad) == ours - _n(m.text)  # BERT frozen (no_grad)


def test_esi_paper_count_reconciles_with_the_original(bert_from_config):
    """ESI official 314,436,870 incl. its unused attention pool (main.py:15-56, esi.py:342-413)."""
    from baselines.esi.model import ESI

    bert_from_config(28895)
    with torch.device("meta"):
        m = ESI(
            ecg_encoder={
                "_target_": "ecg_encoders.ecg.convnextv2_1d.build_convnextv2_1d",
                "preset": "base",
                "downsample_norm": "time",
            },
            text_encoder={
                "_target_": "ecg_encoders.text.presets.build_text_preset",
                "name": "biolinkbert",
                "causal": True,
                "add_trailing_cls": True,
                "pooling": "last",
                "freeze_layers": 0,
                "max_length": 500,
            },
        )
    ours = _n(m) - _unused(m) + POOLER  # ESI's AutoModel keeps its pooler (unused by its loss too)
    assert ours == 313_513_217
    assert _n(m.ecg) == 85_558_528 and _n(m.decoder) == 95_560_704 + 768 + 768 * 28896
    head = 1024 * 5 + 5  # convnextv2.py:107 head Linear(1024, num_classes=5 (main.py:107)), unused (return_embedding)
    attn_pool = 768 + 1024 + 768 * 512 + 1024 * 2 * 64 + 512 * 768  # esi.py:373 img_attn_pool, never called
    text_cls_norm = 768  # esi.py:376, never called
    bos = 2 * 768  # ours only: the causal tower's [BOS] row in the embeddings and in the vocabulary projection
    assert ours + head + attn_pool + text_cls_norm - bos == 314_436_870


def test_heartlang_paper_counts_match_the_original():
    """HeartLang: sentence encoder 38,262,528 + MSM head 6,299,648; VQ-HBR 23,593,184 trainable in the original,
    ours 2 x 768 fewer: the encoder's and decoder's [MASK] vectors, which VQ-HBR never uses, are removed (DDP with
    find_unused_parameters=False needs every parameter in the loss; issue 11)."""
    from baselines.heartlang.model import HeartLangMSM, HeartLangVQ

    with torch.device("meta"):
        msm = HeartLangMSM(preset="base", vq_preset="base")
        vq = HeartLangVQ(vq_preset="base")
    assert _n(msm.encoder) == 38_262_528
    assert _n(msm.head) == 6_299_648
    unused_mask_tokens = 2 * 768  # backbone_vqhbr.py mask_token of the encoder and the decoder, never used
    assert sum(p.numel() for p in vq.parameters() if p.requires_grad) + unused_mask_tokens == 23_593_184


def test_random_init_paper_tower_is_melps():
    """random_init_paper probes melp_paper's ECG tower (n_q 12): 65,084,288 parameters."""
    from bl_e2e import compose
    from omegaconf import OmegaConf

    from ecg_text_align.components import build

    cfg = OmegaConf.to_container(compose(["experiment=random_init_paper"]), resolve=True)
    melp = {
        s["name"]: s
        for s in OmegaConf.to_container(compose(["experiment=melp_paper"]), resolve=True)["method"]["stages"]
    }
    with torch.device("meta"):
        tower = build(dict(cfg["method"]["load"]["tower"]))
        paper = build(dict(melp["melp"]["ecg_tower"]))
    assert _n(tower) == _n(paper) == 65_084_288
    assert tower.attn_pool_contrast.query.shape[0] == 12


def test_cards_count_the_scored_encoder_and_separately_the_training_model(bert_from_config):
    """Issue 16: ``card.n_parameters`` is the encoder ``encode_ecg`` runs; ``n_parameters_training`` the whole model.

    HeartLang scores its sentence encoder (38.3M), not the MSM head and the VQ-HBR it trains with (68.2M in all);
    MELP scores its ECG encoder and contrast pooler, not the text tower, the caption pooler and the decoder."""
    from baselines.heartlang.model import HeartLangMSM
    from ecg_text_align.melp import MELP

    bert_from_config(30522)
    pooler = {"shared_dim": 256, "caption_dim": 768, "n_queries_caption": 128, "n_queries_contrast": 12, "heads": 8}
    with torch.device("meta"):
        hl = HeartLangMSM(preset="base", vq_preset="base")
        melp = MELP(
            ecg_tower={"_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower", "preset": "melp", "pooler": pooler},
            text_encoder={"_target_": "ecg_encoders.text.presets.build_text_preset", "name": "heart_bert"},
        )
    assert hl.card.n_parameters == _n(hl.encoder) == 38_262_528
    assert hl.card.n_parameters_training == _n(hl) == _n(hl.encoder) + _n(hl.head) + _n(hl.vq)
    assert round(hl.card.n_parameters_training / 1e6, 1) == 68.2
    t = melp.ecg_tower
    scored = _n(t.encoder) + _n(t.attn_pool_contrast) + _n(t.ln_contrast) + t.proj_contrast.numel()
    assert melp.card.n_parameters == scored
    assert (
        melp.card.n_parameters_training
        == _n(melp)
        == scored
        + _n(t.attn_pool_caption)
        + _n(t.ln_caption)
        + _n(melp.text)
        + _n(melp.decoder)
        + _n(melp.proj_text)
        + _n(melp.proj_sent)
        + _n(melp.logit_scale)
    )
