"""``PretrainModule``: the one Lightning base every ECG-text method (MELP and the baselines) trains with.

Subclasses implement ``compute_losses(batch) -> dict`` (``"loss"`` is optimised), ``embed_ecg`` and, for
ECG-text methods, ``embed_text``. The base owns what must be identical across methods: AdamW with linear
warmup + cosine (by optimiser steps), per-rank step-seeded lead masking, validation zero-shot macro AUROC on
the validation split of the chosen downstream tasks (``val/zs_auroc``, used for checkpoint selection and
early stopping), the encoder protocol that ecg-eval scores, and ``from_checkpoint``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from ecg_data.integrity import check_file_targets, is_trusted, safe_torch_load, to_plain
from ecg_data.loader import finish_batch
from ecg_data.preprocess import random_lead_mask
from ecg_eval.protocol import EncoderCard, InputSpec
from ecg_eval.zeroshot import class_embeddings
from ecg_text_align.components import locate, upgrade_specs
from ecg_text_align.data import DataFacts
from ecg_text_align.losses import clamp_logit_scales_
from ecg_text_align.perf import DEFAULT_OPTIMIZER_IMPL, adamw_impl_kwargs
from ecg_text_align.schedule import warmup_cosine
from ecg_text_align.zeroshot import cosine_scores, macro_auroc

CLASS_KEY = "ecg_text_align_class"
#: the metrics ``selection()`` can name
ZS_AUROC = "val/zs_auroc"
VAL_LOSS = "val/loss"
SELECT_ON = ("auto", "zs_auroc", "val_loss", "last")


class PretrainModule(L.LightningModule):
    """Base of every pretraining method. Subclasses call ``super().__init__(**common)`` then
    ``self.save_hyperparameters()`` so ``from_checkpoint`` can rebuild them from the checkpoint alone."""

    method_name = "pretrain"
    #: attribute names of the sub-modules ``embed_ecg`` runs: the scored encoder, whose size is
    #: ``card.n_parameters`` (``card.n_parameters_training`` counts the whole training model). None = every
    #: module; names the instance lacks (optional heads) are skipped. Override ``scored_modules`` when it
    #: depends on the configuration.
    scored_module_names: tuple[str, ...] | None = None
    #: hyperparameters only needed to *initialise* weights (e.g. a stage-0 checkpoint path); reset to None
    #: when rebuilding from a checkpoint, whose state dict already holds the weights
    init_only_hparams: tuple[str, ...] = ()
    #: AdamW implementation (``ecg_text_align.perf``; the trainer config's ``perf.optimizer_impl`` sets it)
    optimizer_impl: str = DEFAULT_OPTIMIZER_IMPL
    #: caption methods: vocabulary logits only at real (non-pad) label positions (same loss; False = all positions)
    caption_real_positions: bool = True
    #: a method's augmentation of the signal *before* the preset's normalisation, ``(batch, x) -> x``, training
    #: only (ESI jitters millivolts); applied by ``transform_batch``
    augment_raw: Any = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        # ECG-only methods expose no callable encode_text (ecg-eval then marks zero-shot "not applicable")
        if cls.embed_text is PretrainModule.embed_text:
            cls.encode_text = None  # type: ignore[assignment]
        elif cls.encode_text is None:
            cls.encode_text = PretrainModule.encode_text  # type: ignore[method-assign]

    def __init__(
        self,
        *,
        lr: float = 2e-4,
        betas: Sequence[float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        total_steps: int | None = None,
        min_lr_ratio: float = 0.0,
        decay_1d_params: bool = False,
        lead_mask_p: float = 0.0,
        adam_eps: float = 1e-8,
        seed: int = 0,
        input_preset: str = "melp",
        fs: int = 500,
        length: int = 5000,
        model_preset: str = "tiny",
        pretrained_on: Sequence[str] = (),
        zero_shot: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        select_on: str = "auto",
    ):
        super().__init__()
        if select_on not in SELECT_ON:
            raise ValueError(f"select_on must be one of {sorted(SELECT_ON)}, got {select_on!r}")
        #: checkpoint selection (``selection()``): "auto" = zero-shot AUROC where the method has text and
        #: validation tasks, else the last checkpoint; "val_loss" = the training loss on the pretraining
        #: corpus's val split (MELP stage 0, ``main_pretrain.py:57-65``); "zs_auroc"; "last"
        self.select_on = select_on
        self._val_loss_idx: int | None = None
        self._in_val_loss = False
        self.lr, self.betas, self.weight_decay = lr, tuple(betas), weight_decay
        self.warmup_steps, self.total_steps, self.min_lr_ratio = warmup_steps, total_steps, min_lr_ratio
        self.decay_1d_params = decay_1d_params
        self.adam_eps = adam_eps  # torch's default; larger values make AdamW continuous in tiny gradients
        self.lead_mask_p, self.seed = lead_mask_p, seed
        self._input_spec = InputSpec(preset=input_preset, fs=fs, length=length)
        self.model_preset, self.pretrained_on = model_preset, tuple(pretrained_on)
        #: task name -> {class name -> prompts}; one validation dataloader per task, in this order
        self.zero_shot = {t: {c: list(p) for c, p in cp.items()} for t, cp in (zero_shot or {}).items()}
        self._checkpoint_hash: str | None = None
        self._val_outputs: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._class_emb: dict[int, torch.Tensor] = {}
        #: what fit tells the module about its data (``use_data``); empty for plain dataloaders
        self.data_facts = DataFacts()

    # ----- to implement -------------------------------------------------------------------------
    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ----- training -----------------------------------------------------------------------------
    def step_seed(self, *extra: Any) -> int:
        """Seed of the current micro-batch: (seed, rank, optimiser step, batch index, *extra).

        The batch index is part of it so that, with gradient accumulation, the micro-batches of one optimiser
        step get different masks (seeding by the step alone gave all of them the same mask)."""
        batch_idx = getattr(self, "_batch_idx", 0)
        return hash((self.seed, self.global_rank, self.mask_step(), batch_idx, *extra)) & 0x7FFFFFFF

    def mask_step(self) -> int:
        """The step the random masks are keyed by: the optimiser step in training; a fixed -1 while computing
        the validation loss, so every validation pass draws the same masks and the losses compare across epochs."""
        return -1 if getattr(self, "_in_val_loss", False) else int(self.global_step)

    def _augment(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Lead masking keyed by (seed, step, micro-batch index, record): each record gets its own mask, a
        resumed run draws the same masks, and W ranks x B records see exactly the masks one process with W*B
        records sees, however the loader splits and orders the global batch (``ecg_data.augment.random_lead_mask``). Drawn on
        the batch's device. A batch without ``index`` (record rows) falls back to its positions."""
        if self.lead_mask_p <= 0:
            return batch
        # the micro-batch index: with gradient accumulation each micro-batch gets its own masks
        key = hash((self.seed, 0, self.mask_step(), getattr(self, "_batch_idx", 0))) & 0x7FFFFFFF
        x = batch["ecg"]
        rows = batch.get("index")
        return {**batch, "ecg": random_lead_mask(x, self.lead_mask_p, rows=rows, key=key)}

    def use_data(self, facts: DataFacts) -> None:
        """Called by ``ecg_text_align.train.fit`` after the datamodule's setup: the facts about the data this module
        trains on (the module never reaches into the datamodule, nor the datamodule into the module)."""
        self.data_facts = facts

    def transform_batch(self, batch: dict[str, Any], *, augment: bool, lead_masks: bool) -> dict[str, Any]:
        """The one hook of batch transforms, on the training device, in this order: ``ecg`` to float32, the method's
        raw-signal augmentation (``augment_raw``, when ``augment``: training batches), the preset's deferred
        normalisation (``data_facts.normalizer``), step-seeded lead masks (``_augment``, when ``lead_masks``)."""
        raw = self.augment_raw if augment else None
        batch = finish_batch(batch, normalizer=self.data_facts.normalizer, raw_augment=raw)
        return self._augment(batch) if lead_masks else batch

    def on_fit_start(self) -> None:
        # Hugging Face ``from_pretrained`` returns modules in eval mode and Lightning keeps per-module modes:
        # without this, a text tower loaded from disk would train with its dropout off.
        self.train()

    on_train_start = on_fit_start

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        self._batch_idx = batch_idx
        losses = self.compute_losses(self.transform_batch(batch, augment=True, lead_masks=True))
        bs = batch["ecg"].shape[0]
        for k, v in losses.items():
            self.log(f"train/{k}", v.detach(), prog_bar=(k == "loss"), batch_size=bs, sync_dist=False)
        # each contrastive loss beside its chance value (ecg_text_align.monitor warns when it stays there)
        for k, chance in self.contrastive_chance(bs).items():
            self.log(f"train/{k}_chance", float(chance), batch_size=bs, sync_dist=False)
        return losses["loss"]

    def contrastive_chance(self, batch_size: int) -> dict[str, float]:
        """{loss name: its value for a model that has learned nothing}, for the contrastive losses of
        ``compute_losses``: ln(candidates) per direction, times the directions the loss sums. Override in methods
        with a contrastive loss (MELP: ``{"clip": ln B}``, B the global batch when negatives are gathered)."""
        return {}

    def global_batch(self, batch_size: int, gathered: bool = True) -> int:
        """The candidates a contrastive loss sees: the rank's batch, times the ranks when negatives are gathered."""
        world = int(getattr(self.trainer, "world_size", 1) or 1) if self._trainer is not None else 1
        return int(batch_size) * (world if gathered else 1)

    # ----- logit-scale bound: in place after the step, never inside the forward pass ----
    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        clamp_logit_scales_(self)  # MELP ecgfm_model.py:323-326 / merl_model.py:308-311 (on_train_batch_end)

    def _param_groups(self) -> list[dict[str, Any]]:
        decay, no_decay = [], []
        for p in self.parameters():
            if not p.requires_grad:
                continue
            # open_clip: no weight decay on gains, biases, logit scale (1-D / scalar tensors)
            (decay if self.decay_1d_params or p.ndim >= 2 else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": self.weight_decay}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        return groups

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(
            self._param_groups(),
            lr=self.lr,
            betas=self.betas,
            eps=self.adam_eps,
            **adamw_impl_kwargs(self.optimizer_impl),
        )
        total = self.total_steps or int(self.trainer.estimated_stepping_batches)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, self.warmup_steps, total, self.min_lr_ratio)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ----- validation: zero-shot AUROC on the validation split of the chosen tasks ----------------
    def has_text_tower(self) -> bool:
        return type(self).embed_text is not PretrainModule.embed_text

    def selection(self) -> tuple[str, str] | None:
        """(metric, "max"/"min") that ``fit`` selects the best checkpoint and stops early on; None = keep the last."""
        zs = bool(self.zero_shot) and self.has_text_tower()
        if self.select_on == "zs_auroc" and not zs:
            raise ValueError(f"{type(self).__name__}: select_on='zs_auroc' needs zero-shot tasks and a text tower")
        if self.select_on == "val_loss":
            return VAL_LOSS, "min"
        if self.select_on == "zs_auroc" or (self.select_on == "auto" and zs):
            return ZS_AUROC, "max"
        return None

    def on_validation_epoch_start(self) -> None:
        self._val_loss_idx = self.data_facts.loss_val_index
        self._val_outputs = {}
        self._class_emb = {}
        if self.has_text_tower():
            with torch.no_grad():
                for i, prompts in enumerate(self.zero_shot.values()):
                    self._class_emb[i] = torch.from_numpy(class_embeddings(self.embed_text, prompts)).float()

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if dataloader_idx == self._val_loss_idx:
            self._validation_loss_step(batch, batch_idx)
            return
        if dataloader_idx not in self._class_emb:
            return
        emb = self.embed_ecg(self.transform_batch(batch, augment=False, lead_masks=False)["ecg"])
        scores = cosine_scores(emb, self._class_emb[dataloader_idx].to(emb.device))
        self._val_outputs.setdefault(dataloader_idx, []).append((scores.cpu(), batch["labels"].cpu()))

    def _validation_loss_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """The training losses on a batch of the pretraining corpus's val split (eval mode, fixed masks), logged as
        ``val/<name>``: epoch means, reduced across ranks (each rank holds a shard), as the original's
        ``validation_step`` logs them (``base_pretrain_model.py:88-93``, ``sync_dist=True``)."""
        self._batch_idx, self._in_val_loss = batch_idx, True
        try:
            losses = self.compute_losses(self.transform_batch(batch, augment=False, lead_masks=True))
        finally:
            self._in_val_loss = False
        bs = batch["ecg"].shape[0]
        for k, v in losses.items():
            self.log(f"val/{k}", v.detach().float(), on_step=False, on_epoch=True, prog_bar=(k == "loss"), batch_size=bs,
                     sync_dist=True, add_dataloader_idx=False)  # fmt: skip

    def on_validation_epoch_end(self) -> None:
        if not self._class_emb:
            return
        aucs = []
        for i, task in enumerate(self.zero_shot):
            outs = self._val_outputs.get(i, [])
            if not outs:
                continue
            s = torch.cat([o[0] for o in outs])
            y = torch.cat([o[1] for o in outs])
            # every rank scores the whole validation split (plain loaders, no sharding): no gather needed
            auc, _ = macro_auroc(s.float().numpy(force=True), y.numpy(force=True), list(self.zero_shot[task]))
            if not np.isnan(auc):
                self.log(f"val/zs_auroc/{task}", auc, rank_zero_only=False, sync_dist=False)
                aucs.append(auc)
        if aucs:
            self.log("val/zs_auroc", float(np.mean(aucs)), prog_bar=True, sync_dist=False)

    # ----- the encoder protocol (what ecg-eval scores) --------------------------------------------
    def _eval_call(self, fn: Any, arg: Any) -> torch.Tensor:
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                return fn(arg)
        finally:
            self.train(was)

    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 12, T) prepared per ``input_spec`` -> (B, d) features; eval mode, no gradients."""
        return self._eval_call(self.embed_ecg, x.to(self.device, torch.float32))

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no text tower")

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """list of N strings -> (N, d) in the space of ``encode_ecg``; eval mode, no gradients."""
        return self._eval_call(self.embed_text, list(texts))

    def scored_modules(self) -> list[nn.Module | nn.Parameter]:
        """The modules (or bare parameters) ``encode_ecg`` uses (see ``scored_module_names``)."""
        if self.scored_module_names is None:
            return [self]
        return [
            m for n in self.scored_module_names if isinstance(m := getattr(self, n, None), (nn.Module, nn.Parameter))
        ]

    @property
    def input_spec(self) -> InputSpec:
        return self._input_spec

    @property
    def card(self) -> EncoderCard:
        if self._checkpoint_hash is None:
            blob = json.dumps(dict(self.hparams), sort_keys=True, default=str).encode()
            self._checkpoint_hash = "cfg-" + hashlib.sha256(blob).hexdigest()[:12]
        return EncoderCard(
            name=self.method_name,
            checkpoint_hash=self._checkpoint_hash,
            n_parameters=count_parameters(*self.scored_modules()),
            n_parameters_training=count_parameters(self),
            pretrained_on=self.pretrained_on,
            preset=self.model_preset,
        )

    # ----- checkpoints --------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the one dotted-path form (``pkg.module.Class``); ``locate`` still reads the ``pkg.module:Class`` that
        # checkpoints written before 0.2.1 store
        checkpoint[CLASS_KEY] = f"{type(self).__module__}.{type(self).__qualname__}"
        # tensors and plain data only, so that the checkpoint reads back with weights_only=True (config objects,
        # paths, numpy scalars in hyperparameters become dicts, lists, str and numbers)
        for key in ("hyper_parameters", "datamodule_hyper_parameters"):
            if key in checkpoint:
                checkpoint[key] = to_plain(checkpoint[key], key)

    @staticmethod
    def from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> PretrainModule:
        """Load any subclass's checkpoint in one call (the class path is stored in the checkpoint)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        ckpt = safe_torch_load(path, map_location=map_location)  # weights_only: no code runs from the file
        if not isinstance(ckpt, dict) or CLASS_KEY not in ckpt:
            raise ValueError(f"{path}: not an ecg_text_align checkpoint (no {CLASS_KEY!r} entry)")
        cls = _checkpoint_class(ckpt[CLASS_KEY], path)
        hp = upgrade_specs(dict(ckpt.get("hyper_parameters", {})))  # 0.1 checkpoints: old component specs
        if not is_trusted(path):  # the components it names: the project's, or the method's own package
            check_file_targets(hp, path, allowed=[cls.__module__.split(".", 1)[0]])
        for k in getattr(cls, "init_only_hparams", ()):
            if k in hp:
                hp[k] = None
        from ecg_text_align.portable import relocate_paths

        relocate_paths(hp, path)  # a moved or copied run finds its own text tower (ecg_text_align.portable)
        model = cls(**hp)
        model.load_state_dict(_without_removed(ckpt["state_dict"], model.state_dict()))
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        model._checkpoint_hash = h.hexdigest()[:16]
        model.eval()
        return model

    def save_pretrained(self, out_dir: str | Path, card: Mapping[str, Any] | None = None) -> Path:
        """A self-contained model directory (safetensors + config.json + text tower + card): ecg_text_align.pretrained."""
        from ecg_text_align.pretrained import save_pretrained

        return save_pretrained(self, out_dir, card=card)

    @staticmethod
    def from_pretrained(name_or_path: str | Path, map_location: str | torch.device = "cpu") -> Any:
        """Load an exported directory or hub id (``hf:ORG/NAME``), weights via safetensors only."""
        from ecg_text_align.pretrained import from_pretrained

        return from_pretrained(name_or_path, map_location=map_location)


