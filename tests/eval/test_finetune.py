"""Fine-tuning on fakes: the whole encoder trains, selection on val, test once, layer decay, DDP-free CPU path."""

import numpy as np
import pytest
import torch
from torch import nn

from ecg_eval.finetune import FinetuneConfig, FinetuneModel, layer_ids, param_groups
from ecg_eval.harness import evaluate
from ecg_eval.protocol import EncoderCard, InputSpec
from ecg_eval.results import read_predictions, read_result


class TinyNet(nn.Module):
    """Two numbered blocks over lead 0 (the fake task's class A is sample 0 of lead 0), plus an unused text tower."""

    def __init__(self, zero: bool = False) -> None:
        super().__init__()
        self.stem = nn.Linear(16, 8)
        self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 4)])
        self.text_tower = nn.Linear(3, 3)  # not reached by embed_ecg: must not be trained
        if zero:  # start with features that carry nothing, so only training can find class A
            for p in self.parameters():
                nn.init.zeros_(p)
        self.input_spec = InputSpec(preset="raw100", fs=100, length=16)
        self.card = EncoderCard(name="tiny", checkpoint_hash="t1", n_parameters=0)

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x[:, 0, :]))
        return self.blocks[1](torch.relu(self.blocks[0](h)))

    @torch.no_grad()
    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_ecg(x)


FAST = FinetuneConfig(lr=3e-2, weight_decay=0.0, max_epochs=40, batch_size=8, patience=40, device="cpu")


def test_layer_ids_and_decay() -> None:
    names = [
        "stem.weight",
        "blocks.0.weight",
        "blocks.1.weight",
        "norm.weight",
        "feature_extractor.conv_layers.3.0.weight",
    ]
    ids, n = layer_ids(names)
    assert n == 2 and ids == {
        "stem.weight": 0,
        "blocks.0.weight": 1,
        "blocks.1.weight": 2,
        "norm.weight": 3,
        "feature_extractor.conv_layers.3.0.weight": 3,
    }  # conv_layers is not a block list
    model = FinetuneModel(TinyNet(), 4, 2)
    trainable = [n for n, _ in model.named_parameters() if not n.startswith("encoder.text")]
    groups, info = param_groups(model, trainable, FinetuneConfig(lr=1.0, layer_decay=0.5))
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    p = dict(model.named_parameters())
    assert lr_of[id(p["encoder.stem.weight"])] == 0.125 and lr_of[id(p["encoder.blocks.0.weight"])] == 0.25
    assert lr_of[id(p["encoder.blocks.1.weight"])] == 0.5 and lr_of[id(p["head.weight"])] == 1.0
    assert {g["weight_decay"] for g in groups if any(q is p["head.bias"] for q in g["params"])} == {0.0}
    assert info["layer_decay_applied"] and info["n_blocks"] == 2


def test_finetune_config_from_option() -> None:
    """The recipe comes from the caller (the method's config, as plain data), never from a name-keyed table."""
    import ecg_eval.finetune as ft

    assert FinetuneConfig.from_option(None) == FinetuneConfig()
    assert FinetuneConfig.from_option({"lr": 5e-4, "layer_decay": 0.9}).layer_decay == 0.9
    cfg = FinetuneConfig(batch_size=16)
    assert FinetuneConfig.from_option(cfg) is cfg
    with pytest.raises(TypeError, match="unknown field"):
        FinetuneConfig.from_option({"lr": 1e-3, "epochs": 3})
    assert not any(isinstance(v, dict) and "heartlang" in v for v in vars(ft).values())


def test_finetune_end_to_end(fake_task, loader, tmp_path) -> None:
    task, _ = fake_task
    enc = TinyNet(zero=False)
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    r = evaluate(
        enc,
        task,
        "finetune",
        1.0,
        seed=0,
        results_root=tmp_path / "r",
        split_loader=loader,
        n_resamples=100,
        mode_options={"finetune_config": FAST},
    )
    assert r["status"] == "ok" and r["result_path"].endswith("synthetic/tiny/synth_fake/finetune-100-seed0.json")
    assert r["scores"]["per_class_auroc"]["A"] == 1.0  # A is learnable from lead 0
    assert "C" in r["excluded_classes"]
    sel = r["selection"]
    best = max(h["val_macro_auroc"] for h in sel["history"])
    assert sel["val_macro_auroc"] == best and sel["history"][sel["best_epoch"]]["val_macro_auroc"] == best
    assert (
        sel["n_trainable_parameters"]
        == sum(p.numel() for n, p in enc.named_parameters() if not n.startswith("text")) + 4 * 3 + 3
    )
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in before.items())  # the caller's encoder is untouched
    saved = read_result(r["result_path"])
    assert saved["config"]["finetune"]["lr"] == FAST.lr and saved["n_train"] == 40
    pred = read_predictions(tmp_path / "r/synthetic/tiny/synth_fake" / saved["predictions"])
    assert list(pred["record_ids"]) == task.splits["test"]


def test_finetune_trains_the_encoder(fake_task, loader, tmp_path) -> None:
    """The stem (the first layer) moves — the whole encoder trains, not only the head; the text tower does not."""
    from ecg_eval.finetune import fit_finetune

    task, caches = fake_task
    tr, va = caches["train"], caches["val"]
    torch.manual_seed(1)
    enc = TinyNet()
    fit = fit_finetune(
        enc,
        tr.signals,
        np.arange(len(tr.record_ids)),
        task.y(tr.record_ids),
        va.signals,
        np.arange(len(va.record_ids)),
        task.y(va.record_ids),
        config=FinetuneConfig(lr=0.05, max_epochs=3, batch_size=8, patience=3, device="cpu"),
    )
    assert not torch.equal(fit.model.encoder.stem.weight, enc.stem.weight)
    assert torch.equal(fit.model.encoder.text_tower.weight, enc.text_tower.weight)  # not reached by embed_ecg
    assert not fit.model.encoder.text_tower.weight.requires_grad and len(fit.history) == 3


def test_early_stopping(fake_task, loader, tmp_path) -> None:
    task, _ = fake_task
    cfg = FinetuneConfig(lr=0.0, final_lr=0.0, max_epochs=20, batch_size=8, patience=2, device="cpu")
    r = evaluate(
        TinyNet(),
        task,
        "finetune",
        0.5,
        seed=1,
        results_root=tmp_path / "r",
        split_loader=loader,
        n_resamples=20,
        mode_options={"finetune_config": cfg},
    )
    sel = r["selection"]  # lr 0: val AUROC never improves after epoch 0 -> stop after 1 + patience epochs
    assert sel["stopped_early"] and len(sel["history"]) == 3 and sel["best_epoch"] == 0


def test_finetune_not_applicable(fake_task, loader, tmp_path, Mock) -> None:
    task, _ = fake_task
    r = evaluate(Mock(), task, "finetune", 0.1, results_root=tmp_path / "r", split_loader=loader)
    assert r["status"] == "not_applicable" and "embed_ecg" in r["reason"]
    with pytest.raises(ValueError, match="fraction"):
        evaluate(Mock(), task, "finetune", None, results_root=tmp_path / "r", split_loader=loader)


def test_wrapped_encoder_is_finetunable() -> None:
    """The runner wraps encoders (ScoredEncoder forwards attributes): the module behind embed_ecg is found."""
    from ecg_eval.protocol import finetune_module, supports_finetune

    net = TinyNet()

    class Wrapper:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, a):
            return getattr(self.__dict__["inner"], a)

    assert finetune_module(Wrapper(net)) is net and supports_finetune(net)
    assert not supports_finetune(object())
