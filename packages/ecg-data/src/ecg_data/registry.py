"""Name -> object registries with lazy dotted-path (``"module.attr"``) targets.

Why lazy: choosing one reader, encoder or method must not import every other one (and their heavy
dependencies). Shared by readers, tasks, presets (here), encoders and methods (downstream packages).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any


class UnknownNameError(KeyError):
    """An unknown name; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class LazyRegistry:
    """Maps names to objects given either directly or as dotted ``"package.module.attr"`` strings."""

    def __init__(self, kind: str, entries: dict[str, str | Any] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, str | Any] = dict(entries or {})

    def register(self, name: str, target: str | Any, *, overwrite: bool = False) -> None:
        if name in self._entries and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered (pass overwrite=True to replace it)")
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> Any:
        if name not in self._entries:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names()) or '(none registered)'}"
            )
        target = self._entries[name]
        if isinstance(target, str):
            target = locate(target)
            self._entries[name] = target
        return target

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        factory: Callable[..., Any] = self.get(name)
        return factory(*args, **kwargs)


def locate(path: str) -> Any:
    """The object at a dotted path ``pkg.module.attr`` (attr may be dotted: ``Class.method``).

    The project's one importer of component paths: Hydra ``_target_`` strings (resolved as
    ``hydra.utils.get_object`` does: the longest importable module prefix, then attributes), the lazy
    registry entries here. The project writes only the dotted form; the ``pkg.module:attr`` form is still read,
    because checkpoints and exported directories written before it (ecg-text-align 0.2.0) store it."""
    path = str(path).replace(":", ".")
    parts = [p for p in path.split(".") if p]
    if not parts:
        raise ImportError(f"empty import path {path!r}")
    err: Exception | None = None
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        try:
            obj: Any = importlib.import_module(prefix)
        except ModuleNotFoundError as e:
            if e.name is not None and not (prefix == e.name or prefix.startswith(e.name + ".")):
                raise  # the module exists but imports something missing: say so, not "cannot find"
            err = e
            continue
        try:
            for part in parts[i:]:
                obj = getattr(obj, part)
        except AttributeError as e:
            raise ImportError(f"cannot import {path!r}: {e}") from e
        return obj
    raise ImportError(f"cannot import {path!r}: {err}")
