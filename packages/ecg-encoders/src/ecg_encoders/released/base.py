"""What every released-weights converter shares: reading the file, the manifest, the conversion report.

A converter maps each tensor of the released state dict to ours through an explicit key map. It either
consumes a tensor or names it in ``ignored`` with the reason; anything else is an error that names the file
and the key, as is a shape that differs from ours. Inputs are adapted to the released model's own
conventions (lead order, scaling) by ``InputAdapter``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecg_encoders.released.errors import ReleasedFormatError, WeightsNotAvailableError

#: our lead order (ecg_data.record.LEADS)
STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
#: MIMIC-IV-ECG's WFDB records store aVF before aVL; MIMIC-trained weights expect that order
MIMIC_LEADS = ("I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6")

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.pt", "model.pth")


def manifest(name: str) -> dict[str, Any]:
    """The committed manifest of a released format (parameter names and shapes, with provenance)."""
    text = resources.files("ecg_encoders.released").joinpath(f"manifests/{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def weights_file(path: str | Path) -> Path:
    """A weights file, or the one weights file of a released directory (e.g. a hub snapshot)."""
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        for name in WEIGHT_FILES:
            if (p / name).is_file():
                return p / name
        found = sorted(q for q in p.iterdir() if q.suffix in (".safetensors", ".pt", ".pth", ".bin"))
        if len(found) == 1:
            return found[0]
        raise WeightsNotAvailableError(
            str(p), f"no single weights file in the directory (have {[q.name for q in found]})"
        )
    raise WeightsNotAvailableError(str(p), "no such file or directory")


def _unwrap(obj: Any) -> dict[str, torch.Tensor]:
    """fairseq (``model``), Lightning (``state_dict``), timm-style (``model``/``module``) containers -> tensors."""
    for key in ("model", "state_dict", "module"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            return _unwrap(obj[key])
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected a state dict, got {type(obj).__name__}")
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a released file without executing pickled code: safetensors, or ``torch.load(weights_only=True)``
    (``ecg_data.integrity.safe_torch_load``).

    A file whose pickle holds more than tensors and plain containers (fairseq's ``cfg`` object) is refused
    unless the user names it in ``ECGBENCH_ALLOW_PICKLE`` (a file they trust; the full read is logged).
    """
    from ecg_data.integrity import IntegrityError, safe_torch_load

    f = weights_file(path)
    if f.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(f))
    try:
        obj = safe_torch_load(f)
    except IntegrityError as err:
        raise ReleasedFormatError(str(f), "weights", f"cannot be read with weights_only=True ({err})") from None
    return _unwrap(obj)


@dataclass
class Conversion:
    """The outcome of one conversion: our state dict and which released tensors went where."""

    state: dict[str, torch.Tensor]
    consumed: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)  # released key -> why it is not used


class KeyMapper:
    """Collects an explicit mapping released -> ours and checks that nothing is left over."""

    def __init__(self, released: Mapping[str, torch.Tensor], source: str, fmt: str) -> None:
        self.released, self.source, self.fmt = dict(released), source, fmt
        self.out: dict[str, torch.Tensor] = {}
        self.consumed: list[str] = []
        self.ignored: dict[str, str] = {}

    def take(self, key: str) -> torch.Tensor:
        if key not in self.released:
            raise ReleasedFormatError(self.source, self.fmt, f"missing key {key!r}")
        if key in self.consumed:
            raise ReleasedFormatError(self.source, self.fmt, f"key {key!r} mapped twice")
        self.consumed.append(key)
        return self.released[key]

    def put(self, ours: str, released_key: str) -> None:
        self.out[ours] = self.take(released_key)

    def ignore(self, pattern: str, why: str) -> None:
        rx = re.compile(pattern)
        for k in self.released:
            if rx.fullmatch(k) and k not in self.consumed:
                self.ignored[k] = why

    def finish(self, module: nn.Module) -> Conversion:
        left = sorted(set(self.released) - set(self.consumed) - set(self.ignored))
        if left:
            raise ReleasedFormatError(self.source, self.fmt, f"{len(left)} unexpected key(s), e.g. {left[:5]}")
        check_shapes(module, self.out, self.source, self.fmt)
        return Conversion(self.out, list(self.consumed), dict(self.ignored))


def check_shapes(module: nn.Module, state: Mapping[str, torch.Tensor], source: str, fmt: str) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise ReleasedFormatError(
            source, fmt, f"our model needs {len(missing)} tensor(s) the file lacks, e.g. {missing[:5]}"
        )
    extra = sorted(set(state) - set(own))
    if extra:
        raise ReleasedFormatError(source, fmt, f"converted keys our model does not have: {extra[:5]}")
    bad = [
        f"{k}: file {tuple(state[k].shape)} vs ours {tuple(own[k].shape)}"
        for k in own
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if bad:
        raise ReleasedFormatError(source, fmt, "shape mismatch: " + "; ".join(bad[:5]))


class InputAdapter(nn.Module):
    """Our (B, 12, T) in standard lead order and preset scaling -> what the released model was trained on."""

    def __init__(self, lead_order: tuple[str, ...] = STANDARD_LEADS, scaling: str = "none") -> None:
        super().__init__()
        if sorted(lead_order) != sorted(STANDARD_LEADS):
            raise ValueError(f"lead_order must be a permutation of {STANDARD_LEADS}, got {lead_order}")
        if scaling not in ("none", "zscore_lead"):
            raise ValueError(f"unknown scaling {scaling!r}")
        self.lead_order, self.scaling = tuple(lead_order), scaling
        self.register_buffer("index", torch.tensor([STANDARD_LEADS.index(l) for l in lead_order]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.index_select(1, self.index.to(x.device))
        if self.scaling == "zscore_lead":  # per record and lead over time (fairseq-signals' standardisation)
            x = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-8)
        return x


def random_state(
    spec: Mapping[str, list[int]], dtype: torch.dtype = torch.float32, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A random state dict in a released layout (tests build one from a manifest)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in spec.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.zeros(shape, dtype=torch.long)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        else:
            out[k] = (torch.randn(shape, generator=g) * 0.05).to(dtype)
    return out
