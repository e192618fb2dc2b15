"""Methods by name, as lazy dotted ``"module.attr"`` strings (importing one method never imports the others).

The Hydra YAMLs in ``configs/method/`` are the primary way to run a method (``benchmarks/run.py
method=NAME``); this registry is the Python-side index of the same names, for code that wants the model
class of a method (``METHODS.get("merl")``) and for users who add their own (``register_method``).
``tests/baselines/test_registry.py`` checks that every ``configs/method/*.yaml`` name is registered here
or listed in ``CONFIG_VARIANTS``.
"""

from __future__ import annotations

from typing import Any

from ecg_data.registry import LazyRegistry

#: method name -> its model class (a ``PretrainModule`` subclass) or, for random init, its encoder factory.
METHODS = LazyRegistry(
    "method",
    {
        "melp": "ecg_text_align.melp.MELP",
        "merl": "baselines.merl.model.MERL",
        "esi": "baselines.esi.model.ESI",
        "heartlang": "baselines.heartlang.model.HeartLangMSM",
        "random_init": "baselines.random_init.model.RandomInitEncoder",
    },
)

#: configs/method/*.yaml files that are size or stage variants of a registered method, not methods of their own.
CONFIG_VARIANTS: dict[str, str] = {
    "melp_paper": "melp",  # MELP at paper size (configs/method/melp_paper.yaml)
    "melp_stage0": "melp",  # MELP's ECG-only stage 0 on its own
    "merl_paper": "merl",  # the paper sizes (configs/method/<name>_paper.yaml; run recipe: experiment=<name>_paper)
    "esi_paper": "esi",
    "heartlang_paper": "heartlang",
    "random_init_paper": "random_init",
}


def register_method(name: str, target: str | Any, *, overwrite: bool = False) -> None:
    """Register a user's method: ``target`` is a dotted path ``"module.attr"`` (imported on first use) or the object itself."""
    METHODS.register(name, target, overwrite=overwrite)


def method_names() -> list[str]:
    return METHODS.names()
