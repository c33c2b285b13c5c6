"""``manipstack/PushGrasp-v0``: pick toy blocks out of clutter with top-down pushes and grasps (VPG).

The scene is a 0.448 m x 0.448 m table workspace seen by one overhead RGB-D camera; the observation is
VPG's pair of top-down heightmaps (colour and height). An action picks a primitive, one of R rotations
and a heightmap pixel:

- push (0): a 10 cm straight push with closed fingers starting at the pixel, along rotation angle
  ``theta_i = 2 pi i / R`` (measured from +x, i.e. +col, toward +y, i.e. +row), its end point clipped
  to the workspace limits as in VPG's robot code;
- grasp (1): a top-down parallel-jaw grasp centred at the pixel, the fingers closing along ``theta_i``
  and reaching ``grasp_depth`` below the surface; success = an object lifted and held; it is removed.

Reward: 1 for a successful grasp, 0.5 for a push that changes the scene (VPG's heightmap-difference
test) without shoving an object out of the workspace (the paper's evaluation counts a run that loses an
object as incomplete), else 0. The episode terminates when the workspace is clear and is truncated after
``max_consecutive_failures`` failed actions in a row or ``max_actions`` actions. Objects pushed out of
the workspace are removed and counted in ``info["objects_lost"]``.

Frames: world z-up, table top z = 0; heightmap rows index y and columns index x (see
``envs.core.heightmap``). Scenes can be loaded from JSON test cases (see :func:`load_case`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from manipstack.assets.blocks import BLOCK_SHAPES, PALETTE, block_files
from manipstack.envs.core.camera import Intrinsics, SimCamera, look_at
from manipstack.envs.core.heightmap import Workspace, heightmap_from_frames
from manipstack.envs.core.mesh_cache import load_trimesh
from manipstack.envs.core.poses import euler_to_quat, quat_multiply
from manipstack.envs.robots import Workcell, make_workcell
from manipstack.envs.tasks import push_grasp_primitives as prim
from manipstack.envs.tasks import push_grasp_rafts as rafts

log = logging.getLogger(__name__)

PUSH, GRASP = 0, 1
PRIMITIVES = ("push", "grasp")
WORKSPACE_SIZE = 0.448  # m, VPG's table workspace
MESH_SUFFIXES = (".obj", ".stl", ".ply", ".off", ".glb")


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a scene.

    ``shape`` is a block name from :data:`assets.blocks.BLOCK_SHAPES` or a mesh/URDF path; ``size`` the
    bounding-box extents (3,) in m (a mesh is scaled to fit; ignored for URDF); ``color`` RGB in [0, 1];
    ``position`` (3,) in m relative to the workspace centre on the table (z = 0 is the table top);
    ``orientation`` quaternion (x, y, z, w).
    """

    shape: str
    size: tuple[float, float, float]
    color: tuple[float, float, float]
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class PushGraspConfig:
    """Settings of the push-grasp environment."""

    num_objects: int = 10
    """Objects dropped at random per episode (ignored when a case is loaded)."""
    heightmap_size: int = 112
    """Heightmap side in pixels; the pixel size is 0.448 m / heightmap_size (112 -> 4 mm; VPG used 224 -> 2 mm)."""
    num_rotations: int = 16
    """Number R of rotations a primitive can be executed at (angles 2 pi i / R)."""
    workspace_center: tuple[float, float] = (-0.05, 0.0)
    """Workspace centre (x, y) in m, world frame (the Panda base is at x = -0.55)."""
    objects_dir: str | None = None
    """Folder of mesh/URDF files to drop instead of the procedural toy blocks (novel-object tests)."""
    object_max_extent: float = 0.06
    """Largest extent in m a mesh from ``objects_dir`` is scaled to (before a random factor in [0.8, 1.2])."""
    drop_half_extent: float = 0.1
    """Objects are dropped at random (x, y) within this half-width in m of the workspace centre."""
    drop_edge_margin: float = 0.02
    """A dropped object that rolls to within this distance in m of the workspace edge while settling is removed
    before the episode starts (counted in ``info["objects_lost"]`` at reset, which evaluation leaves out): the
    slightest touch would push it out, whatever the policy does."""
    raft_fraction: float = 0.0
    """Probability that a random scene packs some of its objects into rafts of planks side by side, where a finger
    has no room and a push frees a plank (``envs.tasks.push_grasp_rafts``); the rest are dropped around them.
    0 = VPG's random drops."""
    max_actions: int = 50
    """Truncate an episode after this many actions."""
    max_consecutive_failures: int = 10
    """Truncate an episode after this many failed actions in a row (grasp failed / push changed nothing)."""
    change_height: float = 0.01
    """Height change in m for a heightmap pixel to count as changed (VPG's scene-change test)."""
    change_area: float = 1.2e-3
    """Changed area in m^2 above which the scene counts as changed (VPG: 300 pixels of 2 mm)."""
    object_mass: float = 0.2
    """Mass in kg of each object."""
    object_friction: float = 0.5
    """Lateral friction coefficient of the objects (wood on rubber); PyBullet multiplies it with the finger
    pads' 1.5, and a coefficient below 1 cannot hold a right-angle corner pinched between parallel jaws."""
    lift_threshold: float = 0.05
    """An object counts as lifted by a grasp if its centre rose by more than this (m)."""
    camera_height: float = 1.0
    """Height in m of the overhead camera above the workspace centre."""
    render_size: int = 160
    """Side in pixels of the square depth image the heightmap is built from."""
    time_step: float = 1.0 / 120.0
    """Physics time step in s."""
    solver_iterations: int = 10
    """Physics constraint-solver iterations per step (speed vs. contact accuracy)."""
    settle_time: float = 3.0
    """Upper bound in simulated s on letting dropped objects come to rest at reset."""
    primitives: prim.PrimitiveConfig = field(default_factory=prim.PrimitiveConfig)
    """Push and grasp geometry."""

    def __post_init__(self) -> None:
        if self.num_objects < 1:
            raise ValueError(f"num_objects must be >= 1, got {self.num_objects}")
        if self.heightmap_size < 16:
            raise ValueError(f"heightmap_size must be >= 16 pixels, got {self.heightmap_size}")
        if self.num_rotations < 1 or self.num_rotations % 2:
            raise ValueError(f"num_rotations must be a positive even number, got {self.num_rotations}")
        if self.objects_dir is not None and not Path(self.objects_dir).is_dir():
            raise ValueError(f"objects_dir {self.objects_dir!r} is not a folder")
        if self.max_actions < 1 or self.max_consecutive_failures < 1:
            raise ValueError("max_actions and max_consecutive_failures must be >= 1")
        if not 0.0 <= self.drop_edge_margin < WORKSPACE_SIZE / 2:
            raise ValueError(f"drop_edge_margin must be in [0, {WORKSPACE_SIZE / 2}) m, got {self.drop_edge_margin}")
        if not 0.0 <= self.raft_fraction <= 1.0:
            raise ValueError(f"raft_fraction must be a probability in [0, 1], got {self.raft_fraction}")

    @property
    def pixel_size(self) -> float:
        """Heightmap pixel side in m."""
        return WORKSPACE_SIZE / self.heightmap_size

    @property
    def workspace(self) -> Workspace:
        cx, cy = self.workspace_center
        half = WORKSPACE_SIZE / 2
        return Workspace(np.array([[cx - half, cx + half], [cy - half, cy + half], [0.0, 0.3]]), self.pixel_size)


