"""One run of the benchmark: preflight -> pretrain -> evaluation modes (zero-shot, linear probe, ...) -> publish.

Each stage logs one line, "ran" or "skipped" (its output exists), and appends the same decision to
``<run_store>/events.jsonl``. ``$ECGBENCH_STOP_AFTER=<stage>`` stops the process after that stage
(how the resume test simulates a kill).
"""

from __future__ import annotations

import json
import logging
import os
from functools import cache
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from benchmarks.pipeline import evaluate as ev
from benchmarks.pipeline.data_check import report_incomplete_data
from benchmarks.pipeline.errors import ConfigError, maybe_stop_after
from benchmarks.pipeline.method import load_encoder, pretrain, validate_method
from benchmarks.pipeline.ranks import is_global_zero, launched_rank
from benchmarks.pipeline.store import RunStore
from benchmarks.pipeline.validate import validate_run
from ecg_data.paths import atomic_write_json, exclusive_lock

log = logging.getLogger("ecgbench")
REPO = Path(__file__).resolve().parents[2]


def stages() -> tuple[str, ...]:
    """Every stage name: pretrain, the registered modes that are stages (``ecg_eval.modes``), publish."""
    return ("pretrain", *ev.stage_modes(), "publish")


def import_user_modules(cfg: DictConfig) -> None:
    """Import the modules of ``eval.mode_modules`` and ``dataset.modules``: the first register their own evaluation
    modes (``ecg_eval.modes.register_mode``), which then are stages like the project's; the second their own readers
    and tasks (``ecg_data.readers.READERS`` / ``ecg_data.tasks.TASKS``), which the dataset config then names like the
    project's (a module in ``method_dir=`` imports; docs/adding-a-dataset.md)."""
    import importlib

    for key, group in (("mode_modules", "eval"), ("modules", "dataset")):
        section = cfg.get(group)
        for name in (section.get(key) or []) if section else []:
            try:
                importlib.import_module(str(name))
            except ImportError as e:
                raise ConfigError(
                    f"{group}.{key}: cannot import {name!r} ({e}); put its directory on the path "
                    "(method_dir=) or install it"
                ) from None


def apply_method_eval(cfg: DictConfig) -> None:
    """The method's evaluation defaults (``eval:`` in configs/method/<name>.yaml, e.g. its fine-tuning recipe
    ``eval.finetune``) under the run's ``eval.<mode>``: a key the run sets (``eval.finetune.lr=...``) wins. They
    come from the method config, never from the row name, so ``merl_paper`` or ``melp-pt1`` get their method's.
    Transfer's ``finetune`` train mode gets the same recipe (``eval.transfer.finetune_config``) unless it has its own."""
    own = cfg.method.get("eval")
    if not own:
        return
    where = f"configs/method/{cfg.method.name}.yaml: eval"
    if not OmegaConf.is_dict(own):
        raise ConfigError(f"{where}: expected a mapping of eval.<mode> sections")
    with open_dict(cfg):
        for mode, section in own.items():
            run_section = cfg.eval.get(mode)
            if not OmegaConf.is_dict(section) or (run_section is not None and not OmegaConf.is_dict(run_section)):
                raise ConfigError(f"{where}.{mode}: expected a mapping merged under eval.{mode}")
            cfg.eval[mode] = OmegaConf.merge(section, run_section or {})
        transfer, recipe = cfg.eval.get("transfer"), own.get("finetune")
        if recipe is not None and OmegaConf.is_dict(transfer) and "finetune" in (transfer.get("train_modes") or []):
            if transfer.get("finetune_config") is None:
                transfer.finetune_config = OmegaConf.merge(recipe, {})


def results_name(cfg: DictConfig) -> str:
    """The method's name in result files; pretraining seeds other than 0 get their own rows."""
    if cfg.get("results_name"):
        return str(cfg.results_name)
    return str(cfg.method.name) + (f"-pt{int(cfg.seed)}" if int(cfg.seed) != 0 else "")


def _check_stages(cfg: DictConfig) -> list[str]:
    wanted = [str(s) for s in cfg.stages]
    valid = stages()
    bad = [s for s in wanted if s not in valid]
    if bad:
        raise ConfigError(f"stages={wanted}: unknown stage(s) {bad}; valid: {list(valid)}")
    return wanted


