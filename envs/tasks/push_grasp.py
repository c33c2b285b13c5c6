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
``manipstack.envs.core.heightmap``). Scenes can be loaded from scene files (``reset(options={"case": path})``,
see ``manipstack.envs.core.scene``), positions relative to the workspace centre.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from manipstack.assets.blocks import BLOCK_SHAPES, PALETTE
from manipstack.assets.vpg_objects import HELD_OUT_FAMILIES, TRAIN_FAMILIES, random_shape, random_urdf_pool
from manipstack.envs.core.heightmap import Workspace, heightmap_from_frames
from manipstack.envs.core.mesh_cache import load_trimesh
from manipstack.envs.core.poses import euler_to_quat, quat_multiply
from manipstack.envs.core.scene import (
    ObjectPhysics,
    ObjectSpec,
    add_objects,
    block_size,
    load_scene,
    mesh_size,
    object_files,
    remove_outside,
)
from manipstack.envs.core.task import CameraSpec, ObservationConfig, RobotTaskEnv, Task, TaskStep
from manipstack.envs.core.world import pybullet_data_path
from manipstack.envs.robots import Workcell, make_workcell
from manipstack.envs.robots import primitives as prim
from manipstack.envs.tasks import push_grasp_rafts as rafts
from manipstack.errors import InputError

PUSH, GRASP = 0, 1
PRIMITIVES = ("push", "grasp")
WORKSPACE_SIZE = 0.448  # m, VPG's table workspace


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
    object_families: tuple[str, ...] = ()
    """Procedural object families to drop instead of VPG's toy blocks, each object from a family drawn uniformly
    (``manipstack.assets.vpg_objects``: blocks, polygons, lshapes, tori, random_urdfs; stars is held out for tests);
    empty = VPG's toy blocks."""
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
    moved_threshold: float = 0.01
    """An object that stays in the workspace counts as moved by an action (``info["objects_moved"]``) if its centre
    ends more than this far (m) from where it was before the action (how often failed grasps shove blocks)."""
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
            raise InputError(f"num_objects must be >= 1, got {self.num_objects}")
        if self.heightmap_size < 16:
            raise InputError(f"heightmap_size must be >= 16 pixels, got {self.heightmap_size}")
        if self.num_rotations < 1 or self.num_rotations % 2:
            raise InputError(f"num_rotations must be a positive even number, got {self.num_rotations}")
        if self.objects_dir is not None and not Path(self.objects_dir).is_dir():
            raise InputError(f"objects_dir {self.objects_dir!r} is not a folder")
        known = (*TRAIN_FAMILIES, *HELD_OUT_FAMILIES)
        unknown = [f for f in self.object_families if f not in known]
        if unknown:
            raise InputError(f"unknown object families {unknown}; choose from {list(known)}")
        if self.object_families and self.objects_dir is not None:
            raise InputError("give objects_dir or object_families, not both")
        if self.max_actions < 1 or self.max_consecutive_failures < 1:
            raise InputError("max_actions and max_consecutive_failures must be >= 1")
        if not 0.0 <= self.drop_edge_margin < WORKSPACE_SIZE / 2:
            raise InputError(f"drop_edge_margin must be in [0, {WORKSPACE_SIZE / 2}) m, got {self.drop_edge_margin}")
        if not 0.0 <= self.raft_fraction <= 1.0:
            raise InputError(f"raft_fraction must be a probability in [0, 1], got {self.raft_fraction}")

    @property
    def pixel_size(self) -> float:
        """Heightmap pixel side in m."""
        return WORKSPACE_SIZE / self.heightmap_size

    @property
    def workspace(self) -> Workspace:
        cx, cy = self.workspace_center
        half = WORKSPACE_SIZE / 2
        return Workspace(np.array([[cx - half, cx + half], [cy - half, cy + half], [0.0, 0.3]]), self.pixel_size)


    @property
    def observation(self) -> ObservationConfig:
        """The overhead camera the heightmap is made from (the arm, resting out of its view, is not drawn) and a
        perspective view of the table for ``render()``."""
        cx, cy = self.workspace_center
        half_fov = np.rad2deg(np.arctan((WORKSPACE_SIZE / 2 + 0.02) / self.camera_height))
        top = CameraSpec("top", self.render_size, self.render_size, 2 * half_fov, (cx, cy, self.camera_height),
                         (cx, cy, 0.0), up=(1.0, 0.0, 0.0), near=0.1, far=self.camera_height + 0.5,
                         segmentation=False)
        view = CameraSpec("view", 320, 240, 45.0, (cx + 0.55, cy - 0.55, 0.55), (cx - 0.05, cy, 0.0), near=0.05,
                          far=3.0, segmentation=False)
        return ObservationConfig(cameras=(top,), render_camera=view, robot_visible=False)


