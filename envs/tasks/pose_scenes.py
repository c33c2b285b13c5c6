"""Table-top scenes of NOCS-category objects for category-level 9-DoF pose estimation, in two render domains.

A scene is a table (a large box, top at z = 0), 1-4 category instances (:mod:`manipstack.assets.pose_categories`)
standing upright at random positions and yaws, 0-3 distractor primitives, and one pinhole camera at a random pose
looking at them. One capture gives RGB, metric depth, the simulator's segmentation turned into an instance mask, and
the ground truth of every visible category instance: class id, NOCS ``sRT`` in the camera frame (OpenCV), NOCS-space
extents ``scales`` (extents / diagonal), metric extents, and (mugs) whether the handle is visible.

Render domains (:data:`DOMAINS`):

- ``clean`` (training): white light from above, ambient-heavy; colours of moderate saturation with plain, band,
  stripe, checker and speckle textures; grey-brown tables; focal length 260-320 px at 320x240; mild depth noise.
- ``shifted`` (test): tinted light from low angles with stronger diffuse and specular terms and shadows; other
  colour ranges (from grey to saturated, dark to pale) and other texture patterns (gradient, dots, diagonals); any
  table colour; focal length 320-380 px, principal point off by up to 12 px; depth noise growing with distance,
  1 % random dropout and dropout along depth edges.

Instance masks come from the simulator's segmentation: the estimator is given them (it is not a detector).
Every random choice of scene ``index`` flows from ``(seed, index, domain, instance split)``, so a scene is the same
whichever worker renders it. No torch.
"""

from __future__ import annotations

import colorsys
import os
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from manipstack.assets.pose_categories import (
    CATEGORIES,
    SPLITS,
    InstanceFiles,
    class_id,
    instance_files,
    texture_image,
)
from manipstack.envs.core.camera import DepthNoise, Intrinsics, SimCamera, look_at
from manipstack.envs.core.poses import euler_to_quat, matrix_to_quat, quat_to_matrix
from manipstack.envs.core.world import Lighting, World
from manipstack.errors import InputError

DOMAINS: tuple[str, ...] = ("clean", "shifted")
OBJECT_FROM_UPRIGHT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""World-from-object rotation of an upright instance at yaw 0: the object's y axis (up in NOCS) along world z."""
TEXTURES_PER_DOMAIN = 48


@dataclass(frozen=True)
class PoseSceneConfig:
    """How pose scenes are drawn (the domain and instance split are part of every scene's seed)."""

    domain: str = "clean"
    """Render domain: 'clean' (training) or 'shifted' (test)."""
    instances: str = "train"
    """Instance split the category objects come from: 'train' or the held-out 'test'."""
    train_instances: int = 40
    """Instances per category in the training split."""
    test_instances: int = 12
    """Instances per category in the held-out split."""
    width: int = 320
    """Image width in pixels."""
    height: int = 240
    """Image height in pixels."""
    min_objects: int = 1
    """Fewest category objects per scene."""
    max_objects: int = 4
    """Most category objects per scene."""
    max_distractors: int = 3
    """Most distractor primitives (boxes, cylinders, spheres) per scene."""
    min_visible_pixels: int = 120
    """A category object with fewer visible pixels (or valid depth pixels) is not a ground-truth instance."""

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise InputError(f"domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.instances not in SPLITS:
            raise InputError(f"instances must be one of {SPLITS}, got {self.instances!r}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise InputError(f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if self.train_instances < 1 or self.test_instances < 1:
            raise InputError("train_instances and test_instances must be >= 1")
        if self.width < 32 or self.height < 32:
            raise InputError(f"image size must be at least 32x32, got {self.width}x{self.height}")

    @property
    def num_instances(self) -> int:
        return self.train_instances if self.instances == "train" else self.test_instances


def scene_rng(seed: int, index: int, config: PoseSceneConfig) -> np.random.Generator:
    """The generator of scene ``index``: a function of the seed, the index, the domain and the instance split."""
    return np.random.default_rng([seed, index, DOMAINS.index(config.domain), SPLITS.index(config.instances)])


# ---------------------------------------------------------------------------------------------------- domains
def _hsv(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float],
         h: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(rng.uniform(*h) % 1.0, rng.uniform(*s), rng.uniform(*v)))


def _texture_colors(domain: str, rng: np.random.Generator) -> np.ndarray:
    if domain == "clean":
        return np.stack([_hsv(rng, (0.3, 0.9), (0.4, 0.95)), _hsv(rng, (0.3, 0.9), (0.4, 0.95))])
    return np.stack([_hsv(rng, (0.0, 1.0), (0.15, 1.0)), _hsv(rng, (0.0, 1.0), (0.15, 1.0))])


DOMAIN_STYLES = {"clean": ("plain", "band", "stripes", "checker", "speckle"),
                 "shifted": ("gradient", "dots", "diagonal", "band", "plain")}


def texture_files(domain: str, cache_dir: str | Path) -> list[Path]:
    """The domain's texture images (made once under ``cache_dir/pose_textures/<domain>/``)."""
    folder = Path(cache_dir) / "pose_textures" / domain
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(TEXTURES_PER_DOMAIN):
        path = folder / f"{i:03d}.png"
        if not path.is_file():
            rng = np.random.default_rng([7, DOMAINS.index(domain), i])
            styles = DOMAIN_STYLES[domain]
            image = texture_image(rng, styles[i % len(styles)], _texture_colors(domain, rng))
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
            imageio.imwrite(tmp, image)
            tmp.replace(path)
        paths.append(path)
    return paths


def draw_lighting(domain: str, rng: np.random.Generator) -> Lighting:
    """The light of one scene of ``domain``."""
    if domain == "clean":
        elevation, azimuth = rng.uniform(np.deg2rad(50), np.deg2rad(90)), rng.uniform(0, 2 * np.pi)
        color, ambient, diffuse, specular, shadow = rng.uniform(0.92, 1.0, 3), rng.uniform(0.5, 0.7), \
            rng.uniform(0.3, 0.45), rng.uniform(0.0, 0.08), False
    else:
        elevation, azimuth = rng.uniform(np.deg2rad(20), np.deg2rad(60)), rng.uniform(0, 2 * np.pi)
        color = _hsv(rng, (0.1, 0.4), (0.85, 1.0))
        ambient, diffuse, specular, shadow = rng.uniform(0.3, 0.5), rng.uniform(0.45, 0.7), rng.uniform(0.1, 0.3), \
            bool(rng.random() < 0.5)
    direction = (np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation))
    return Lighting(tuple(float(d) for d in direction), tuple(float(c) for c in color), float(ambient),
                    float(diffuse), float(specular), shadow)


