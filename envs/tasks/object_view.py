"""An object on a table seen by 2-4 simulated depth cameras: the fused point cloud a robot gets, table removed.

The object (a mesh file, in its own frame) is placed upright, unrotated, with its lowest point on the table top
(z = 0), so its frame's z axis is the world's up (gravity along -z). The cameras stand evenly spaced in azimuth
around it, ``elevation_deg`` above the table, looking at its bounding-box centre. Each depth image is back-projected
to world points (``envs.core.pointcloud``); the table is removed by height (points less than ``table_margin_m``
above the table top are dropped, as a robot does after fitting the table plane), and the remaining points are
returned in the object's own frame. No torch here; ``grasp_models.observation`` samples and canonicalises them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manipstack.envs.core.camera import DepthNoise, Intrinsics, SimCamera, look_at
from manipstack.envs.core.mesh_cache import load_trimesh
from manipstack.envs.core.pointcloud import frame_to_points_world
from manipstack.envs.core.world import World
from manipstack.errors import InputError


@dataclass(frozen=True)
class ViewConfig:
    """Where the cameras stand and what they see."""

    num_cameras: int = 3
    """Depth cameras around the object (2-4)."""
    image_size: int = 128
    """Square image side in pixels."""
    fov_deg: float = 30.0
    """Vertical field of view in degrees."""
    distance_m: float = 0.40
    """Camera distance from the object's centre in m."""
    elevation_deg: float = 45.0
    """Camera elevation above the table plane in degrees."""
    azimuth_offset_deg: float = 30.0
    """Azimuth of the first camera in degrees (the others follow at 360 / num_cameras)."""
    table_margin_m: float = 0.003
    """Points less than this above the table top (m) count as table and are removed."""
    noise: DepthNoise | None = None
    """Optional depth-noise model (needs an rng when capturing)."""

    def __post_init__(self) -> None:
        if not 2 <= self.num_cameras <= 4:
            raise InputError(f"num_cameras must be 2, 3 or 4, got {self.num_cameras}")
        if not 32 <= self.image_size <= 512:
            raise InputError(f"image_size must be in [32, 512] px, got {self.image_size}")
        if not 5.0 <= self.elevation_deg <= 85.0:
            raise InputError(f"elevation_deg must be in [5, 85], got {self.elevation_deg}")
        if self.distance_m <= 0 or self.table_margin_m < 0:
            raise InputError(f"need distance_m > 0 and table_margin_m >= 0, got {self.distance_m}, "
                             f"{self.table_margin_m}")


def camera_poses(config: ViewConfig, target: np.ndarray) -> list[np.ndarray]:
    """``world_from_cam`` (4, 4) of each camera, looking at ``target`` (3,) m, world frame."""
    elevation = np.deg2rad(config.elevation_deg)
    poses = []
    for i in range(config.num_cameras):
        azimuth = np.deg2rad(config.azimuth_offset_deg + 360.0 * i / config.num_cameras)
        direction = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                              np.sin(elevation)])
        poses.append(look_at(target + config.distance_m * direction, target))
    return poses


def capture_object_on_table(mesh_path: str | os.PathLike, config: ViewConfig | None = None,
                            rng: np.random.Generator | None = None,
                            cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Fused, table-free points of the object at ``mesh_path`` (m, the mesh's own frame), seen on a table.

    Args:
        mesh_path: a mesh file (.obj .stl .ply .off .glb), in m, z up.
        config: cameras and table removal (default :class:`ViewConfig`).
        rng: generator for the depth noise (needed only if ``config.noise`` is set).
        cache_dir: mesh cache of the world (default ``$MANIPSTACK_CACHE``).

    Returns:
        points (M, 3) float32 in m, object frame; M >= 0 depends on what the cameras see.

    Raises:
        MissingInputError / InputError: the mesh file is missing, unreadable or holds no triangles (names the file).
    """
    config = config or ViewConfig()
    mesh_path = Path(mesh_path)
    mesh = load_trimesh(mesh_path)
    if config.noise is not None and rng is None:
        raise InputError("ViewConfig.noise needs an rng")
    lift = np.array([0.0, 0.0, -float(mesh.bounds[0, 2])])  # object frame -> world: lowest point on z = 0
    target = mesh.bounds.mean(axis=0) + lift
    intrinsics = Intrinsics.from_fov(config.image_size, config.image_size, config.fov_deg)
    clouds = []
    with World(cache_dir=cache_dir) as world:
        world.add_plane("table")
        world.add_mesh("object", mesh_path, position=lift, mass=0.0, decompose=False)
        for i, pose in enumerate(camera_poses(config, target)):
            camera = SimCamera(world, intrinsics, pose, name=f"cam{i}", near=0.05, far=2.0, noise=config.noise,
                               rng=rng, segmentation=False)
            points, _ = frame_to_points_world(camera.capture())
            clouds.append(points[points[:, 2] > config.table_margin_m])
    return (np.concatenate(clouds) - lift).astype(np.float32)
