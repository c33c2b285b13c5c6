"""The synthesis work unit: one object's grasps synthesised in batches and validated in physics.

A unit is independent of every other (its randomness comes from the object's seed), so a caller maps
:func:`synthesize_unit` over ``(source, split, config)`` items with ``manipstack.envs.core.parallel.parallel_map``
-- in-process, on local Ray workers or a cluster (each item carries its config, so the mapped function is a plain
module-level function, as ``ray.remote`` requires).
The differentiable hand and object models run on ``SynthesisConfig.device``; PyBullet validation on the CPU.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from manipstack.assets.hands import DEFAULT_HAND_SPEC
from manipstack.envs.tasks.grasp_validation import GraspValidator, ValidationConfig
from manipstack.grasp_models.device import check_device
from manipstack.grasp_models.hand.model import HandModel
from manipstack.grasp_models.metrics import grasp_q1
from manipstack.grasp_models.objects import ObjectModel, ObjectSource, load_object_mesh
from manipstack.grasp_models.synthesis.dexgraspnet import AnnealingConfig, EnergyWeights, synthesize
from manipstack.grasp_models.validation import validate_grasps


@dataclass
class SynthesisConfig:
    """Synthesis and validation settings of one object unit."""

    grasps_per_object: int = 40
    """Valid grasps wanted per object; batches are synthesised until reached or max_batches."""
    batch: int = 32
    """Hands optimised together in one batch."""
    max_batches: int = 6
    """Most batches tried per object."""
    size_range: tuple[float, float] = (0.06, 0.10)
    """Range in m of the normalised objects' longest extent."""
    hand_spec: Path = DEFAULT_HAND_SPEC
    """Hand spec JSON (its URDF beside it)."""
    annealing: AnnealingConfig = field(default_factory=AnnealingConfig)
    """Synthesis optimiser settings."""
    weights: EnergyWeights = field(default_factory=EnergyWeights)
    """Energy weights."""
    device: str = "cpu"
    """Torch device of the differentiable hand model and synthesis ('cpu', 'cuda', 'cuda:1'); PyBullet
    validation always runs on the CPU. Random draws come from a CPU generator, so a seed gives the same
    initial grasps on every device."""

    def __post_init__(self) -> None:
        if self.grasps_per_object < 1 or self.batch < 1 or self.max_batches < 1:
            raise ValueError(f"grasps_per_object, batch and max_batches must be >= 1, got {self.grasps_per_object}, "
                             f"{self.batch}, {self.max_batches}")
        if not 0 < self.size_range[0] <= self.size_range[1]:
            raise ValueError(f"size_range must be 0 < low <= high in m, got {self.size_range}")
        check_device(self.device)


@functools.lru_cache(maxsize=2)
def hand_model(spec: str, device: str = "cpu") -> HandModel:
    """The hand model of a spec on a device, built once per process (workers reuse it across units)."""
    return HandModel(Path(spec), device=device)


def synthesize_object(source: ObjectSource, split: str, config: SynthesisConfig) -> dict:
    """One work unit: synthesise and validate grasps on one object.

    Returns:
        ``{"name": str, "arrays": {key: array}, "attrs": {key: value}}`` with the arrays and attributes of one
        object group of the grasp dataset (layout: ``manipstack.envs.data.grasp_dataset``); ``split`` is stored
        as given.
    """
    torch.set_num_threads(1)
    hand = hand_model(str(config.hand_spec), config.device)
    mesh, scale = load_object_mesh(source, config.size_range)
    obj = ObjectModel(mesh.vertices, mesh.faces, np.random.default_rng(source.seed), device=config.device)
    generator = torch.Generator().manual_seed(source.seed)
    parts: list[dict[str, np.ndarray]] = []
    synth_s = validate_s = 0.0
    with GraspValidator(mesh.vertices, mesh.faces, ValidationConfig(), hand_spec=config.hand_spec) as validator:
        for _ in range(config.max_batches):
            start = time.perf_counter()
            result = synthesize(hand, obj, config.batch, generator, config.annealing, config.weights)
            synth_s += time.perf_counter() - start
            start = time.perf_counter()
            poses = result.poses.cpu().numpy()
            checks = validate_grasps(hand, obj, validator, poses)
            validate_s += time.perf_counter() - start
            e = result.energy
            parts.append({
                "poses": poses.astype(np.float32),
                "energy": e.total.cpu().numpy(), "e_fc": e.fc.cpu().numpy(), "e_dis": e.dis.cpu().numpy(),
                "e_pen": e.pen.cpu().numpy(), "e_spen": e.spen.cpu().numpy(),
                "valid": np.array([c.valid for c in checks]),
                "penetration": np.array([c.penetration for c in checks], dtype=np.float32),
                "q1": grasp_q1(hand, obj, result.poses).astype(np.float32),
                "failure": np.array([c.failure for c in checks], dtype=object),
            })
            if sum(int(p["valid"].sum()) for p in parts) >= config.grasps_per_object:
                break
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arrays["vertices"] = np.asarray(mesh.vertices, np.float32)
    arrays["faces"] = np.asarray(mesh.faces, np.int32)
    attrs = {"kind": source.kind, "ref": source.ref, "scale": scale, "seed": source.seed, "split": split,
             "synth_s": synth_s, "validate_s": validate_s}
    return {"name": source.name, "arrays": arrays, "attrs": attrs}


def synthesize_unit(unit: tuple[ObjectSource, str, SynthesisConfig]) -> dict:
    """:func:`synthesize_object` of one ``(source, split, config)`` item: the function to map over objects."""
    return synthesize_object(*unit)
