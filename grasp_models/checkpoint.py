"""Checkpoint folders: ``model.safetensors`` + ``config.json`` (+ ``train_state.pt`` for resume), and the one
:func:`load_checkpoint` that rebuilds any kind.

A checkpoint is written to a temporary sibling folder and renamed into place, so a crash mid-write never leaves a
half checkpoint; ``--checkpoint`` arguments everywhere take the folder. ``config.json`` holds ``kind`` and the typed
config of that kind (nested dataclasses as JSON objects); :func:`load_checkpoint` reads ``kind``, rebuilds the
typed config with dacite (unknown or missing fields are errors naming the folder) and builds the model. Kinds are
registered in :data:`KIND_MODULES`: each names the module whose ``CHECKPOINT_KIND`` says how to build it. This
module sits in the lowest torch layer so that both ``grasp_models`` and ``policies`` save and load through it.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import dacite
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from manipstack.errors import InputError, MissingInputError

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAIN_STATE_FILE = "train_state.pt"

KIND_MODULES: dict[str, str] = {
    "vpg": "manipstack.policies.vpg.agent",
    "pose": "manipstack.grasp_models.pose.model",
    "ugg": "manipstack.grasp_models.ugg.model",
}
"""Checkpoint kind -> module defining ``CHECKPOINT_KIND`` (imported only when a checkpoint of that kind loads)."""


@dataclass(frozen=True)
class CheckpointKind:
    """How to rebuild one kind of checkpoint.

    ``config_type`` is the dataclass that ``config.json`` (without ``kind``) holds; ``build(config, folder, device)``
    returns the model (or agent) with its weights loaded from ``folder``.
    """

    config_type: type
    build: Callable[[Any, Path, str], Any]


@dataclass
class Checkpoint:
    """A loaded checkpoint: its folder, kind, typed config and the rebuilt model (or agent)."""

    folder: Path
    kind: str
    config: Any
    model: Any


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
        config: dataclass or JSON-able dict describing how to rebuild the model (and how it was trained), with
            its ``kind``.
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


def _checkpoint_folder(folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"checkpoint folder not found: {folder} (a checkpoint is a folder holding "
                                f"{MODEL_FILE} and {CONFIG_FILE})")
    return folder


def load_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint folder as a dict."""
    path = _checkpoint_folder(folder) / CONFIG_FILE
    if not path.is_file():
        raise MissingInputError(f"{folder} is not a checkpoint folder: {CONFIG_FILE} missing")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a JSON object with a 'kind'")
    return config


def load_weights(folder: str | os.PathLike, model: torch.nn.Module, device: str | torch.device = "cpu") -> None:
    """Load ``model.safetensors`` from a checkpoint folder into ``model`` (strict); errors name the file."""
    path = _checkpoint_folder(folder) / MODEL_FILE
    if not path.is_file():
        raise MissingInputError(f"{folder} is not a checkpoint folder: {MODEL_FILE} missing")
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable safetensors file ({err}); re-copy or re-train the checkpoint"
                         ) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise InputError(f"{path}: weights do not fit the model its {CONFIG_FILE} describes: "
                         f"{str(err).splitlines()[0]}") from None


def load_train_state(folder: str | os.PathLike) -> dict[str, Any]:
    """The resume state saved beside the weights (raises if the checkpoint has none)."""
    path = _checkpoint_folder(folder) / TRAIN_STATE_FILE
    if not path.is_file():
        raise MissingInputError(f"{folder} holds no {TRAIN_STATE_FILE}: it cannot be resumed")
    return torch.load(path, weights_only=False)


def typed_config(config_type: type, data: dict[str, Any], where: str) -> Any:
    """``data`` (JSON) as an instance of the dataclass ``config_type`` (nested dataclasses, tuples and paths
    included); unknown, missing or mistyped fields raise :class:`InputError` naming ``where``."""
    try:
        return dacite.from_dict(config_type, data, config=dacite.Config(cast=[tuple, Path], strict=True))
    except (dacite.DaciteError, TypeError) as err:
        raise InputError(f"{where}: {err}") from None


def load_checkpoint(folder: str | os.PathLike, device: str = "cpu", kind: str | None = None) -> Checkpoint:
    """Rebuild any checkpoint from its folder: read ``kind`` from ``config.json``, type the config, build the model.

    Args:
        folder: the checkpoint folder.
        device: torch device for the model.
        kind: the kind the caller needs; a checkpoint of another kind raises :class:`InputError` saying which it is.
    """
    raw = load_config(folder)
    found = raw.get("kind")
    if found not in KIND_MODULES:
        raise InputError(f"{folder}: unknown checkpoint kind {found!r}; known kinds: {sorted(KIND_MODULES)}")
    if kind is not None and found != kind:
        raise InputError(f"{folder} is a {found!r} checkpoint, but a {kind!r} checkpoint is needed here")
    spec: CheckpointKind = importlib.import_module(KIND_MODULES[found]).CHECKPOINT_KIND
    config = typed_config(spec.config_type, {k: v for k, v in raw.items() if k != "kind"},
                          f"{Path(folder) / CONFIG_FILE}")
    return Checkpoint(Path(folder), found, config, spec.build(config, Path(folder), device))
