"""Every trainable parameter of every method stage receives a gradient from one training step.

Why: the DDP configs run with ``find_unused_parameters=False`` (no per-step search of the autograd graph); one
parameter outside the loss makes DDP fail on the second step ("parameters that were not used in producing the
loss"). Each stage is built as its runner stage builds it (tiny presets) and takes one ``training_step``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPORTS = [
    "Sinus rhythm. Normal ECG.",
    "Atrial fibrillation with rapid ventricular response. Abnormal ECG.",
    "Sinus bradycardia. Left bundle branch block. Abnormal ECG.",
    "Sinus tachycardia. ST depression, consider ischemia. Abnormal ECG.",
]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ecg_encoders.text.offline import init_text_model_dir

    return init_text_model_dir(
        REPORTS * 5,
        tmp_path_factory.mktemp("bert") / "tiny-bert",
        vocab_size=120,
        layers=2,
        width=32,
        heads=2,
        ffn_dim=64,
        max_positions=200,
    )


def _text(path: Path, **kw) -> dict:
    return {
        "_target_": "ecg_encoders.text.presets.build_text_preset",
        "name": "offline_default",
        "path": str(path),
        "freeze_layers": 1,
        **kw,
    }


def _ecg(n: int, fs: int = 500, seconds: int = 10) -> torch.Tensor:
    """Spiky ECG-like signals (R-peaks every 0.8 s) so HeartLang's tokenizer finds beats."""
    t = torch.arange(fs * seconds) / fs
    beat = torch.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.01**2))
    g = torch.Generator().manual_seed(0)
    return beat.expand(n, 12, -1) + 0.05 * torch.randn(n, 12, fs * seconds, generator=g)


def _build(name: str, bert: Path):
    torch.manual_seed(0)
    if name == "melp/stage0":
        from ecg_text_align.melp_stage0 import MELPStage0

        return MELPStage0(), {"ecg": _ecg(4)}
    if name in ("melp/melp", "melp/melp-rpeaks"):
        from ecg_text_align.melp import MELP

        beat_source = "rpeaks" if name.endswith("rpeaks") else "queries"
        return MELP(
            text_encoder=_text(bert, max_length=32),
            shared_dim=32,
            decoder_layers=1,
            decoder_heads=2,
            lead_mask_p=0.5,
            beat_source=beat_source,
        ), {"ecg": _ecg(4), "report": REPORTS}
    if name == "merl/merl":
        from baselines.merl.model import MERL

        return MERL(text_encoder=_text(bert, causal=False, add_trailing_cls=False, pooling="pooler"), proj_hidden=16), {
            "ecg": _ecg(4),
            "report": REPORTS,
        }
    if name == "esi/esi":
        from baselines.esi.model import ESI

        return ESI(
            text_encoder=_text(
                bert, causal=True, add_trailing_cls=True, pooling="last", max_length=64, freeze_layers=0
            ),
            decoder_layers=1,
            decoder_heads=2,
        ), {"ecg": _ecg(4), "report": REPORTS}
    if name == "heartlang/vqhbr":
        from baselines.heartlang.model import HeartLangVQ

        return HeartLangVQ(), {"ecg": _ecg(4, fs=100)}
    if name == "heartlang/msm":
        from baselines.heartlang.model import HeartLangMSM

        return HeartLangMSM(), {"ecg": _ecg(4, fs=100)}
    if name == "text_lm":
        from ecg_text_align.lm import MLMModule

        module = MLMModule(model_dir=str(bert), max_length=32)
        return module, module.collate([{"text": r} for r in REPORTS])
    raise KeyError(name)


STAGES = [
    "text_lm",
    "melp/stage0",
    "melp/melp",
    "melp/melp-rpeaks",
    "merl/merl",
    "esi/esi",
    "heartlang/vqhbr",
    "heartlang/msm",
]


@pytest.mark.parametrize("stage", STAGES)
def test_every_trainable_parameter_gets_a_gradient(stage: str, bert_dir: Path) -> None:
    module, batch = _build(stage, bert_dir)
    module.train()
    trainable = {k: p for k, p in module.named_parameters() if p.requires_grad}
    assert trainable, f"{stage}: nothing to train"
    loss = module.training_step(batch, 0)
    loss = loss["loss"] if isinstance(loss, dict) else loss
    loss.backward()
    unused = sorted(k for k, p in trainable.items() if p.grad is None)
    assert not unused, f"{stage}: parameters outside the loss (DDP find_unused_parameters=False fails): {unused}"


def test_removed_parameters_are_absent_where_unused(bert_dir: Path) -> None:
    """The specific parameters the issue found unused are gone, and kept where they are used."""
    s0, _ = _build("melp/stage0", bert_dir)
    melp, _ = _build("melp/melp", bert_dir)
    merl, _ = _build("merl/merl", bert_dir)
    names0 = {k for k, _ in s0.named_parameters()}
    names2 = {k for k, _ in melp.named_parameters()}
    assert "ecg_tower.encoder.mask_emb" in names0 and not any("attn_pool_caption" in k for k in names0)
    assert "ecg_tower.encoder.mask_emb" not in names2 and any("attn_pool_caption" in k for k in names2)
    assert not any(".pooler." in k for k in names2)
    assert any("text.model.pooler." in k for k, _ in merl.named_parameters())  # MERL pools with it


def test_checkpoint_from_before_the_removal_still_loads(tmp_path: Path) -> None:
    """Old checkpoints carry the removed (never trained) tensors: exactly those are dropped, nothing else."""
    from ecg_text_align.melp_stage0 import MELPStage0
    from ecg_text_align.module import CLASS_KEY, PretrainModule

    torch.manual_seed(0)
    model = MELPStage0()
    sd = model.state_dict()
    old = {**sd, "ecg_tower.attn_pool_caption.query": torch.zeros(8, 64), "ecg_tower.ln_caption.weight": torch.ones(64)}
    ckpt = {
        CLASS_KEY: "ecg_text_align.melp_stage0:MELPStage0",
        "hyper_parameters": dict(model.hparams),
        "state_dict": old,
    }
    torch.save(ckpt, tmp_path / "old.ckpt")
    loaded = PretrainModule.from_checkpoint(tmp_path / "old.ckpt")
    torch.testing.assert_close(loaded.state_dict()["ecg_tower.encoder.mask_emb"], sd["ecg_tower.encoder.mask_emb"])
    torch.save({**ckpt, "state_dict": {**sd, "ecg_tower.something_else": torch.zeros(1)}}, tmp_path / "bad.ckpt")
    with pytest.raises(RuntimeError, match="something_else"):
        PretrainModule.from_checkpoint(tmp_path / "bad.ckpt")
