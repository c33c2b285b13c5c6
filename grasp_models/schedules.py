"""Learning-rate schedules shared by the training commands."""

from __future__ import annotations

import math


def warmup_cosine_lr(peak: float, step: int, warmup_steps: int, total_steps: int, floor: float = 0.05) -> float:
    """Learning rate at optimiser ``step`` (0-based): linear warm-up to ``peak`` over ``warmup_steps``, then cosine
    decay to ``floor * peak`` at ``total_steps``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
