"""Named synthetic corpora, generated on first use into the cache.

Why in the cache and content-addressed: the corpus is a deterministic function of (preset, n, seed,
difficulty, generator version); the directory name carries its hash, so a changed generator or size never
reuses a stale corpus, and a finished directory is trusted without re-checking. Generation writes into a
temporary sibling and renames it, so an interrupted run never leaves a half corpus behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..paths import cache_root, exclusive_lock, stable_hash
from .generate import Difficulty, generate_records_parallel, get_difficulty
from .writers import write_cinc2020, write_mimic_iv_ecg, write_ptbxl

log = logging.getLogger(__name__)

#: Bump when the generator's output changes, so cached corpora are regenerated.
GENERATOR_VERSION = "3"  # 3: the MIMIC-style corpus writes a patients.csv (age, sex) for ESI captions
MANIFEST = "synthetic.json"


@dataclass(frozen=True)
class PresetSpec:
    writer: Callable
    profile: str
    default_n: int
    reader: str
    description: str


PRESETS: dict[str, PresetSpec] = {
    "synth-mimic": PresetSpec(
        write_mimic_iv_ecg,
        "mimic",
        4000,
        "mimic_iv_ecg",
        "ECG-report pairs for pretraining (MIMIC-IV-ECG layout); scale n up to 800k",
    ),
    "synth-ptbxl": PresetSpec(
        write_ptbxl,
        "ptbxl",
        2500,
        "ptbxl",
        "PTB-XL layout with SCP codes, strat_fold 1-10 (tasks super/sub/form/rhythm)",
    ),
    "synth-cpsc2018": PresetSpec(
        write_cinc2020, "cpsc", 1500, "cpsc2018", "CinC 2020 layout with the CPSC2018 nine classes as SNOMED-CT codes"
    ),
}


def preset_dir(name: str, *, n: int | None = None, seed: int = 0, difficulty: str | Difficulty = "default") -> Path:
    spec = _spec(name)
    n = spec.default_n if n is None else int(n)
    diff = get_difficulty(difficulty)
    key = stable_hash({"name": name, "n": n, "seed": seed, "difficulty": asdict(diff), "version": GENERATOR_VERSION})
    return cache_root() / "synthetic" / f"{name}-{key}"


def _spec(name: str) -> PresetSpec:
    if name not in PRESETS:
        raise ValueError(f"unknown synthetic preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]


def ensure_preset(
    name: str, *, n: int | None = None, seed: int = 0, difficulty: str | Difficulty = "default", workers: int | None = 1
) -> Path:
    """Return the root of preset ``name`` (the directory its reader opens), generating it if absent.

    ``workers``: processes generating records (``None`` = CPU count); the corpus is the same for any value."""
    spec = _spec(name)
    n = spec.default_n if n is None else int(n)
    final = preset_dir(name, n=n, seed=seed, difficulty=difficulty)
    if (final / MANIFEST).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    # parallel jobs asking for the same corpus: one generates it, the others wait and then use it
    with exclusive_lock(
        final.parent / f".{final.name}.lock", waiting=f"synthetic preset {name}: another process generates it; waiting"
    ):
        if not (final / MANIFEST).is_file():
            _generate(spec, name, n, seed, difficulty, workers, final)
    return final


def _generate(
    spec: Any, name: str, n: int, seed: int, difficulty: str | Difficulty, workers: int | None, final: Path
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        log.info("generating synthetic preset %s (n=%d, seed=%d) into %s", name, n, seed, final)
        recs = generate_records_parallel(n, seed, difficulty, profile=spec.profile, workers=workers)
        spec.writer(tmp, recs)
        manifest = {
            "preset": name,
            "n": n,
            "seed": seed,
            "difficulty": asdict(get_difficulty(difficulty)),
            "generator_version": GENERATOR_VERSION,
            "reader": spec.reader,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / MANIFEST).is_file():  # lost a race to a finished corpus: keep theirs
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
