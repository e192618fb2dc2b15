"""Adapters between the runner and the libraries (ecg_eval, ecg_data, ecg_text_align).

Why here: libraries never import ``benchmarks/``; when a library's signature differs from the
runner's contracts (the stage contract in configs/method/README.md, the Backend protocol in
benchmarks/pipeline/evaluate.py), the thin translation lives in this one file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmarks.pipeline.evaluate import ZERO_SHOT, Cell

log = logging.getLogger("ecgbench")


def _mode_stem(cell: Cell) -> str:
    """File stem ``<mode>[-<fraction>]-seed<k>`` of DESIGN.md ("Where files go")."""
    if cell.mode == ZERO_SHOT:
        return f"zero_shot-seed{cell.seed}"
    return f"linear_probe-{cell.fraction:g}-seed{cell.seed}"


class EcgEvalBackend:
    """The real evaluation: ecg_data tasks, ecg_eval harness/results, benchmarks/publish.py."""

    def __init__(self, *, results_dir: str, leaderboard_dir: str, eval_cfg: DictConfig) -> None:
        self.results_dir = Path(results_dir)
        self.leaderboard_dir = Path(leaderboard_dir)
        self.eval_cfg = eval_cfg
        self.leaderboard_path = self.leaderboard_dir / "README.md"

    # -- preflight -------------------------------------------------------------------------------
    def check_task(self, task: str) -> None:
        from ecg_data.tasks import get_task

        get_task(task)

    def check_pretrain_data(self, pretrain_data: DictConfig) -> None:
        """Real corpora must be on disk before pretraining starts; synthetic ones are generated on first use."""
        if str(pretrain_data.get("suite", "real")) == "synthetic":
            return
        from ecg_data.tasks import get_task

        root = pretrain_data.get("root")
        get_task(str(pretrain_data.task), root=root)

    # -- result files ----------------------------------------------------------------------------
    def result_path(self, *, suite: str, method: str, cell: Cell) -> Path:
        return self.results_dir / suite / method / cell.task / f"{_mode_stem(cell)}.json"

    def result_checkpoint_hash(self, path: Path) -> str | None:
        import json

        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return (data.get("card") or data.get("encoder") or {}).get("checkpoint_hash") or data.get("checkpoint_hash")

    def evaluate(self, encoder: Any, *, suite: str, method: str, cell: Cell, out_path: Path,
                 pretrained_on: list[str]) -> Path:
        from ecg_eval.harness import evaluate

        evaluate(encoder, cell.task, cell.mode, cell.fraction, cell.seed, out_path=out_path,
                 **OmegaConf.to_container(self.eval_cfg, resolve=True))
        return out_path

    def publish(self) -> Path:
        from benchmarks.publish import publish

        return Path(publish(results_dir=self.results_dir, out=self.leaderboard_path))
