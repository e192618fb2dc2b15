"""HeartLang's two pretraining stages as ``PretrainModule`` subclasses (ECG-only: no ``embed_text``).

1. ``HeartLangVQ`` -- VQ-HBR: heartbeat tokens -> transformer -> cosine-EMA codebook -> reconstruction
   (``modeling_vqhbr.py``, ``engine_for_vqhbr.py``; loss = MSE reconstruction + commitment).
2. ``HeartLangMSM`` -- masked sentence modelling: 50% of a record's beat tokens replaced by [MASK], the
   sentence transformer predicts their VQ-HBR codebook ids (``modeling_pretrain.py``,
   ``engine_for_pretraining.py``). The frozen VQ of stage 1 provides the targets.

The networks themselves are ``ecg_encoders.ecg.heartlang`` (docs/encoders_conv.md); this module only
wires them into the shared training protocol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecg_data.integrity import safe_torch_load
from ecg_data.preprocess import HEARTLANG_DOWNSTREAM
from ecg_encoders.ecg.heartlang import (
    HeartbeatTokenizer,
    build_heartbeat_vq,
    build_heartlang,
    build_msm_head,
    masked_beat_loss,
    random_beat_mask,
)
from ecg_eval.protocol import InputSpec
from ecg_text_align.module import PretrainModule

#: Downstream inputs per dataset, as the original prepares each: ecg-data's table (one for the trained baseline and the
#: released weights), each entry with its source file:line there. Read by ``ecg_eval.protocol.preset_for``.
DOWNSTREAM_PRESETS: dict[str, str] = HEARTLANG_DOWNSTREAM


class _DownstreamInputs:
    """Adds ``DOWNSTREAM_PRESETS`` to the module's ``input_spec`` (pretraining reads only ``.preset``, unchanged)."""

    @property
    def input_spec(self) -> InputSpec:
        spec = super().input_spec  # type: ignore[misc]
        return dataclasses.replace(spec, task_presets=tuple(DOWNSTREAM_PRESETS.items()))


class HeartLangVQ(_DownstreamInputs, PretrainModule):
    method_name = "heartlang_vqhbr"

    def __init__(
        self,
        vq_preset: str = "tiny",
        vq_overrides: Mapping[str, Any] | None = None,
        tokenizer: Mapping[str, Any] | None = None,
        input_preset: str = "heartlang",  # the input this model reads: 100 Hz, band-pass 0.67-40 Hz (HeartLang README)
        fs: int = 100,
        length: int = 1000,
        **common: Any,
    ):
        # the optimiser values (lr, betas, weight_decay, ...) are the stage's, from the method config
        # (configs/method/heartlang.yaml, experiment=heartlang_paper, each with its source)
        common.setdefault("model_preset", vq_preset)
        super().__init__(input_preset=input_preset, fs=fs, length=length, **common)
        self.save_hyperparameters()
        self.vq = build_heartbeat_vq(vq_preset, **dict(vq_overrides or {}))
        self.tokenizer = HeartbeatTokenizer(fs=self.input_spec.fs, **dict(tokenizer or {}))

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        out = self.vq(self.tokenizer(batch["ecg"]))
        return {"loss": out.loss, "rec": out.rec_loss.detach(), "quant": out.quant_loss.detach()}

    def scored_modules(self) -> list[nn.Module | nn.Parameter]:
        """``vq.encode``: the encoder half and the codebook (the decoder only trains it)."""
        return [self.vq.encoder, self.vq.encode_task_layer, self.vq.quantizer]

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        """Mean quantised code over the real beats (for inspection; the scored encoder is stage 2's)."""
        tokens = self.tokenizer(x)
        z_q, _, _ = self.vq.encode(tokens)
        keep = (~tokens.padding_mask).to(z_q.dtype)[..., None]
        return (z_q * keep).sum(1) / keep.sum(1).clamp(min=1.0)


class HeartLangMSM(_DownstreamInputs, PretrainModule):
    method_name = "heartlang"
    scored_module_names = ("encoder",)  # the sentence transformer; the MSM head and the VQ only train it

    def __init__(
        self,
        preset: str = "tiny",
        encoder_overrides: Mapping[str, Any] | None = None,
        vq_preset: str = "tiny",
        vq_overrides: Mapping[str, Any] | None = None,
        mask_ratio: float = 0.5,
        exclude_padding: bool = True,
        input_preset: str = "heartlang",  # the input this model reads: 100 Hz, band-pass 0.67-40 Hz (HeartLang README)
        fs: int = 100,
        length: int = 1000,
        **common: Any,
    ):
        # the optimiser values (lr, betas, weight_decay, ...) are the stage's, from the method config
        # (configs/method/heartlang.yaml, experiment=heartlang_paper, each with its source)
        common.setdefault("model_preset", preset)
        super().__init__(input_preset=input_preset, fs=fs, length=length, **common)
        self.save_hyperparameters()
        self.encoder = build_heartlang(preset, **dict(encoder_overrides or {}))
        self.head = build_msm_head(
            preset, **{k: v for k, v in dict(encoder_overrides or {}).items() if k in ("width", "vocab_size")}
        )
        self.vq = build_heartbeat_vq(vq_preset, **dict(vq_overrides or {}))
        if self.vq.n_codes != self.encoder.vocab_size:
            raise ValueError(
                f"HeartLang vocab_size {self.encoder.vocab_size} != VQ-HBR codebook size {self.vq.n_codes}"
            )
        self.vq.requires_grad_(False)  # targets only (engine_for_pretraining.py: vqhbr in eval, no grad)

    def load_vq(self, path: str | Path) -> None:
        """Take the stage-1 VQ-HBR weights (codebook included) from its checkpoint."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"VQ-HBR checkpoint not found: {path}")
        state = safe_torch_load(path)  # weights_only: no code runs from the file
        state = state.get("state_dict", state)
        vq_state = {k[len("vq.") :]: v for k, v in state.items() if k.startswith("vq.")}
        if not vq_state:
            raise ValueError(f"{path}: no 'vq.*' weights (expected a HeartLangVQ checkpoint)")
        from ecg_text_align.module import _without_removed

        self.vq.load_state_dict(_without_removed(vq_state, self.vq.state_dict()))  # pre-DDP-fix [MASK] keys dropped

    def train(self, mode: bool = True) -> HeartLangMSM:
        super().train(mode)
        self.vq.eval()  # the tokenizer of targets never trains
        return self

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        tokens = self.encoder.tokenize(batch["ecg"])
        # exclude_padding=false is the original: padding slots can be masked *and* carry loss on their code
        # (engine_for_pretraining.py computes the CE on every masked slot); true: real beats only
        ids = self.vq.codebook_ids(tokens, ignore_index=-100 if self.hparams.exclude_padding else None)
        g = torch.Generator().manual_seed(self.step_seed(7))
        mask = random_beat_mask(
            tokens.padding_mask.cpu(),
            self.hparams.mask_ratio,
            exclude_padding=self.hparams.exclude_padding,
            generator=g,
        ).to(tokens.padding_mask.device)
        out = self.encoder.encode_tokens(tokens, mask)
        loss, acc = masked_beat_loss(self.head, out.tokens, mask, ids)
        return {"loss": loss, "masked_acc": acc, "mask_frac": mask.float().mean().detach()}

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        """The [CLS] state (ST_ECGFormerClassifier reads ``backbone(...)[:, 0]``)."""
        return self.encoder(x).pooled
