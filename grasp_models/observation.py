"""The object point cloud a grasp generator sees: the one function for training and evaluation.

Two modes (``ObservationConfig.mode``):

- ``depth``: the object on a table in PyBullet, fused depth from 2-4 simulated cameras, table removed
  (``envs.tasks.object_view``) -- what a robot sees, including the missing underside;
- ``mesh``: area-uniform samples of the whole mesh surface (``oversample`` x N of them).

Either way the points are farthest-point sampled to N (Open3D; started at a point drawn from the seed, padded by
repeating seen points drawn from the seed when fewer than N are seen) and expressed in the **canonical frame**: the
object frame translated to the points' centroid. The object frame is gravity-aligned (the object rests unrotated on
the table, z up), so the canonical frame is too: canonical = object - centroid, no rotation. Hand poses of the
grasp dataset (object frame) map to it with :func:`poses_to_canonical`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import open3d as o3d
import trimesh

from manipstack.envs.core.mesh_cache import cache_trimesh, default_cache_dir, load_trimesh
from manipstack.envs.tasks.object_view import ViewConfig, capture_object_on_table
from manipstack.errors import InputError
from manipstack.grasp_models.objects import sample_surface

OBSERVATION_MODES = ("depth", "mesh")


@dataclass(frozen=True)
class ObservationConfig:
    """How the object's point cloud is made."""

    mode: str = "depth"
    """'depth' (fused simulated depth views of the object on a table) or 'mesh' (mesh surface samples)."""
    num_points: int = 512
    """N, points after farthest-point sampling."""
    oversample: int = 4
    """'mesh' mode: surface samples drawn per output point before farthest-point sampling."""
    view: ViewConfig = field(default_factory=ViewConfig)
    """'depth' mode: cameras and table removal."""

    def __post_init__(self) -> None:
        if self.mode not in OBSERVATION_MODES:
            raise InputError(f"observation mode must be one of {OBSERVATION_MODES}, got {self.mode!r}")
        if self.num_points < 16:
            raise InputError(f"num_points must be >= 16, got {self.num_points}")
        if self.oversample < 1:
            raise InputError(f"oversample must be >= 1, got {self.oversample}")


@dataclass
class ObjectObservation:
    """An object's point cloud in the canonical frame.

    Attributes:
        points: (N, 3) float32 in m, canonical frame (centroid at the origin, z up).
        centroid: (3,) float64 in m, the canonical origin in the object frame (canonical = object - centroid).
        seen: points the cameras saw (or surface samples drawn) before sampling to N.
    """

    points: np.ndarray
    centroid: np.ndarray
    seen: int


def observe_object(mesh_path: str | os.PathLike, config: ObservationConfig | None = None, seed: int = 0,
                   cache_dir: str | os.PathLike | None = None) -> ObjectObservation:
    """The point cloud of the object in the mesh file ``mesh_path`` (m, object frame, z up).

    Deterministic given ``seed``. Raises :class:`InputError` naming the file when it is missing, unreadable, holds
    no triangles, or when the cameras see none of it.
    """
    config = config or ObservationConfig()
    rng = np.random.default_rng(seed)
    mesh_path = Path(mesh_path)
    if config.mode == "depth":
        seen = capture_object_on_table(mesh_path, config.view, rng=rng, cache_dir=cache_dir).astype(np.float64)
    else:
        seen, _ = sample_surface(load_trimesh(mesh_path), config.num_points * config.oversample, rng)
    if len(seen) == 0:
        raise InputError(f"{mesh_path}: the cameras saw no point of this object (is it smaller than "
                         f"{config.view.table_margin_m} m or outside their view?)")
    points = farthest_point_sample(seen, config.num_points, rng)
    centroid = points.mean(axis=0)
    return ObjectObservation((points - centroid).astype(np.float32), centroid, len(seen))


def observe_mesh(vertices: np.ndarray, faces: np.ndarray, config: ObservationConfig | None = None, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None) -> ObjectObservation:
    """:func:`observe_object` for a mesh given as vertices (V, 3) m, object frame, and faces (F, 3) (e.g. a grasp
    dataset object); the mesh is written once to the mesh cache."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    mesh = trimesh.Trimesh(np.asarray(vertices, float), np.asarray(faces, np.int64), process=False)
    return observe_object(cache_trimesh(mesh, folder / "observed"), config, seed, cache_dir)


def farthest_point_sample(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points (count, 3) of ``points`` (M, 3) by farthest-point sampling (Open3D), from a start drawn with
    ``rng``; when M < count, all M points and ``count - M`` repeats drawn with ``rng``."""
    if len(points) <= count:
        extra = rng.choice(len(points), size=count - len(points), replace=True)
        return np.concatenate([points, points[extra]])
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    sampled = cloud.farthest_point_down_sample(count, start_index=int(rng.integers(len(points))))
    return np.asarray(sampled.points)


def poses_to_canonical(poses: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """Hand poses (B, 3 + 6 + J) from the object frame to the canonical frame (the wrist translation shifts by
    ``-centroid`` (3,) m; the frames share their axes, so rot6d and joints are unchanged)."""
    out = np.array(poses, dtype=np.float32, copy=True)
    out[:, :3] -= np.asarray(centroid, np.float32)
    return out
