"""Pieces of a torch training loop shared by the training commands: the learning-rate schedule and one
optimiser step."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def warmup_cosine_lr(peak: float, step: int, warmup_steps: int, total_steps: int, floor: float = 0.05) -> float:
    """Learning rate at optimiser ``step`` (0-based): linear warm-up to ``peak`` over ``warmup_steps``, then cosine
    decay to ``floor * peak`` at ``total_steps``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def optimizer_step(optimizer: torch.optim.Optimizer, parameters: Iterable[torch.nn.Parameter], loss: torch.Tensor,
                   lr: float, max_grad_norm: float = 1.0) -> None:
    """One update: set every parameter group's learning rate to ``lr``, back-propagate ``loss``, clip the gradient
    norm of ``parameters`` to ``max_grad_norm`` and step."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
    optimizer.step()
