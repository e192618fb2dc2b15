"""Orchestration behind ``benchmarks/run.py``: pretrain -> zero-shot -> linear probe -> publish.

Why a package of its own: the Hydra entry point stays a thin shell (argument handling, clean errors),
and tests drive the same code in-process through Hydra's compose API.
"""

from benchmarks.pipeline.errors import ConfigError, InjectedStop
from benchmarks.pipeline.runner import run

__all__ = ["ConfigError", "InjectedStop", "run"]