class PushGraspTask(Task):
    """VPG's task: scenes of toy blocks (random drops, plank rafts or scene files), push and grasp primitives,
    the paper's rewards (see module docstring).

    Observation: ``{"color": uint8 (H, W, 3), "height": float32 (H, W) m above the table}``.
    Action: ``[primitive (0 push, 1 grasp), rotation index, row, col]`` (``MultiDiscrete``).
    """

    reset_options = frozenset({"case", "jitter"})

    def __init__(self, config: PushGraspConfig) -> None:
        self.config = cfg = config
        self.workspace = cfg.workspace
        size = cfg.heightmap_size
        self.observation_space = spaces.Dict({
            "color": spaces.Box(0, 255, (size, size, 3), np.uint8),
            "height": spaces.Box(0.0, float(self.workspace.bounds[2, 1] - self.workspace.bounds[2, 0]),
                                 (size, size), np.float32),
        })
        self.action_space = spaces.MultiDiscrete([2, cfg.num_rotations, size, size])
        self.physics = ObjectPhysics(mass=cfg.object_mass, friction=cfg.object_friction)
        self.mesh_files: list[Path] = object_files(cfg.objects_dir) if cfg.objects_dir is not None else []
        self.urdf_pool = random_urdf_pool(pybullet_data_path()) if "random_urdfs" in cfg.object_families else []
        self.objects: list[str] = []
        self.specs: dict[str, ObjectSpec] = {}
        self.counters: dict[str, int] = {}
        self._rest_joints: np.ndarray | None = None

    # ------------------------------------------------------------------ geometry
    def pixel_to_world(self, row: int, col: int) -> np.ndarray:
        """World point (3,) in m at the centre of heightmap pixel (row, col), on the table."""
        return self.workspace.pixel_to_world(row, col)

    def rotation_angle(self, index: int) -> float:
        """Angle in rad of rotation ``index``: push direction / finger-closing axis, from +x toward +y."""
        return 2 * np.pi * index / self.config.num_rotations

    def scene_changed(self, before: np.ndarray, after: np.ndarray) -> bool:
        """VPG's test: area of pixels whose height changed by more than ``change_height`` m exceeds ``change_area``."""
        changed = np.abs(after - before) > self.config.change_height
        return bool(changed.sum() * self.config.pixel_size**2 > self.config.change_area)

    # ------------------------------------------------------------------ scenes
    def random_specs(self, rng: np.random.Generator, cache_dir: Path) -> list[ObjectSpec]:
        """``num_objects`` objects: with probability ``raft_fraction`` some packed into rafts, the rest dropped
        at random (x, y) around them, staggered in height, at random yaw."""
        cfg = self.config
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
            if self.mesh_files:
                shape = str(self.mesh_files[int(rng.integers(len(self.mesh_files)))])
                size = mesh_size(shape, float(rng.uniform(0.8, 1.2)) * cfg.object_max_extent)
            elif cfg.object_families:
                family = cfg.object_families[int(rng.integers(len(cfg.object_families)))]
                shape, size = random_shape(family, rng, cache_dir, lambda mesh: load_trimesh(mesh).extents,
                                           self.urdf_pool)
            else:
                shape = BLOCK_SHAPES[int(rng.integers(len(BLOCK_SHAPES)))]
                size = block_size(shape, cache_dir)
            z = 0.05 + 0.045 * i
            specs.append(ObjectSpec(shape, size, color, (float(xy[0]), float(xy[1]), z),
                                    tuple(float(q) for q in euler_to_quat([0.0, 0.0, yaw]))))
        return specs

    @staticmethod
    def jitter(specs: list[ObjectSpec], jitter: Any, rng: np.random.Generator) -> list[ObjectSpec]:
        """Perturb each object by Gaussian (x, y) noise of std ``jitter[0]`` m and yaw noise of std ``jitter[1]``
        rad, both clipped at two standard deviations (drawn from ``rng``; for repeated runs of a test case)."""
        try:
            pos_std, yaw_std = (float(j) for j in jitter)
        except (TypeError, ValueError):
            raise InputError(f"reset option 'jitter' must be [position std m, yaw std rad], got {jitter!r}") from None
        if pos_std < 0 or yaw_std < 0:
            raise InputError(f"reset option 'jitter' needs non-negative stds, got {jitter!r}")
        out = []
        for spec in specs:
            dxy = np.clip(rng.normal(size=2), -2, 2) * pos_std
            dyaw = float(np.clip(rng.normal(), -2, 2) * yaw_std)
            quat = quat_multiply(euler_to_quat([0.0, 0.0, dyaw]), np.asarray(spec.orientation))
            position = (spec.position[0] + dxy[0], spec.position[1] + dxy[1], spec.position[2])
            out.append(dataclasses.replace(spec, position=tuple(float(p) for p in position),
                                           orientation=tuple(float(q) for q in quat)))
        return out

    def _build_scene(self, cell: Workcell, specs: list[ObjectSpec], settle: bool) -> None:
        cell.reset()
        self.objects = add_objects(cell.world, specs, (*self.config.workspace_center, 0.0), self.physics)
        self.specs = dict(zip(self.objects, specs))
        self._rest_joints = prim.go_to_rest(cell.robot, self.config.primitives)
        if settle:
            cell.world.step_until_static(max_time=self.config.settle_time)

    def _remove_lost(self, cell: Workcell, margin: float = 0.0) -> int:
        """Remove objects outside the workspace (x, y) shrunk by ``margin`` m or fallen below the table; how many."""
        return len(remove_outside(cell.world, self.objects, self.workspace.bounds[:2], margin))

    def _info(self, **extra: Any) -> dict[str, Any]:
        return {"objects_left": len(self.objects), **self.counters, **extra}

    # ------------------------------------------------------------------ task
    def reset(self, cell: Workcell, rng: np.random.Generator, options: dict[str, Any]) -> dict[str, Any]:
        """Drop ``num_objects`` random blocks, or load ``options["case"]`` (a scene file), optionally perturbed by
        ``options["jitter"] = [position std m, yaw std rad]``."""
        margin = 0.0
        if options.get("case") is not None:
            specs = load_scene(options["case"])
            if options.get("jitter") is not None:
                specs = self.jitter(specs, options["jitter"], rng)
            self._build_scene(cell, specs, settle=False)
            cell.world.step_until_static(max_time=0.5)
        else:
            self._build_scene(cell, self.random_specs(rng, cell.world.cache_dir), settle=True)
            margin = self.config.drop_edge_margin
        self.counters = {"num_objects": len(self.objects), "objects_lost": 0, "objects_grasped": 0,
                         "num_actions": 0, "consecutive_failures": 0}
        self.counters["objects_lost"] = self._remove_lost(cell, margin)
        return self._info(grasp_success=False, scene_changed=False)

    def observe(self, cell: Workcell, frames: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        color, height = heightmap_from_frames([frames["top"]], self.workspace)
        height = np.clip(height, 0.0, self.observation_space["height"].high.max()).astype(np.float32)
        return {"color": color, "height": height}

    def check_action(self, action: Any) -> np.ndarray:
        action = np.asarray(action)
        if action.shape != (4,) or not self.action_space.contains(action.astype(np.int64)):
            raise InputError(
                f"action must be [primitive in {{0, 1}}, rotation < {self.config.num_rotations}, row, col < "
                f"{self.config.heightmap_size}] integers, got {action.tolist()}"
            )
        return action

    def act(self, cell: Workcell, action: np.ndarray, observation: dict[str, np.ndarray]) -> dict[str, Any]:
        primitive, rotation, row, col = (int(a) for a in action)
        cfg, world, robot = self.config, cell.world, cell.robot
        angle = self.rotation_angle(rotation)
        position = self.pixel_to_world(row, col)
        height = observation["height"]
        grasp_success = False
        start = {n: world.body_pose(n)[0] for n in self.objects}
        if primitive == GRASP:
            z_before = {n: position[2] for n, position in start.items()}
            grasp_pose = prim.grasp(robot, position, float(height[row, col]), angle, cfg.primitives)
            held = grasp_pose is not None and prim.lift(robot, grasp_pose, cfg.primitives)
            lifted = [n for n in self.objects if world.body_pose(n)[0][2] - z_before[n] > cfg.lift_threshold]
            grasp_success = bool(held and lifted)
            if grasp_success:
                for name in lifted:
                    world.remove_body(name)
                    self.objects.remove(name)
                for name in self.objects:  # what rested on the removed object must fall
                    world.wake_up(name)
                self.counters["objects_grasped"] += len(lifted)
            prim.release_and_rest(robot, cfg.primitives, self._rest_joints)
        else:
            prim.push(robot, position, self._local_max_height(height, row, col), angle, cfg.primitives,
                      self._rest_joints, bounds=np.asarray(self.workspace.bounds)[:2])
        world.step_until_static(max_time=0.25, names=self.objects)
        moved = sum(float(np.linalg.norm(world.body_pose(n)[0] - start[n])) > cfg.moved_threshold for n in self.objects)
        lost = self._remove_lost(cell)
        self.counters["objects_lost"] += lost
        self.counters["num_actions"] += 1
        return {"grasp_success": grasp_success, "lost": lost, "primitive": primitive, "position": position,
                "angle": angle, "objects_moved": moved}

    def evaluate(self, cell: Workcell, action: np.ndarray, outcome: dict[str, Any], before: dict[str, np.ndarray],
                 after: dict[str, np.ndarray]) -> TaskStep:
        cfg = self.config
        changed = self.scene_changed(before["height"], after["height"])
        if outcome["grasp_success"]:
            reward = 1.0
        else:
            reward = 0.5 if outcome["primitive"] == PUSH and changed and not outcome["lost"] else 0.0
        failed = reward == 0.0
        self.counters["consecutive_failures"] = self.counters["consecutive_failures"] + 1 if failed else 0
        terminated = len(self.objects) == 0
        truncated = not terminated and (
            self.counters["consecutive_failures"] >= cfg.max_consecutive_failures
            or self.counters["num_actions"] >= cfg.max_actions
        )
        info = self._info(grasp_success=outcome["grasp_success"], scene_changed=changed,
                          primitive=PRIMITIVES[outcome["primitive"]], position=outcome["position"].tolist(),
                          angle=outcome["angle"], objects_moved=outcome["objects_moved"])
        return TaskStep(reward, terminated, truncated, info)

    def _local_max_height(self, height: np.ndarray, row: int, col: int) -> float:
        """Highest surface in m within the fingers' half-width of pixel (row, col): a push starts just above it."""
        r = max(1, int(round(self.config.primitives.finger_half_width / self.config.pixel_size)))
        patch = height[max(0, row - r): row + r + 1, max(0, col - r): col + r + 1]
        return float(patch.max())


class PushGraspEnv(RobotTaskEnv):
    """Top-down push-grasp picking of toy blocks from clutter: :class:`PushGraspTask` in a Panda workcell.

    ``reset(options={"case": path})`` loads a scene file instead of a random drop. The scene lives in a workcell
    (table + arm): by default an in-process PyBullet one built from the config's physics settings; pass
    ``workcell=make_workcell("panda", backend="bridge", address=..., keys=...)`` to run the same episode on a digital
    twin behind the driver bridge (its server started with the same ``--twin.time-step`` and
    ``--twin.solver-iterations``). A workcell passed in stays open on ``close()``.
    """

    def __init__(self, config: PushGraspConfig | None = None, render_mode: str | None = None,
                 workcell: Workcell | None = None, **overrides: Any) -> None:
        base = config or PushGraspConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        task = PushGraspTask(self.config)
        cell = workcell or make_workcell("panda", time_step=self.config.time_step,
                                         solver_iterations=self.config.solver_iterations)
        super().__init__(task, cell, self.config.observation, render_mode=render_mode, owns_workcell=workcell is None)
        self.workspace = task.workspace

    @property
    def object_names(self) -> list[str]:
        """Names of the objects still in the workspace."""
        return list(self.task.objects)

    def object_specs(self) -> dict[str, ObjectSpec]:
        """The spec each remaining object was created from (name -> spec)."""
        return {n: self.task.specs[n] for n in self.task.objects}
