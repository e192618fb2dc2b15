"""Name -> object registries with lazy ``"module:attr"`` targets.

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
    """Maps names to objects given either directly or as ``"package.module:attr"`` strings."""

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
            target = resolve(target)
            self._entries[name] = target
        return target

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        factory: Callable[..., Any] = self.get(name)
        return factory(*args, **kwargs)


def resolve(target: str) -> Any:
    """Import ``"package.module:attr"`` (attr may be dotted)."""
    if ":" not in target:
        raise ValueError(f"lazy target must look like 'package.module:attr', got {target!r}")
    module_name, attr = target.split(":", 1)
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
