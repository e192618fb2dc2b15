"""``LearningMonitor``: is the run learning? Contrastive losses against their chance value, a warning when they
stay there, and a learning-curve figure beside the logs.

Why: a contrastive loss that never leaves ln(batch) or a validation zero-shot AUROC below 0.5 means the model learned
no alignment, and the run still finishes with a checkpoint and a table. The monitor says so while it trains:

- every module logs ``train/<loss>_chance`` beside each contrastive loss (``PretrainModule.contrastive_chance``:
  ln of the number of candidates, times the number of directions the loss sums);
- once a quarter of the steps is done, a loss whose recent mean is still within 5 % of its chance value is warned
  about, once per loss; a validation ``val/zs_auroc`` below 0.5 is warned about once;
- at the end of ``fit`` the history (losses, chance values, validation AUROC per step) is written as
  ``learning_curve.csv`` and drawn as ``learning_curve.png`` in the stage's run directory, and one summary line is
  logged. The history is part of the callback's checkpoint state, so a resumed run draws the whole curve.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from ecg_data.paths import atomic_path

log = logging.getLogger(__name__)

CHANCE_SUFFIX = "_chance"
ZS_KEY = "val/zs_auroc"
CURVE_PNG = "learning_curve.png"
CURVE_CSV = "learning_curve.csv"


def _scalar(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class LearningMonitor(Callback):
    """Records ``train/*`` and ``val/zs_auroc`` per step, warns once when a run is not learning, draws the curve.

    ``margin``: relative distance to chance that still counts as "at chance" (0.05 = 5 %); ``after``: the share of
    the steps after which the check runs; ``window``: recorded steps averaged for the check."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        margin: float = 0.05,
        after: float = 0.25,
        window: int = 5,
        every: int | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.margin, self.after, self.window = float(margin), float(after), int(window)
        self.every = every
        self.history: list[dict[str, float]] = []
        self.warned: list[str] = []

    # ----- state (resume draws the whole curve; plain data only, read back with weights_only) ----------------------
    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(h) for h in self.history], "warned": list(self.warned)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = [dict(h) for h in state.get("history", [])]
        self.warned = list(state.get("warned", []))

    # ----- recording ------------------------------------------------------------------------------------------------
    def _total_steps(self, trainer: L.Trainer) -> int:
        if trainer.max_steps and trainer.max_steps > 0:
            return int(trainer.max_steps)
        try:
            return int(trainer.estimated_stepping_batches)
        except Exception:  # noqa: BLE001 -- an unsized loader: no quarter mark to check at
            return 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = int(trainer.global_step)
        every = self.every or int(getattr(trainer, "log_every_n_steps", 1) or 1)
        if step % every and step != 1:
            return
        row = {"step": float(step)}
        for k, v in trainer.callback_metrics.items():
            if k.startswith("train/") and (f := _scalar(v)) is not None:
                row[k] = f
        if len(row) > 1:
            if self.history and self.history[-1].get("step") == row["step"]:
                self.history[-1].update(row)
            else:
                self.history.append(row)
        total = self._total_steps(trainer)
        if total and step >= self.after * total:
            self._check_chance(trainer, step, total)

    def _check_chance(self, trainer: L.Trainer, step: int, total: int) -> None:
        recent = [h for h in self.history if "step" in h][-self.window :]
        for key in sorted({k for h in recent for k in h if k.endswith(CHANCE_SUFFIX)}):
            loss_key = key[: -len(CHANCE_SUFFIX)]
            if loss_key in self.warned:
                continue
            pairs = [(h[loss_key], h[key]) for h in recent if loss_key in h and key in h]
            if not pairs:
                continue
            loss = sum(p[0] for p in pairs) / len(pairs)
            chance = sum(p[1] for p in pairs) / len(pairs)
            if chance > 0 and abs(loss - chance) <= self.margin * chance:
                self.warned.append(loss_key)
                if trainer.is_global_zero:
                    log.warning(
                        "%s is still at chance after %d of %d steps: %.3f against ln-chance %.3f (within %d %%). "
                        "The model is not learning the alignment: check the learning rate, the loss weights "
                        "and the temperature (docs/pretraining.md, 'Is it learning?').",
                        loss_key,
                        step,
                        total,
                        loss,
                        chance,
                        round(100 * self.margin),
                    )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if getattr(trainer, "sanity_checking", False):
            return
        auc = _scalar(trainer.callback_metrics.get(ZS_KEY))
        if auc is None:
            return
        step = float(trainer.global_step)
        if self.history and self.history[-1].get("step") == step:
            self.history[-1][ZS_KEY] = auc
        else:
            self.history.append({"step": step, ZS_KEY: auc})
        if auc < 0.5 and ZS_KEY not in self.warned:
            self.warned.append(ZS_KEY)
            if trainer.is_global_zero:
                log.warning(
                    "validation zero-shot AUROC %.3f at step %d is below chance (0.5): the ECG and text "
                    "embeddings are not aligned (docs/pretraining.md, 'Is it learning?')",
                    auc,
                    int(step),
                )

    # ----- the end: figure, table, one summary line ---------------------------------------------------------------
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.history:
            return
        write_curve(self.history, self.run_dir)
        log.info("%s", summary_line(self.history, type(pl_module).__name__, int(trainer.global_step)))


def summary_line(history: list[dict[str, float]], name: str, steps: int) -> str:
    """'MELP: 250 steps; train/clip 2.10 (chance 3.47); val/zs_auroc 0.812' from the last recorded values."""
    last: dict[str, float] = {}
    for h in history:
        last.update(h)
    parts = [f"{name}: {steps} steps"]
    for k in sorted(
        k for k in last if k.startswith("train/") and not k.endswith(CHANCE_SUFFIX) and k not in ("train/logit_scale",)
    ):
        chance = last.get(k + CHANCE_SUFFIX)
        parts.append(f"{k} {last[k]:.3f}" + (f" (chance {chance:.3f})" if chance is not None else ""))
    if ZS_KEY in last:
        parts.append(f"{ZS_KEY} {last[ZS_KEY]:.3f}")
    return "; ".join(parts)


def write_curve(history: list[dict[str, float]], run_dir: str | Path) -> Path:
    """``learning_curve.csv`` (every recorded value) and ``learning_curve.png`` (losses with their chance lines on the
    left, validation zero-shot AUROC on the right), both written atomically into ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for h in history for k in h if k != "step"})
    with atomic_path(run_dir / CURVE_CSV) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", *keys])
        for h in history:
            w.writerow([int(h["step"]), *("" if k not in h else f"{h[k]:.6g}" for k in keys)])

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    losses = [
        k for k in keys if k.startswith("train/") and not k.endswith(CHANCE_SUFFIX) and k not in ("train/logit_scale",)
    ]
    if len(losses) > 1 and "train/loss" in losses:  # the weighted sum would squash its terms and their chance lines
        losses.remove("train/loss")
    zs = [(h["step"], h[ZS_KEY]) for h in history if ZS_KEY in h]
    fig, axes = plt.subplots(1, 2 if zs else 1, figsize=(11 if zs else 6, 4), squeeze=False)
    ax = axes[0][0]
    for k in losses:
        pts = [(h["step"], h[k]) for h in history if k in h]
        (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k.removeprefix("train/"))
        chance = [(h["step"], h[k + CHANCE_SUFFIX]) for h in history if k + CHANCE_SUFFIX in h]
        if chance:
            ax.plot(
                [p[0] for p in chance],
                [p[1] for p in chance],
                ls="--",
                color=line.get_color(),
                lw=1,
                label=f"{k.removeprefix('train/')} at chance",
            )
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss")
    ax.set_title("losses (dashed: chance, ln of the candidates)")
    ax.legend(fontsize=7)
    if zs:
        ax2 = axes[0][1]
        ax2.plot([p[0] for p in zs], [p[1] for p in zs], marker="o")
        ax2.axhline(0.5, ls="--", color="grey", lw=1)
        ax2.set_ylim(0.3, 1.0)
        ax2.set_xlabel("optimiser step")
        ax2.set_ylabel("macro AUROC")
        ax2.set_title("validation zero-shot (dashed: chance)")
    fig.tight_layout()
    out = run_dir / CURVE_PNG
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out
