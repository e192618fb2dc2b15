"""Speed and memory switches that do not change what is trained (docs/performance.md).

They live in the trainer config's ``perf`` mapping (``configs/trainer/*.yaml``) because what pays depends on the
machine, not on the method; ``train.fit`` applies them with ``apply_perf`` before training. Each one is tested
to give the eager step's loss and gradients within float tolerance (tests/text_align/test_perf.py):

- ``optimizer_impl``: AdamW's implementation, ``fused`` | ``foreach`` | ``for`` (torch's per-tensor loop);
- ``compile``: ``torch.compile`` of each large direct sub-module (towers, decoder), options in ``compile_options``;
- ``activation_checkpointing``: recompute transformer blocks in backward (memory for time);
- ``channels_last_conv``: wav2vec2's positional conv as a channels-last conv on CPU (float rounding apart, the same);
- ``fast_cpu_dropout``: dropout masks from integer draws on CPU (``ecg_encoders.cpu_dropout``): the same
  distribution and loss/gradients *given the masks*, but another random stream than torch's ``bernoulli_``.

The CPU-only ones do nothing on other devices (CUDA keeps torch's fused kernels).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ecg_encoders.cpu_dropout import set_fast_cpu_dropout

OPTIMIZER_IMPLS = ("fused", "foreach", "for")
DEFAULT_OPTIMIZER_IMPL = "fused"  # measured fastest on CPU (docs/performance.md); on GPU fused is torch's fastest too
PERF_KEYS = (
    "optimizer_impl",
    "compile",
    "compile_options",
    "activation_checkpointing",
    "channels_last_conv",
    "fast_cpu_dropout",
)
#: a direct sub-module holding at least this share of the parameters is compiled by ``compile=True`` (the towers
#: and the decoder; projection heads stay eager)
COMPILE_MIN_SHARE = 0.05


def adamw_impl_kwargs(impl: str) -> dict[str, bool]:
    """``torch.optim.AdamW`` keyword arguments selecting one implementation (they are numerically equivalent)."""
    if impl not in OPTIMIZER_IMPLS:
        raise ValueError(f"optimizer_impl must be one of {OPTIMIZER_IMPLS}, got {impl!r}")
    if impl == "fused":
        return {"fused": True}
    return {"foreach": impl == "foreach", "fused": False}


def compile_targets(module: nn.Module) -> list[str]:
    """Names of the direct sub-modules worth compiling: those with ``COMPILE_MIN_SHARE`` of the parameters or more."""
    total = sum(p.numel() for p in module.parameters())
    return [
        n for n, m in module.named_children() if sum(p.numel() for p in m.parameters()) >= COMPILE_MIN_SHARE * total
    ]


def compile_submodules(module: nn.Module, **options: Any) -> list[str]:
    """``nn.Module.compile`` (in place: parameter names and checkpoints are unchanged) of each compile target.

    Tokenisation and the losses stay eager: they are Python over strings and small tensors."""
    names = compile_targets(module)
    for n in names:
        getattr(module, n).compile(**options)
    return names


def enable_activation_checkpointing(module: nn.Module) -> int:
    """Turn on block recomputation wherever a sub-module supports it; returns how many were switched on.

    Our transformers expose an ``activation_checkpointing`` flag; Hugging Face models their
    ``gradient_checkpointing_enable`` (non-reentrant, so frozen layers and dropout behave as without it)."""
    n = 0
    for m in module.modules():
        if hasattr(m, "activation_checkpointing") and isinstance(m.activation_checkpointing, bool):
            m.activation_checkpointing = True
            n += 1
        elif getattr(m, "supports_gradient_checkpointing", False):
            if callable(getattr(m, "activation_checkpointing_enable", None)):  # transformers >= 5.2x
                m.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            n += 1
    return n


def set_channels_last_conv(module: nn.Module, enabled: bool) -> int:
    """Set every ``channels_last_conv`` flag in ``module`` (wav2vec2's positional conv); returns how many."""
    flagged = [m for m in module.modules() if isinstance(getattr(m, "channels_last_conv", None), bool)]
    for m in flagged:
        m.channels_last_conv = enabled
    return len(flagged)


def apply_perf(module: nn.Module, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Apply the trainer config's ``perf`` mapping to ``module``; returns what was done (for the log)."""
    opts = dict(options or {})
    unknown = set(opts) - set(PERF_KEYS)
    if unknown:
        raise ValueError(f"unknown perf option(s) {sorted(unknown)}; valid: {PERF_KEYS}")
    done: dict[str, Any] = {}
    if "optimizer_impl" in opts and opts["optimizer_impl"] is not None:
        adamw_impl_kwargs(str(opts["optimizer_impl"]))  # validate now, not at configure_optimizers
        module.optimizer_impl = str(opts["optimizer_impl"])
        done["optimizer_impl"] = module.optimizer_impl
    if opts.get("channels_last_conv") is not None:
        done["channels_last_conv"] = set_channels_last_conv(module, bool(opts["channels_last_conv"]))
    if opts.get("fast_cpu_dropout") is not None:
        done["fast_cpu_dropout"] = set_fast_cpu_dropout(module, bool(opts["fast_cpu_dropout"]))
    if opts.get("activation_checkpointing"):
        done["activation_checkpointing"] = enable_activation_checkpointing(module)
    if opts.get("compile"):
        done["compiled"] = compile_submodules(module, **dict(opts.get("compile_options") or {}))
    return done
