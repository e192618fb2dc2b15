"""ESI's runner stages (stage contract: configs/method/README.md).

``text_lm_stage``: the offline default text tower, trained like MELP's stage 1 but on ESI's knowledge-enriched
captions (so its vocabulary covers the descriptions). ``esi_stage``: ESI itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from baselines.common import fit_module, module_kwargs

log = logging.getLogger(__name__)


def enriched_train_captions(pretrain_data: Mapping[str, Any], seed: int, knowledge_file: str | None) -> list[str]:
    """The pretraining task's train reports as ESI captions; records without a report are counted and skipped."""
    from baselines.esi.knowledge import KnowledgeBase
    from ecg_data.tasks import get_task
    from ecg_text_align.stages import pretrain_root

    pd = dict(pretrain_data or {})
    task = get_task(pd["task"], root=pretrain_root(pd), seed=seed)
    reports = task.reader().metadata().loc[task.splits["train"], "report"].tolist()
    kept = [r for r in reports if isinstance(r, str) and r.strip()]
    if len(kept) < len(reports):
        log.warning(
            "%s train: %d of %d records have no report and are left out",
            task.name,
            len(reports) - len(kept),
            len(reports),
        )
    kb = KnowledgeBase.from_file(knowledge_file)
    captions = [kb.enrich(r) for r in kept]
    kb.log_summary()
    return captions


def text_lm_stage(
    *,
    run_dir: Path,
    inputs: Mapping[str, Path],
    pretrain_data: Mapping[str, Any],
    trainer: Mapping[str, Any] | None = None,
    seed: int = 0,
    knowledge_file: str | None = None,
    trainer_overrides: Mapping[str, Any] | None = None,
    **lm_kwargs: Any,
) -> Path:
    """MLM on the enriched captions -> a Hugging Face model directory (ecg_text_align.lm.train_text_lm)."""
    from ecg_text_align.lm import train_text_lm

    out = Path(run_dir) / "text_model"
    if out.is_dir():
        return out
    from ecg_text_align.stages import trainer_config

    return train_text_lm(
        out,
        enriched_train_captions(pretrain_data, seed, knowledge_file),
        seed=seed,
        run_dir=run_dir,
        trainer=trainer_config(trainer, seed, trainer_overrides),
        **lm_kwargs,
    )


def esi_stage(
    *,
    run_dir: Path,
    inputs: Mapping[str, Path],
    pretrain_data: Mapping[str, Any],
    trainer: Mapping[str, Any] | None = None,
    seed: int = 0,
    data: Mapping[str, Any] | None = None,
    zero_shot: Mapping[str, Any] | None = None,
    text_from: str | None = None,
    trainer_overrides: Mapping[str, Any] | None = None,
    **module_kw: Any,
) -> Path:
    from baselines.esi.model import ESI

    zs = dict(zero_shot or {})
    module = ESI(seed=seed, zero_shot=zs, **module_kwargs(module_kw, inputs, pretrain_data, text_from))
    return fit_module(
        module,
        run_dir=run_dir,
        pretrain_data=pretrain_data,
        trainer=trainer,
        seed=seed,
        data=data,
        zero_shot=zs,
        trainer_overrides=trainer_overrides,
    )
