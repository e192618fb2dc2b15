"""Class names as the papers write them: PTB-XL's ``scp_statements.csv`` pads seven names with underscores.

Why: ``_AVB``, ``ISC_``, ``NST_``, ``STD_``, ``NT_``, ``STE_``, ``TAB_`` are padded in the statement table (so
they sort into fixed-width columns there), while every published split file, prompt file and results table
writes them bare. A prompt file or a user selecting published labels by name got these classes wrong, so every
task names them bare; the padded spellings stay accepted as aliases (old result files, old prompt files).
"""

from __future__ import annotations

from collections.abc import Iterable

#: PTB-XL padded statement / subclass names -> the published name (checked: no bare name collides).
PTBXL_PADDED: dict[str, str] = {
    "_AVB": "AVB",
    "ISC_": "ISC",
    "NST_": "NST",
    "STD_": "STD",
    "NT_": "NT",
    "STE_": "STE",
    "TAB_": "TAB",
}

#: old name -> current name, for every class that was renamed.
CLASS_ALIASES: dict[str, str] = dict(PTBXL_PADDED)


def unpad(name: str) -> str:
    """A PTB-XL class name without its padding underscores (``NST_`` -> ``NST``); other names unchanged."""
    return PTBXL_PADDED.get(name, name)


def canonical_class(name: str, classes: Iterable[str] | None = None) -> str:
    """The current name of ``name`` (an alias resolves to its new name); with ``classes``, it must be one of them."""
    new = CLASS_ALIASES.get(name, name)
    if classes is not None:
        known = list(classes)
        if new not in known:
            raise KeyError(f"unknown class {name!r}; classes: {', '.join(known)}")
    return new


def aliases_of(name: str) -> list[str]:
    """Old spellings that resolve to ``name`` (for look-ups in files written before the rename)."""
    return [old for old, new in CLASS_ALIASES.items() if new == name]
