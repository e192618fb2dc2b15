"""MELP stage 1: the cardiology language model (masked-language-model training on report text).

MELP continues a hub BERT on ECG reports (its released text tower ``fuyingw/heart_bert``). Two ways here:
- ``base=<hub name or local dir>``: continue that BERT's MLM training on the corpus's reports;
- ``base=None``: from scratch, with a WordPiece vocabulary trained on the corpus
  (``ecg_encoders.text.offline.init_text_model_dir``); this produces the offline default text encoder
  directory that ``build_text_preset("offline_default", path=...)`` loads, so the default run needs no download.
Only training-split reports are used (no validation/test text leaks into the vocabulary or weights).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import Dataset

from ecg_data.integrity import safe_torch_load

log = logging.getLogger(__name__)

MLM_PROBABILITY = 0.15  # BERT (Devlin et al. 2019, §3.1)


def task_reports(task: str, root: str | None = None, seed: int = 0, split: str = "train") -> list[str]:
    """Non-empty reports of one split of an ecg-data task (missing reports counted and logged)."""
    from ecg_data.tasks import get_task

    t = get_task(task, root=root, seed=seed)
    md = t.reader().metadata()
    reports = md.loc[t.splits[split], "report"].tolist()
    kept = [r for r in reports if isinstance(r, str) and r.strip()]
    if len(kept) < len(reports):
        log.warning(
            "%s/%s: %d of %d records have no report (skipped)", task, split, len(reports) - len(kept), len(reports)
        )
    return kept


class TextDataset(Dataset):
    """Report texts as dataset items (``{"text": str}``); tokenised in the module's ``collate``."""

    def __init__(self, texts: Sequence[str]):
        self.texts = list(texts)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict[str, str]:
        return {"text": self.texts[i]}


