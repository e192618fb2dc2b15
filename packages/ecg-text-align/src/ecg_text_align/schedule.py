"""Learning-rate schedule: linear warmup then cosine decay, by optimiser steps.

The released MELP used ``CosineAnnealingWarmRestarts`` without any warmup, which can collapse early
training; open_clip's ``cosine_lr`` (warmup ``base_lr * (step + 1) / warmup``) is what we follow.
"""

from __future__ import annotations

import math


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