def build_backend(cfg: DictConfig) -> ev.Backend:
    """The ``backend._target_`` evaluation backend: every backend gets the result and leaderboard directories and the
    eval config; the run's embedding cache and reference file go to a backend whose constructor takes them."""
    import inspect

    from ecg_data.registry import locate

    kw: dict[str, Any] = {
        "results_dir": str(cfg.results_dir),
        "leaderboard_dir": str(cfg.leaderboard_dir),
        "eval_cfg": cfg.eval,
    }
    optional: dict[str, Any] = {"embed_cache": str(Path(str(cfg.run_store)) / "embeddings")}
    if cfg.get("reference_file"):
        ref = Path(str(cfg.reference_file)).expanduser()
        if not ref.is_absolute() and not ref.exists():  # run from outside the repo: the repo's own file
            ref = REPO / ref
        optional["reference_file"] = str(ref)
    accepted = inspect.signature(locate(str(cfg.backend._target_))).parameters
    kw.update({k: v for k, v in optional.items() if k in accepted})
    return instantiate(cfg.backend, **kw, _recursive_=False)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run the configured stages; return a summary (checkpoint, hash, cells run per mode)."""
    from benchmarks.pipeline.logs import tidy_library_logging

    tidy_library_logging()  # each message once, through Hydra's handlers (benchmarks/pipeline/logs.py)
    import_user_modules(cfg)  # a contributor's modes and tasks exist before the stage and task names are checked
    apply_method_eval(cfg)  # the method's evaluation defaults (its config's eval: block, e.g. its fine-tuning recipe)
    validate_run(cfg)  # every run option, before any work (benchmarks/pipeline/validate.py)
    if cfg.get("data_root"):
        os.environ["ECG_DATA_ROOT"] = str(Path(str(cfg.data_root)).expanduser().resolve())
    validate_method(cfg.method)
    wanted = _check_stages(cfg)
    modes = ev.stage_modes()
    for key in ("name", "suite", "tasks"):
        if key not in cfg.dataset:
            raise ConfigError(f"configs/dataset/{cfg.dataset.get('name', '?')}.yaml: missing {key!r}")
    tasks = [str(t) for t in cfg.dataset.tasks]
    suite = str(cfg.dataset.suite)
    if not cfg.eval.get("prompts") and cfg.dataset.get("prompts"):  # the dataset's own prompt file (synthetic)
        with open_dict(cfg):
            cfg.eval.prompts = str(cfg.dataset.prompts)
    if (
        cfg.eval.get("transfer") is not None
        and not cfg.eval.transfer.get("pairs")
        and cfg.dataset.get("transfer_pairs")
    ):
        with open_dict(cfg):  # the dataset's own source:target pairs (synthetic: synth_ptbxl_all:synth_cpsc2018)
            cfg.eval.transfer.pairs = list(cfg.dataset.transfer_pairs)
    backend = build_backend(cfg)

    # Preflight: a missing dataset stops the run before an hour of pretraining, not after it.
    evaluating = any(m in wanted for m in modes)
    pretrain_task = str(cfg.pretrain_data.task) if cfg.get("pretrain_data") and cfg.pretrain_data.get("task") else None
    if is_global_zero():  # an incomplete real tree: its verify summary and the download command, before training
        checked = [t for m in modes if m in wanted for t in ev.mode_tasks(cfg.eval, tasks, m, pretrain_task)]
        own_root = cfg.get("pretrain_data") and cfg.pretrain_data.get(
            "root"
        )  # a corpus elsewhere is checked by its loader
        report_incomplete_data(
            checked + ([pretrain_task] if "pretrain" in wanted and not cfg.get("ckpt") and not own_root else [])
        )
    if evaluating and is_global_zero():  # only global rank 0 evaluates
        for task in dict.fromkeys(t for m in modes if m in wanted
                                  for t in ev.mode_tasks(cfg.eval, tasks, m, pretrain_task)):  # fmt: skip
            backend.check_task(task)
        if "zero_shot" in wanted and cfg.method.get("zero_shot", True) and hasattr(backend, "check_prompts"):
            backend.check_prompts(tasks)  # every class of every task has a prompt, before pretraining
    store = RunStore(Path(str(cfg.run_store)))
    if "pretrain" in wanted and not cfg.get("ckpt"):
        backend.check_pretrain_data(cfg.pretrain_data)

    summary: dict[str, Any] = {"cells": {}}
    if "pretrain" in wanted or cfg.get("ckpt"):
        pre = pretrain(cfg, store)
    else:
        raise ConfigError("stages= without 'pretrain' needs ckpt= (nothing to evaluate otherwise)")
    summary.update(checkpoint=pre.path, checkpoint_hash=pre.checkpoint_hash, run_dir=pre.run_dir)
    maybe_stop_after("pretrain")
    if not is_global_zero():
        # DDP: this rank took part in training; evaluation, result files and the leaderboard are rank 0's
        log.info("pretrain: done on rank %d; global rank 0 evaluates and publishes, this rank exits", launched_rank())
        summary["rank"] = launched_rank()
        return summary
    run_label = str(pre.run_dir.relative_to(store.root)) if pre.run_dir else str(pre.path)

    # The card's checkpoint hash, remembered after the first load, lets a rerun skip without loading.
    card_file = (pre.run_dir or store.root / "external" / pre.checkpoint_hash) / "encoder_card.json"
    known_hash = json.loads(card_file.read_text())["checkpoint_hash"] if card_file.is_file() else pre.checkpoint_hash
    name = results_name(cfg)
    # A checkpoint from elsewhere or a method without stages was not pretrained on our corpus.
    pretrained_on = [] if cfg.get("ckpt") or pre.path is None else [str(cfg.pretrain_data.name)]

    @cache
    def encoder() -> Any:  # loaded once, and only when some cell must run
        enc = ev.ScoredEncoder(
            load_encoder(cfg, pre), name=name, pretrained_on=pretrained_on, zero_shot=bool(cfg.method.zero_shot)
        )
        atomic_write_json(
            card_file, {"checkpoint_hash": enc.card.checkpoint_hash, "name": name, "checkpoint": str(pre.path)}
        )
        return enc

    ran = 0
    for mode in modes:
        if mode not in wanted:
            continue
        cells = ev.plan(cfg.eval, tasks, mode, pretrain_task)
        n = ev.run_mode(
            mode,
            cells,
            backend=backend,
            encoder=encoder,
            suite=suite,
            method=name,
            checkpoint_hash=known_hash,
            store=store,
            run=run_label,
        )
        summary["cells"][mode] = n
        ran += n
        maybe_stop_after(mode)

    method_ran = ran
    ran += score_references(cfg, wanted, tasks, suite, pretrain_task, backend=backend, store=store)

    if method_ran:  # the exported model card lists this run's scores (benchmarks/pipeline/checkpoints.py)
        from benchmarks.pipeline.checkpoints import update_export_card

        scored = json.loads(card_file.read_text())["checkpoint_hash"] if card_file.is_file() else known_hash
        update_export_card(pre.run_dir, str(cfg.results_dir), scored)
    if "publish" in wanted:
        target = Path(backend.leaderboard_path)
        if ran == 0 and target.is_file():
            log.info("publish: skipped (no new result files; %s exists)", target)
            store.log_event(run_label, "publish", "skipped", reason="output exists")
        else:
            with exclusive_lock(target.with_name(f".{target.name}.lock")):  # parallel jobs publish one at a time
                out = backend.publish()
            log.info("publish: ran -> %s", out)
            store.log_event(run_label, "publish", "ran", output=str(out))
        summary["leaderboard"] = target
        maybe_stop_after("publish")
    if any(m in wanted for m in modes):
        summary["results_dir"] = Path(str(cfg.results_dir))
        where = f"result files under {summary['results_dir']}"
        if "leaderboard" in summary:
            where += f", leaderboard {summary['leaderboard']}"
        log.info("done: %s", where)
    return summary


def reference_rows(cfg: DictConfig, suite: str) -> list[str]:
    """The reference rows scored beside every method of a synthetic table (``eval.references``; ecg_eval.references):
    only the synthetic suite has the generator's truth that the oracle reads."""
    if suite != "synthetic":
        return []
    return [str(r) for r in (cfg.eval.get("references") or [])]


