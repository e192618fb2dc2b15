"""Speed switches (issue 18) leave the step's loss and gradients as the eager default computes them.

Tolerances: fp32 on CPU; the switches reorder float operations at most, so losses agree to rel 1e-5. A gradient
entry that is a sum over many positions (the embedding tables': O(10) entries beside near-cancelled ones) carries
a rounding error that scales with its tensor, not with itself, and differs between CPUs (SIMD width, threads): an
entry may differ by 1e-6 + 1e-4 * |its value| + 1e-5 * max |its tensor|. Measured on this project's 2-core machine:
at most half of the first two terms; a CI machine exceeded them on one near-zero token-type entry."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from ecg_text_align.melp import MELP
from ecg_text_align.perf import adamw_impl_kwargs, apply_perf, compile_targets

REPORTS = [
    "sinus rhythm. normal ecg.",
    "atrial fibrillation with rapid ventricular response. abnormal ecg.",
    "sinus bradycardia. left bundle branch block.",
    "sinus rhythm.",
]


def _melp(bert_dir, **kw) -> MELP:
    from text_align_stubs import tiny_melp

    return tiny_melp(bert_dir, **{"total_steps": 4, **kw})


def _batch() -> dict:
    return {"ecg": torch.randn(4, 12, 5000, generator=torch.Generator().manual_seed(1)), "report": REPORTS}


def _loss_and_grads(model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One training-mode step's loss and gradients; the seed makes the dropout masks the same in every call."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(123)
    loss = model.compute_losses(batch)["loss"]
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same(a: tuple, b: tuple) -> None:
    assert a[0].item() == pytest.approx(b[0].item(), rel=1e-5)
    assert a[1].keys() == b[1].keys()
    for k in a[1]:
        scale = b[1][k].abs().max().item()
        torch.testing.assert_close(a[1][k], b[1][k], atol=1e-6 + 1e-5 * scale, rtol=1e-4, msg=k)


def test_caption_logits_at_real_positions_give_the_same_loss_and_gradients(tiny_bert_dir) -> None:
    model = _melp(tiny_bert_dir)
    model.text.pad_to_max_length = True  # many pad positions: what the gather skips
    batch = _batch()
    model.caption_real_positions = False
    ref = _loss_and_grads(model, batch)
    model.caption_real_positions = True
    _assert_same(_loss_and_grads(model, batch), ref)
    assert model.text.tokenize(REPORTS)["input_ids"].shape[1] == 32


def test_padding_to_max_length_changes_neither_loss_nor_gradients(tiny_bert_dir) -> None:
    """The original-style baseline pads to 128: the causal towers make the real positions independent of it
    (no dropout here: the masks' shapes depend on the padding)."""
    model = _melp(tiny_bert_dir)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    model.ecg_tower.encoder.eval()  # wav2vec2's attention dropout is functional
    batch = _batch()
    ref = _loss_and_grads(model, batch)
    model.text.pad_to_max_length = True
    out = _loss_and_grads(model, batch)
    assert out[0].item() == pytest.approx(ref[0].item(), rel=1e-4)


def test_esi_caption_logits_at_real_positions(tiny_bert_dir) -> None:
    from baselines.esi.model import ESI

    torch.manual_seed(0)
    text = {
        "_target_": "ecg_encoders.text.presets.build_text_preset",
        "name": "offline_default",
        "path": str(tiny_bert_dir),
        "causal": True,
        "add_trailing_cls": True,
        "pooling": "last",
        "max_length": 32,
    }
    model = ESI(text_encoder=text, decoder_layers=1, decoder_heads=2, enrich_captions=False)
    model.text.pad_to_max_length = True
    batch = _batch()
    model.caption_real_positions = False
    ref = _loss_and_grads(model, batch)
    model.caption_real_positions = True
    _assert_same(_loss_and_grads(model, batch), ref)


@pytest.mark.parametrize("impl", ["fused", "foreach"])
def test_adamw_implementations_match_the_for_loop(tiny_bert_dir, impl: str) -> None:
    """Three AdamW steps on the same gradients (the model's own, computed once) from the same weights."""
    model = _melp(tiny_bert_dir, decay_1d_params=False, weight_decay=0.2)
    _, grads = _loss_and_grads(model, _batch())
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = {}
    for which in ("for", impl):
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(start[n])
        opt = torch.optim.AdamW(model._param_groups(), lr=1e-3, betas=model.betas, **adamw_impl_kwargs(which))
        for step in range(3):
            for n, p in model.named_parameters():
                p.grad = grads[n] * (step + 1) if n in grads else None
            opt.step()
        params[which] = {n: p.detach().clone() for n, p in model.named_parameters()}
    for n, p in params["for"].items():
        torch.testing.assert_close(params[impl][n], p, atol=1e-6, rtol=1e-5, msg=n)


def test_configure_optimizers_uses_the_chosen_implementation(tiny_bert_dir) -> None:
    model = _melp(tiny_bert_dir)
    assert model.configure_optimizers()["optimizer"].defaults["fused"] is True  # the default
    apply_perf(model, {"optimizer_impl": "for"})
    d = model.configure_optimizers()["optimizer"].defaults
    assert not d["fused"] and not d["foreach"]
    with pytest.raises(ValueError, match="optimizer_impl"):
        apply_perf(model, {"optimizer_impl": "sgd"})
    with pytest.raises(ValueError, match="unknown perf"):
        apply_perf(model, {"complie": True})


def test_activation_checkpointing_gives_the_same_gradients(tiny_bert_dir) -> None:
    model = _melp(tiny_bert_dir)
    batch = _batch()
    ref = _loss_and_grads(model, batch)
    done = apply_perf(model, {"activation_checkpointing": True})
    # the wav2vec2 transformer, the HF text model and the caption decoder
    assert done["activation_checkpointing"] >= 3 and model.decoder.activation_checkpointing
    _assert_same(_loss_and_grads(model, batch), ref)


def test_compile_switch_keeps_loss_gradients_and_checkpoint_keys(tiny_bert_dir) -> None:
    """The switch path with dynamo's ``eager`` backend (graph capture without code generation: fast, no compiler);
    ``python -m benchmarks.perf.pretrain_step --compile`` measures inductor."""
    model = _melp(tiny_bert_dir)
    batch = _batch()
    keys = list(model.state_dict())
    ref = _loss_and_grads(model, batch)
    done = apply_perf(model, {"compile": True, "compile_options": {"backend": "eager"}})
    assert set(done["compiled"]) == set(compile_targets(model)) and {"ecg_tower", "decoder"} <= set(done["compiled"])
    _assert_same(_loss_and_grads(model, batch), ref)
    assert list(model.state_dict()) == keys  # in-place compile: checkpoints are unchanged


def test_bf16_mixed_training_step_on_cpu(tiny_bert_dir, tmp_path) -> None:
    """The GPU trainer configs train under ``precision: bf16-mixed``; Lightning runs it on the CPU too, which
    checks that every MELP code path (the real-position caption gather included) accepts bf16 autocast."""
    model = _melp(tiny_bert_dir)
    data = [{"ecg": torch.randn(12, 5000), "report": r} for r in REPORTS * 2]
    trainer = L.Trainer(
        accelerator="cpu",
        precision="bf16-mixed",
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    before = model.decoder.text_projection.detach().clone()
    trainer.fit(model, train_dataloaders=DataLoader(data, batch_size=4))
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert not torch.equal(before, model.decoder.text_projection.detach())


def test_channels_last_conv_gives_the_same_loss_and_gradients(tiny_bert_dir) -> None:
    model = _melp(tiny_bert_dir)
    batch = _batch()
    ref = _loss_and_grads(model, batch)
    assert apply_perf(model, {"channels_last_conv": True}) == {"channels_last_conv": 1}
    assert model.ecg_tower.encoder.pos_conv.channels_last_conv
    _assert_same(_loss_and_grads(model, batch), ref)


def test_fast_cpu_dropout_switch_draws_other_masks_and_switches_back(tiny_bert_dir) -> None:
    """Another random stream, so another loss under the same seed; deterministic; exactly torch's again when
    switched off; and the step is the eager one where no dropout is active (all p = 0)."""
    from ecg_encoders.cpu_dropout import FastCPUDropout

    model = _melp(tiny_bert_dir)
    batch = _batch()
    ref = _loss_and_grads(model, batch)
    done = apply_perf(model, {"fast_cpu_dropout": True})
    swapped = [m for m in model.modules() if isinstance(m, FastCPUDropout)]
    assert done["fast_cpu_dropout"] > len(swapped) > 0
    assert any(isinstance(m, FastCPUDropout) for m in model.text.modules())  # Hugging Face BERT's dropouts too
    fast = _loss_and_grads(model, batch)
    assert fast[0].item() != ref[0].item()
    _assert_same(_loss_and_grads(model, batch), fast)
    apply_perf(model, {"fast_cpu_dropout": False})
    _assert_same(_loss_and_grads(model, batch), ref)
    for m in model.modules():  # no dropout anywhere: the fast switch changes nothing
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    model.ecg_tower.encoder.encoder.layers.apply(lambda m: setattr(m, "dropout", 0.0) if hasattr(m, "qkv") else None)
    ref0 = _loss_and_grads(model, batch)
    apply_perf(model, {"fast_cpu_dropout": True})
    _assert_same(_loss_and_grads(model, batch), ref0)


def test_the_trainer_configs_switch_the_cpu_kernels_on() -> None:
    from pathlib import Path

    from omegaconf import OmegaConf

    trainers = Path(__file__).resolve().parents[2] / "configs" / "trainer"

    def composed(name: str):  # the file with its Hydra defaults: (same-group files, then _self_) merged in
        raw = OmegaConf.load(trainers / f"{name}.yaml")
        entries = list(raw.pop("defaults", None) or ["_self_"])
        return OmegaConf.merge(*[raw if e == "_self_" else composed(str(e)) for e in entries])

    for name in ("cpu", "gpu", "ddp", "ddp_multinode"):
        perf = composed(name)["perf"]
        assert perf["channels_last_conv"] is True and perf["fast_cpu_dropout"] is True, name
