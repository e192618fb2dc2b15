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

from benchmarks.pipeline.evaluate import Cell
from benchmarks.pipeline.store import plain

log = logging.getLogger("ecgbench")


class EcgEvalBackend:
    """The real evaluation: ecg_data tasks, ecg_eval.harness / results / leaderboard."""

    #: it scores the synthetic tables' reference rows (ecg_eval.references read the records, not the signals)
    scores_reference_rows = True
    #: it scores ecg_data.tasks by name: the run's task names are checked against the registry before any work
    registered_tasks = True

    def __init__(
        self,
        *,
        results_dir: str,
        leaderboard_dir: str,
        eval_cfg: DictConfig,
        embed_cache: str | None = None,
        reference_file: str | None = None,
    ) -> None:
        self.results_dir = Path(results_dir)
        # Without reference_file=, reference rows come from <leaderboard_dir>/reference.yaml when it exists.
        self.reference_file = Path(reference_file) if reference_file else Path(leaderboard_dir) / "reference.yaml"
        self.leaderboard_dir = Path(leaderboard_dir)
        self.leaderboard_path = self.leaderboard_dir / "README.md"
        self.eval_cfg = eval_cfg
        self.embed_cache = embed_cache
        self._tasks: dict[str, Any] = {}
        self._cells: dict[Path, Any] = {}

    def _task(self, name: str) -> Any:
        if name not in self._tasks:
            from ecg_data.tasks import get_task

            self._tasks[name] = get_task(name)
        return self._tasks[name]

    # -- preflight -------------------------------------------------------------------------------
    def check_task(self, task: str) -> None:
        self._task(task)

    def check_prompts(self, tasks: list[str]) -> None:
        """PromptError naming every class of every task that the configured prompt file cannot resolve."""
        from ecg_eval.prompts import check_prompts

        check_prompts([self._task(t) for t in tasks], self.eval_cfg.get("prompts"))

    def check_pretrain_data(self, pretrain_data: DictConfig) -> None:
        """Real corpora must be on disk before pretraining starts; synthetic ones are generated on first use."""
        if str(pretrain_data.get("suite", "real")) == "synthetic":
            return
        from ecg_data.tasks import get_task

        get_task(str(pretrain_data.task), root=pretrain_data.get("root"))

    # -- result files ----------------------------------------------------------------------------
    def result_path(self, *, suite: str, method: str, cell: Cell) -> Path:
        from ecg_eval.results import result_path

        path = result_path(
            self.results_dir, suite, method, cell.task, cell.mode, cell.fraction, cell.seed, options=dict(cell.options)
        )
        self._cells[path] = cell  # is_done compares the cell's evaluation identity, not only the checkpoint
        return path

    def _settings(self, mode: str | None = None, cell: Cell | None = None) -> dict[str, Any]:
        """The evaluation keyword arguments from the eval config (prompts, probe grid, bootstrap), and the mode's
        options: ``eval.<mode>`` as the mode reads it (``Mode.runner_options``) plus the cell's own (transfer's
        source and train mode)."""
        from ecg_eval.probe import ProbeConfig

        e = self.eval_cfg
        probe = (
            ProbeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in plain(e.probe).items()})
            if e.get("probe")  # our probe's grid; a probe mode ignores a config not of its class (classification.py)
            else None
        )
        out = {
            "prompt_file": e.get("prompts"),
            "templates": list(e.templates) if e.get("templates") else None,
            "probe_config": probe,
            "n_resamples": int(e.bootstrap),
        }
        options = {**self._mode_options(mode), **dict(cell.options if cell is not None else ())}
        if options:
            out["mode_options"] = options
        return out

    def _mode_options(self, mode: str | None) -> dict[str, Any]:
        """``eval.<mode>`` minus the runner's planning keys, as the mode reads it (``ecg_eval.modes``)."""
        from ecg_eval.modes import get_mode

        raw = self.eval_cfg.get(mode) if mode else None
        if not raw or not OmegaConf.is_config(raw) or not isinstance(OmegaConf.to_container(raw), dict):
            return {}
        return get_mode(mode).options_from_runner(plain(raw))

    def is_done(self, path: Path, checkpoint_hash: str) -> bool:
        from ecg_eval.harness import evaluation_settings
        from ecg_eval.results import evaluation_identity, is_complete

        cell = self._cells.get(Path(path))
        if cell is None:  # a path this backend did not name: checkpoint check only
            return is_complete(path, checkpoint_hash)
        if not Path(path).is_file():
            return False
        identity = evaluation_identity(
            self._task(cell.task),
            cell.mode,
            cell.fraction,
            cell.seed,
            evaluation_settings(cell.mode, **self._settings(cell.mode, cell)),
        )
        return is_complete(path, checkpoint_hash, identity)

    def evaluate(self, encoder: Any, *, suite: str, method: str, cell: Cell, out_path: Path) -> Path:
        from ecg_eval.harness import evaluate

        e = self.eval_cfg
        res = evaluate(
            encoder,
            self._task(cell.task),
            cell.mode,
            cell.fraction,
            cell.seed,
            results_root=self.results_dir,
            suite=suite,
            method=method,
            **self._settings(cell.mode, cell),
            batch_size=int(e.batch_size),
            embed_cache=self.embed_cache,
            config=plain(e),  # the runner's one conversion: the harness takes plain data
            device=str(e.get("device") or "auto"),
            precision=str(e.get("precision") or "32"),
        )
        return Path(res["result_path"])

    def publish(self) -> Path:
        from ecg_eval.leaderboard import publish

        ref = self.reference_file
        return Path(
            publish(self.results_dir, self.leaderboard_path, reference=ref if ref.is_file() else None, plot=True)
        )
