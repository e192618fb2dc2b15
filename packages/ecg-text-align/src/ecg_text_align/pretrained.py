"""Portable model directories: ``save_pretrained`` / ``from_pretrained`` for every method's encoder.

Why: a Lightning checkpoint is a pickle with optimizer state and absolute paths in its
hyperparameters; moving ``runs/`` broke loading. An exported directory is self-contained and follows the
Hugging Face layout, so ``huggingface_hub`` can upload and download it unchanged:

- ``model.safetensors``: the weights (loaded with ``safetensors``, no pickle);
- ``config.json``: the class (dotted path ``module.attr``; directories exported before 0.2.1 say ``module:attr``,
  which still loads) and its constructor arguments, paths inside the directory
  stored relative to it, the ``input_spec`` and the card facts;
- ``text_model/``: the text tower and its tokenizer (``save_pretrained``), when the method has one;
- ``README.md``: a generated model card (method, paper, parameters, pretraining data and steps, scores).

An object is exportable when it is a ``PretrainModule`` (class + hyperparameters) or has
``export_spec() -> (class path, constructor kwargs, weights module)`` (e.g. the random-init baseline).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecg_data.integrity import CorruptFileError, UntrustedFileError, check_file_targets, is_trusted, sha256_file
from ecg_encoders.released.errors import WeightsNotAvailableError
from ecg_text_align.components import locate, upgrade_specs

log = logging.getLogger(__name__)

FORMAT = "ecglang-bench.pretrained"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TEXT_DIR = "text_model"
CARD_FILE = "README.md"

#: the paper of each shipped method, for the model card (a user's method may set ``paper`` in the card facts)
PAPERS: dict[str, str] = {
    "melp": "Wang et al., From Token to Rhythm: A Multi-Scale Approach for ECG-Language Pretraining (ICML 2025)",
    "merl": "Liu et al., Zero-Shot ECG Classification with Multimodal Learning and Test-time Clinical Knowledge "
    "Enhancement (ICML 2024)",
    "esi": "Yu et al., ECG Semantic Integrator (ESI): A Foundation ECG Model Pretrained with LLM-Enhanced "
    "Cardiological Text (2024)",
    "heartlang": "Jin et al., Reading Your Heart: Learning ECG Words and Sentences via Pre-training ECG "
    "Language Model (ICLR 2025)",
    "random_init": "no paper: MELP's ECG tower with random weights (control)",
}


def file_hash(path: str | Path, n: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def _jsonable(x: Any) -> Any:
    """Plain JSON types (tuples -> lists); anything else is an error (configs arrive as plain data: the runner
    converts Hydra's once, ``benchmarks.pipeline.store.plain``)."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"constructor argument of type {type(x).__name__} cannot be stored in config.json: {x!r}")


def export_spec(model: Any) -> tuple[str, dict[str, Any], nn.Module]:
    """(class path, constructor kwargs, the module whose state dict holds all weights)."""
    if hasattr(model, "export_spec"):
        cls_path, kwargs, module = model.export_spec()
        return cls_path, dict(kwargs), module
    mod = sys.modules.get("ecg_text_align.module")  # not imported -> no PretrainModule exists (skip lightning)
    if mod is not None and isinstance(model, mod.PretrainModule):
        hp = copy.deepcopy(dict(model.hparams))
        for k in getattr(type(model), "init_only_hparams", ()):
            if k in hp:
                hp[k] = None
        return f"{type(model).__module__}.{type(model).__qualname__}", hp, model
    raise TypeError(f"{type(model).__name__} cannot be exported: not a PretrainModule and no export_spec()")


def _param_counts(module: nn.Module) -> dict[str, int]:
    counts = {"total": sum(p.numel() for p in module.parameters())}
    for name, child in module.named_children():
        n = sum(p.numel() for p in child.parameters())
        if n:
            counts[name] = n
    direct = sum(p.numel() for p in module.parameters(recurse=False))
    if direct:  # parameters held by the module itself (e.g. MELP's proj_contrast, a logit scale)
        counts["(own parameters)"] = direct
    return counts


def save_pretrained(
    model: Any,
    out_dir: str | Path,
    *,
    card: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, str | Path] | None = None,
) -> Path:
    """Write ``model`` as a self-contained directory (atomically: built beside ``out_dir``, then renamed).

    ``extra_files``: {name in the directory: source file} copied in before the rename (e.g. the learning curves the
    card links to), so the directory never exists without them."""
    from safetensors.torch import save_model

    out_dir = Path(out_dir)
    cls_path, kwargs, module = export_spec(model)
    kwargs = _jsonable(kwargs)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        relative: list[list[str]] = []
        text = getattr(module, "text", None)
        if isinstance(kwargs.get("text_encoder"), dict) and hasattr(text, "model") and hasattr(text, "tokenizer"):
            # the text tower travels inside the export: config + tokenizer (weights are also in model.safetensors)
            text.model.save_pretrained(tmp / TEXT_DIR, safe_serialization=True)
            text.tokenizer.save_pretrained(tmp / TEXT_DIR)
            kwargs["text_encoder"] = {**kwargs["text_encoder"], "path": TEXT_DIR}
            relative.append(["text_encoder", "path"])
        was_training = module.training
        module.eval()
        save_model(module, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        module.train(was_training)
        spec = getattr(model, "input_spec", None)
        facts = dict(_jsonable(dict(card or {})))
        facts.setdefault(
            "method", getattr(getattr(model, "card", None), "name", None) or getattr(model, "method_name", "")
        )
        facts.setdefault("paper", PAPERS.get(str(facts["method"]).split("-")[0], ""))
        facts["parameters"] = _param_counts(module)
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "class": cls_path,
            "init": kwargs,
            "relative_paths": relative,
            "input_spec": {"preset": spec.preset, "fs": int(spec.fs), "length": int(spec.length)} if spec else None,
            "card": facts,
            "weights_sha256": sha256_file(tmp / WEIGHTS_FILE),  # from_pretrained refuses weights that differ
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / CARD_FILE).write_text(render_card(config), encoding="utf-8")
        for name, source in (extra_files or {}).items():
            shutil.copyfile(source, tmp / Path(name).name)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def is_export_dir(path: str | Path) -> bool:
    cfg = Path(path) / CONFIG_FILE
    if not cfg.is_file() or not (Path(path) / WEIGHTS_FILE).is_file():
        return False
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def resolve_hub_id(name: str, *, local_only: bool | None = None) -> Path:
    """``hf:ORG/NAME`` (or ``ORG/NAME``) -> local snapshot directory; offline (or ``local_only=True``) only the local
    cache is searched."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from ecg_encoders.text.hf import offline_requested

    repo_id = name[3:] if name.startswith("hf:") else name
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise WeightsNotAvailableError(name, "not a hub id (expected hf:ORG/NAME)")
    local = offline_requested() if local_only is None else local_only
    try:
        return Path(snapshot_download(repo_id, local_files_only=local))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as err:
        why = "offline: not in the local Hugging Face cache" if local else (str(err).splitlines() or ["?"])[0]
        raise WeightsNotAvailableError(
            name,
            why,
            hint=(
                f"On a machine with network access run `huggingface-cli download {repo_id}` (it fills the cache "
                f"that HF_HOME / HF_HUB_CACHE point to) or `huggingface-cli download {repo_id} --local-dir DIR` "
                f"and pass DIR instead of the hub id."
            ),
        ) from None


def _set_path(d: dict[str, Any], keys: list[str], base: Path) -> None:
    for k in keys[:-1]:
        d = d[k]
    if d.get(keys[-1]):
        d[keys[-1]] = str(base / d[keys[-1]])


def from_pretrained(name_or_path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Rebuild an exported model from its directory or a hub id; weights via safetensors only, strict."""
    from safetensors.torch import load_model

    path = Path(str(name_or_path)).expanduser()
    if not path.exists() and isinstance(name_or_path, str) and not str(name_or_path).startswith((".", "/", "~")):
        path = resolve_hub_id(str(name_or_path))
    if not is_export_dir(path):
        raise WeightsNotAvailableError(
            str(name_or_path),
            f"{path} is not an exported model directory "
            f"(needs {CONFIG_FILE} with format {FORMAT!r} and {WEIGHTS_FILE})",
            hint="",
        )
    config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{path / CONFIG_FILE}: format_version {config['format_version']} is newer than this "
            f"code reads ({FORMAT_VERSION}); upgrade ecg-text-align"
        )
    kwargs = copy.deepcopy(config["init"])
    for keys in config.get("relative_paths", []):
        _set_path(kwargs, list(keys), path)
    kwargs = upgrade_specs(kwargs)  # a directory exported by 0.1 names components the old way
    cls = _exported_class(config.get("class"), path / CONFIG_FILE)
    if not is_trusted(path / CONFIG_FILE):  # its components: the project's, or the method's own package
        check_file_targets(kwargs, path / CONFIG_FILE, allowed=[cls.__module__.split(".", 1)[0]])
    model = cls(**kwargs)
    _, _, module = export_spec(model)
    recorded = config.get("weights_sha256")  # exports written before checksums have none
    if recorded is not None and sha256_file(path / WEIGHTS_FILE) != recorded:
        raise CorruptFileError(
            f"{path / WEIGHTS_FILE}: sha256 differs from the one recorded in {CONFIG_FILE} when "
            "it was exported (corrupt or replaced); export the model again"
        )
    missing, unexpected = load_model(module, str(path / WEIGHTS_FILE), strict=False, device=str(map_location))
    if missing or unexpected:
        raise ValueError(
            f"{path / WEIGHTS_FILE}: does not match {config['class']} "
            f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )
    module.eval()
    digest = file_hash(path / WEIGHTS_FILE)
    if hasattr(model, "_checkpoint_hash"):
        model._checkpoint_hash = digest
    elif hasattr(model, "set_checkpoint_hash"):
        model.set_checkpoint_hash(digest)
    return model


