"""Build sub-modules from plain-data specs, so a checkpoint's hyperparameters rebuild the model.

One convention for every component in the project (configs, defaults in code, tests): a spec is a dict
``{"_target_": "pkg.module.factory", **kwargs}``, Hydra's ``_target_`` syntax, e.g.
``{"_target_": "ecg_encoders.text.presets.build_text_preset", "name": "offline_default", "path": DIR}``.
``build`` imports the dotted path with ``ecg_data.registry.locate`` (the project's one importer, resolving as
``hydra.utils.get_object`` does: longest importable module prefix, then attributes) and calls it with the other keys, values passed as they are: unlike
``hydra.utils.instantiate`` it does not turn tuples into lists or nested dicts into DictConfigs, which the
models' saved hyperparameters rely on.

Checkpoints written before this convention store ``{"target": "pkg.module:attr", ...}`` or an ECG-registry
``{"name": "resnet18_1d", "preset": ...}``; ``upgrade_spec`` / ``upgrade_specs`` convert them on load
(the only place the old forms are read).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecg_data.registry import locate

__all__ = ["TARGET", "build", "locate", "upgrade_spec", "upgrade_specs"]

TARGET = "_target_"
#: the pre-0.2 key (``"module:attr"`` strings); read by the converter only
LEGACY_TARGET = "target"


def upgrade_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An old-form component spec in the ``_target_`` form; a ``_target_`` spec is returned as a copy."""
    spec = dict(spec)
    if TARGET in spec:
        return spec
    if LEGACY_TARGET in spec:
        return {TARGET: str(spec.pop(LEGACY_TARGET)).replace(":", "."), **spec}
    if "name" in spec:  # ECG-registry name (ecg_encoders.registry.ECG_ENCODERS) -> its factory's dotted path
        from ecg_encoders.registry import ECG_ENCODERS

        factory = ECG_ENCODERS.get(str(spec.pop("name")))
        target = f"{factory.__module__}.{factory.__qualname__}"
        spec.setdefault("preset", "tiny")  # build_ecg_encoder's default
        return {TARGET: target, **spec}
    raise ValueError(f"component spec needs '{TARGET}': {spec!r}")


def _is_legacy(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and TARGET not in value
        and isinstance(value.get(LEGACY_TARGET), str)
        and ":" in value[LEGACY_TARGET]
    )


#: constructor arguments that take a component spec (the only places a registry ``{"name": ...}`` spec was used)
SPEC_KEYS = ("ecg_encoder", "ecg_tower", "tower", "text_encoder")


def upgrade_specs(hparams: Mapping[str, Any], keys: tuple[str, ...] = SPEC_KEYS) -> dict[str, Any]:
    """Saved hyperparameters with every old-form spec converted (checkpoints from before 0.2).

    ``{"target": "m:attr"}`` specs are found at any depth; registry ``{"name": ...}`` specs only under
    ``keys`` (the constructor arguments that take an ECG encoder spec), since ``name`` alone is ambiguous."""
    out: dict[str, Any] = {}
    for k, v in hparams.items():
        if isinstance(v, Mapping) and (_is_legacy(v) or (k in keys and TARGET not in v and "name" in v)):
            out[k] = upgrade_spec(v)
        elif isinstance(v, Mapping):
            out[k] = upgrade_specs(v, keys)
        else:
            out[k] = v
    return out


def build(spec: Mapping[str, Any]) -> Any:
    """``locate(spec["_target_"])(**other keys)``.

    Only the ``_target_`` form is accepted: old forms are converted where old data is read (checkpoints,
    exported directories), so new code cannot write them."""
    spec = dict(spec)
    if TARGET not in spec:
        hint = f" (old form: write {upgrade_spec(spec)!r})" if LEGACY_TARGET in spec or "name" in spec else ""
        raise ValueError(f"component spec needs '{TARGET}': {spec!r}{hint}")
    return locate(spec.pop(TARGET))(**spec)
