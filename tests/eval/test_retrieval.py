"""Retrieval: closed-form ranks, duplicate reports, pessimistic ties, result file, not-applicable."""

import numpy as np
import pandas as pd
import pytest
import torch

from ecg_eval.harness import evaluate
from ecg_eval.protocol import EncoderCard, InputSpec
from ecg_eval.results import read_result
from ecg_eval.retrieval import make_pairs, retrieval_scores

WORDS = ["alpha", "beta", "gamma", "delta"]


class Split:
    """A cached split with reports: condition k of record i is stored in sample 0 of lead 0."""

    def __init__(self, conds: list[int], reports: list[str | None]) -> None:
        self.record_ids = [f"r{i:03d}" for i in range(len(conds))]
        self.signals = np.zeros((len(conds), 12, 8), np.float32)
        self.signals[:, 0, 0] = conds
        self.index = pd.DataFrame({"record_id": self.record_ids, "report": reports})


class Task:
    name, dataset, suite, classes, dropped = "synth_pairs", "mimic_iv_ecg", "synthetic", [], {}

    def reader(self):
        class R:
            version = "t"

            def fingerprint(self):
                return "fp"

        return R()


class WordEncoder:
    """ECG of condition k -> e_k; a text -> e_k of the first WORDS[k] it contains (perfect retrieval up to duplicates)."""

    def __init__(self, constant: bool = False) -> None:
        self.input_spec = InputSpec(preset="raw100", fs=100, length=8)
        self.card = EncoderCard(name="words", checkpoint_hash="w1", n_parameters=0)
        self.constant = constant

    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        if self.constant:
            return torch.ones(x.shape[0], 4)
        return torch.nn.functional.one_hot(x[:, 0, 0].long(), 4).float()

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        if self.constant:
            return torch.ones(len(texts), 4)
        return torch.stack(
            [
                torch.nn.functional.one_hot(
                    torch.tensor(next(k for k, w in enumerate(WORDS) if w in t.lower())), 4
                ).float()
                for t in texts
            ]
        )


def test_ranks_closed_form() -> None:
    ecg = np.eye(3)
    txt = np.array([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]])  # report 1 matches ECG 2 and vice versa
    scores, ranks = retrieval_scores(ecg, txt, np.array([0, 1, 2]), ks=(1, 2))
    # ECG 1's own text has similarity 0, text 2 scores 1 and text 0 ties at 0: pessimistic rank 3
    assert ranks["ecg_to_report"].tolist() == [1, 3, 3]
    assert scores["ecg_to_report"]["recall@1"] == pytest.approx(1 / 3) and scores["ecg_to_report"][
        "recall@2"
    ] == pytest.approx(1 / 3)
    assert ranks["report_to_ecg"].tolist() == [1, 3, 3] and scores["report_to_ecg"]["median_rank"] == 3.0


def test_duplicates_and_constant_embeddings() -> None:
    pairs = make_pairs(["a", "b", "c", "d"], ["Sinus rhythm.", "sinus   RHYTHM.", "AF.", None])
    assert pairs.reports == ["Sinus rhythm.", "AF."] and pairs.report_of.tolist() == [0, 0, 1]
    assert pairs.n_skipped_no_report == 1
    scores, ranks = retrieval_scores(np.ones((3, 2)), np.ones((2, 2)), pairs.report_of)
    assert ranks["ecg_to_report"].tolist() == [2, 2, 2]  # ties are pessimistic: chance, never a perfect score
    assert ranks["report_to_ecg"].tolist() == [2, 3]  # every ECG of another report ranks before the match


def test_retrieval_result_file(tmp_path) -> None:
    conds = [0, 1, 2, 3, 0, 1, 2, 3]
    reports = ["alpha wave.", "beta wave.", "gamma.", "delta.", "Alpha wave.", "beta, again.", None, "delta."]
    split = Split(conds, reports)
    r = evaluate(
        WordEncoder(),
        Task(),
        "retrieval",
        results_root=tmp_path / "res",
        embed_cache=tmp_path / "e",
        split_loader=lambda t, s, p: split,
        n_resamples=100,
    )
    assert r["split"] == "test" and r["n_pairs"] == 7 and r["n_skipped_no_report"] == 1
    assert r["n_distinct_reports"] == 5  # "alpha wave." twice (case folded), "delta." twice
    e2t, t2e = r["scores"]["ecg_to_report"], r["scores"]["report_to_ecg"]
    # ECGs of condition 1 see two distinct beta reports with equal similarity: pessimistic rank 2
    assert e2t["recall@1"] == pytest.approx(5 / 7) and e2t["recall@5"] == 1.0
    # "beta wave." and "beta, again." each tie with the other's ECG (same condition, different report): rank 2
    assert t2e["recall@1"] == pytest.approx(3 / 5) and t2e["recall@5"] == 1.0
    assert r["ci"]["ecg_to_report"]["recall@1"][0] <= e2t["recall@1"] <= r["ci"]["ecg_to_report"]["recall@1"][1]
    saved = read_result(r["result_path"])
    assert saved["mode"] == "retrieval" and saved["scores"] == r["scores"]
    assert r["result_path"].endswith("synthetic/words/synth_pairs/retrieval-seed0.json")
    z = np.load(tmp_path / "res/synthetic/words/synth_pairs/retrieval-seed0.ranks.npz")
    assert z["ecg_to_report"].shape == (7,)


def test_retrieval_constant_encoder_is_chance(tmp_path) -> None:
    split = Split([0, 1, 2, 3], ["alpha.", "beta.", "gamma.", "delta."])
    r = evaluate(
        WordEncoder(constant=True),
        Task(),
        "retrieval",
        results_root=tmp_path / "res",
        embed_cache=tmp_path / "e",
        split_loader=lambda t, s, p: split,
        n_resamples=20,
    )
    assert r["scores"]["ecg_to_report"]["recall@1"] == 0.0 and r["scores"]["ecg_to_report"]["median_rank"] == 4


def test_retrieval_without_text_tower(tmp_path, Mock) -> None:
    r = evaluate(
        Mock(text=False),
        Task(),
        "retrieval",
        results_root=tmp_path / "res",
        embed_cache=tmp_path / "e",
        split_loader=lambda t, s, p: pytest.fail("nothing may be encoded"),
    )
    assert r["status"] == "not_applicable" and read_result(r["result_path"])["scores"] is None
