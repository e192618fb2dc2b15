"""Full fine-tuning: the whole ECG encoder plus a linear head, on the same fixed 1/10/100 % training subsets.

Why here and not in the methods: every method must be fine-tuned by the same loop so that differences come from
the encoder. The loop is plain PyTorch — AdamW, optional layer-wise learning-rate decay, linear warm-up then
cosine decay, binary cross-entropy on sigmoid outputs — with early stopping on the **validation** macro AUROC;
the test split is scored once, by the best-validation weights.

The encoder is fine-tuned through an optional protocol capability: ``embed_ecg(x) -> (B, d)`` on an
``nn.Module`` (the same features as ``encode_ecg``, with gradients; ``ecg_text_align.PretrainModule`` has it).
The trainable parameters are those that ``embed_ecg``'s output depends on (found by one backward pass), so a
text tower or decoder in the same module is neither trained nor decayed. The encoder is deep-copied first: the
object passed in is left unchanged for the other modes.

Distributed: when ``torch.distributed`` is initialised (``torchrun``; the trainer configs), the model is wrapped
in ``DistributedDataParallel``, each rank trains on its shard of the subset (``DistributedSampler``), every rank
scores validation/test on the whole split (so selection is identical on all ranks) and only rank 0 writes files.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ecg_eval.embeddings import model_rows
from ecg_eval.metrics import macro_auroc
from ecg_eval.protocol import finetune_module, supports_finetune

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning recipe. The defaults are the protocol's recipe for a method without its own: AdamW lr 1e-3,
    weight decay 1e-4, cosine to 1e-5, batch 128, at most 100 epochs, early stopping patience 5 on val AUROC.
    A method's own recipe is in its config (``eval.finetune`` of ``configs/method/<name>.yaml``, each value with its
    source there); the runner passes it as the ``finetune_config`` option. This module knows no method names."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    layer_decay: float | None = None  # e.g. 0.9: lr x decay^(depth from the top)
    max_epochs: int = 100
    batch_size: int = 128
    patience: int = 5  # epochs without a better val macro AUROC before stopping
    warmup_epochs: int = 0
    final_lr: float = 1e-5
    eval_batch_size: int = 256
    device: str | None = None  # None: cuda when available, else cpu

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_option(cls, value: FinetuneConfig | dict | None) -> FinetuneConfig:
        """The ``finetune_config`` option as a config: a ``FinetuneConfig``, a dict of its fields (plain data from a
        config file), or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise TypeError(
                f"finetune_config: unknown field(s) {sorted(unknown)}; valid: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**value)


class FinetuneModel(nn.Module):
    """``embed_ecg`` of a (copied) encoder followed by one linear layer."""

    def __init__(self, encoder: nn.Module, dim: int, n_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.embed_ecg(x))  # type: ignore[operator]


_BLOCK = re.compile(r"(?<![A-Za-z_])(?:layers|blocks)\.(\d+)\.")


def layer_ids(names: list[str]) -> tuple[dict[str, int], int]:
    """Depth of each parameter: 0 = everything before the first numbered block (stem, patch/feature embedding),
    i + 1 = block i (``...layers.i.`` / ``...blocks.i.``), n_blocks + 1 = everything after (norms, poolers, head).
    Returns (name -> id, n_blocks). Without numbered blocks (ResNet, ConvNeXt stages) every id is 0."""
    found = [(_BLOCK.search(n), n) for n in names]
    n_blocks = 1 + max((int(m.group(1)) for m, _ in found if m), default=-1)
    ids, seen_block = {}, False
    for m, n in found:
        if m:
            seen_block = True
            ids[n] = int(m.group(1)) + 1
        else:
            ids[n] = n_blocks + 1 if seen_block else 0
    return ids, n_blocks


def param_groups(model: FinetuneModel, trainable: list[str], cfg: FinetuneConfig) -> tuple[list[dict], dict]:
    """AdamW groups: layer-wise lr scale decay^(n_blocks + 1 - id); no weight decay on biases and norms (1-d)."""
    params = dict(model.named_parameters())
    enc = [n for n in trainable if n.startswith("encoder.")]
    ids, n_blocks = layer_ids([n[len("encoder.") :] for n in enc])
    info: dict[str, Any] = {"n_blocks": n_blocks, "layer_decay_applied": bool(cfg.layer_decay and n_blocks > 0)}
    if cfg.layer_decay and n_blocks == 0:
        info["note"] = "layer_decay ignored: the encoder has no numbered layers/blocks"
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for n in trainable:
        depth = ids.get(n[len("encoder.") :], n_blocks + 1) if n.startswith("encoder.") else n_blocks + 1
        scale = cfg.layer_decay ** (n_blocks + 1 - depth) if info["layer_decay_applied"] else 1.0
        wd = 0.0 if params[n].ndim <= 1 else cfg.weight_decay
        groups.setdefault((scale, wd), []).append(params[n])
    out = [
        {"params": ps, "lr": cfg.lr * s, "lr_scale": s, "weight_decay": wd} for (s, wd), ps in sorted(groups.items())
    ]
    info["lr_scales"] = sorted({g["lr_scale"] for g in out})
    return out, info


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _predict(model: nn.Module, signals: Any, rows: np.ndarray, batch: int, device: torch.device) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            x = torch.from_numpy(np.array(signals[rows[i : i + batch]], dtype=np.float32)).to(device)
            out.append(torch.sigmoid(model(x)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _lr_factor(step: int, total: int, warmup: int, floor: float) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


@dataclass
class FinetuneFit:
    model: nn.Module
    best_epoch: int
    val_macro_auroc: float | None
    history: list[dict]
    stopped_early: bool
    groups: dict
    n_trainable: int

    def selection(self) -> dict:
        return {
            "best_epoch": self.best_epoch,
            "val_macro_auroc": self.val_macro_auroc,
            "stopped_early": self.stopped_early,
            "history": self.history,
            "param_groups": self.groups,
            "n_trainable_parameters": self.n_trainable,
        }


def fit_finetune(
    encoder: Any,
    train_signals: Any,
    train_rows: np.ndarray,
    y_train: np.ndarray,
    val_signals: Any,
    val_rows: np.ndarray,
    y_val: np.ndarray,
    *,
    config: FinetuneConfig,
    seed: int = 0,
) -> FinetuneFit:
    """Train a copy of ``encoder`` + a linear head; keep the best-validation weights."""
    rank, world = _rank_world()
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    torch.manual_seed(seed)
    module = finetune_module(encoder)
    if module is None:
        raise TypeError(f"{type(encoder).__name__} has no embed_ecg on an nn.Module: it cannot be fine-tuned")
    enc = copy.deepcopy(module).to(device)
    enc.eval()  # the dry pass that finds the trainable parameters must not touch batch-norm statistics
    probe_x = torch.from_numpy(np.array(train_signals[train_rows[:2]], dtype=np.float32)).to(device)
    feats = enc.embed_ecg(probe_x)  # type: ignore[operator]
    model = FinetuneModel(enc, int(feats.shape[1]), y_train.shape[1]).to(device)
    model.zero_grad()
    feats.float().sum().backward()
    enc.train()
    trainable = ["head.weight", "head.bias"] + [f"encoder.{n}" for n, p in enc.named_parameters() if p.grad is not None]
    for n, p in model.named_parameters():
        p.requires_grad_(n in trainable)
        p.grad = None
    groups, info = param_groups(model, trainable, config)
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    n = len(train_rows)
    steps_per_epoch = math.ceil(math.ceil(n / world) / config.batch_size)
    total = steps_per_epoch * config.max_epochs
    warm = steps_per_epoch * config.warmup_epochs
    floor = config.final_lr / config.lr if config.lr else 0.0
    gen = np.random.default_rng(seed)
    y_t = torch.as_tensor(np.asarray(y_train, dtype=np.float32))
    best: tuple[float, int, dict | None] = (-math.inf, -1, None)
    history, bad, step, stopped = [], 0, 0, False
    for epoch in range(config.max_epochs):
        # The same permutation on every rank, padded by wrap-around to a multiple of the world size so that every
        # rank takes the same number of steps (as DistributedSampler does); shards are disjoint otherwise.
        order = np.resize(gen.permutation(n), world * math.ceil(n / world))[rank::world]
        net.train()
        losses = []
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            x = torch.from_numpy(np.array(train_signals[train_rows[idx]], dtype=np.float32)).to(device)
            y = y_t[idx].to(device)
            for g in opt.param_groups:
                g["lr"] = config.lr * g["lr_scale"] * _lr_factor(step, total, warm, floor)
            loss = nn.functional.binary_cross_entropy_with_logits(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
        val = macro_auroc(y_val, _predict(model, val_signals, val_rows, config.eval_batch_size, device))
        history.append(
            {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else None, "val_macro_auroc": val}
        )
        score = -math.inf if val is None else val
        if score > best[0]:
            best, bad = (score, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()}), 0
        else:
            bad += 1
            if bad >= config.patience:
                stopped = True
                break
    if best[2] is not None:
        model.load_state_dict(best[2])
    return FinetuneFit(
        model=model,
        best_epoch=best[1],
        val_macro_auroc=None if best[0] == -math.inf else best[0],
        history=history,
        stopped_early=stopped,
        groups=info,
        n_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )


def runner_options(section: dict) -> dict:
    """``eval.finetune`` -> mode options: its ``FinetuneConfig`` fields as ``finetune_config`` (none: the defaults).
    The runner has already put the method's own recipe (``eval.finetune`` of its method config) under these keys."""
    fields = {k: v for k, v in section.items() if k in FinetuneConfig.__dataclass_fields__}
    return {"finetune_config": FinetuneConfig(**fields)} if fields else {}


def score_finetune(call: Any) -> dict:
    """Fine-tune on ``task.train_subset(fraction, seed)``, select on val, score test once; return the
    ``finetune-<percent>-seed<k>`` result (the harness writes it on rank 0; predictions are written here, on rank 0).
    An encoder without ``embed_ecg`` gets a ``not_applicable`` result. Option: ``finetune_config`` (a
    ``FinetuneConfig`` or a dict of its fields; default: ``FinetuneConfig()``; its ``device`` defaults to the
    harness's). The row name never selects a recipe: the caller passes the method's."""
    from ecg_eval import bootstrap as bs
    from ecg_eval.cells import not_applicable
    from ecg_eval.embeddings import default_split_loader, place_encoder
    from ecg_eval.metrics import multilabel_auroc
    from ecg_eval.protocol import preset_for
    from ecg_eval.results import predictions_path, write_predictions

    encoder, task, fraction, seed = call.encoder, call.task, call.fraction, call.seed
    unknown = set(call.options) - {"finetune_config"}
    if unknown:
        raise TypeError(f"finetune: unknown option(s) {sorted(unknown)}; valid: finetune_config")
    target = call.target
    place_encoder(encoder, target)  # the fine-tuning copy follows the encoder's device
    if fraction is None:
        raise ValueError("finetune needs fraction (0.01, 0.1 or 1.0)")
    cfg = FinetuneConfig.from_option(call.options.get("finetune_config"))
    if cfg.device is None:
        cfg = replace(cfg, device=str(target))
    n_resamples, bootstrap_seed, split_loader = call.n_resamples, call.bootstrap_seed, call.split_loader
    result = call.start()
    result["config"] = {
        "caller": call.caller_config(),
        "finetune": cfg.to_dict(),
        "n_resamples": n_resamples,
        "bootstrap_seed": bootstrap_seed,
    }
    rank, world = _rank_world()
    if not supports_finetune(encoder):
        return not_applicable(result, "encoder exposes no trainable embed_ecg (nn.Module) to fine-tune")
    loader = split_loader or default_split_loader
    preset = preset_for(encoder, task)
    splits = {s: loader(task, s, preset) for s in ("train", "val", "test")}
    pos = {r: i for i, r in enumerate(str(x) for x in splits["train"].record_ids)}
    subset = [str(r) for r in task.train_subset(fraction, seed)]
    kept = [r for r in subset if r in pos]
    if len(kept) < len(subset):
        log.warning(
            "%s: %d of %d subset records are absent from the cached train split (QC)",
            task.name,
            len(subset) - len(kept),
            len(subset),
        )
    val_ids = [str(r) for r in splits["val"].record_ids]
    test_ids = [str(r) for r in splits["test"].record_ids]
    fit = fit_finetune(
        encoder,
        model_rows(splits["train"]),
        np.asarray([pos[r] for r in kept]),
        task.y(kept),
        model_rows(splits["val"]),
        np.arange(len(val_ids)),
        task.y(val_ids),
        config=cfg,
        seed=seed,
    )
    device = next(fit.model.parameters()).device
    scores = _predict(fit.model, model_rows(splits["test"]), np.arange(len(test_ids)), cfg.eval_batch_size, device)
    y_test = task.y(test_ids)
    report = multilabel_auroc(y_test, scores, list(task.classes))
    result.update(
        n_train=len(kept), n_train_missing_qc=len(subset) - len(kept), n_val=len(val_ids), n_test=len(test_ids)
    )
    result["selection"] = fit.selection()
    result["world_size"] = world
    result["scores"] = {"macro_auroc": report.macro, "per_class_auroc": report.per_class}
    result["excluded_classes"] = report.excluded
    if report.macro is not None:
        res = bs.draw_resamples(
            y_test, seed=bs.bootstrap_seed(task.name, test_ids, bootstrap_seed), n_resamples=n_resamples
        )
        result["ci"] = bs.bootstrap_ci(y_test, scores, list(task.classes), res).to_dict()
    else:
        result["ci"] = None
    pred = predictions_path(call.path)
    result["predictions"] = pred.name
    if rank == 0:
        write_predictions(pred, test_ids, list(task.classes), y_test, scores)
    return result
