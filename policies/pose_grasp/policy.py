"""Policies for ``manipstack/PoseGrasp-v0``: act with a pose hypothesis of the observed object (world frame).

- :class:`EstimatedPosePolicy`: the pose estimator on the observation's masked RGB crop and back-projected points
  (the instance mask and class id come from the observation, i.e. the simulator's segmentation), the camera-frame
  estimate moved to the world frame with the camera pose.
- :class:`GroundTruthPosePolicy`: the true pose and extents of a ``privileged`` observation (the baseline that
  shows what the canonical grasps achieve with a perfect estimate).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from manipstack.envs.tasks.pose_grasp import pose_action
from manipstack.errors import InputError
from manipstack.grasp_models.checkpoint import load_checkpoint
from manipstack.grasp_models.pose.features import instance_inputs
from manipstack.grasp_models.pose.model import PoseEstimator


class EstimatedPosePolicy:
    """Grasp from the pose estimator's estimate (one DDIM sample, or the regression output)."""

    def __init__(self, estimator: PoseEstimator, seed: int = 0, steps: int | None = None) -> None:
        self.estimator, self.seed, self.steps = estimator, seed, steps
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device=estimator.device).manual_seed(seed)
        self.last_estimate: np.ndarray | None = None

    @classmethod
    def from_checkpoint(cls, folder: str | os.PathLike, device: str = "cpu", seed: int = 0, steps: int | None = None,
                        threads: int | None = 1) -> EstimatedPosePolicy:
        """Load a pose checkpoint; ``threads`` sets torch's CPU threads in this process (None keeps them)."""
        if threads is not None:
            torch.set_num_threads(threads)
        return cls(load_checkpoint(folder, device, kind="pose").model, seed, steps)

    def reset(self) -> None:
        """Nothing carries over between episodes (the generators continue, so episodes differ)."""

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """The action (15,) for an observation: the estimated world pose and extents of the masked object."""
        cfg = self.estimator.config
        inputs = instance_inputs(observation["rgb"], observation["depth"], observation["mask"] > 0,
                                 observation["intrinsics"], self.rng, cfg.crop_size, cfg.num_points)
        if inputs is None:
            raise InputError("the observation's object mask holds no valid depth pixel: nothing to estimate from")
        rotation, translation, extents = self.estimator.estimate(
            inputs.crop[None], inputs.points[None], np.array([int(observation["class_id"])]), self.generator,
            self.steps)
        world_from_cam = observation["world_from_cam"]
        world_from_object = np.eye(4)
        world_from_object[:3, :3] = world_from_cam[:3, :3] @ rotation[0]
        world_from_object[:3, 3] = world_from_cam[:3, :3] @ translation[0] + world_from_cam[:3, 3]
        self.last_estimate = world_from_object
        return pose_action(world_from_object, extents[0])


class GroundTruthPosePolicy:
    """Grasp from the true pose (needs ``PoseGraspConfig(privileged=True)``)."""

    def reset(self) -> None:
        """Stateless."""

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        if "gt_world_from_object" not in observation:
            raise InputError("GroundTruthPosePolicy needs a privileged observation (PoseGraspConfig(privileged=True))")
        return pose_action(observation["gt_world_from_object"], observation["gt_extents"])
