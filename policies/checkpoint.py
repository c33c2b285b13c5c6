"""Checkpoint folders: ``model.safetensors`` + ``config.json`` (+ ``train_state.pt`` for resume).

A checkpoint is written to a temporary sibling folder and renamed into place, so a crash mid-write
never leaves a half checkpoint; ``--checkpoint`` arguments everywhere take the folder.
Both ``policies`` and ``grasp_models`` use this module.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAIN_STATE_FILE = "train_state.pt"


def save_checkpoint(
    folder: str | os.PathLike,
    model: torch.nn.Module,
    config: Any,
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Atomically write a checkpoint folder.

    Args:
        folder: destination folder (replaced if it exists).
        model: module whose ``state_dict`` goes to ``model.safetensors``.
        config: dataclass or JSON-able dict describing how to rebuild the model (and how it was trained).
        train_state: optional optimiser / replay / RNG state for ``--resume`` (pickled with torch.save).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / MODEL_FILE))
    config_dict = asdict(config) if is_dataclass(config) else dict(config)
    (tmp / CONFIG_FILE).write_text(json.dumps(config_dict, indent=2, default=str))
    if train_state is not None:
        torch.save(train_state, tmp / TRAIN_STATE_FILE)
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def load_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint folder as a dict."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a checkpoint folder: {CONFIG_FILE} missing")
    return json.loads(path.read_text())


def load_weights(folder: str | os.PathLike, model: torch.nn.Module, device: str | torch.device = "cpu") -> None:
    """Load ``model.safetensors`` from a checkpoint folder into ``model`` (strict)."""
    path = Path(folder) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a checkpoint folder: {MODEL_FILE} missing")
    model.load_state_dict(load_file(str(path), device=str(device)))


def load_train_state(folder: str | os.PathLike) -> dict[str, Any]:
    """The resume state saved beside the weights (raises if the checkpoint has none)."""
    path = Path(folder) / TRAIN_STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no {TRAIN_STATE_FILE}: it cannot be resumed")
    return torch.load(path, weights_only=False)