def _exported_class(name: Any, source: Path) -> type:
    """The class an exported ``config.json`` names, only if it is an ``nn.Module`` subclass or an encoder class with
    ``export_spec`` (a file naming ``os.system`` or ``subprocess.Popen`` is refused before anything is called)."""
    try:
        cls = locate(str(name))
    except ImportError as err:
        raise ValueError(f"{source}: its class {name!r} cannot be imported ({err})") from None
    if not (isinstance(cls, type) and (issubclass(cls, nn.Module) or callable(getattr(cls, "export_spec", None)))):
        raise UntrustedFileError(
            f"{source}: refused to load: its class {name!r} is neither a torch.nn.Module "
            "subclass nor an encoder with export_spec"
        )
    return cls


def push_to_hub(
    export_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload ecglang-bench model",
) -> str:
    """Upload an exported directory to the hub (needs network and a token); returns the commit URL."""
    from huggingface_hub import HfApi

    if not is_export_dir(export_dir):
        raise ValueError(f"{export_dir}: not an exported model directory (run save_pretrained first)")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    return str(api.upload_folder(folder_path=str(export_dir), repo_id=repo_id, commit_message=commit_message))


# ----- model card -------------------------------------------------------------------------------------------
def render_card(config: Mapping[str, Any]) -> str:
    """The model card (README.md with Hugging Face front matter) from ``config.json``'s facts."""
    c = dict(config.get("card") or {})
    spec = config.get("input_spec") or {}
    method = c.get("method", "?")
    lines = ["---", "library_name: ecglang-bench", "tags:", "- ecg", "- ecglang-bench", f"- {method}"]
    if c.get("license"):
        lines.append(f"license: {c['license']}")
    lines += ["---", "", f"# {c.get('name') or method}", ""]
    if c.get("description"):
        lines += [str(c["description"]), ""]
    rows = [
        ("method", method),
        ("paper", c.get("paper") or "—"),
        ("weights", c.get("source") or "pretrained with ecglang-bench"),
        ("pretraining data", ", ".join(c.get("pretrained_on") or []) or "—"),
        ("pretraining steps", _steps(c.get("steps"))),
        (
            "input",
            f"{spec.get('fs', '?')} Hz × {spec.get('length', '?')} samples, 12 leads in "
            f"{c.get('lead_order') or 'I, II, III, aVR, aVL, aVF, V1–V6'} order, preprocessing preset "
            f"`{spec.get('preset', '?')}` (ecg_data.preprocess)",
        ),
        ("class", f"`{config.get('class')}`"),
    ]
    if c.get("run"):
        rows.append(("run", f"`{c['run']}`"))
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows] + [""]
    params = c.get("parameters") or {}
    if params:
        lines += ["## Parameters", "", "| part | parameters |", "|---|---:|"]
        lines += [f"| {k} | {v:,} |" for k, v in params.items() if k != "total"]
        lines += [f"| **total** | **{params.get('total', 0):,}** |", ""]
    cells = c.get("leaderboard") or []
    lines += ["## Scores (this run's leaderboard cells)", ""]
    if cells:
        lines += ["| suite | task | mode | macro AUROC |", "|---|---|---|---:|"]
        lines += [f"| {r['suite']} | {r['task']} | {r['mode']} | {100 * r['macro_auroc']:.1f} |" for r in cells]
    else:
        lines.append("Not scored yet: `python benchmarks/run.py method=... ckpt=<this directory>` adds them.")
    curves = c.get("learning_curves") or {}
    if curves:  # losses against their chance values and validation zero-shot AUROC per step (ecg_text_align.monitor)
        lines += ["", "## Training", ""]
        lines += [f"![learning curve, stage {stage}]({fname})" for stage, fname in curves.items()]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from ecg_text_align.pretrained import from_pretrained",
        'model = from_pretrained("<this directory or hf:ORG/NAME>")',
        "features = model.encode_ecg(x)   # x: (B, 12, T) prepared with the preset above",
        "```",
        "",
    ]
    return "\n".join(lines)


