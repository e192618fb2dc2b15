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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

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
        log.warning("%s/%s: %d of %d records have no report (skipped)", task, split, len(reports) - len(kept), len(reports))
    return kept


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
) -> Path:
    """Train an MLM on report text and save a Hugging Face directory at ``out_dir`` (atomically)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling

    from ecg_encoders.text.offline import PROVENANCE_FILE, init_text_model_dir
    from ecg_text_align.schedule import warmup_cosine

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
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if base is None:
            src = init_text_model_dir(texts, work / "init", vocab_size=vocab_size, seed=seed, **(model_config or {}))
        else:
            src = Path(base) if Path(base).exists() else base
        tok = AutoTokenizer.from_pretrained(str(src))
        model = AutoModelForMaskedLM.from_pretrained(str(src))
        torch.manual_seed(seed)
        enc = tok(list(texts), truncation=True, max_length=max_length)
        features = [{"input_ids": ids} for ids in enc["input_ids"]]
        collate = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=MLM_PROBABILITY)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, warmup_steps, steps))
        g = torch.Generator().manual_seed(seed)
        model.train()
        losses: list[float] = []
        order: list[int] = []
        for step in range(steps):
            if len(order) < batch_size:
                order += torch.randperm(len(features), generator=g).tolist()
            idx, order = order[:batch_size], order[batch_size:]
            batch = collate([features[i] for i in idx])
            loss = model(**batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if step % 50 == 0 or step == steps - 1:
                log.info("MLM step %d/%d loss %.4f", step + 1, steps, losses[-1])
        final = work / "final"
        model.save_pretrained(str(final))
        tok.save_pretrained(str(final))
        prov_src = Path(src) / PROVENANCE_FILE if isinstance(src, Path) else None
        prov = json.loads(prov_src.read_text()) if prov_src is not None and prov_src.is_file() else {"kind": "continued", "base": str(base)}
        tail = losses[-min(20, len(losses)) :]
        prov.update({"trained": True, "stage": "melp_stage1_mlm", "steps": steps, "batch_size": batch_size, "lr": lr,
                     "n_texts": len(texts), "final_mlm_loss": sum(tail) / len(tail), "first_mlm_loss": losses[0]})
        (final / PROVENANCE_FILE).write_text(json.dumps(prov, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        final.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
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