class MLMModule(L.LightningModule):
    """Masked-language-model training of a Hugging Face BERT directory, as a LightningModule.

    Why Lightning: the stage then trains through the same ``fit`` as every other stage -- it resumes from
    ``last.ckpt``, logs ``train/loss`` to the configured loggers, and runs under DDP. Masking follows BERT
    (15 % of the non-special tokens; of those 80 % [MASK], 10 % a random token, 10 % kept), drawn from a
    generator seeded by (seed, rank, step), so a resumed run masks the same tokens.
    """

    def __init__(
        self,
        model_dir: str,
        *,
        lr: float = 5e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 50,
        total_steps: int = 500,
        max_length: int = 128,
        seed: int = 0,
        gradient_clip: float | None = None,
    ):
        super().__init__()
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        self.save_hyperparameters()
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModelForMaskedLM.from_pretrained(str(model_dir))
        self.model.train()  # from_pretrained returns eval mode: dropout would be off (and Lightning warns)
        self.losses: list[float] = []

    def ddp_fingerprint(self) -> str:
        """Checked equal on all ranks by ``fit`` (each rank builds the starting vocabulary itself)."""
        from ecg_text_align.train import vocab_fingerprint

        return vocab_fingerprint(self.tokenizer)

    def collate(self, items: Sequence[Mapping[str, str]]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(
            [it["text"] for it in items],
            truncation=True,
            max_length=self.hparams.max_length,
            padding=True,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        return dict(enc)

    def _mask(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = batch["input_ids"].cpu()
        g = torch.Generator().manual_seed(hash((self.hparams.seed, self.global_rank, self.global_step)) & 0x7FFFFFFF)
        special = batch["special_tokens_mask"].cpu().bool() | (batch["attention_mask"].cpu() == 0)
        chosen = (torch.rand(ids.shape, generator=g) < MLM_PROBABILITY) & ~special
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        roll = torch.rand(ids.shape, generator=g)
        masked = ids.clone()
        masked[chosen & (roll < 0.8)] = int(self.tokenizer.mask_token_id)
        rand_pos = chosen & (roll >= 0.8) & (roll < 0.9)
        masked[rand_pos] = torch.randint(len(self.tokenizer), ids.shape, generator=g)[rand_pos]
        dev = batch["input_ids"].device
        return masked.to(dev), labels.to(dev)

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        ids, labels = self._mask(batch)
        loss = self.model(input_ids=ids, attention_mask=batch["attention_mask"], labels=labels).loss
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=ids.shape[0], sync_dist=False)
        self.losses.append(float(loss.detach()))
        return loss

    def configure_optimizers(self) -> Any:
        from ecg_text_align.schedule import warmup_cosine

        hp = self.hparams
        opt = torch.optim.AdamW(self.model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, hp.warmup_steps, hp.total_steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class _TextDataModule(L.LightningDataModule):
    def __init__(self, texts: Sequence[str], batch_size: int, seed: int, collate: Any):
        super().__init__()
        self.texts, self.batch_size, self.seed, self.collate = list(texts), batch_size, seed, collate

    def train_dataloader(self) -> Any:
        from ecg_data.loader import item_loader

        return item_loader(TextDataset(self.texts), self.batch_size, seed=self.seed, collate_fn=self.collate)


def _init_dir(
    texts: Sequence[str],
    run_dir: Path,
    base: str | None,
    vocab_size: int,
    seed: int,
    model_config: dict[str, Any] | None,
) -> Path:
    """The starting model directory, built once per run directory (a resumed run reuses it).

    Every rank builds into its own temporary directory and the first rename wins (the build is a pure
    function of the texts and the seed); ``fit`` then checks that all ranks hold the same vocabulary."""
    from ecg_encoders.text.offline import init_text_model_dir

    if base is not None:
        return Path(base) if Path(base).exists() else Path(str(base))
    target = run_dir / "init"
    if target.is_dir():
        return target
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".init.", dir=run_dir))
    try:
        init_text_model_dir(texts, tmp / "m", vocab_size=vocab_size, seed=seed, **(model_config or {}))
        try:
            (tmp / "m").rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def train_text_lm(
    out_dir: str | Path,
    texts: Sequence[str] | None = None,
    *,
    task: str | None = None,
    root: str | None = None,
    base: str | None = None,
    vocab_size: int = 4000,
    model_config: dict[str, Any] | None = None,
    steps: int = 500,
    batch_size: int = 32,
    lr: float = 5e-4,
    weight_decay: float = 0.01,
    warmup_steps: int = 50,
    max_length: int = 128,
    seed: int = 0,
    overwrite: bool = False,
    trainer: Mapping[str, Any] | None = None,
    run_dir: str | Path | None = None,
) -> Path:
    """Train an MLM on report text and save a Hugging Face directory at ``out_dir`` (atomically).

    Training goes through ``ecg_text_align.train.fit`` (checkpoints and logs under ``run_dir``, default
    ``<out_dir>.train``; a rerun resumes from its ``last.ckpt``); ``trainer`` is the trainer group (devices,
    strategy, loggers...), ``steps`` its ``max_steps``. Under DDP ``batch_size`` is per device; global rank 0
    writes ``out_dir`` and every rank returns once it exists.
    """
    from ecg_encoders.text.offline import PROVENANCE_FILE
    from ecg_text_align.distributed import barrier, is_global_zero
    from ecg_text_align.train import fit

    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    if texts is None:
        if task is None:
            raise ValueError("give the report texts or an ecg-data task to read them from")
        texts = task_reports(task, root=root, seed=seed)
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("no non-empty report text to train on")
    if len(texts) < batch_size:
        raise ValueError(f"{len(texts)} report texts are fewer than one batch ({batch_size}); lower batch_size")
    work = Path(run_dir) if run_dir is not None else out.with_name(out.name + ".train")
    src = _init_dir(texts, work, base, vocab_size, seed, model_config)
    module = MLMModule(
        str(src),
        lr=lr,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        total_steps=steps,
        max_length=max_length,
        seed=seed,
    )
    tcfg = {
        **dict(trainer or {}),
        "seed": seed,
        "max_steps": steps,
        "max_epochs": steps,
        "val_check_interval": None,
        "check_val_every_n_epoch": None,
        "limit_val_batches": 0,
    }
    ckpt = fit(module, _TextDataModule(texts, batch_size, seed, module.collate), tcfg, work)
    if is_global_zero():
        state = safe_torch_load(ckpt)
        module.load_state_dict(state["state_dict"])
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            final = tmp / "final"
            module.model.save_pretrained(str(final))
            module.tokenizer.save_pretrained(str(final))
            prov_src = src / PROVENANCE_FILE if src.is_dir() else None
            prov = (
                json.loads(prov_src.read_text())
                if prov_src is not None and prov_src.is_file()
                else {"kind": "continued", "base": str(base)}
            )
            losses = module.losses or [float("nan")]
            tail = losses[-min(20, len(losses)) :]
            prov.update(
                {
                    "trained": True,
                    "stage": "melp_stage1_mlm",
                    "steps": int(state.get("global_step", steps)),
                    "batch_size": batch_size,
                    "world_size": module.trainer.world_size if module._trainer else 1,
                    "lr": lr,
                    "n_texts": len(texts),
                    "final_mlm_loss": sum(tail) / len(tail),
                    "first_mlm_loss": losses[0],
                }
            )
            (final / PROVENANCE_FILE).write_text(json.dumps(prov, indent=2) + "\n")
            if out.exists():
                shutil.rmtree(out)
            final.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    barrier()
    return out


def mlm_perplexity(model_dir: str | Path, texts: Sequence[str], seed: int = 0, max_length: int = 128) -> float:
    """exp(mean masked-token loss) on ``texts`` (fixed masking seed): to check that stage 1 learned."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir)).eval()
    torch.manual_seed(seed)
    collate = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=MLM_PROBABILITY)
    enc = tok(list(texts), truncation=True, max_length=max_length)
    batch = collate([{"input_ids": ids} for ids in enc["input_ids"]])
    with torch.no_grad():
        return math.exp(float(model(**batch).loss))
