"""Errors the entry point prints as one clean message (exit code 2) instead of a traceback."""

from __future__ import annotations

import os


class ConfigError(Exception):
    """A method/dataset config that cannot be used; the message names the file and the problem."""


class InjectedStop(SystemExit):
    """Raised after a stage when ``$ECGBENCH_STOP_AFTER`` names it: simulates a killed run (resume tests)."""

    EXIT_CODE = 75

    def __init__(self, stage: str) -> None:
        self.stage = stage
        super().__init__(self.EXIT_CODE)


def maybe_stop_after(stage: str) -> None:
    """Stop the process after ``stage`` if asked to by the environment (used to test resuming)."""
    wanted = os.environ.get("ECGBENCH_STOP_AFTER", "")
    if stage in {s.strip() for s in wanted.split(",") if s.strip()}:
        raise InjectedStop(stage)
