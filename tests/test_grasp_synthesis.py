"""Synthesis energy goes down; physics validation rejects a far hand and accepts a known good grasp."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import trimesh

from manipstack.envs.tasks.grasp_validation import GraspValidator
from manipstack.grasp_models.hand.model import HandModel
from manipstack.grasp_models.objects import ObjectModel
from manipstack.grasp_models.synthesis import AnnealingConfig, synthesize
from manipstack.grasp_models.validation import validate_grasps

KNOWN_GRASP = Path(__file__).resolve().parents[1] / "assets" / "hands" / "allegro_like_box_grasp.json"


def _box(extents) -> tuple[trimesh.Trimesh, ObjectModel]:
    mesh = trimesh.creation.box(extents=extents)
    return mesh, ObjectModel(mesh.vertices, mesh.faces, np.random.default_rng(0))


def test_energy_decreases_and_is_deterministic():
    hand = HandModel()
    _, obj = _box([0.07, 0.05, 0.04])
    config = AnnealingConfig(iterations=60)
    log_a: list[float] = []
    result_a = synthesize(hand, obj, 8, torch.Generator().manual_seed(1), config, energy_log=log_a)
    result_b = synthesize(hand, obj, 8, torch.Generator().manual_seed(1), config)
    assert np.mean(log_a[-5:]) < 0.7 * np.mean(log_a[:5])
    assert torch.equal(result_a.poses, result_b.poses)


def test_far_hand_is_invalid_and_known_grasp_is_valid():
    case = json.loads(KNOWN_GRASP.read_text())
    hand = HandModel()
    mesh, obj = _box(case["box_extents"])
    pose = np.array(case["pose"])
    far = pose.copy()
    far[:3] += 0.5
    validator = GraspValidator(mesh.vertices, mesh.faces)
    try:
        good, bad = validate_grasps(hand, obj, validator, np.stack([pose, far]))
    finally:
        validator.close()
    assert good.valid, good.failure
    assert good.penetration < 0.005
    assert not bad.valid and bad.failure.startswith("dropped")
