"""``manipstack/PoseGrasp-v0``: grasp a category object with the Panda from an estimate of its 9-DoF pose.

Each episode puts one held-out instance (:mod:`manipstack.assets.pose_categories`, collision = its convex parts, so
a bowl or mug is hollow) upright on the table in front of the Panda at a random position and yaw, and one camera at
a random pose on the side away from the robot, rendered in a pose-scene domain (default 'shifted': lighting,
textures, intrinsics and depth noise of the test domain). The observation is that camera's RGB-D frame, the
object's instance mask (from the simulator's segmentation), its class id, and the camera's intrinsics and pose.

The action is a pose hypothesis of the object in the **world** frame: translation (3) m, rotation as rot6d (6:
the object's y axis, then its x axis; projected to SO(3) by Gram-Schmidt from y) and metric extents (3) m. The
task turns it into the category's canonical top-down grasp and runs the contract's primitives (guarded grasp,
lift); the episode ends after that one grasp, reward 1 if the object is lifted by more than ``lift_threshold`` and
held. Canonical grasps (object frame, y up):

- bottle: the neck, from above at the centre; can: across the body from above at the centre;
- bowl: pinch the rim wall at the point of the rim nearest the robot, fingers closing radially;
- mug: pinch the rim wall beside the handle (object +z side), fingers closing along the object's z axis.

Cameras and laptops are not graspable by a top-down parallel-jaw grasp that holds for every instance of the
category (the camera's lens and grip stick out past the 8 cm opening, a laptop has no edge a finger gets under),
so they are left out of ``GRASP_CATEGORIES``.

With ``privileged=True`` the observation also holds the true ``world_from_object`` and extents, for the
ground-truth-pose baseline; the estimator never sees them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from manipstack.assets.pose_categories import CATEGORIES, class_id, instance_files
from manipstack.envs.core.camera import SimCamera, look_at
from manipstack.envs.core.poses import euler_to_quat, matrix_to_quat, quat_to_matrix
from manipstack.envs.core.scene import ObjectPhysics
from manipstack.envs.core.task import CameraSpec, ObservationConfig, RobotTaskEnv, Task, TaskStep
from manipstack.envs.robots import Workcell, make_workcell
from manipstack.envs.robots import primitives as prim
from manipstack.envs.tasks.pose_scenes import (
    DEPTH_NOISE,
    DOMAINS,
    OBJECT_FROM_UPRIGHT,
    draw_intrinsics,
    draw_lighting,
    texture_files,
)
from manipstack.errors import InputError

GRASP_CATEGORIES: tuple[str, ...] = ("bottle", "bowl", "can", "mug")
ACTION_DIM = 12


@dataclass(frozen=True)
class PoseGraspConfig:
    """Settings of the pose-driven grasping environment."""

    categories: tuple[str, ...] = GRASP_CATEGORIES
    """Categories drawn (uniformly) for the episode's object."""
    instances: str = "test"
    """Instance split of the object: the held-out 'test' set or 'train'."""
    num_instances: int = 12
    """Instances per category to draw from."""
    domain: str = "shifted"
    """Render domain of the observation camera."""
    privileged: bool = False
    """Add the true object pose and extents to the observation (for the ground-truth-pose baseline)."""
    width: int = 320
    """Image width in pixels."""
    height: int = 240
    """Image height in pixels."""
    workspace_center: tuple[float, float] = (0.0, 0.0)
    """Centre (x, y) in m of the area objects are placed in (the Panda base is at x = -0.55)."""
    place_half_extent: tuple[float, float] = (0.08, 0.12)
    """Objects are placed within this half-width (x, y) in m of the centre."""
    object_mass: float = 0.15
    """Object mass in kg."""
    object_friction: float = 1.0
    """Object lateral friction coefficient."""
    lift_by: float = 0.12
    """How far in m the TCP rises from the grasp pose before the grasp is checked."""
    lift_threshold: float = 0.05
    """The object counts as lifted if its centre rose by more than this (m)."""
    time_step: float = 1.0 / 240.0
    """Physics time step in s."""
    solver_iterations: int = 50
    """Physics solver iterations per step."""
    primitives: prim.PrimitiveConfig = field(default_factory=lambda: prim.PrimitiveConfig(grasp_depth=0.025))
    """Grasp geometry (TCP depth below the grasped surface, approach height, guarded descent, lift height)."""

    def __post_init__(self) -> None:
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown or not self.categories:
            raise InputError(f"categories must be a non-empty subset of {CATEGORIES}, got {self.categories}")
        if self.domain not in DOMAINS:
            raise InputError(f"domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.instances not in ("train", "test") or self.num_instances < 1:
            raise InputError("instances must be 'train' or 'test' and num_instances >= 1")

    @property
    def observation(self) -> ObservationConfig:
        """No fixed observation camera (the task draws one per episode); a view of the table for ``render()``."""
        cx, cy = self.workspace_center
        view = CameraSpec("view", 320, 240, 45.0, (cx + 0.6, cy - 0.6, 0.55), (cx - 0.1, cy, 0.05), near=0.05,
                          far=3.0, segmentation=False)
        return ObservationConfig(cameras=(), render_camera=view, robot_visible=False)


def canonical_grasp(category: str, world_from_object: np.ndarray, extents: np.ndarray, robot_xy: np.ndarray
                    ) -> tuple[np.ndarray, float, float]:
    """The category's canonical grasp for an object pose (world, 4x4) and extents (3,) m (see module docstring).

    Returns:
        grasp point (3,) m world, surface height in m the fingers descend from, closing angle in rad about z.
    """
    rotation, centre = world_from_object[:3, :3], world_from_object[:3, 3]
    up = rotation[:, 1]
    top = centre + up * extents[1] / 2
    surface = float(top[2])
    if category in ("bottle", "can"):
        return top, surface, 0.0
    if category == "bowl":
        toward = robot_xy - centre[:2]
        toward = toward / max(np.linalg.norm(toward), 1e-9)
        radius = 0.5 * 0.5 * (extents[0] + extents[2]) - 0.004
        point = top + radius * np.array([*toward, 0.0])
        return point, surface, float(np.arctan2(toward[1], toward[0]))
    if category == "mug":
        axis = centre + rotation @ np.array([-(extents[0] - extents[2]) / 2, extents[1] / 2, 0.0])
        side = rotation[:, 2]
        point = axis + side * (extents[2] / 2 - 0.003)
        return point, surface, float(np.arctan2(side[1], side[0]))
    raise InputError(f"no canonical grasp for category {category!r}; graspable: {GRASP_CATEGORIES}")


def pose_action(world_from_object: np.ndarray, extents: np.ndarray) -> np.ndarray:
    """The action (12,) for a pose (4, 4) and extents (3,) m: translation, rot6d (y axis, x axis), extents."""
    rotation = world_from_object[:3, :3]
    return np.concatenate([world_from_object[:3, 3], rotation[:, 1], rotation[:, 0],
                           np.asarray(extents, dtype=float)]).astype(np.float64)


def action_pose(action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose (4, 4) and extents (3,) m of an action: rot6d projected to SO(3) by Gram-Schmidt from the y axis."""
    y = action[3:6] / np.linalg.norm(action[3:6])
    x = action[6:9] - (action[6:9] @ y) * y
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, y, np.cross(x, y)], axis=1)
    pose[:3, 3] = action[:3]
    return pose, action[9:12].copy()


class PoseGraspTask(Task):
    """Place a category object, observe it with a random camera, grasp it from a pose hypothesis."""

    reset_options = frozenset({"category"})

    def __init__(self, config: PoseGraspConfig) -> None:
        self.config = cfg = config
        h, w = cfg.height, cfg.width
        entries = {
            "rgb": spaces.Box(0, 255, (h, w, 3), np.uint8),
            "depth": spaces.Box(0.0, 10.0, (h, w), np.float32),
            "mask": spaces.Box(0, 1, (h, w), np.uint8),
            "class_id": spaces.Box(1, len(CATEGORIES), (), np.int64),
            "intrinsics": spaces.Box(-np.inf, np.inf, (3, 3), np.float64),
            "world_from_cam": spaces.Box(-np.inf, np.inf, (4, 4), np.float64),
        }
        if cfg.privileged:
            entries["gt_world_from_object"] = spaces.Box(-np.inf, np.inf, (4, 4), np.float64)
            entries["gt_extents"] = spaces.Box(0.0, np.inf, (3,), np.float64)
        self.observation_space = spaces.Dict(entries)
        low = np.array([-1.0] * 3 + [-1.5] * 6 + [0.005] * 3)
        high = np.array([1.0] * 3 + [1.5] * 6 + [1.0] * 3)
        self.action_space = spaces.Box(low, high, (ACTION_DIM,), np.float64)
        self.physics = ObjectPhysics(mass=cfg.object_mass, friction=cfg.object_friction)
        self.camera: SimCamera | None = None
        self.category = ""
        self.rng: np.random.Generator | None = None
        self._rest_joints: np.ndarray | None = None
        self._extents = np.zeros(3)

    def reset(self, cell: Workcell, rng: np.random.Generator, options: dict[str, Any]) -> dict[str, Any]:
        """Place one object (``options["category"]`` or a random one of ``categories``) and draw the camera."""
        cfg, world = self.config, cell.world
        cell.reset()
        self.rng = rng
        self.category = options.get("category") or str(rng.choice(cfg.categories))
        if self.category not in cfg.categories:
            raise InputError(f"reset option 'category' must be one of {cfg.categories}, got {self.category!r}")
        index = int(rng.integers(cfg.num_instances))
        files = instance_files(self.category, cfg.instances, index, world.cache_dir)
        self._extents = files.extents
        xy = np.asarray(cfg.workspace_center) + rng.uniform(-1, 1, 2) * np.asarray(cfg.place_half_extent)
        yaw = float(rng.uniform(-np.pi, np.pi))
        rotation = quat_to_matrix(euler_to_quat([0.0, 0.0, yaw])) @ OBJECT_FROM_UPRIGHT
        world.add_mesh("object", files.visual_obj, (*xy, files.extents[1] / 2 + 0.002), matrix_to_quat(rotation),
                       mass=cfg.object_mass, friction=cfg.object_friction, color=(1.0, 1.0, 1.0, 1.0),
                       decompose=False, collision_path=files.collision_obj)
        world.set_dynamics("object", spinningFriction=self.physics.spinning_friction,
                           rollingFriction=self.physics.rolling_friction)
        textures = texture_files(cfg.domain, world.cache_dir)
        if hasattr(world, "set_texture"):
            world.set_texture("object", textures[int(rng.integers(len(textures)))])
        self._rest_joints = prim.go_to_rest(cell.robot, cfg.primitives)
        world.step_until_static(max_time=1.0, names=["object"])
        intrinsics = draw_intrinsics(cfg.domain, rng, cfg.width, cfg.height)
        target = np.array([*xy, 0.05])
        distance = rng.uniform(0.5, 0.8)
        elevation = rng.uniform(np.deg2rad(35), np.deg2rad(65))
        azimuth = rng.uniform(-np.deg2rad(70), np.deg2rad(70))  # on the side away from the robot (+x)
        eye = target + distance * np.array([np.cos(elevation) * np.cos(azimuth),
                                            np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
        self.camera = SimCamera(world, intrinsics, look_at(eye, target), near=0.05, far=4.0,
                                noise=DEPTH_NOISE[cfg.domain], rng=rng, lighting=draw_lighting(cfg.domain, rng))
        return {"category": self.category, "instance": index, "grasp_success": False}

    def world_from_object(self, cell: Workcell) -> np.ndarray:
        """The object's true pose (4, 4) in the world (its canonical frame)."""
        position, quat = cell.world.body_pose("object")
        transform = np.eye(4)
        transform[:3, :3] = quat_to_matrix(quat)
        transform[:3, 3] = position
        return transform

    def observe(self, cell: Workcell, frames: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        frame = self.camera.capture()
        body = cell.world.body_id("object")
        obs = {"rgb": frame["rgb"], "depth": np.clip(frame["depth"], 0.0, 10.0).astype(np.float32),
               "mask": (frame["seg"] == body).astype(np.uint8), "class_id": np.int64(class_id(self.category)),
               "intrinsics": frame["intrinsics"].astype(np.float64),
               "world_from_cam": frame["extrinsics"].astype(np.float64)}
        if self.config.privileged:
            obs["gt_world_from_object"] = self.world_from_object(cell)
            obs["gt_extents"] = np.array(self._extents, dtype=np.float64)
        return obs

    def check_action(self, action: Any) -> np.ndarray:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
            raise InputError(f"action must be 12 finite numbers (translation m, rot6d, extents m), got shape "
                             f"{action.shape}")
        if not self.action_space.contains(action):
            raise InputError(f"action {action.round(4).tolist()} is outside the action space: translation within "
                             "+-1 m, rot6d entries within +-1.5 (unit axes), extents 0.005..1 m")
        y, x = action[3:6], action[6:9]
        if np.linalg.norm(y) < 1e-3 or np.linalg.norm(np.cross(x, y)) < 1e-3 * np.linalg.norm(y):
            raise InputError("action: the rotation's y axis (entries 3..5) is zero or parallel to its x axis "
                             "(entries 6..8), so it names no rotation")
        return action

    def act(self, cell: Workcell, action: np.ndarray, observation: dict[str, np.ndarray]) -> dict[str, Any]:
        cfg, world, robot = self.config, cell.world, cell.robot
        estimate, extents = action_pose(action)
        truth = self.world_from_object(cell)
        robot_xy = np.array([-0.55, 0.0])
        point, surface, angle = canonical_grasp(self.category, estimate, extents, robot_xy)
        z_before = world.body_pose("object")[0][2]
        grasp_pose = prim.grasp(robot, point, surface, angle, cfg.primitives)
        held = grasp_pose is not None and prim.lift(robot, grasp_pose, cfg.primitives,
                                                    height=grasp_pose[0][2] + cfg.lift_by)
        lifted = world.body_pose("object")[0][2] - z_before > cfg.lift_threshold
        prim.release_and_rest(robot, cfg.primitives, self._rest_joints)
        true_up, est_up = truth[:3, 1], estimate[:3, 1]
        return {"grasp_success": bool(held and lifted), "aborted": grasp_pose is None,
                "position_error_cm": float(100 * np.linalg.norm(estimate[:3, 3] - truth[:3, 3])),
                "up_error_deg": float(np.degrees(np.arccos(np.clip(true_up @ est_up, -1, 1))))}

    def evaluate(self, cell: Workcell, action: np.ndarray, outcome: dict[str, Any], before: Any, after: Any
                 ) -> TaskStep:
        return TaskStep(float(outcome["grasp_success"]), True, False, {"category": self.category, **outcome})


class PoseGraspEnv(RobotTaskEnv):
    """One pose-driven grasp of a category object by the Panda (see module docstring)."""

    def __init__(self, config: PoseGraspConfig | None = None, render_mode: str | None = None,
                 workcell: Workcell | None = None, **overrides: Any) -> None:
        base = config or PoseGraspConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        cell = workcell or make_workcell("panda", time_step=self.config.time_step,
                                         solver_iterations=self.config.solver_iterations)
        super().__init__(PoseGraspTask(self.config), cell, self.config.observation, render_mode=render_mode,
                         owns_workcell=workcell is None)
