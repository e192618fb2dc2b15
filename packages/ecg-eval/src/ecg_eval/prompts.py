"""Class prompts for zero-shot classification.

Why a file: the prompts decide zero-shot scores as much as the model does, so they are data, versioned with the
package (``prompts/default.json``: a description of every PTB-XL SCP statement, super- and sub-class, every
CPSC2018 class and every CSN acronym), and replaceable by a user's file in the MERL/MELP format
(``{"LABEL": "phrase one, phrase two"}``) to reproduce published numbers.

File format (JSON object):
- ``"LABEL": ["description", ...]`` — several descriptions, embedded separately and averaged;
- ``"LABEL": "a, b, c"`` — one string; kept whole (as MERL's code embeds it) unless ``split_commas=True``;
- ``"dataset:LABEL"`` — overrides ``"LABEL"`` for that dataset only (CSN's ``AF`` is atrial *flutter*, CPSC's is
  fibrillation);
- class names are the published ones (PTB-XL ``NST``, not ``scp_statements.csv``'s ``NST_``); a file written
  with the padded spelling (``NST_``, ``_AVB``) still resolves, and a padded class name still finds a bare key;
- keys starting with ``#`` are metadata and ignored (not ``_``: old files have a key ``_AVB``).

``check_prompts(tasks, prompt_file)`` runs before pretraining (the runner's preflight) and names every class of
every requested task that the file cannot resolve, so a missing prompt is found in seconds, not after training.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_PROMPT_FILE = "default.json"


class PromptError(KeyError):
    """A prompt file is unreadable or lacks a class; the message names the file and the classes."""

    def __str__(self) -> str:
        return str(self.args[0])


def default_prompt_path() -> Path:
    return Path(str(resources.files("ecg_eval") / "prompts" / DEFAULT_PROMPT_FILE))


def packaged_prompt_path(name: str) -> Path | None:
    """A prompt file shipped with ecg-eval by its name (``synthetic`` -> ``prompts/synthetic.json``), else None."""
    if not name or any(c in name for c in "/\\."):
        return None
    p = Path(str(resources.files("ecg_eval") / "prompts" / f"{name}.json"))
    return p if p.is_file() else None


def resolve_prompt_path(path: str | Path | None) -> Path:
    """None -> the default file; a packaged name (``synthetic``) -> its file; anything else is a path."""
    if path is None:
        return default_prompt_path()
    return packaged_prompt_path(str(path)) or Path(path)


def load_prompt_file(path: str | Path | None = None) -> tuple[dict[str, list[str] | str], str]:
    """Read a prompt file (default: the packaged one; a packaged name such as ``synthetic``) -> (raw mapping, source)."""
    p = resolve_prompt_path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptError(f"prompt file {p} does not exist") from None
    except json.JSONDecodeError as e:
        raise PromptError(f"prompt file {p} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise PromptError(f"prompt file {p} must hold a JSON object label -> description(s)")
    table: dict[str, list[str] | str] = {}
    for key, value in raw.items():
        if key.startswith("#"):
            continue
        if isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            table[key] = value
        else:
            raise PromptError(f"prompt file {p}: entry {key!r} must be a string or a non-empty list of strings")
    return table, str(p)


def _descriptions(value: list[str] | str, split_commas: bool) -> list[str]:
    if isinstance(value, list):
        items = value
    elif split_commas:
        items = value.split(",")
    else:
        items = [value]
    items = [s.strip() for s in items if s.strip()]
    return items


def _spellings(name: str) -> list[str]:
    """The class name, then its other spellings: bare <-> PTB-XL padded (``NST`` <-> ``NST_``)."""
    from ecg_data.tasks.names import aliases_of, canonical_class

    bare = canonical_class(name)
    out = [name, bare, *aliases_of(bare)]
    return list(dict.fromkeys(out))


def _lookup(table: dict, name: str, dataset: str | None) -> str | None:
    """``dataset:NAME``, then ``NAME``, each also in its other PTB-XL spelling (bare or padded), so published
    prompt files (MERL writes ``NST``, ``TAB``) and files written with the padded names both work."""
    names = _spellings(name)
    candidates = ([f"{dataset}:{n}" for n in names] if dataset else []) + names
    return next((c for c in candidates if c in table), None)


def class_prompts(
    classes: Sequence[str],
    *,
    dataset: str | None = None,
    path: str | Path | None = None,
    templates: Sequence[str] | None = None,
    split_commas: bool = False,
    lowercase: bool = False,
) -> dict[str, list[str]]:
    """Prompts per class, in ``classes`` order: every description inserted into every template.

    ``templates`` are format strings with one ``{}`` (e.g. ``"ECG showing {}"``); default: the description as
    is. Raises PromptError naming the file and *all* missing classes.
    """
    table, source = load_prompt_file(path)
    templates = list(templates) if templates else ["{}"]
    for t in templates:
        if t.count("{}") != 1:
            raise PromptError(f"template {t!r} must contain exactly one '{{}}'")
    out: dict[str, list[str]] = {}
    missing: list[str] = []
    for name in classes:
        key = _lookup(table, name, dataset)
        if key is None:
            missing.append(name)
            continue
        texts = [t.format(d) for d in _descriptions(table[key], split_commas) for t in templates]
        if not texts:
            raise PromptError(f"prompt file {source}: entry {key!r} is empty")
        out[name] = [s.lower() for s in texts] if lowercase else texts
    if missing:
        raise PromptError(
            f"prompt file {source} has no entry for class(es) {', '.join(repr(m) for m in missing)}"
            + (f" (dataset {dataset!r})" if dataset else "")
            + "; add them (label -> description) or point to another prompt file"
        )
    return out


def prompt_file_fingerprint(path: str | Path | None = None) -> str:
    """Short hash of a prompt file's content, recorded in result configs."""
    from ecg_data.paths import file_hash

    return file_hash(resolve_prompt_path(path))


def missing_prompts(
    task_classes: dict[str, tuple[str | None, Sequence[str]]], path: str | Path | None = None
) -> dict[str, list[str]]:
    """task -> classes the prompt file cannot resolve; ``task_classes``: task -> (dataset, classes)."""
    table, _ = load_prompt_file(path)
    return {
        t: miss
        for t, (ds, classes) in task_classes.items()
        if (miss := [c for c in classes if _lookup(table, c, ds) is None])
    }


def check_prompts(tasks: Sequence[Any], prompt_file: str | Path | None = None) -> None:
    """Fail fast before pretraining: raise PromptError naming every class of every task without a prompt.

    ``tasks``: Task objects, or task names, whose class lists are read without data for the published tasks
    (``ecg_data.tasks.published_classes``); other names need their Task object.
    """
    from ecg_data.tasks import PUBLISHED_TASKS, published_classes

    wanted: dict[str, tuple[str | None, Sequence[str]]] = {}
    for t in tasks:
        if isinstance(t, str):
            if t not in PUBLISHED_TASKS:
                raise TypeError(
                    f"check_prompts: pass the Task object for {t!r} (only published tasks are known by name)"
                )
            wanted[t] = (PUBLISHED_TASKS[t], published_classes(t))
        else:
            wanted[t.name] = (t.dataset, list(t.classes))
    missing = missing_prompts(wanted, prompt_file)
    if missing:
        _, source = load_prompt_file(prompt_file)
        lines = "; ".join(f"{t}: {', '.join(repr(c) for c in cl)}" for t, cl in missing.items())
        raise PromptError(
            f"prompt file {source} has no entry for {sum(map(len, missing.values()))} class(es) of the requested "
            f"tasks ({lines}); add them (label -> description) or choose another prompt file before pretraining"
        )
