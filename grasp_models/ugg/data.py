"""Training samples for the grasp generators: each object's observations and its valid grasps, canonical frame.

Each object of a grasp dataset split is observed ``views`` times with :func:`grasp_models.observation.observe_mesh`
(the same function evaluation uses), view v with seed ``[seed, object index, v]`` and, in depth mode, the cameras'
first azimuth drawn from that seed (so the views see different sides). A training pair is (one view of an object,
one of its valid grasps mapped to that view's canonical frame).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from manipstack.envs.data.grasp_dataset import GraspDataset
from manipstack.errors import InputError, MissingInputError
from manipstack.grasp_models.observation import ObservationConfig, observe_mesh


@dataclass
class GraspSamples:
    """Observations and valid grasps of a set of objects.

    Attributes:
        names: object names (O,).
        points: (O, V, N, 3) float32 m, each view in its canonical frame.
        centroids: (O, V, 3) float64 m, each view's canonical origin in the object frame.
        poses: (M, D) float32 valid hand poses, object frame (wrist translation m, rot6d, joints rad).
        owner: (M,) int, the object index of each pose.
    """

    names: list[str]
    points: np.ndarray
    centroids: np.ndarray
    poses: np.ndarray
    owner: np.ndarray

    def pairs(self, grasp_index: np.ndarray, view_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points (B, N, 3) m and canonical-frame poses (B, D) of grasps ``grasp_index`` (B,), each seen in view
        ``view_index`` (B,) of its object."""
        objects = self.owner[grasp_index]
        poses = self.poses[grasp_index].copy()
        poses[:, :3] -= self.centroids[objects, view_index].astype(np.float32)
        return self.points[objects, view_index], poses


def load_grasp_samples(dataset_path: str | os.PathLike, split: str, observation: ObservationConfig, views: int,
                       seed: int, max_objects: int | None = None, cache_dir: str | os.PathLike | None = None
                       ) -> GraspSamples:
    """Observe every object of ``split`` (or its first ``max_objects``) ``views`` times and collect its valid grasps.

    Raises:
        MissingInputError: no file at ``dataset_path``.
        DatasetFileError / InputError: not a grasp dataset, or the split holds no valid grasp (names the file).
    """
    dataset_path = Path(dataset_path)
    if not dataset_path.is_file():
        raise MissingInputError(f"grasp dataset not found: {dataset_path} (make one with manipstack data grasps)")
    if views < 1:
        raise InputError(f"views must be >= 1, got {views}")
    names, points, centroids, poses, owner = [], [], [], [], []
    with GraspDataset(dataset_path) as dataset:
        objects = dataset.objects(split)[:max_objects]
        for index, name in enumerate(tqdm(objects, desc=f"observe {split} objects", unit="object", leave=False)):
            obj = dataset.read(name, keys=("vertices", "faces", "poses", "valid"))
            valid = obj.poses[obj.valid]
            if len(valid) == 0:
                continue
            seen = [observe_mesh(obj.vertices, obj.faces, _view_config(observation, [seed, index, v]),
                                 seed=int(np.random.default_rng([seed, index, v]).integers(2**31)),
                                 cache_dir=cache_dir) for v in range(views)]
            points.append(np.stack([s.points for s in seen]))
            centroids.append(np.stack([s.centroid for s in seen]))
            owner.append(np.full(len(valid), len(names)))
            poses.append(valid)
            names.append(name)
    if not names:
        raise InputError(f"{dataset_path}: no valid grasp in the {split!r} split to train on")
    return GraspSamples(names, np.stack(points), np.stack(centroids), np.concatenate(poses).astype(np.float32),
                        np.concatenate(owner))


def _view_config(observation: ObservationConfig, seed: list[int]) -> ObservationConfig:
    if observation.mode != "depth":
        return observation
    azimuth = float(np.random.default_rng(seed).uniform(0.0, 360.0))
    return dataclasses.replace(observation, view=dataclasses.replace(observation.view, azimuth_offset_deg=azimuth))
