"""ecg-eval on ecg-data's real pieces: PTB-XL task from ../shared/data/ptbxl-500, its cache, the harness."""

import numpy as np
import pytest
import torch

from ecg_eval.harness import evaluate
from ecg_eval.protocol import EncoderCard, InputSpec
from ecg_eval.results import read_predictions, read_result


class SummaryEncoder:
    """Per-lead mean, std and range (36-d); a hashed bag of words as text tower into the same space."""

    def __init__(self) -> None:
        self.input_spec = InputSpec(preset="raw100", fs=100, length=1000)
        self.card = EncoderCard(name="summary", checkpoint_hash="fixed", n_parameters=0, pretrained_on=("ptbxl",))

    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(-1), x.std(-1), x.amax(-1) - x.amin(-1)], dim=1)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), 36)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, sum(map(ord, w)) % 36] += 1.0
        return out


@pytest.mark.shared
def test_ptbxl500_zero_shot_and_probe(ptbxl500, tmp_path) -> None:
    from ecg_data.tasks import get_task

    task = get_task("ptbxl_super", root=ptbxl500)
    enc = SummaryEncoder()
    kw = dict(results_root=tmp_path / "results", embed_cache=tmp_path / "emb", n_resamples=100)
    zs = evaluate(enc, task, "zero_shot", **kw)
    lp = evaluate(enc, task, "linear_probe", 1.0, 0, **kw)
    for r in (zs, lp):
        assert r["status"] == "ok" and r["suite"] == "real"
        assert set(r["scores"]["per_class_auroc"]) | set(r["excluded_classes"]) == set(task.classes)
        assert all(0.0 <= v <= 1.0 for v in r["scores"]["per_class_auroc"].values())
        assert read_result(r["result_path"])["seen_in_pretraining"] is True  # pretrained_on ptbxl
    pred = read_predictions(tmp_path / "results/real/summary/ptbxl_super" / lp["predictions"])
    assert set(pred["record_ids"]) <= set(task.splits["test"])
    np.testing.assert_array_equal(pred["y_true"], task.y(list(pred["record_ids"])))
    assert zs["config"]["zero_shot"]["prompts"]["NORM"]  # resolved from the packaged default prompt file
