"""Every run option checked before any work, each failure one line with the allowed values (docs/reliability.md).

``validate_run(cfg)`` is the first thing ``run`` does: a typo (``seed=abc``), a device this machine does not have
(``eval.device=cuda`` without a GPU), a fraction outside (0, 1], a task the suite does not know, an output path that
cannot be written -- each is a :class:`ConfigError` naming the option, the value and what is allowed, before a
cache is built or a step is trained. Method configs are checked by ``method.validate_method``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig

from benchmarks.pipeline.errors import ConfigError

DEVICES = "auto, cpu, cuda, cuda:<k>"
PRECISIONS = ("32", "bf16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


def _int(value: Any, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit())
    ):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ConfigError(f"{name}={value!r}: expected an integer{bound}")
    out = int(value)
    if minimum is not None and out < minimum:
        raise ConfigError(f"{name}={out}: expected an integer >= {minimum}")
    return out


def _list(value: Any, name: str, item: Callable[[Any, str], Any], *, empty_ok: bool = False) -> list[Any]:
    if not isinstance(value, (list, tuple, ListConfig)):
        raise ConfigError(f"{name}={value!r}: expected a list, e.g. {name}=[...]")
    if not value and not empty_ok:
        raise ConfigError(f"{name}=[]: expected at least one value")
    return [item(v, f"{name}[{i}]") for i, v in enumerate(value)]


def _fraction(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r}: expected a fraction in (0, 1], e.g. 0.01, 0.1, 1.0") from None
    if isinstance(value, bool) or not 0.0 < out <= 1.0:
        raise ConfigError(f"{name}={value!r}: expected a fraction in (0, 1], e.g. 0.01, 0.1, 1.0")
    return out


def check_device(value: Any, name: str = "eval.device") -> str:
    """``auto``/``cpu``/``cuda``/``cuda:<k>`` that this machine has."""
    import torch

    text = "auto" if value is None else str(value)
    if text == "auto":
        return text
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{name}={text!r}: expected one of {DEVICES}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"{name}={text!r}: expected one of {DEVICES}")
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ConfigError(f"{name}={text}: this machine has no CUDA device; use {name}=auto or cpu")
        if dev.index is not None and dev.index >= n:
            raise ConfigError(f"{name}={text}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
    return text


def check_writable(value: Any, name: str) -> Path:
    """A directory that exists and is writable, or can be created (its nearest existing parent is writable)."""
    path = Path(str(value)).expanduser()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"{name}={value}: {probe} is a file, not a directory")
    try:  # a real write (os.access says yes to root on a read-only mount)
        with tempfile.TemporaryFile(dir=probe, prefix=".ecgbench-write-check-"):
            pass
    except OSError as err:
        raise ConfigError(
            f"{name}={value}: {probe} is not writable ({err.strerror or err}); choose a directory you can write"
        ) from None
    return path


def _check_tasks(tasks: Sequence[str], suite: str, name: str) -> None:
    from ecg_data.tasks import TASKS

    for t in tasks:
        if t not in TASKS:
            raise ConfigError(f"{name}: unknown task {t!r}; valid: {', '.join(TASKS.names())}")
        synthetic = bool(TASKS.get(t).synthetic_preset)
        if suite and (suite == "synthetic") != synthetic:
            same = [n for n in TASKS.names() if bool(TASKS.get(n).synthetic_preset) == (suite == "synthetic")]
            raise ConfigError(f"{name}: task {t!r} is not in the {suite!r} suite; valid there: {', '.join(same)}")


def validate_run(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` (one line: option, value, allowed values) for the first bad run option."""
    _int(cfg.get("seed"), "seed", 0)
    from benchmarks.pipeline.evaluate import stage_modes

    valid = ("pretrain", *stage_modes(), "publish")  # the registered modes (after eval.mode_modules are imported)
    wanted = _list(cfg.get("stages"), "stages", lambda v, n: str(v))
    bad = [st for st in wanted if st not in valid]
    if bad:
        raise ConfigError(f"stages={wanted}: unknown stage(s) {bad}; valid: {list(valid)}")
    if cfg.get("results_name") is not None:
        rn = str(cfg.results_name)
        if not rn or "/" in rn or "\\" in rn or rn in (".", ".."):
            raise ConfigError(f"results_name={rn!r}: expected a name without '/' (it becomes a directory name)")
    if cfg.get("data_root") and not Path(str(cfg.data_root)).expanduser().is_dir():
        raise ConfigError(f"data_root={cfg.data_root}: not a directory (it holds ptbxl/, cpsc2018/, ... )")
    if cfg.get("ckpt") is not None and str(cfg.ckpt).strip() == "":
        raise ConfigError("ckpt='': expected a checkpoint file, an exported directory or hf:<repo>")
    ckpt = Path(str(cfg.get("ckpt") or "")).expanduser()
    if cfg.get("ckpt") and ckpt.suffix == ".ckpt" and ckpt.is_file():
        from ecg_data.integrity import safe_torch_load

        safe_torch_load(ckpt, mmap=True)  # a file that would run code is refused here, before any data is built

    for key in ("run_store", "results_dir", "leaderboard_dir"):
        if cfg.get(key) is None or str(cfg.get(key)).strip() == "":
            raise ConfigError(f"{key} is empty: expected a directory")
        check_writable(cfg.get(key), key)
    check_writable(os.environ.get("ECG_CACHE") or Path.home() / ".cache" / "ecglang-bench", "$ECG_CACHE")

    e = cfg.get("eval")
    if e is not None:
        check_device(e.get("device"), "eval.device")
        if str(e.get("precision") or "32") not in PRECISIONS:
            raise ConfigError(f"eval.precision={e.get('precision')!r}: expected one of {', '.join(PRECISIONS)}")
        if e.get("fractions") is not None:
            _list(e.fractions, "eval.fractions", _fraction)
        for key in ("probe_seeds", "probe_seeds_full", "zero_shot_seeds"):
            if e.get(key) is not None:
                _list(e.get(key), f"eval.{key}", lambda v, n: _int(v, n, 0))
        if e.get("bootstrap") is not None:
            _int(e.bootstrap, "eval.bootstrap", 0)
        if e.get("batch_size") is not None:
            _int(e.batch_size, "eval.batch_size", 1)
        from ecg_eval.modes import mode_names

        for mode in mode_names():  # every mode's own fractions (eval.finetune.fractions, eval.transfer.fractions)
            sec = e.get(mode)
            if isinstance(sec, (dict, DictConfig)) and sec.get("fractions") is not None:
                _list(sec.fractions, f"eval.{mode}.fractions", _fraction)
        rg = e.get("report_generation")
        if rg is not None:
            for key in ("beam_size", "max_len"):
                if rg.get(key) is not None:
                    _int(rg.get(key), f"eval.report_generation.{key}", 1)
        if e.get("prompts") and not _prompt_file_exists(str(e.prompts)):
            raise ConfigError(
                f"eval.prompts={e.prompts}: no such file (null = the dataset's prompt file; a packaged "
                "name such as 'synthetic', or a path)"
            )

    t = cfg.get("trainer")
    if t is not None:
        acc = str(t.get("accelerator") or "auto")
        if acc not in ACCELERATORS:
            raise ConfigError(f"trainer.accelerator={acc!r}: expected one of {', '.join(ACCELERATORS)}")
        if acc in ("gpu", "cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ConfigError(
                    f"trainer.accelerator={acc}: this machine has no CUDA device; use trainer=cpu "
                    "(or trainer.accelerator=cpu)"
                )
        if t.get("precision") is not None:
            from typing import get_args

            from lightning.fabric.connector import _PRECISION_INPUT

            allowed = [str(p) for lit in get_args(_PRECISION_INPUT) for p in get_args(lit)]
            if str(t.precision) not in allowed:
                raise ConfigError(f"trainer.precision={t.precision!r}: expected one of {', '.join(allowed)}")
        for key, low in (
            ("max_steps", -1),
            ("num_nodes", 1),
            ("accumulate_grad_batches", 1),
            ("checkpoint_every_n_steps", 1),
            ("log_every_n_steps", 1),
        ):
            if t.get(key) is not None:
                _int(t.get(key), f"trainer.{key}", low)
        if t.get("devices") is not None and str(t.devices) not in ("auto", "-1"):
            if isinstance(t.devices, (list, ListConfig)):
                _list(t.devices, "trainer.devices", lambda v, n: _int(v, n, 0))
            else:
                _int(t.devices, "trainer.devices", 1)

    d = cfg.get("dataset")
    if d is not None and d.get("tasks") is not None:
        tasks = _list(d.tasks, "dataset.tasks", lambda v, n: str(v), empty_ok=True)
        if _reads_registered_tasks(cfg):
            suite = str(d.get("suite") or "")
            if suite not in ("real", "synthetic"):
                raise ConfigError(f"dataset.suite={suite!r}: expected real or synthetic")
            _check_tasks(tasks, suite, "dataset.tasks")
            if e is not None:
                from ecg_eval.modes import mode_names

                for mode in mode_names():
                    sec = e.get(mode) if isinstance(e.get(mode), (dict, DictConfig)) else {}
                    if sec.get("tasks"):
                        _check_tasks(
                            _list(sec.get("tasks"), f"eval.{mode}.tasks", lambda v, n: str(v)), "", f"eval.{mode}.tasks"
                        )
                    for pair in sec.get("pairs") or []:
                        src, sep, tgt = str(pair).partition(":")
                        if not sep or not src or not tgt:
                            raise ConfigError(f"eval.{mode}.pairs: {pair!r} is not source:target")
                        _check_tasks([src, tgt], "", f"eval.{mode}.pairs")


def _reads_registered_tasks(cfg: DictConfig) -> bool:
    """The backend scores ``ecg_data.tasks`` by name (its class says ``registered_tasks = True``; the project's does),
    so dataset and eval task names are checked against the registry; no ``backend`` key: the project's."""
    target = cfg.get("backend", {}).get("_target_") if cfg.get("backend") else None
    if target is None:
        return True
    from ecg_data.registry import locate

    try:
        return bool(getattr(locate(str(target)), "registered_tasks", False))
    except ImportError as e:
        raise ConfigError(f"backend._target_={target}: cannot import it ({e})") from None


def _prompt_file_exists(value: str) -> bool:
    from ecg_eval.prompts import packaged_prompt_path

    return packaged_prompt_path(value) is not None or Path(value).expanduser().is_file()
