"""Errors for weights that are missing or do not match a released format (messages name the file and problem)."""

from __future__ import annotations


class WeightsNotAvailableError(RuntimeError):
    """A weights file, directory or hub id cannot be found locally. CLIs print ``str(err)`` only."""

    def __init__(self, name: str, reason: str = "", hint: str | None = None) -> None:
        self.name, self.reason = name, reason
        because = f" ({reason})" if reason else ""
        super().__init__(f"weights {name!r} are not available{because}." + (f"\n{hint}" if hint else ""))


class ReleasedFormatError(ValueError):
    """A released state dict does not match its manifest: unexpected or missing keys, wrong shapes."""

    def __init__(self, source: str, fmt: str, problem: str) -> None:
        self.source, self.fmt, self.problem = source, fmt, problem
        super().__init__(f"{source}: not a valid {fmt} state dict: {problem}")
