"""Batches of grasps through the physics-validation scene: wrist poses, squeeze targets, perturbations.

The scene itself (a floating hand and one object in PyBullet) is ``manipstack.envs.tasks.grasp_validation``;
this module turns hand poses (B, 3 + 6 + J) -- wrist translation m, rot6d, joints rad, object frame -- into
what the scene takes, with squeeze targets from the differentiable hand model.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from manipstack.envs.core.poses import matrix_to_quat
from manipstack.envs.tasks.grasp_validation import GraspCheck, GraspValidator
from manipstack.grasp_models.hand.model import HandModel, rot6d_to_matrix
from manipstack.grasp_models.objects import ObjectModel
from manipstack.grasp_models.synthesis.dexgraspnet import squeeze_joints


def poses_to_wrist(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wrist positions (B, 3) m and quaternions (B, 4) (x, y, z, w) of hand poses (B, 3 + 6 + J)."""
    rot = rot6d_to_matrix(torch.as_tensor(poses[:, 3:9], dtype=torch.float64)).numpy()
    return poses[:, :3].copy(), np.stack([matrix_to_quat(r) for r in rot])


def validate_grasps(hand: HandModel, obj: ObjectModel, validator: GraspValidator, poses: np.ndarray
                    ) -> list[GraspCheck]:
    """Validate hand poses (B, 3 + 6 + J) on one object; squeeze targets come from the differentiable model
    (on its device); the physics runs on the CPU."""
    poses_t = torch.as_tensor(poses, dtype=hand.dtype, device=hand.device)
    cfg = validator.config
    targets = squeeze_joints(hand, obj, poses_t, cfg.squeeze, cfg.squeeze_contact_threshold).cpu().numpy()
    positions, quats = poses_to_wrist(np.asarray(poses, float))
    return [validator.check(positions[i], quats[i], poses[i, 9:], targets[i]) for i in range(len(poses))]


def perturb_poses(poses: np.ndarray, translation_m: float, rotation_rad: float, rng: np.random.Generator
                  ) -> np.ndarray:
    """Poses (B, 3 + 6 + J) with the wrist moved ``translation_m`` m along a random direction and rotated
    ``rotation_rad`` about a random axis (through the wrist, object frame)."""
    out = np.array(poses, dtype=float)
    B = len(out)
    direction = rng.normal(size=(B, 3))
    out[:, :3] += translation_m * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    axis = rng.normal(size=(B, 3))
    delta = Rotation.from_rotvec(rotation_rad * axis / np.linalg.norm(axis, axis=1, keepdims=True))
    rot = rot6d_to_matrix(torch.as_tensor(out[:, 3:9])).numpy()
    new = delta.as_matrix() @ rot  # (B, 3, 3)
    out[:, 3:9] = np.concatenate([new[:, :, 0], new[:, :, 1]], axis=1)
    return out