def draw_intrinsics(domain: str, rng: np.random.Generator, width: int, height: int) -> Intrinsics:
    """Pinhole intrinsics of one scene of ``domain`` (focal lengths for 320 px wide images, scaled)."""
    scale = width / 320
    if domain == "clean":
        f = rng.uniform(260, 320) * scale
        return Intrinsics(f, f, width / 2 + rng.uniform(-4, 4) * scale, height / 2 + rng.uniform(-4, 4) * scale,
                          width, height)
    f = rng.uniform(320, 380) * scale
    return Intrinsics(f, f * rng.uniform(0.98, 1.02), width / 2 + rng.uniform(-12, 12) * scale,
                      height / 2 + rng.uniform(-12, 12) * scale, width, height)


DEPTH_NOISE = {"clean": DepthNoise(base_std=0.0005, scale_std=0.001),
               "shifted": DepthNoise(base_std=0.001, scale_std=0.003, dropout=0.01, edge_dropout=0.5,
                                     edge_threshold=0.02)}


# ---------------------------------------------------------------------------------------------------- layout
@dataclass
class PlacedObject:
    """A category instance placed upright on the table: world position of its box centre (3,) m, yaw rad."""

    category: str
    index: int
    files: InstanceFiles
    position: np.ndarray
    yaw: float

    @property
    def world_from_object(self) -> np.ndarray:
        """4x4 pose of the object's canonical frame in the world."""
        transform = np.eye(4)
        transform[:3, :3] = quat_to_matrix(euler_to_quat([0.0, 0.0, self.yaw])) @ OBJECT_FROM_UPRIGHT
        transform[:3, 3] = self.position
        return transform

    @property
    def name(self) -> str:
        return f"{self.category}-{self.files.visual_obj.parent.name.split('-', 1)[1]}"


def _footprint(extents: np.ndarray) -> float:
    """Radius in m of the circle on the table that holds an upright object at any yaw."""
    return 0.5 * float(np.hypot(extents[0], extents[2]))