def _reference_preset(cfg: DictConfig) -> str:
    """The input preset of the run's method (its last stage's ``input_preset``): the reference rows read only the
    record ids of the harness's cached splits, so they use the caches the method's cells use."""
    stages = cfg.method.get("stages") or []
    for st in reversed(list(stages)):
        if st.get("input_preset"):
            return str(st.input_preset)
    return "melp"


def score_references(
    cfg: DictConfig,
    wanted: list[str],
    tasks: list[str],
    suite: str,
    pretrain_task: str | None,
    *,
    backend: ev.Backend,
    store: RunStore,
) -> int:
    """Score the reference rows (oracle, chance) on the cells of every mode this run evaluates; return the cells run.

    They go through the same backend as a method (same prompts, probes, bootstrap); their cells are skipped when
    their result files exist, so they are scored once per output directory, whatever the method."""
    from ecg_eval.modes import get_mode
    from ecg_eval.references import reference_encoder

    if not getattr(backend, "scores_reference_rows", False):  # e.g. the tests' toy backend, which calls encode_ecg
        return 0
    ran = 0
    for name in reference_rows(cfg, suite):
        enc = reference_encoder(name, preset=_reference_preset(cfg))
        log.info("reference row %s (ecg_eval.references): its cells of this run's modes follow", name)
        for mode in ev.stage_modes():
            # a mode that trains the encoder (fine-tuning) declares references=False: a reference row has none
            if mode not in wanted or not get_mode(mode).references:
                continue
            # one seed per (task, fraction): a reference row shows the scale of the table, not a spread across subsets
            cells = first_seed_only(ev.plan(cfg.eval, tasks, mode, pretrain_task))
            ran += ev.run_mode(
                mode,
                cells,
                backend=backend,
                encoder=lambda enc=enc: enc,
                suite=suite,
                method=name,
                checkpoint_hash=enc.card.checkpoint_hash,
                store=store,
                run=f"reference/{name}",
            )
    return ran


def first_seed_only(cells: list[ev.Cell]) -> list[ev.Cell]:
    """The cells of the first seed of each (task, mode, fraction), in plan order."""
    seen: set[tuple] = set()
    out = []
    for c in cells:
        key = (c.task, c.mode, c.fraction, c.options)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
