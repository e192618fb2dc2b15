"""The random-init baseline: MELP's ECG tower (wav2vec2 + poolers), never trained.

Why: recent work finds randomly initialised ECG encoders competitive on some linear-probe tasks; the
leaderboard must show how far each pretraining method is above that floor. The weights are a pure
function of the tower config and the seed, so the card's checkpoint hash is derived from them and a rerun
scores the very same network. ECG-only (no ``encode_text``): zero-shot cells are "not applicable".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ecg_data.paths import stable_hash
from ecg_eval.protocol import EncoderCard, InputSpec
from ecg_text_align.components import build

DEFAULT_TOWER = {"_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower", "preset": "tiny"}


class RandomInitEncoder:
    """Encoder protocol object: ``encode_ecg`` = MELP's rhythm embedding (mean of the beat queries)."""

    def __init__(
        self,
        tower: Mapping[str, Any] = DEFAULT_TOWER,
        seed: int = 0,
        name: str = "random_init",
        input_preset: str = "melp",
        fs: int = 500,
        length: int = 5000,
        pretrained_on: tuple[str, ...] = (),
    ):
        spec = dict(tower)
        self._init_kwargs = {
            "tower": spec,
            "seed": int(seed),
            "name": name,
            "input_preset": input_preset,
            "fs": fs,
            "length": length,
            "pretrained_on": list(pretrained_on),
        }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.tower = build(dict(spec))
        self.tower.eval()
        self.input_spec = InputSpec(preset=input_preset, fs=fs, length=length)
        ident = {
            "tower": spec,
            "seed": int(seed),
            "input": [input_preset, fs, length],
            "torch": torch.__version__.split("+")[0],
        }
        self.card = EncoderCard(
            name=name,
            checkpoint_hash="init-" + stable_hash(ident, 16),
            n_parameters=sum(p.numel() for p in self.tower.parameters()),
            pretrained_on=tuple(pretrained_on),
            preset=str(spec.get("preset", "custom")),
            extra={"random_init_seed": int(seed)},
        )

    def export_spec(self) -> tuple[str, dict[str, Any], torch.nn.Module]:
        """What ``ecg_text_align.pretrained.save_pretrained`` stores: class, constructor kwargs, weights."""
        return f"{__name__}.RandomInitEncoder", dict(self._init_kwargs), self.tower

    def set_checkpoint_hash(self, digest: str) -> None:
        self.card = replace(self.card, checkpoint_hash=digest)

    @torch.no_grad()
    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tower(x.to(torch.float32))
        return out.beats.mean(dim=1)  # as MELP.embed_ecg: rhythm = mean of the beat embeddings


def load(path: str | Path | None = None, **kw: Any) -> RandomInitEncoder:
    """The method's loader (``load._target_``): there is no checkpoint, so ``path`` must be None."""
    if path is not None:
        raise ValueError(f"random_init has no checkpoint to load (got ckpt={path}); its weights come from `seed`")
    return RandomInitEncoder(**kw)
