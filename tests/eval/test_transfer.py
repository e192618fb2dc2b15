"""Domain transfer: the class map, and source -> target for probe, fine-tune and zero-shot on fakes."""

import dataclasses

import pytest

from ecg_data.tasks.class_map import shared_classes, vocabulary
from ecg_eval.finetune import FinetuneConfig
from ecg_eval.harness import evaluate
from ecg_eval.probe import ProbeConfig
from ecg_eval.results import read_result


def evaluate_transfer(encoder, source, target, train_mode, fraction=None, seed=0, *, finetune_config=None, **kw):
    """Domain transfer through the harness: a registered mode whose cell options are source and train_mode."""
    options = {"source": source, "train_mode": train_mode}
    if finetune_config is not None:
        options["finetune_config"] = finetune_config
    return evaluate(encoder, target, "transfer", fraction, seed, mode_options=options, **kw)


def test_class_map_pairs_names_not_strings() -> None:
    assert vocabulary("synth_ptbxl_rhythm") == "ptbxl" and vocabulary("code_test") == "code"
    got = shared_classes("ptbxl_rhythm", ["AFIB", "AFLT", "SR", "STACH"], "csn", ["AF", "AFIB", "SR", "ST"])
    assert [(s.concept, s.source, s.target) for s in got] == [
        ("SR", "SR", "SR"),
        ("AF", "AFIB", "AFIB"),
        ("AFL", "AFLT", "AF"),
        ("STACH", "STACH", "ST"),
    ]  # CSN AF = flutter
    got = shared_classes("cpsc2018", ["AF", "I-AVB", "STD"], "code15", ["1dAVb", "AF", "ST"])
    assert [(s.source, s.target) for s in got] == [("AF", "AF"), ("I-AVB", "1dAVb")]  # CODE's ST is tachycardia
    assert shared_classes("ptbxl_sub", ["_AVB"], "g12ec", ["IAVB"])[0].source == "_AVB"
    with pytest.raises(KeyError, match="no column"):
        vocabulary("mimic_iv_ecg")


def _pair(fake_task):
    task, _ = fake_task
    src = dataclasses.replace(
        task,
        name="synth_ptbxl_all",
        labels=task.labels.rename(columns={"A": "AFIB", "B": "CRBBB", "C": "LVH"}),
        classes=["AFIB", "CRBBB", "LVH"],
    )
    tgt = dataclasses.replace(
        task,
        name="synth_cpsc2018",
        labels=task.labels.rename(columns={"A": "AF", "B": "RBBB", "C": "PVC"}),
        classes=["AF", "RBBB", "PVC"],
    )
    return src, tgt


def test_probe_transfer(fake_task, loader, tmp_path, Mock) -> None:
    src, tgt = _pair(fake_task)
    r = evaluate_transfer(
        Mock(),
        src,
        tgt,
        "linear_probe",
        1.0,
        results_root=tmp_path / "r",
        embed_cache=tmp_path / "e",
        split_loader=loader,
        n_resamples=50,
        probe_config=ProbeConfig(weight_decays=(1e-3,), iterations=(20,)),
    )
    assert r["classes"] == ["AF", "RBBB"]  # LVH/PVC are not the same concept: not shared
    assert r["transfer"]["shared"] == [
        {"concept": "AF", "source": "AFIB", "target": "AF"},
        {"concept": "RBBB", "source": "CRBBB", "target": "RBBB"},
    ]
    assert r["scores"]["per_class_auroc"] == {"AF": 1.0, "RBBB": 0.5}
    assert r["result_path"].endswith(
        "synthetic/mock/synth_cpsc2018/transfer-linear_probe-100-from-synth_ptbxl_all-seed0.json"
    )
    assert read_result(r["result_path"])["mode"] == "transfer"


def test_zero_shot_transfer_thresholds_from_source(fake_task, loader, tmp_path, Mock, prompt_file) -> None:
    import json

    src, tgt = _pair(fake_task)
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps({"AF": "alpha", "RBBB": "beta"}))
    r = evaluate_transfer(
        Mock(),
        src,
        tgt,
        "zero_shot",
        None,
        results_root=tmp_path / "r",
        embed_cache=tmp_path / "e",
        split_loader=loader,
        n_resamples=50,
        prompt_file=pf,
    )
    assert r["scores"]["per_class_auroc"]["AF"] == 1.0
    assert r["threshold_metrics"]["threshold_split"] == "synth_ptbxl_all/val"
    assert r["threshold_metrics"]["per_class"]["AF"]["f1"] == 1.0


def test_finetune_transfer_and_errors(fake_task, loader, tmp_path, Mock) -> None:
    import torch
    from torch import nn

    from ecg_eval.protocol import EncoderCard, InputSpec

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(16, 4)
            self.input_spec = InputSpec(preset="raw100", fs=100, length=16)
            self.card = EncoderCard(name="net", checkpoint_hash="n", n_parameters=0)

        def embed_ecg(self, x):
            return self.lin(x[:, 0, :])

        @torch.no_grad()
        def encode_ecg(self, x):
            return self.embed_ecg(x)

    src, tgt = _pair(fake_task)
    torch.manual_seed(0)
    r = evaluate_transfer(
        Net(),
        src,
        tgt,
        "finetune",
        1.0,
        results_root=tmp_path / "r",
        split_loader=loader,
        n_resamples=20,
        finetune_config=FinetuneConfig(lr=0.05, max_epochs=15, batch_size=8, device="cpu"),
    )
    assert r["scores"]["per_class_auroc"]["AF"] == 1.0 and r["selection"]["best_epoch"] >= 0
    with pytest.raises(ValueError, match="fraction"):
        evaluate_transfer(Mock(), src, tgt, "linear_probe", None, results_root=tmp_path / "r", split_loader=loader)
    with pytest.raises(ValueError, match="suites differ"):
        evaluate_transfer(Mock(), src, dataclasses.replace(tgt, suite="real"), "zero_shot", results_root=tmp_path)
