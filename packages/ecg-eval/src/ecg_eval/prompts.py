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
- a label with PTB-XL's padding underscore (``NST_``) falls back to the bare key (``NST``) when only that exists;
- keys starting with ``#`` are metadata and ignored (not ``_``: PTB-XL has a class ``_AVB``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

DEFAULT_PROMPT_FILE = "default.json"


class PromptError(KeyError):
    """A prompt file is unreadable or lacks a class; the message names the file and the classes."""

    def __str__(self) -> str:
        return str(self.args[0])


def default_prompt_path() -> Path:
    return Path(str(resources.files("ecg_eval") / "prompts" / DEFAULT_PROMPT_FILE))


def load_prompt_file(path: str | Path | None = None) -> tuple[dict[str, list[str] | str], str]:
    """Read a prompt file (default: the packaged one) -> (raw mapping, source path as str)."""
    p = default_prompt_path() if path is None else Path(path)
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


def _lookup(table: dict, name: str, dataset: str | None) -> str | None:
    """``dataset:NAME``, then ``NAME``, then ``NAME`` without PTB-XL's padding underscores (MERL writes ``NST``
    for ``NST_``, ``TAB`` for ``TAB_``), so published prompt files work unchanged."""
    candidates = ([f"{dataset}:{name}"] if dataset else []) + [name]
    if name.strip("_") != name:
        candidates += ([f"{dataset}:{name.strip('_')}"] if dataset else []) + [name.strip("_")]
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

    return file_hash(default_prompt_path() if path is None else path)
