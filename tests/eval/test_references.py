"""The reference rows of the synthetic tables (ecg_eval.references) scored through the real harness: the oracle
reads the generator's truth and sits near the ceiling, chance sits at 0.5; the leaderboard marks both and never
bolds them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecg_data.synthetic import ensure_preset
from ecg_data.synthetic.generate import generate_records
from ecg_data.synthetic.truth import TruthError, corpus_truth
from ecg_data.tasks import get_task
from ecg_eval.harness import evaluate
from ecg_eval.leaderboard import load_results, render
from ecg_eval.references import CHANCE, ORACLE, is_reference, reference_encoder


@pytest.fixture(scope="module")
def corpora() -> dict[str, Path]:
    return {"ptbxl": ensure_preset("synth-ptbxl", n=300, seed=3), "mimic": ensure_preset("synth-mimic", n=240, seed=3)}


def test_truth_matches_the_generated_records(corpora: dict[str, Path]) -> None:
    truth = corpus_truth(corpora["ptbxl"])
    for ecg_id in ("1", "17", "250"):  # PTB-XL ecg_id = generator index + 1
        rec = next(generate_records(1, 3, "default", profile="ptbxl", start=int(ecg_id) - 1))
        t = truth.truth(ecg_id)
        assert list(t.conditions) == rec.meta["conditions"] and t.acute == rec.meta["acute"]
    mimic = corpus_truth(corpora["mimic"])
    assert mimic.index("40000007") == 7
    report = mimic.rewritten_report("40000007")
    assert report.endswith(".") and report == mimic.rewritten_report("40000007")  # deterministic
    with pytest.raises(TruthError, match="not a synthetic corpus"):
        corpus_truth(corpora["ptbxl"] / "records500")


def test_oracle_and_chance_through_the_harness(corpora: dict[str, Path], tmp_path: Path) -> None:
    task = get_task("synth_ptbxl_super", root=corpora["ptbxl"])
    kw = dict(results_root=tmp_path / "results", embed_cache=tmp_path / "emb", n_resamples=50)
    scores = {}
    for name in (ORACLE, CHANCE):
        enc = reference_encoder(name, preset="melp")
        zs = evaluate(enc, task, "zero_shot", **kw)
        lp = evaluate(enc, task, "linear_probe", 1.0, 0, **kw)
        assert zs["status"] == lp["status"] == "ok" and zs["encoder_card"]["extra"] == {"reference": name}
        assert is_reference(zs)
        scores[name] = (zs["scores"]["macro_auroc"], lp["scores"]["macro_auroc"])
    # the oracle reads the truth: near the ceiling for zero-shot and the probe; chance is uninformative
    assert scores[ORACLE][0] > 0.9 and scores[ORACLE][1] > 0.9, scores
    assert abs(scores[CHANCE][0] - 0.5) < 0.15 and abs(scores[CHANCE][1] - 0.5) < 0.2, scores

    mimic = get_task("synth_mimic", root=corpora["mimic"])
    ret = evaluate(reference_encoder(ORACLE), mimic, "retrieval", mode_options={"split": "train"}, **kw)
    chance_ret = evaluate(reference_encoder(CHANCE), mimic, "retrieval", mode_options={"split": "train"}, **kw)
    assert ret["scores"]["ecg_to_report"]["recall@10"] > 3 * chance_ret["scores"]["ecg_to_report"]["recall@10"]
    gen = evaluate(reference_encoder(ORACLE), mimic, "report_generation", mode_options={"split": "val"}, **kw)
    model, frequent = gen["scores"]["model"], gen["scores"]["baselines"]["most_frequent"]
    assert model["clinical"]["macro_f1"] > frequent["clinical"]["macro_f1"] + 0.2
    not_applicable = evaluate(
        reference_encoder(CHANCE), mimic, "report_generation", mode_options={"split": "val"}, **kw
    )
    assert not_applicable["status"] == "not_applicable"

    board = render(load_results(tmp_path / "results"), [])
    assert "_oracle (reference)_" in board and "_chance (reference)_" in board
    for line in board.splitlines():
        if "(reference)" in line:
            assert "**" not in line  # never bold, never ranked


def test_reference_rows_are_never_bold_beside_a_method(corpora: dict[str, Path], tmp_path: Path) -> None:
    """A weak method beside the oracle is still the bold best of its column: references do not take part."""
    import torch

    from ecg_eval.protocol import EncoderCard, InputSpec

    class Weak:
        input_spec = InputSpec(preset="melp", fs=500, length=5000)
        card = EncoderCard(name="weak", checkpoint_hash="weak-1", n_parameters=1)

        def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :2, ::500].reshape(x.shape[0], -1)

    task = get_task("synth_ptbxl_super", root=corpora["ptbxl"])
    kw = dict(results_root=tmp_path / "results", embed_cache=tmp_path / "emb", n_resamples=50)
    for enc in (Weak(), reference_encoder(ORACLE)):
        evaluate(enc, task, "linear_probe", 1.0, 0, **kw)
    board = render(load_results(tmp_path / "results"), [])
    weak = [ln for ln in board.splitlines() if ln.startswith("| weak")]
    assert weak and "**" in weak[0]