def _vec(entry: dict, key: str, length: int, where: str) -> tuple[float, ...]:
    value = entry.get(key)
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        array = np.zeros(0)
    if array.shape != (length,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{where}: {key!r} must be {length} finite numbers, got {value!r}")
    return tuple(float(v) for v in array)


def load_case(path: str | os.PathLike) -> list[ObjectSpec]:
    """Read a test-case JSON file ``{"objects": [{"shape", "size", "color", "position", "orientation"}, ...]}``.

    Relative mesh paths are resolved against the case file's folder. Raises ``ValueError`` naming the
    problem for a malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"test case not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list) or not data["objects"]:
        raise ValueError(f"{path}: expected {{'objects': [...]}} with at least one object")
    specs = []
    for i, entry in enumerate(data["objects"]):
        where = f"{path} object {i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), str):
            raise ValueError(f"{where}: needs a 'shape' (block name or mesh path)")
        shape = entry["shape"]
        if shape not in BLOCK_SHAPES:
            mesh = Path(shape) if Path(shape).is_absolute() else path.parent / shape
            if not mesh.is_file():
                raise ValueError(f"{where}: shape {shape!r} is neither a block {BLOCK_SHAPES} nor a file")
            shape = str(mesh)
        size = _vec(entry, "size", 3, where)
        if min(size) <= 0:
            raise ValueError(f"{where}: size must be positive extents in m, got {size}")
        orientation = _vec(entry, "orientation", 4, where) if "orientation" in entry else (0.0, 0.0, 0.0, 1.0)
        norm = float(np.linalg.norm(orientation))
        if not 0.5 < norm < 1.5:
            raise ValueError(f"{where}: orientation must be a unit quaternion (x, y, z, w), got {orientation}")
        specs.append(ObjectSpec(shape, size, _vec(entry, "color", 3, where), _vec(entry, "position", 3, where),
                                tuple(float(q) / norm for q in orientation)))
    return specs


def save_case(path: str | os.PathLike, objects: list[ObjectSpec]) -> None:
    """Write objects as a test-case JSON file (the inverse of :func:`load_case`)."""
    entries = [
        {"shape": o.shape, "size": list(o.size), "color": list(o.color), "position": list(o.position),
         "orientation": list(o.orientation)}
        for o in objects
    ]
    Path(path).write_text(json.dumps({"objects": entries}, indent=1) + "\n")


class PushGraspEnv(gym.Env):
    """Top-down push-grasp picking of toy blocks from clutter (see module docstring).

    Observation: ``{"color": uint8 (H, W, 3), "height": float32 (H, W) m above the table}``.
    Action: ``[primitive (0 push, 1 grasp), rotation index, row, col]`` (``MultiDiscrete``).
    ``reset(options={"case": path})`` loads a JSON test case instead of a random drop.

    The scene lives in a workcell (table + arm): by default an in-process PyBullet one built from the
    config's physics settings; pass ``workcell=make_workcell("bridge", address=..., keys=...)`` to run the
    same episode on a digital twin behind the driver bridge (its server started with the same
    ``--twin.time-step`` and ``--twin.solver-iterations``). A workcell passed in stays open on ``close()``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        config: PushGraspConfig | None = None,
        render_mode: str | None = None,
        workcell: Workcell | None = None,
        **overrides: Any,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        base = config or PushGraspConfig()
        self.config = PushGraspConfig(**{**base.__dict__, **overrides}) if overrides else base
        self.render_mode = render_mode
        cfg = self.config
        self.workspace = cfg.workspace
        size = cfg.heightmap_size
        self.observation_space = spaces.Dict({
            "color": spaces.Box(0, 255, (size, size, 3), np.uint8),
            "height": spaces.Box(0.0, float(self.workspace.bounds[2, 1] - self.workspace.bounds[2, 0]),
                                 (size, size), np.float32),
        })
        self.action_space = spaces.MultiDiscrete([2, cfg.num_rotations, size, size])
        self._owns_workcell = workcell is None
        self.workcell = workcell or make_workcell(
            "panda", time_step=cfg.time_step, solver_iterations=cfg.solver_iterations
        )
        self.world, self.robot = self.workcell.world, self.workcell.robot
        cx, cy = cfg.workspace_center
        half_fov = np.rad2deg(np.arctan((WORKSPACE_SIZE / 2 + 0.02) / cfg.camera_height))
        self.camera = SimCamera(
            self.world, Intrinsics.from_fov(cfg.render_size, cfg.render_size, 2 * half_fov),
            look_at(np.array([cx, cy, cfg.camera_height]), np.array([cx, cy, 0.0]), up=np.array([1.0, 0.0, 0.0])),
            near=0.1, far=cfg.camera_height + 0.5, segmentation=False,
        )
        self._view_camera = SimCamera(
            self.world, Intrinsics.from_fov(320, 240, 45.0),
            look_at(np.array([cx + 0.55, cy - 0.55, 0.55]), np.array([cx - 0.05, cy, 0.0])),
            near=0.05, far=3.0, segmentation=False,
        )
        self._objects: list[str] = []
        self._rest_joints: np.ndarray | None = None
        self._specs: dict[str, ObjectSpec] = {}
        self._obs: dict[str, np.ndarray] | None = None
        self._counters: dict[str, int] = {}
        self._mesh_files: list[Path] = []
        if cfg.objects_dir is not None:
            self._mesh_files = sorted(
                p for p in Path(cfg.objects_dir).iterdir() if p.suffix.lower() in (*MESH_SUFFIXES, ".urdf")
            )
            if not self._mesh_files:
                raise ValueError(f"objects_dir {cfg.objects_dir!r} holds no mesh or URDF files {MESH_SUFFIXES}")

    # ------------------------------------------------------------------ geometry helpers
    def pixel_to_world(self, row: int, col: int) -> np.ndarray:
        """World point (3,) in m at the centre of heightmap pixel (row, col), on the table."""
        return self.workspace.pixel_to_world(row, col)

    def rotation_angle(self, index: int) -> float:
        """Angle in rad of rotation ``index``: push direction / finger-closing axis, from +x toward +y."""
        return 2 * np.pi * index / self.config.num_rotations

    @property
    def object_names(self) -> list[str]:
        """Names of the objects still in the workspace."""
        return list(self._objects)

    # ------------------------------------------------------------------ scene building
    def _random_specs(self) -> list[ObjectSpec]:
        """``num_objects`` objects: with probability ``raft_fraction`` some packed into rafts, the rest dropped
        at random (x, y) around them, staggered in height, at random yaw."""
        rng, cfg = self.np_random, self.config
        specs, keep_out = [], []
        if cfg.raft_fraction > 0 and rng.random() < cfg.raft_fraction:
            planks, keep_out = rafts.place_rafts(rng, cfg.num_objects, cfg.drop_half_extent)
            specs = [ObjectSpec(**plank) for plank in planks]
        colors = rng.permutation(len(PALETTE))
        for i in range(len(specs), cfg.num_objects):
            for _attempt in range(50):
                xy = rng.uniform(-cfg.drop_half_extent, cfg.drop_half_extent, size=2)
                if not any(f.overlaps(xy, 0.04) for f in keep_out):
                    break
            yaw = rng.uniform(-np.pi, np.pi)
            color = PALETTE[int(colors[i % len(PALETTE)])]
            if self._mesh_files:
                shape = str(self._mesh_files[int(rng.integers(len(self._mesh_files)))])
                size = self._mesh_size(shape, float(rng.uniform(0.8, 1.2)))
            else:
                shape = BLOCK_SHAPES[int(rng.integers(len(BLOCK_SHAPES)))]
                size = tuple(float(s) for s in block_files(shape, self.world.cache_dir).size)
            z = 0.05 + 0.045 * i
            specs.append(ObjectSpec(shape, size, color, (float(xy[0]), float(xy[1]), z),
                                    tuple(float(q) for q in euler_to_quat([0.0, 0.0, yaw]))))
        return specs

    def _jitter(self, specs: list[ObjectSpec], jitter: Any) -> list[ObjectSpec]:
        """Perturb each case object by Gaussian (x, y) noise of std ``jitter[0]`` m and yaw noise of std
        ``jitter[1]`` rad, both clipped at two standard deviations (drawn from the env's seeded generator)."""
        try:
            pos_std, yaw_std = (float(j) for j in jitter)
        except (TypeError, ValueError):
            raise ValueError(f"reset option 'jitter' must be [position std m, yaw std rad], got {jitter!r}") from None
        if pos_std < 0 or yaw_std < 0:
            raise ValueError(f"reset option 'jitter' needs non-negative stds, got {jitter!r}")
        out = []
        for spec in specs:
            dxy = np.clip(self.np_random.normal(size=2), -2, 2) * pos_std
            dyaw = float(np.clip(self.np_random.normal(), -2, 2) * yaw_std)
            quat = quat_multiply(euler_to_quat([0.0, 0.0, dyaw]), np.asarray(spec.orientation))
            position = (spec.position[0] + dxy[0], spec.position[1] + dxy[1], spec.position[2])
            out.append(dataclasses.replace(spec, position=tuple(float(p) for p in position),
                                           orientation=tuple(float(q) for q in quat)))
        return out

    def _mesh_size(self, path: str, factor: float) -> tuple[float, float, float]:
        if path.endswith(".urdf"):
            return (0.05, 0.05, 0.05)
        extents = load_trimesh(Path(path)).extents
        scale = factor * self.config.object_max_extent / float(np.max(extents))
        return tuple(float(e * scale) for e in extents)

    def _add_object(self, name: str, spec: ObjectSpec) -> None:
        cx, cy = self.config.workspace_center
        position = (spec.position[0] + cx, spec.position[1] + cy, spec.position[2])
        rgba = (*spec.color, 1.0)
        if spec.shape in BLOCK_SHAPES:
            files = block_files(spec.shape, self.world.cache_dir)
            scale = np.asarray(spec.size) / files.size
            self.world.add_mesh(name, files.visual_obj, position, spec.orientation, scale=scale.tolist(),
                                mass=self.config.object_mass, friction=self.config.object_friction, color=rgba,
                                collision_path=files.collision_obj)
        elif spec.shape.endswith(".urdf"):
            self.world.add_urdf(name, spec.shape, position, spec.orientation)
        else:
            mesh = load_trimesh(Path(spec.shape))
            scale = np.asarray(spec.size) / np.maximum(mesh.extents, 1e-9)
            self.world.add_mesh(name, spec.shape, position, spec.orientation, scale=scale.tolist(),
                                mass=self.config.object_mass, friction=self.config.object_friction, color=rgba)
        self.world.set_dynamics(name, spinningFriction=0.001, rollingFriction=0.0005)
        self.world.enable_sleeping(name)

    def _build_scene(self, specs: list[ObjectSpec], settle: bool) -> None:
        self.workcell.reset()
        # Between actions the arm rests outside the overhead camera's view: skip drawing it (speed only).
        self.world.set_visible(self.robot.name, False)
        self._objects, self._specs = [], {}
        for i, spec in enumerate(specs):
            name = f"object_{i}"
            self._add_object(name, spec)
            self._objects.append(name)
            self._specs[name] = spec
        self._rest_joints = prim.go_to_rest(self.robot, self.config.primitives)
        if settle:
            self.world.step_until_static(max_time=self.config.settle_time)

    def _remove_lost(self, margin: float = 0.0) -> int:
        """Remove objects outside the workspace box (x, y) shrunk by ``margin`` m, or fallen below the table;
        returns how many."""
        (x0, x1), (y0, y1), _ = self.workspace.bounds
        lost = 0
        for name in list(self._objects):
            x, y, z = self.world.body_pose(name)[0]
            if not (x0 + margin <= x <= x1 - margin and y0 + margin <= y <= y1 - margin) or z < -0.05:
                self.world.remove_body(name)
                self._objects.remove(name)
                lost += 1
        return lost

    # ------------------------------------------------------------------ observation
    def _observe(self) -> dict[str, np.ndarray]:
        color, height = heightmap_from_frames([self.camera.capture()], self.workspace)
        height = np.clip(height, 0.0, self.observation_space["height"].high.max()).astype(np.float32)
        return {"color": color, "height": height}

    def scene_changed(self, before: np.ndarray, after: np.ndarray) -> bool:
        """VPG's test: area of pixels whose height changed by more than ``change_height`` m exceeds ``change_area``."""
        changed = np.abs(after - before) > self.config.change_height
        return bool(changed.sum() * self.config.pixel_size**2 > self.config.change_area)

    def _info(self, **extra: Any) -> dict[str, Any]:
        return {"objects_left": len(self._objects), **self._counters, **extra}

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Drop ``num_objects`` random blocks, or load ``options["case"]`` (a JSON test-case path), optionally
        perturbed by ``options["jitter"] = [position std m, yaw std rad]`` (seeded; for repeated test runs)."""
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"case", "jitter"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; supported: ['case', 'jitter']")
        margin = 0.0
        if options.get("case") is not None:
            specs = load_case(options["case"])
            if options.get("jitter") is not None:
                specs = self._jitter(specs, options["jitter"])
            self._build_scene(specs, settle=False)
            self.world.step_until_static(max_time=0.5)
        else:
            self._build_scene(self._random_specs(), settle=True)
            margin = self.config.drop_edge_margin
        self._counters = {"num_objects": len(self._objects), "objects_lost": 0, "objects_grasped": 0,
                          "num_actions": 0, "consecutive_failures": 0}
        self._counters["objects_lost"] = self._remove_lost(margin)
        self._obs = self._observe()
        return self._obs, self._info(grasp_success=False, scene_changed=False)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action)
        if action.shape != (4,) or not self.action_space.contains(action.astype(np.int64)):
            raise ValueError(
                f"action must be [primitive in {{0, 1}}, rotation < {self.config.num_rotations}, row, col < "
                f"{self.config.heightmap_size}] integers, got {action.tolist()}"
            )
        primitive, rotation, row, col = (int(a) for a in action)
        cfg = self.config
        angle = self.rotation_angle(rotation)
        position = self.pixel_to_world(row, col)
        height_before = self._obs["height"]
        grasp_success = False
        if primitive == GRASP:
            z_before = {n: self.world.body_pose(n)[0][2] for n in self._objects}
            held = prim.grasp(self.robot, position, float(height_before[row, col]), angle, cfg.primitives)
            lifted = [n for n in self._objects if self.world.body_pose(n)[0][2] - z_before[n] > cfg.lift_threshold]
            grasp_success = bool(held and lifted)
            if grasp_success:
                for name in lifted:
                    self.world.remove_body(name)
                    self._objects.remove(name)
                for name in self._objects:  # what rested on the removed object must fall
                    self.world.wake_up(name)
                self._counters["objects_grasped"] += len(lifted)
            prim.release_and_rest(self.robot, cfg.primitives, self._rest_joints)
        else:
            prim.push(self.robot, position, self._local_max_height(height_before, row, col), angle, cfg.primitives,
                      self._rest_joints, bounds=np.asarray(self.workspace.bounds)[:2])
        self.world.step_until_static(max_time=0.25, names=self._objects)
        lost = self._remove_lost()
        self._counters["objects_lost"] += lost
        self._counters["num_actions"] += 1
        self._obs = self._observe()
        changed = self.scene_changed(height_before, self._obs["height"])
        reward = 1.0 if grasp_success else (0.5 if primitive == PUSH and changed and not lost else 0.0)
        failed = reward == 0.0
        self._counters["consecutive_failures"] = self._counters["consecutive_failures"] + 1 if failed else 0
        terminated = len(self._objects) == 0
        truncated = not terminated and (
            self._counters["consecutive_failures"] >= cfg.max_consecutive_failures
            or self._counters["num_actions"] >= cfg.max_actions
        )
        info = self._info(grasp_success=grasp_success, scene_changed=changed, primitive=PRIMITIVES[primitive],
                          position=position.tolist(), angle=angle)
        return self._obs, reward, terminated, truncated, info

    def _local_max_height(self, height: np.ndarray, row: int, col: int) -> float:
        """Highest surface in m within the fingers' half-width of pixel (row, col): a push starts just above it."""
        r = max(1, int(round(self.config.primitives.finger_half_width / self.config.pixel_size)))
        patch = height[max(0, row - r): row + r + 1, max(0, col - r): col + r + 1]
        return float(patch.max())

    def render(self) -> np.ndarray | None:
        """A perspective RGB view (240, 320, 3) uint8 of the table when ``render_mode="rgb_array"``."""
        if self.render_mode != "rgb_array":
            return None
        self.world.set_visible(self.robot.name, True)
        try:
            return self._view_camera.capture()["rgb"]
        finally:
            self.world.set_visible(self.robot.name, False)

    def object_specs(self) -> dict[str, ObjectSpec]:
        """The spec each remaining object was created from (name -> spec)."""
        return {n: self._specs[n] for n in self._objects}

    def close(self) -> None:
        """Release the workcell (robot and physics world) if this env built it; safe to call twice."""
        if self._owns_workcell:
            self.workcell.close()
