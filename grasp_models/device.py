"""The torch device of a ``--device`` option: parsed and checked once, with a message that says what to do."""

from __future__ import annotations

import torch

from manipstack.errors import InputError


def check_device(name: str) -> torch.device:
    """The torch device named ``name`` ('cpu', 'cuda', 'cuda:1', 'mps'); ValueError if it is not a device name
    or not available on this machine. Nothing here assumes CUDA: 'cpu' always works."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"--device must be a torch device such as 'cpu' or 'cuda:0', got {name!r}") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device {name}: device type {device.type!r} is not supported; use cpu, cuda or mps")
    return device