def _steps(steps: Any) -> str:
    if isinstance(steps, Mapping):
        return ", ".join(f"{k}: {v}" for k, v in steps.items()) or "—"
    return str(steps) if steps is not None else "—"


def leaderboard_cells(results_root: str | Path, checkpoint_hash: str) -> list[dict[str, Any]]:
    """The result files under ``results_root`` scored with this checkpoint (mean over seeds per cell)."""
    from ecg_eval.results import load_results

    acc: dict[tuple[str, str, str], list[float]] = {}
    for r in load_results(results_root, skip_unreadable=True):
        if r.get("checkpoint_hash") != checkpoint_hash or r.get("status") != "ok":
            continue
        auc = (r.get("scores") or {}).get("macro_auroc")
        if auc is None:
            continue
        pct = r.get("fraction_percent")  # "100", "10", "1" in result files
        mode = r["mode"] + (f"-{pct}%" if pct is not None else "")
        acc.setdefault((r["suite"], r["task"], mode), []).append(float(auc))
    return [{"suite": s, "task": t, "mode": m, "macro_auroc": sum(v) / len(v)} for (s, t, m), v in sorted(acc.items())]


def update_card(export_dir: str | Path, results_root: str | Path, checkpoint_hash: str) -> bool:
    """Put the scored cells of ``checkpoint_hash`` into the card; True when something changed."""
    export_dir = Path(export_dir)
    cfg_file = export_dir / CONFIG_FILE
    if not is_export_dir(export_dir):
        return False
    config = json.loads(cfg_file.read_text(encoding="utf-8"))
    cells = leaderboard_cells(results_root, checkpoint_hash)
    if cells == config.get("card", {}).get("leaderboard"):
        return False
    config.setdefault("card", {})["leaderboard"] = cells
    from ecg_data.paths import atomic_write_text

    atomic_write_text(cfg_file, json.dumps(config, indent=2, sort_keys=True) + "\n")
    atomic_write_text(export_dir / CARD_FILE, render_card(config))
    return True