#: parameters removed because they took no part in the loss (DDP without the unused-parameter search); a
#: checkpoint written before the removal still loads: exactly these keys are dropped, any other mismatch is an error
REMOVED_UNUSED = (
    ".pooler.dense.",
    "encoder.mask_emb",
    "attn_pool_caption.",
    "ln_caption.",
    "encoder.mask_token",
    "decoder.mask_token",
)


def _checkpoint_class(path_str: Any, source: Path) -> type:
    """The class a checkpoint names, imported only if it is a ``PretrainModule`` subclass (a file that names
    ``os.system`` is refused before anything is called)."""
    from ecg_data.integrity import UntrustedFileError

    try:
        cls = locate(str(path_str))
    except ImportError as err:
        raise ValueError(f"{source}: its class {path_str!r} cannot be imported ({err})") from None
    if not (isinstance(cls, type) and issubclass(cls, PretrainModule)):
        raise UntrustedFileError(f"{source}: refused to load: its class {path_str!r} is not a PretrainModule subclass")
    return cls


def _without_removed(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k in own or not any(r in k for r in REMOVED_UNUSED)}


def count_parameters(*parts: nn.Module | nn.Parameter) -> int:
    """Parameters of modules and bare parameters together, each tensor once (modules may share or nest)."""
    seen = {id(p): p.numel() for m in parts for p in ([m] if isinstance(m, nn.Parameter) else m.parameters())}
    return sum(seen.values())


def count_trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
