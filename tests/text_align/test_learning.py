"""Is it learning? Every method with a text tower must lower each of its loss terms on a fixed synthetic batch within a
few dozen steps (a dead gradient path -- a frozen tower, a detached projection, a loss that ignores its input --
fails here), and the training monitor must say so when a contrastive loss stays at chance."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ecg_data.synthetic.generate import generate_records

STEPS = 30


@pytest.fixture(scope="module")
def batch() -> dict:
    """Eight synthetic records (MIMIC-style reports), in millivolts; each test normalises them as its method's preset
    does (MELP, MERL: min-max over the record; ESI: z-score per lead)."""
    recs = list(generate_records(8, 11, "easy", profile="mimic"))
    x = torch.from_numpy(np.stack([r.signal for r in recs])).float()
    return {"ecg": x, "report": [r.report for r in recs], "index": torch.arange(8)}


def _prepared(batch: dict, method: str) -> dict:
    x = batch["ecg"]
    if method == "esi":
        x = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-8)
    else:
        lo, hi = x.amin(dim=(1, 2), keepdim=True), x.amax(dim=(1, 2), keepdim=True)
        x = (x - lo) / (hi - lo + 1e-8)
    return {**batch, "ecg": x}


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory, batch: dict) -> Path:
    from ecg_encoders.text.offline import init_text_model_dir

    return init_text_model_dir(
        batch["report"] * 4,
        tmp_path_factory.mktemp("bert") / "bert",
        vocab_size=150,
        layers=2,
        width=32,
        heads=2,
        ffn_dim=64,
        max_positions=128,
    )


def _text(path: Path, **kw) -> dict:
    return {
        "_target_": "ecg_encoders.text.presets.build_text_preset",
        "name": "offline_default",
        "path": str(path),
        "freeze_layers": 1,
        **kw,
    }


def _melp(bert: Path):
    from ecg_text_align.melp import MELP

    return MELP(
        ecg_tower={
            "_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower",
            "preset": "tiny",
            "pooler": {
                "shared_dim": 16,
                "caption_dim": 32,
                "n_queries_caption": 8,
                "n_queries_contrast": 4,
                "heads": 2,
            },
        },
        text_encoder=_text(bert, max_length=64),
        shared_dim=16,
        decoder_layers=1,
        decoder_heads=2,
        max_sentences=4,
        lr=1e-3,
    )


def _merl(bert: Path):
    from baselines.merl.model import MERL

    return MERL(text_encoder=_text(bert, causal=False, add_trailing_cls=False, pooling="mean"), proj_hidden=16, lr=1e-3)


def _esi(bert: Path):
    from baselines.esi.model import ESI

    return ESI(
        text_encoder=_text(bert, causal=True, add_trailing_cls=True, pooling="last", max_length=128),
        decoder_layers=1,
        decoder_heads=2,
        enrich_captions=False,
        caption_demographics=False,
        lr=1e-3,
    )


@pytest.mark.parametrize("build", [_melp, _merl, _esi], ids=["melp", "merl", "esi"])
def test_each_loss_term_falls_on_a_fixed_batch(build, bert: Path, batch: dict) -> None:
    torch.manual_seed(0)
    model = build(bert)
    model.train()
    batch = _prepared(batch, build.__name__.strip("_"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    terms = None
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for _ in range(STEPS):
        losses = model.compute_losses(batch)
        if terms is None:
            terms = [k for k in losses if k not in ("loss", "logit_scale")]
            first = {k: float(losses[k].detach()) for k in terms}
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        last = {k: float(losses[k].detach()) for k in terms}
    assert terms, "no loss term"
    for k in terms:
        assert last[k] < 0.8 * first[k], f"{k} did not fall: {first[k]:.3f} -> {last[k]:.3f} in {STEPS} steps"
    chance = model.contrastive_chance(8)
    assert chance, "a method with a text tower declares its contrastive losses' chance values"
    for k, c in chance.items():
        assert k in terms and c == pytest.approx(
            (2.0 if k in ("clip", "uma") and type(model).__name__ == "MERL" else 1.0) * math.log(8)
        )


def test_monitor_warns_at_chance_and_draws_the_curve(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A contrastive loss pinned at ln B: one warning after a quarter of the steps; the curve and its table written."""
    import lightning as L
    from torch.utils.data import DataLoader

    from ecg_text_align.module import PretrainModule
    from ecg_text_align.monitor import CURVE_CSV, CURVE_PNG, LearningMonitor

    class AtChance(PretrainModule):
        def __init__(self) -> None:
            super().__init__(lr=1e-2)
            self.w = torch.nn.Parameter(torch.zeros(4))

        def compute_losses(self, batch):
            clip = torch.tensor(math.log(8.0)) + 0.0 * self.w.sum()
            return {"clip": clip, "other": (self.w - 1).pow(2).sum(), "loss": clip + (self.w - 1).pow(2).sum()}

        def embed_ecg(self, x):
            return x

        def contrastive_chance(self, batch_size):
            return {"clip": math.log(self.global_batch(batch_size))}

    data = DataLoader([{"ecg": torch.zeros(12, 4)} for _ in range(8 * 40)], batch_size=8)
    monitor = LearningMonitor(tmp_path)
    trainer = L.Trainer(
        max_steps=40,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[monitor],
        log_every_n_steps=2,
        accelerator="cpu",
    )
    with caplog.at_level(logging.WARNING, logger="ecg_text_align.monitor"):
        trainer.fit(AtChance(), train_dataloaders=data)
    warnings = [r for r in caplog.records if "still at chance" in r.getMessage()]
    assert len(warnings) == 1 and "train/clip" in warnings[0].getMessage()
    assert (tmp_path / CURVE_PNG).stat().st_size > 1000
    rows = (tmp_path / CURVE_CSV).read_text().splitlines()
    assert rows[0].startswith("step,") and "train/clip_chance" in rows[0] and len(rows) > 10
    # the curve survives a resume: the history is the callback's checkpoint state
    again = LearningMonitor(tmp_path)
    again.load_state_dict(monitor.state_dict())
    assert again.history == monitor.history and again.warned == ["train/clip"]
