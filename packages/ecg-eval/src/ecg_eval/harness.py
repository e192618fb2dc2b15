"""One entry point that scores an encoder on a task in any registered mode and writes the result file.

``evaluate`` = the mode's function (``ecg_eval.modes``: zero-shot and the probes in ``classification``, fine-tuning,
transfer, retrieval, report generation in their modules) -> the harness stamps the result (evaluation identity,
device, coverage, input preparation) -> one write. It knows methods only through the encoder protocol
(``ecg_eval.protocol``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecg_eval import bootstrap as bs
from ecg_eval.cells import DEFAULT_RESULTS_ROOT, ModeCall, expected_path
from ecg_eval.embeddings import SplitLoader, stamp_input_preparation
from ecg_eval.modes import get_mode
from ecg_eval.probe import ProbeConfig
from ecg_eval.results import evaluation_identity, is_complete, split_coverage, write_result

__all__ = [
    "DEFAULT_RESULTS_ROOT",
    "INPUT_PREPARATION",
    "already_done",
    "evaluate",
    "evaluation_settings",
    "expected_path",
]

#: Version of how the harness prepares a cell's inputs; part of every cell's identity, so a change re-scores cells
#: instead of reusing them (2: per-dataset presets, ``protocol.preset_for`` -- HeartLang's cells were fed raw mV
#: before; the runner decides "done" without loading the encoder, so the version stands in for its input_spec).
INPUT_PREPARATION = 2


def evaluation_settings(
    mode: str,
    *,
    prompt_file: str | Path | None = None,
    templates: Sequence[str] | None = None,
    split_commas: bool = False,
    lowercase: bool = False,
    probe_config: Any = None,
    n_resamples: int = bs.DEFAULT_RESAMPLES,
    bootstrap_seed: int = 0,
    mode_options: dict | None = None,
) -> dict:
    """The evaluation config that decides a cell's numbers (hashed into ``evaluated.eval_config_sha256``): the
    bootstrap, the input preparation, the ``mode_options`` when given, and what the mode adds (``Mode.settings``:
    prompts for zero-shot, probe kind and grid for a probe)."""
    spec = get_mode(mode)
    out: dict[str, Any] = {
        "mode": mode,
        "bootstrap": {"n_resamples": int(n_resamples), "seed": int(bootstrap_seed)},
        "input_preparation": INPUT_PREPARATION,
    }
    if mode_options:
        out["options"] = _options_json(mode_options)
    out.update(
        spec.extra_settings(
            dict(
                mode=mode,
                prompt_file=prompt_file,
                templates=templates,
                split_commas=split_commas,
                lowercase=lowercase,
                probe_config=probe_config,
                mode_options=mode_options or {},
            )
        )
    )
    return out


def _options_json(options: dict) -> dict:
    """Mode options as JSON data for hashing: configs as dicts, a task by its name, a reference file by its content
    hash."""
    from ecg_data.paths import file_hash

    out: dict[str, Any] = {}
    for k, v in sorted(options.items()):
        if k in ("progress", "vocab"):
            continue  # neither changes the numbers that are hashed here (vocab: the project's file, versioned)
        if hasattr(v, "to_dict"):
            v = {kk: vv for kk, vv in v.to_dict().items() if kk != "device"}
        elif k == "reference_file" and v is not None and Path(v).is_file():
            v = {"sha256_16": file_hash(Path(v))}
        elif hasattr(v, "classes") and hasattr(v, "name"):  # a task (transfer's source): its name
            v = str(v.name)
        out[k] = v if isinstance(v, (dict, list, str, int, float, bool, type(None))) else str(v)
    return out


def already_done(
    encoder: Any,
    task: Any,
    mode: str,
    fraction: float | None = None,
    seed: int = 0,
    *,
    results_root: str | Path = DEFAULT_RESULTS_ROOT,
    suite: str | None = None,
    method: str | None = None,
    **settings: Any,
) -> bool:
    """Skip-if-exists: a valid result for the same checkpoint, split/subset ids, dataset and evaluation config
    (``settings``: the keyword arguments of ``evaluation_settings``, as passed to ``evaluate``)."""
    path = expected_path(
        encoder,
        task,
        mode,
        fraction,
        seed,
        results_root=results_root,
        suite=suite,
        method=method,
        options=settings.get("mode_options"),
    )
    identity = evaluation_identity(task, mode, fraction, seed, evaluation_settings(mode, **settings))
    return is_complete(path, encoder.card.checkpoint_hash, identity)


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def evaluate(
    encoder: Any,
    task: Any,
    mode: str,
    fraction: float | None = None,
    seed: int = 0,
    *,
    results_root: str | Path = DEFAULT_RESULTS_ROOT,
    suite: str | None = None,
    prompt_file: str | Path | None = None,
    templates: Sequence[str] | None = None,
    split_commas: bool = False,
    lowercase: bool = False,
    probe_config: ProbeConfig | None = None,
    n_resamples: int = bs.DEFAULT_RESAMPLES,
    bootstrap_seed: int = 0,
    batch_size: int = 256,
    embed_cache: str | Path | None = None,
    split_loader: SplitLoader | None = None,
    config: dict | None = None,
    skip_existing: bool = False,
    method: str | None = None,
    device: str = "cpu",
    precision: str = "32",
    mode_options: dict | None = None,
) -> dict:
    """Score ``encoder`` on ``task`` in ``mode`` (a registered mode: ``ecg_eval.modes.mode_names()``) and write the
    result file once.

    ``fraction`` (0.01 / 0.1 / 1.0) and ``seed`` pick the fixed training subset ``task.train_subset`` of a mode with
    a training fraction (the probes, fine-tuning); zero-shot takes ``fraction=None``. ``config`` is stored verbatim
    (the runner's resolved config). ``method`` names the leaderboard row and the result folder (default:
    ``encoder.card.name``). ``device`` (``auto``/``cpu``/``cuda[:k]``) runs the encoder and the probe fit there;
    ``precision="bf16"`` embeds under bf16 autocast (the probe always fits in its own float32).
    ``mode_options`` go to the mode (e.g. ``finetune_config``, ``split``, ``reference_file``, transfer's ``source``
    and ``train_mode``; docs/evaluation.md) and into the cell's evaluation identity.
    Returns the result dict (also written to ``expected_path(...)``, with ``result_path`` added).
    """
    suite = suite or task.suite
    spec = get_mode(mode)
    options = dict(mode_options or {})
    path = expected_path(
        encoder, task, mode, fraction, seed, results_root=results_root, suite=suite, method=method, options=options
    )
    settings = evaluation_settings(
        mode,
        prompt_file=prompt_file,
        templates=templates,
        split_commas=split_commas,
        lowercase=lowercase,
        probe_config=probe_config,
        n_resamples=n_resamples,
        bootstrap_seed=bootstrap_seed,
        mode_options=mode_options,
    )
    identity = evaluation_identity(task, mode, fraction, seed, settings)
    if skip_existing and is_complete(path, encoder.card.checkpoint_hash, identity):
        from ecg_eval.results import read_result

        out = read_result(path)
        out["result_path"] = str(path)
        return out
    t0 = time.perf_counter()
    call = ModeCall(
        encoder=encoder,
        task=task,
        mode=mode,
        fraction=fraction,
        seed=seed,
        path=path,
        suite=suite,
        method=method,
        options=options,
        results_root=results_root,
        batch_size=batch_size,
        embed_cache=embed_cache,
        split_loader=split_loader,
        config=config,
        n_resamples=n_resamples,
        bootstrap_seed=bootstrap_seed,
        device=device,
        precision=precision,
        prompt_file=prompt_file,
        templates=templates,
        split_commas=split_commas,
        lowercase=lowercase,
        probe_config=probe_config,
    )
    result = spec.function()(call)
    # The harness's stamp, the same for every mode: the cell's identity (a rerun skips it only when split, subset,
    # data and options are the same), the device that computed it (auto -> cpu / cuda), coverage, inputs.
    if spec.input_preparation:
        stamp_input_preparation(result, encoder, task)
    if getattr(task, "published", None) and "coverage" not in result:
        result["coverage"] = split_coverage(task)
    result["evaluated"] = identity
    result["evaluation_settings"] = settings
    result.setdefault("config", {}).update(device=str(call.target), precision=precision)
    result["wall_time_s"] = time.perf_counter() - t0
    if _rank() == 0:  # fine-tuning under torchrun runs on every rank; only rank 0 writes
        write_result(path, result)
    return {**result, "result_path": str(path)}
