"""The new modes end to end on the synthetic corpus (real readers, cache and a real tiny MELP, untrained):
retrieval on MIMIC-style pairs, report generation with beam search, fine-tuning of the wav2vec2 tower, and the
leaderboard sections they feed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ecg_data.synthetic import ensure_preset
from ecg_data.tasks import get_task
from ecg_eval.finetune import FinetuneConfig
from ecg_eval.harness import evaluate
from ecg_eval.leaderboard import load_results, render


@pytest.fixture(scope="module")
def melp(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("ecg_text_align.melp", reason="a real MELP needs ecg-text-align (not in an ecg-eval-only env)")
    from ecg_encoders.text.offline import init_text_model_dir
    from ecg_text_align.melp import MELP

    reports = [
        "Sinus rhythm. Normal ECG.",
        "Atrial fibrillation. Abnormal ECG.",
        "Sinus bradycardia. Left bundle branch block.",
    ]
    bert = init_text_model_dir(
        reports * 5,
        tmp_path_factory.mktemp("bert") / "tiny-bert",
        vocab_size=120,
        layers=2,
        width=32,
        heads=2,
        ffn_dim=64,
        max_positions=64,
    )
    torch.manual_seed(0)
    return MELP(
        ecg_tower={
            "_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower",
            "preset": "tiny",
            "pooler": {"shared_dim": 16, "caption_dim": 32, "n_queries_caption": 8, "n_queries_contrast": 5},
        },
        text_encoder={
            "_target_": "ecg_encoders.text.presets.build_text_preset",
            "name": "offline_default",
            "path": str(bert),
            "freeze_layers": 1,
            "max_length": 32,
        },
        shared_dim=16,
        decoder_layers=2,
        decoder_heads=2,
        max_sentences=4,
    )


def test_modes_on_the_synthetic_corpus(melp, tmp_path: Path) -> None:
    mimic = get_task("synth_mimic", root=ensure_preset("synth-mimic", n=200, seed=5))
    ptbxl = get_task("synth_ptbxl_super", root=ensure_preset("synth-ptbxl", n=120, seed=5))
    kw = dict(results_root=tmp_path / "results", embed_cache=tmp_path / "emb", n_resamples=50)

    ret = evaluate(melp, mimic, "retrieval", mode_options={"split": "train"}, **kw)
    assert ret["status"] == "ok" and ret["suite"] == "synthetic" and ret["split"] == "train"
    assert ret["n_pairs"] > 100 and ret["n_distinct_reports"] <= ret["n_pairs"]
    for d in ("ecg_to_report", "report_to_ecg"):
        s = ret["scores"][d]
        assert 0.0 <= s["recall@1"] <= s["recall@5"] <= s["recall@10"] <= 1.0 and s["median_rank"] >= 1

    gen = evaluate(
        melp,
        mimic,
        "report_generation",
        batch_size=4,
        mode_options={"split": "val", "generate_kw": {"beam_size": 2, "max_len": 12}, "progress": False},
        **kw,
    )
    assert gen["status"] == "ok" and gen["n_test"] >= 1
    for system in (gen["scores"]["model"], *gen["scores"]["baselines"].values()):
        assert 0.0 <= system["bleu4"] <= 100.0 and 0.0 <= system["rouge_l"] <= 1.0
    assert gen["scores"]["baselines"]["most_frequent"]["report"]

    ft = evaluate(
        melp,
        ptbxl,
        "finetune",
        1.0,
        0,
        mode_options={"finetune_config": FinetuneConfig(max_epochs=1, batch_size=32, device="cpu")},
        **kw,
    )
    assert ft["status"] == "ok" and len(ft["selection"]["history"]) == 1
    assert ft["selection"]["param_groups"]["n_blocks"] > 0  # the wav2vec2 transformer layers were found
    text_params = sum(p.numel() for p in melp.text.parameters())
    assert ft["selection"]["n_trainable_parameters"] < sum(p.numel() for p in melp.parameters()) - text_params + 1000

    md = render(load_results(tmp_path / "results"), [])
    assert "### ECG ↔ report retrieval" in md and "### Report generation" in md and "### Fine-tuning, 100%" in md