def layout(rng: np.random.Generator, config: PoseSceneConfig, cache_dir: str | Path, centre: np.ndarray,
           radius: float = 0.22) -> tuple[list[PlacedObject], list[tuple[str, np.ndarray, np.ndarray, float]]]:
    """Category objects and distractors placed without overlap in a disc of ``radius`` m around ``centre`` (2,).

    Returns:
        the placed category objects and the distractors ``(shape, size (3,) m, position (3,) m, yaw rad)``.
    """
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    taken: list[tuple[np.ndarray, float]] = []

    def spot(footprint: float) -> np.ndarray | None:
        for _ in range(40):
            xy = centre + rng.uniform(-radius, radius, 2)
            if all(np.linalg.norm(xy - c) > footprint + r + 0.01 for c, r in taken):
                taken.append((xy, footprint))
                return xy
        return None

    objects = []
    for category in rng.choice(CATEGORIES, size=count):
        index = int(rng.integers(config.num_instances))
        files = instance_files(str(category), config.instances, index, cache_dir)
        yaw = float(rng.uniform(-np.pi, np.pi))
        xy = spot(_footprint(files.extents))
        if xy is not None:
            objects.append(PlacedObject(str(category), index, files, np.array([*xy, files.extents[1] / 2]), yaw))
    distractors = []
    for _ in range(int(rng.integers(0, config.max_distractors + 1))):
        shape = str(rng.choice(["box", "cylinder", "sphere"]))
        size = rng.uniform(0.03, 0.08, 3)
        if shape == "sphere":
            size[:] = size[0]
        elif shape == "cylinder":
            size[1] = size[0]
        xy = spot(0.5 * float(np.hypot(size[0], size[1])))
        if xy is not None:
            distractors.append((shape, size, np.array([*xy, size[2] / 2]), float(rng.uniform(-np.pi, np.pi))))
    return objects, distractors


def draw_camera_pose(rng: np.random.Generator, target: np.ndarray, domain: str) -> np.ndarray:
    """``world_from_cam`` (4, 4) of a camera 0.5-1.0 m (shifted: 0.45-1.1 m) from ``target`` (3,), 25-70 degrees
    above the table, any azimuth, rolled by up to 5 degrees."""
    near, far = (0.5, 1.0) if domain == "clean" else (0.45, 1.1)
    distance = rng.uniform(near, far)
    elevation = rng.uniform(np.deg2rad(25), np.deg2rad(70))
    azimuth = rng.uniform(0, 2 * np.pi)
    eye = target + distance * np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                                        np.sin(elevation)])
    pose = look_at(eye, target)
    roll = rng.uniform(-np.deg2rad(5), np.deg2rad(5))
    c, s = np.cos(roll), np.sin(roll)
    pose[:3, :3] = pose[:3, :3] @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    return pose


