"""Report generation: metrics against sacrebleu/known values, statement recognition, baselines, result file."""

import numpy as np
import pandas as pd
import pytest
import torch

from ecg_eval.harness import evaluate
from ecg_eval.protocol import EncoderCard, InputSpec
from ecg_eval.report_generation import (
    clinical_metrics,
    most_frequent_report,
    nearest_neighbour_reports,
    read_reference_split,
    text_metrics,
)
from ecg_eval.results import read_result
from ecg_eval.statements import StatementVocabulary, default_vocabulary

REPORTS = [
    "Sinus rhythm. Normal ECG.",
    "Atrial fibrillation. Left bundle branch block. Abnormal ECG.",
    "Sinus bradycardia. Abnormal ECG.",
    "Sinus rhythm. Left anterior fascicular block. Abnormal ECG.",
]


def test_text_metrics_identity_and_disjoint() -> None:
    same = text_metrics(REPORTS, REPORTS)
    assert all(same[f"bleu{n}"] == pytest.approx(100.0) for n in (1, 2, 3, 4))
    assert same["rouge_l"] == pytest.approx(1.0) and same["chrf"] == pytest.approx(100.0)
    other = text_metrics(["zzz qqq"] * 4, REPORTS)
    assert other["bleu1"] == 0.0 and other["rouge_l"] == 0.0
    half = text_metrics(["sinus rhythm"], ["sinus rhythm normal ecg"])  # BLEU-1: precision 1, brevity e^(1-2)
    assert half["bleu1"] == pytest.approx(100 * np.exp(-1), rel=1e-3)
    assert half["rouge_l"] == pytest.approx(2 * 1 * 0.5 / 1.5)


def test_statements_recognised() -> None:
    v = default_vocabulary()
    assert v.recognise("Sinus rhythm with occasional PVCs. Abnormal ECG.") == {"SR", "PVC"}
    assert v.recognise("Left axis deviation, left anterior fascicular block") == {"LAFB"}
    assert v.recognise("Abnormal ECG.") == set()  # "normal ecg" must not match inside "abnormal ecg"
    assert v.recognise("sinus rhythm, left ventricular hypertrophy, normal ecg") == {"SR", "LVH", "NORM"}
    assert v.recognise("LBBB.") == {"LBBB"} and v.recognise("RBBBX") == set()


def test_clinical_macro_f1() -> None:
    v = StatementVocabulary({"A": ("alpha",), "B": ("beta",), "C": ("gamma",)})
    out = clinical_metrics(["alpha", "alpha beta", "nothing"], ["alpha", "beta", "alpha"], v)
    # A: ref [1,0,1], gen [1,1,0] -> TP1 FP1 FN1 -> 0.5; B: ref [0,1,0], gen [0,1,0] -> 1.0; C never in refs
    assert out["per_statement_f1"] == {"A": 0.5, "B": 1.0} and out["macro_f1"] == 0.75
    assert "C" in out["excluded_statements"] and out["reference_coverage"] == 1.0


def test_baselines() -> None:
    assert most_frequent_report(["a b", "c", "A  b", None]) == "a b"
    q, g = np.array([[1.0, 0.1], [0.0, 1.0]]), np.array([[0.0, 2.0], [3.0, 0.0]])
    assert nearest_neighbour_reports(q, g, ["up", "right"]) == ["right", "up"]


class Split:
    def __init__(self, prefix: str, conds: list[int]) -> None:
        self.record_ids = [f"{prefix}{i}" for i in range(len(conds))]
        self.signals = np.zeros((len(conds), 12, 8), np.float32)
        self.signals[:, 0, 0] = conds
        self.index = pd.DataFrame({"record_id": self.record_ids, "report": [REPORTS[c] for c in conds]})


class Task:
    name, dataset, suite, classes, dropped = "synth_reports", "ptbxl", "synthetic", [], {}

    def reader(self):
        class R:
            version = "t"

            def fingerprint(self):
                return "fp"

        return R()