# ---------------------------------------------------------------------------------------------------- ground truth
def nocs_pose(cam_from_object: np.ndarray, extents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NOCS's ``sRT`` (4, 4) and NOCS-space ``scales`` (3,) of an object with metric ``extents`` (3,) m:
    ``s = |extents|`` (the box diagonal), ``sRT = [[s R, t], [0, 1]]``, ``scales = extents / s``."""
    scale = float(np.linalg.norm(extents))
    sRT = np.array(cam_from_object, dtype=float)
    sRT[:3, :3] *= scale
    return sRT, np.asarray(extents, dtype=float) / scale


def handle_visible(handle_points: np.ndarray, cam_from_object: np.ndarray, intrinsics: Intrinsics,
                   depth_m: np.ndarray, seg: np.ndarray, body_id: int, min_fraction: float = 0.1) -> bool:
    """Whether at least ``min_fraction`` of a mug's handle surface points (object frame, m) are seen: they project
    into the image onto the mug's pixels, no more than 1 cm behind the rendered depth."""
    points = handle_points @ cam_from_object[:3, :3].T + cam_from_object[:3, 3]
    z = points[:, 2]
    u = intrinsics.fx * points[:, 0] / z + intrinsics.cx
    v = intrinsics.fy * points[:, 1] / z + intrinsics.cy
    cols, rows = np.floor(u).astype(int), np.floor(v).astype(int)
    inside = (z > 0) & (cols >= 0) & (cols < intrinsics.width) & (rows >= 0) & (rows < intrinsics.height)
    seen = np.zeros(len(points), dtype=bool)
    r, c = rows[inside], cols[inside]
    seen[inside] = (seg[r, c] == body_id) & (z[inside] <= depth_m[r, c] + 0.01)
    return bool(seen.mean() >= min_fraction)


@dataclass
class SceneRenderer:
    """Renders pose scenes into one reusable :class:`World` (one per worker process)."""

    cache_dir: Path

    def __post_init__(self) -> None:
        self.world = World(cache_dir=self.cache_dir)
        self._textures = {d: texture_files(d, self.cache_dir) for d in DOMAINS}

    def close(self) -> None:
        self.world.close()

    def render(self, index: int, config: PoseSceneConfig, seed: int) -> dict[str, object]:
        """Scene ``index``: images, instance mask and per-instance ground truth (see module docstring).

        Returns a dict with ``rgb`` uint8 (H, W, 3), ``depth`` float32 (H, W) m (0 = no reading), ``mask`` uint8
        (H, W) (0 = not a ground-truth instance, k = instance k - 1), ``intrinsics`` (3, 3), ``world_from_cam``
        (4, 4), and per instance (N,): ``class_ids`` int, ``RTs`` (N, 4, 4) NOCS sRT camera frame, ``scales``
        (N, 3), ``extents`` (N, 3) m, ``handle_visibility`` (N,) int, ``names`` (N,) str.
        """
        rng = scene_rng(seed, index, config)
        world = self.world
        world.reset_simulation()
        table_color = _hsv(rng, (0.0, 0.35), (0.35, 0.8), (0.05, 0.12)) if config.domain == "clean" \
            else _hsv(rng, (0.1, 0.8), (0.2, 0.9))
        world.add_primitive("table", "box", (3.0, 3.0, 0.02), (0.0, 0.0, -0.01), mass=0.0,
                            color=(*table_color, 1.0))
        objects, distractors = layout(rng, config, self.cache_dir, np.zeros(2))
        textures = self._textures[config.domain]
        for k, obj in enumerate(objects):
            pose = obj.world_from_object
            world.add_mesh(f"object_{k}", obj.files.visual_obj, pose[:3, 3], matrix_to_quat(pose[:3, :3]), mass=0.0,
                           color=(1.0, 1.0, 1.0, 1.0), decompose=False, collision_path=obj.files.collision_obj)
            world.set_texture(f"object_{k}", textures[int(rng.integers(len(textures)))])
        for k, (shape, size, position, yaw) in enumerate(distractors):
            world.add_primitive(f"distractor_{k}", shape, size, position, euler_to_quat([0.0, 0.0, yaw]), mass=0.0,
                                color=(*_texture_colors(config.domain, rng)[0], 1.0))
        intrinsics = draw_intrinsics(config.domain, rng, config.width, config.height)
        lighting = draw_lighting(config.domain, rng)
        target = np.mean([o.position for o in objects], axis=0) if objects else np.zeros(3)
        target = target + np.array([*rng.uniform(-0.05, 0.05, 2), 0.0])
        ids = [world.body_id(f"object_{k}") for k in range(len(objects))]
        for _attempt in range(8):  # a view in which every object shows; else keep the last and drop the hidden
            world_from_cam = draw_camera_pose(rng, target, config.domain)
            camera = SimCamera(world, intrinsics, world_from_cam, near=0.05, far=4.0, lighting=lighting)
            frame = camera.capture()
            if all((frame["seg"] == i).sum() >= config.min_visible_pixels for i in ids):
                break
        depth_clean = frame["depth"]
        depth = DEPTH_NOISE[config.domain].apply(depth_clean, rng)
        seg = frame["seg"]
        cam_from_world = np.linalg.inv(world_from_cam)
        mask = np.zeros(seg.shape, dtype=np.uint8)
        gt: dict[str, list] = {k: [] for k in ("class_ids", "RTs", "scales", "extents", "handle_visibility",
                                               "names")}
        for obj, body in zip(objects, ids):
            pixels = (seg == body) & (depth > 0)
            if pixels.sum() < config.min_visible_pixels:
                continue
            cam_from_object = cam_from_world @ obj.world_from_object
            sRT, scales = nocs_pose(cam_from_object, obj.files.extents)
            visible = obj.category != "mug" or handle_visible(obj.files.handle_points, cam_from_object, intrinsics,
                                                              depth_clean, seg, body)
            gt["class_ids"].append(class_id(obj.category))
            gt["RTs"].append(sRT)
            gt["scales"].append(scales)
            gt["extents"].append(obj.files.extents)
            gt["handle_visibility"].append(int(visible))
            gt["names"].append(obj.name)
            mask[seg == body] = len(gt["class_ids"])
        n = len(gt["class_ids"])
        return {
            "rgb": frame["rgb"], "depth": depth, "mask": mask, "intrinsics": intrinsics.matrix,
            "world_from_cam": world_from_cam,
            "class_ids": np.array(gt["class_ids"], dtype=np.int64).reshape(n),
            "RTs": np.array(gt["RTs"], dtype=np.float64).reshape(n, 4, 4),
            "scales": np.array(gt["scales"], dtype=np.float64).reshape(n, 3),
            "extents": np.array(gt["extents"], dtype=np.float64).reshape(n, 3),
            "handle_visibility": np.array(gt["handle_visibility"], dtype=np.int64).reshape(n),
            "names": np.array(gt["names"], dtype=object).reshape(n),
        }


def render_chunk(unit: tuple[list[int], PoseSceneConfig, int, str]) -> list[tuple[int, dict[str, object]]]:
    """Work unit of ``manipstack data pose``: render scenes ``indices`` of ``config`` under ``seed`` in one world.

    ``unit`` is ``(indices, config, seed, cache_dir)``; returns ``(index, scene)`` pairs.
    """
    indices, config, seed, cache_dir = unit
    renderer = SceneRenderer(Path(cache_dir))
    try:
        return [(i, renderer.render(i, config, seed)) for i in indices]
    finally:
        renderer.close()