class Decoder:
    """Features = one-hot condition; ``generate_report`` writes the right report, except condition 3 -> report 0."""

    def __init__(self, decoder: bool = True) -> None:
        self.input_spec = InputSpec(preset="raw100", fs=100, length=8)
        self.card = EncoderCard(name="dec", checkpoint_hash="d1", n_parameters=0)
        self.batches: list[int] = []
        if decoder:
            self.generate_report = self._generate

    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(x[:, 0, 0].long(), 4).float()

    def _generate(self, x: torch.Tensor) -> list[str]:
        self.batches.append(x.shape[0])
        return [REPORTS[0 if int(c) == 3 else int(c)] for c in x[:, 0, 0]]


def _splits():
    return {"train": Split("tr", [0, 0, 0, 1, 2, 3]), "test": Split("te", [0, 1, 2, 3, 1])}


def test_report_generation_result(tmp_path) -> None:
    splits, enc = _splits(), Decoder()
    r = evaluate(
        enc,
        Task(),
        "report_generation",
        results_root=tmp_path / "r",
        embed_cache=tmp_path / "e",
        split_loader=lambda t, s, p: splits[s],
        batch_size=2,
    )
    assert enc.batches == [2, 2, 1]  # batched generation
    model, base = r["scores"]["model"], r["scores"]["baselines"]
    assert base["most_frequent"]["report"] == REPORTS[0]
    assert base["nearest_neighbour"]["bleu4"] == pytest.approx(100.0)  # the NN training ECG has the same report
    assert base["nearest_neighbour"]["clinical"]["macro_f1"] == 1.0
    assert model["clinical"]["per_statement_f1"]["LAFB"] == 0.0  # condition 3 got report 0: LAFB never generated
    assert model["clinical"]["per_statement_f1"]["AF"] == 1.0
    assert model["bleu4"] < 100.0 and base["most_frequent"]["bleu4"] < model["bleu4"]
    saved = read_result(r["result_path"])
    assert saved["mode"] == "report_generation" and saved["n_test"] == 5 and saved["split"] == "test"
    with np.load(tmp_path / "r/synthetic/dec/synth_reports/report_generation-seed0.reports.npz") as z:
        assert z["generated"][3] == REPORTS[0] and z["references"][3] == REPORTS[3]


def test_published_reference_split(tmp_path) -> None:
    """MELP's PTB-XL report split layout (ecg_id, report, ...): only its records, its reports as references."""
    ref = tmp_path / "ptbxl_test.csv"
    pd.DataFrame(
        {
            "ecg_id": ["te3", "te1"],
            "patient_id": [1.0, 2.0],
            "report": ["sinus rhythm. left anterior fascicular block.", "atrial fibrillation."],
        }
    ).to_csv(ref, index=False)
    assert read_reference_split(ref)[0] == ["te3", "te1"]
    splits = _splits()

    r = evaluate(
        Decoder(),
        Task(),
        "report_generation",
        results_root=tmp_path / "r",
        embed_cache=tmp_path / "e",
        split_loader=lambda t, s, p: splits[s],
        mode_options={"reference_file": ref, "progress": False},
    )
    assert r["split"] == "ptbxl_test-2" and r["n_test"] == 2  # "melp-ptbxl-report-test-500" only for 500 records
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"ecg_id": ["nope"], "report": ["x"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="not in synth_reports/test"):
        evaluate(
            Decoder(),
            Task(),
            "report_generation",
            results_root=tmp_path / "r",
            embed_cache=tmp_path / "e",
            split_loader=lambda t, s, p: splits[s],
            mode_options={"reference_file": bad, "progress": False},
        )


def test_no_decoder_is_not_applicable(tmp_path) -> None:
    r = evaluate(
        Decoder(decoder=False),
        Task(),
        "report_generation",
        results_root=tmp_path / "r",
        split_loader=lambda t, s, p: pytest.fail("nothing may be read"),
    )
    assert r["status"] == "not_applicable" and read_result(r["result_path"])["scores"] is None
