"""``manipstack/DexGrasp-v0``: goal-conditioned dexterous grasping and lifting (UniDexGrasp stage 2), no torch.

Each episode puts one object of the grasp dataset (``objects="train"|"test"``, a comma list of object names, or a
folder of mesh files whose stems name dataset objects) on the table at a random position and yaw, and draws a **goal
grasp** from that object's valid dataset grasps, restricted to those reachable with the object on the table: the
pair (resting orientation = one of the object's 6 axes up, grasp) is drawn among the pairs where the hand at the
grasp does not reach below the table top. The floating hand
(``make_workcell("floating-hand")``, wrist held by a force-limited constraint, 16 PD finger joints) starts at its
home pose above the table.

Frames. The observation and the wrist action live in the episode's **canonical frame**: the world frame rotated
about z by minus the object's start yaw and shifted to the object's start (x, y) (z stays height above the table),
so rotating the whole scene about the world z axis leaves the observation unchanged (UniDexGrasp's state
canonicalisation).

Observation (``state``, float32 (OBS_DIM,)): finger joints (J) rad and velocities (J) rad/s; wrist position (3) m
and rot6d (6); fingertip positions (4 x 3) m; object position (3) m, rot6d (6), linear (3) m/s and angular (3)
rad/s velocity; goal deltas: goal wrist position - wrist position (3) m, goal rot6d - wrist rot6d (6), goal joints
- joints (J) rad (the goal follows the object: it is the dataset grasp in the object's current frame); lift goal -
object position (3) m; episode progress t / T (1). Positions are canonical-frame.

Action (float32 (6 + J,) in [-1, 1]): wrist translation delta (3) x ``max_wrist_step_m`` and rotation-vector delta
(3) x ``max_wrist_rot_rad`` in the canonical frame, applied to the commanded wrist target; finger joint targets (J)
mapped linearly onto the joint limits.

Reward (UniDexGrasp-shaped, :func:`dex_reward`): reach (mean fingertip-to-object distance), goal-pose match
(wrist position, orientation and joint distance to the goal grasp), and, once the hand is at the goal grasp, lift
(distance of the object to the lift goal) plus a success bonus. ``info["is_success"]``: the object is within
``success_radius_m`` (5 cm) of a lift goal ``lift_height_m`` (0.2 m) above its start. Episodes last
``max_steps`` (200) control steps (truncation).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from gymnasium import spaces
from scipy.spatial.transform import Rotation

from manipstack.envs.core.mesh_cache import cache_trimesh, load_trimesh
from manipstack.envs.core.poses import matrix_to_quat, matrix_to_rot6d, quat_to_matrix, rot6d_to_matrix, yaw_rotation
from manipstack.envs.core.task import CameraSpec, ObservationConfig, RobotTaskEnv, Task, TaskStep
from manipstack.envs.data.grasp_dataset import GraspDataset
from manipstack.envs.robots import Workcell, make_workcell
from manipstack.errors import InputError, MissingInputError

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "assets" / "datasets" / "dexgrasp_allegro_like.h5"
FINGERTIP_LINKS = ("index_distal", "middle_distal", "ring_distal", "thumb_distal")
"""Links whose collision-capsule end is a fingertip (hand spec ``collision_capsules``)."""
MESH_SUFFIXES = (".obj", ".stl", ".ply", ".off", ".glb")
NUM_JOINTS = 16
UP_ROTATIONS = tuple(Rotation.from_euler("xyz", e).as_matrix() for e in
                     ((0, 0, 0), (np.pi, 0, 0), (0, -np.pi / 2, 0), (0, np.pi / 2, 0), (np.pi / 2, 0, 0),
                      (-np.pi / 2, 0, 0)))
"""Resting orientations (3, 3) of an object on the table: its +z, -z, +x, -x, +y, -y axis up."""


OBS_FIELDS: tuple[tuple[str, int], ...] = (
    ("joints", NUM_JOINTS), ("joint_vel", NUM_JOINTS), ("wrist_pos", 3), ("wrist_rot6d", 6), ("tips", 12),
    ("object_pos", 3), ("object_rot6d", 6), ("object_lin_vel", 3), ("object_ang_vel", 3), ("goal_dpos", 3),
    ("goal_drot6d", 6), ("goal_djoints", NUM_JOINTS), ("lift_dpos", 3), ("progress", 1))
"""The ``state`` observation's fields in order, with their lengths (see the module docstring)."""
OBS_SLICES: dict[str, slice] = {}
_start = 0
for _name, _length in OBS_FIELDS:
    OBS_SLICES[_name] = slice(_start, _start + _length)
    _start += _length
OBS_DIM = _start


def canonical_observation(raw: dict[str, np.ndarray], origin_xy: np.ndarray, yaw: float) -> np.ndarray:
    """The ``state`` observation (float32) from world-frame quantities (see the module docstring).

    Args:
        raw: ``joints`` (J,) rad, ``joint_vel`` (J,) rad/s, ``wrist_pos`` (3,) m, ``wrist_rot`` (3, 3),
            ``tips`` (4, 3) m, ``object_pos`` (3,) m, ``object_rot`` (3, 3), ``object_lin_vel`` (3,) m/s,
            ``object_ang_vel`` (3,) rad/s, ``goal_pos`` (3,) m, ``goal_rot`` (3, 3), ``goal_joints`` (J,) rad,
            ``lift_goal`` (3,) m, ``progress`` () in [0, 1]; all vectors in the world frame.
        origin_xy: canonical origin (2,) m, world frame (the object's start x, y).
        yaw: canonical frame's yaw in rad about world z (the object's start yaw).
    """
    inv = yaw_rotation(-yaw)
    offset = np.array([origin_xy[0], origin_xy[1], 0.0])

    def point(p: np.ndarray) -> np.ndarray:
        return (np.asarray(p) - offset) @ inv.T

    wrist6, goal6 = matrix_to_rot6d(inv @ raw["wrist_rot"]), matrix_to_rot6d(inv @ raw["goal_rot"])
    parts = [
        raw["joints"], raw["joint_vel"], point(raw["wrist_pos"]), wrist6, point(raw["tips"]).ravel(),
        point(raw["object_pos"]), matrix_to_rot6d(inv @ raw["object_rot"]), inv @ raw["object_lin_vel"],
        inv @ raw["object_ang_vel"], inv @ (raw["goal_pos"] - raw["wrist_pos"]), goal6 - wrist6,
        raw["goal_joints"] - raw["joints"], inv @ (raw["lift_goal"] - raw["object_pos"]), [raw["progress"]],
    ]
    return np.concatenate([np.ravel(p) for p in parts]).astype(np.float32)


@dataclass(frozen=True)
class RewardWeights:
    """Weights of :func:`dex_reward` (UniDexGrasp's reach / goal / lift / success terms)."""

    reach: float = 1.0
    """Per m of mean fingertip-to-object-centre distance (penalty)."""
    goal: float = 1.0
    """Per m of goal-pose error (wrist distance + 0.1 m/rad x rotation + 0.1 m/rad x mean joint error; penalty)."""
    lift: float = 1.0
    """Lift term while at the goal grasp: lift x (1 - distance to the lift goal / lift height)."""
    success: float = 2.0
    """Bonus per step on success."""
    at_goal_m: float = 0.04
    """Wrist distance in m to the goal grasp under which the lift term counts."""


def dex_reward(tips_to_object_m: float, wrist_to_goal_m: float, rot_to_goal_rad: float, joints_to_goal_rad: float,
               object_to_lift_goal_m: float, lift_height_m: float, success: bool,
               weights: RewardWeights = RewardWeights()) -> tuple[float, dict[str, float]]:
    """Shaped reward of one step and its terms (reach, goal, lift, success), from distances in m and rad."""
    pose_error = wrist_to_goal_m + 0.1 * rot_to_goal_rad + 0.1 * joints_to_goal_rad
    at_goal = wrist_to_goal_m < weights.at_goal_m
    terms = {"reach": -weights.reach * tips_to_object_m, "goal": -weights.goal * pose_error,
             "lift": weights.lift * (1.0 - object_to_lift_goal_m / lift_height_m) if at_goal else 0.0,
             "success": weights.success * float(success)}
    return float(sum(terms.values())), terms


@dataclass(frozen=True)
class DexGraspConfig:
    """Settings of the goal-conditioned dexterous grasping environment."""

    objects: str = "train"
    """'train' or 'test' (the dataset's splits), a comma list of dataset object names, or a folder of mesh files
    (.obj/.stl/.ply/.off/.glb) whose file stems name dataset objects (their goals come from the dataset)."""
    dataset: Path = DEFAULT_DATASET
    """Grasp dataset HDF5 the goals (and, for splits and names, the meshes) come from."""
    max_steps: int = 200
    """Control steps per episode."""
    lift_height_m: float = 0.2
    """Lift goal above the object's start, m."""
    success_radius_m: float = 0.05
    """Success: object within this distance in m of the lift goal."""
    max_wrist_step_m: float = 0.02
    """Wrist translation per control step at action 1, m."""
    max_wrist_rot_rad: float = 0.1
    """Wrist rotation per control step at action 1, rad."""
    place_half_extent_m: float = 0.05
    """Object start (x, y) uniform within this half-width of the table centre, m."""
    object_density: float = 400.0
    """Object density in kg/m^3 (mass = density x volume), as in grasp validation."""
    object_friction: float = 0.8
    """Object lateral friction."""
    table_clearance_m: float = 0.005
    """A goal grasp is reachable when the hand penetrates the table top (z = 0) by less than this, m."""
    time_step: float = 1.0 / 240.0
    """Physics time step in s (a control step is the hand's control period, 10 physics steps)."""
    solver_iterations: int = 30
    """Constraint-solver iterations per physics step."""
    reward: RewardWeights = field(default_factory=RewardWeights)
    """Reward weights."""
    observation: ObservationConfig = field(default_factory=lambda: ObservationConfig(render_camera=CameraSpec(
        "view", 240, 180, 50.0, eye=(0.45, -0.45, 0.4), target=(0.0, 0.0, 0.1), segmentation=False)))
    """Cameras (the ``state`` observation uses none) and the ``render()`` view."""

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise InputError(f"max_steps must be >= 1, got {self.max_steps}")
        for name in ("lift_height_m", "success_radius_m", "max_wrist_step_m", "max_wrist_rot_rad", "object_density"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass
class DexObject:
    """One object of an episode pool: name, mesh (object frame, m) and its valid goal grasps."""

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    goals: np.ndarray
    """(G, 3 + 6 + J) valid dataset grasps: wrist translation m, rot6d, joints rad (object frame)."""
    reachable: np.ndarray | None = None
    """(K, 2) reachable (resting orientation, goal index) pairs (computed on first use)."""
    body: tuple[Path, float, bool] | None = None
    """(cached mesh file, volume m^3, convex) for loading it into PyBullet (computed on first use)."""

    def body_file(self, cache_dir: Path) -> tuple[Path, float, bool]:
        """The mesh written once to ``cache_dir``, its volume in m^3 (the convex hull's if not watertight) and
        whether it is convex (a non-convex mesh is decomposed on load)."""
        if self.body is None:
            mesh = trimesh.Trimesh(self.vertices, self.faces, process=False)
            volume = abs(mesh.volume) if mesh.is_watertight else mesh.convex_hull.volume
            self.body = (cache_trimesh(mesh, cache_dir), float(volume), bool(mesh.is_convex))
        return self.body


def load_objects(spec: str, dataset_path: Path) -> list[DexObject]:
    """The object pool named by ``spec`` (see :attr:`DexGraspConfig.objects`) with their valid grasps.

    Raises:
        InputError: an object has no grasps in the dataset, no valid grasp, or its mesh cannot be loaded.
    """
    if not Path(dataset_path).is_file():
        raise MissingInputError(f"grasp dataset not found: {dataset_path}")
    meshes: dict[str, trimesh.Trimesh] = {}
    with GraspDataset(dataset_path) as dataset:
        known = dataset.objects()
        if spec in ("train", "test"):
            names = dataset.objects(spec)
        elif Path(spec).is_dir():
            files = sorted(p for p in Path(spec).iterdir() if p.suffix.lower() in MESH_SUFFIXES)
            if not files:
                raise InputError(f"objects folder {spec} holds no mesh files ({', '.join(MESH_SUFFIXES)})")
            meshes = {p.stem: load_trimesh(p) for p in files}
            names = list(meshes)
        else:
            names = [n.strip() for n in spec.split(",") if n.strip()]
        missing = [n for n in names if n not in known]
        if missing:
            raise InputError(f"no goal grasps for objects {missing} in grasp dataset {dataset_path}: objects must be "
                             "dataset objects ('train', 'test', names, or mesh files named like them)")
        pool = []
        for name in names:
            obj = dataset.read(name, keys=("vertices", "faces", "poses", "valid"))
            goals = obj.poses[obj.valid].astype(np.float64)
            if len(goals) == 0:
                raise InputError(f"object {name!r} has no valid grasp in {dataset_path}")
            mesh = meshes.get(name)
            vertices = np.asarray(mesh.vertices if mesh is not None else obj.vertices, dtype=np.float64)
            faces = np.asarray(mesh.faces if mesh is not None else obj.faces, dtype=np.int64)
            pool.append(DexObject(name, vertices, faces, goals))
    if not pool:
        raise InputError(f"objects {spec!r} names no object of {dataset_path}")
    return pool


class DexGraspTask(Task):
    """Grasp the episode's object at its goal grasp and lift it (see module docstring)."""

    reset_options = frozenset({"object", "goal_index"})

    def __init__(self, config: DexGraspConfig) -> None:
        self.config = config
        self.pool = load_objects(config.objects, config.dataset)
        self.observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (6 + NUM_JOINTS,), np.float32)
        self.object: DexObject | None = None

    # ------------------------------------------------------------------ scene
    def reset(self, cell: Workcell, rng: np.random.Generator, options: dict[str, Any]) -> dict[str, Any]:
        cfg, world, hand = self.config, cell.world, cell.robot
        cell.reset()
        names = [o.name for o in self.pool]
        if "object" in options:
            if options["object"] not in names:
                raise InputError(f"reset option object={options['object']!r} is not in this env's objects {names}")
            order = [names.index(options["object"])]
        else:  # a seeded order, so the draw does not depend on what earlier episodes found out
            order = rng.permutation(len(self.pool)).tolist()
        obj = None
        for index in order:  # the first object of the order with a reachable grasp
            if self.pool[index].reachable is None:
                self.pool[index].reachable = self._reachable(cell, self.pool[index])
            if len(self.pool[index].reachable):
                obj = self.pool[index]
                break
        if obj is None:
            shown = [names[i] for i in order[:5]]
            raise InputError(f"objects {shown}{'...' if len(order) > 5 else ''}: no valid grasp is reachable on the "
                             "table in any of the 6 axis-up resting orientations (the hand would be below the table)")
        self.object = obj
        pairs = obj.reachable
        if "goal_index" in options:
            pairs = pairs[pairs[:, 1] == int(options["goal_index"])]
            if not len(pairs):
                raise InputError(f"reset option goal_index={options['goal_index']} is not a reachable grasp of "
                                 f"{obj.name!r}")
        up, goal_index = (int(v) for v in pairs[int(rng.integers(len(pairs)))])
        path, volume, convex = obj.body_file(world.cache_dir / "grasp_objects")
        xy = rng.uniform(-cfg.place_half_extent_m, cfg.place_half_extent_m, 2)
        rest = yaw_rotation(float(rng.uniform(-np.pi, np.pi))) @ UP_ROTATIONS[up]
        position = np.array([*xy, -(obj.vertices @ rest.T)[:, 2].min() + 0.001])
        world.add_mesh("object", path, position, matrix_to_quat(rest), mass=cfg.object_density * volume,
                       friction=cfg.object_friction, decompose=not convex, color=(0.9, 0.55, 0.2, 1.0))
        world.step_until_static(max_time=0.5, names=["object"])
        start_pos, start_quat = world.body_pose("object")
        rot = quat_to_matrix(start_quat) @ UP_ROTATIONS[up].T  # the yaw of the resting orientation
        self.origin_xy, self.yaw = start_pos[:2].copy(), float(np.arctan2(rot[1, 0], rot[0, 0]))
        self.start_pos = start_pos
        self.lift_goal = start_pos + np.array([0.0, 0.0, cfg.lift_height_m])
        self.goal = obj.goals[goal_index]
        self.goal_index = goal_index
        self.target_pos, self.target_quat = hand.home_position.copy(), hand.home_quat_xyzw.copy()
        self.steps = 0
        return {"object": obj.name, "goal_index": goal_index, "up": up, "is_success": False}

    def _reachable(self, cell: Workcell, obj: DexObject) -> np.ndarray:
        """(K, 2) pairs (resting orientation index into :data:`UP_ROTATIONS`, goal index) with the hand clear of
        the table top at the goal grasp when the object rests on the table in that orientation (yaw and (x, y) do
        not matter). Teleports the hand to each goal and back home; no physics step."""
        world, hand = cell.world, cell.robot
        keep = []
        for up, rest in enumerate(UP_ROTATIONS):
            object_pose = np.eye(4)
            object_pose[:3, :3] = rest
            object_pose[2, 3] = -(obj.vertices @ rest.T)[:, 2].min()
            for i, goal in enumerate(obj.goals):
                pos, rot = self._goal_world(object_pose, goal)
                hand.reset(pos, matrix_to_quat(rot), goal[9:])
                points = world.closest_points(hand.name, "plane", 0.05)
                if min([1.0, *(p[8] for p in points)]) >= -self.config.table_clearance_m:
                    keep.append((up, i))
        hand.reset(hand.home_position, hand.home_quat_xyzw, hand.home_hand_joints)
        return np.array(keep, dtype=int).reshape(-1, 2)

    @staticmethod
    def _object_matrix(cell: Workcell) -> np.ndarray:
        position, quat = cell.world.body_pose("object")
        transform = np.eye(4)
        transform[:3, :3], transform[:3, 3] = quat_to_matrix(quat), position
        return transform

    @staticmethod
    def _goal_world(object_pose: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World wrist position (3,) m and rotation (3, 3) of a grasp (object frame) for an object pose (4, 4)."""
        rot = object_pose[:3, :3]
        return object_pose[:3, 3] + rot @ goal[:3], rot @ rot6d_to_matrix(goal[3:9])

    # ------------------------------------------------------------------ observation
    def raw_state(self, cell: Workcell) -> dict[str, np.ndarray]:
        """World-frame quantities the observation and reward are made of (see :func:`canonical_observation`)."""
        world, hand = cell.world, cell.robot
        obs = hand.get_observation()
        object_pose = self._object_matrix(cell)
        lin, ang = world.body_velocity("object")
        goal_pos, goal_rot = self._goal_world(object_pose, self.goal)
        return {"joints": obs["hand.joints.pos"], "joint_vel": obs["hand.joints.vel"],
                "wrist_pos": obs["tcp.pose"][:3], "wrist_rot": quat_to_matrix(obs["tcp.pose"][3:]),
                "tips": self._fingertips(cell), "object_pos": object_pose[:3, 3], "object_rot": object_pose[:3, :3],
                "object_lin_vel": lin, "object_ang_vel": ang, "goal_pos": goal_pos, "goal_rot": goal_rot,
                "goal_joints": self.goal[9:], "lift_goal": self.lift_goal,
                "progress": np.float64(self.steps / self.config.max_steps)}

    def _fingertips(self, cell: Workcell) -> np.ndarray:
        """Fingertip positions (4, 3) m, world frame: the distal capsules' end points."""
        world, hand = cell.world, cell.robot
        if not hasattr(self, "_tip_links"):
            by_link = {j.link_name: j.index for j in world.joint_infos(hand.name)}
            ends = {c["link"]: np.array(c["end"]) for c in hand.spec["collision_capsules"]}
            self._tip_links = [(by_link[name], ends[name]) for name in FINGERTIP_LINKS]
        tips = []
        for link, end in self._tip_links:
            position, quat = world.link_pose(hand.name, link)
            tips.append(position + quat_to_matrix(quat) @ end)
        return np.stack(tips)

    def observe(self, cell: Workcell, frames: dict[str, dict[str, np.ndarray]]) -> np.ndarray:
        self._raw = self.raw_state(cell)
        return canonical_observation(self._raw, self.origin_xy, self.yaw)

    # ------------------------------------------------------------------ action
    def check_action(self, action: Any) -> np.ndarray:
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape or not np.all(np.isfinite(action)):
            raise InputError(f"action must be {self.action_space.shape[0]} finite numbers in [-1, 1] (wrist delta "
                             f"pose, finger targets), got shape {action.shape}")
        if not self.action_space.contains(action):
            raise InputError(f"action {action.round(3).tolist()} is outside the action space [-1, 1]")
        return action

    def act(self, cell: Workcell, action: np.ndarray, observation: Any) -> dict[str, Any]:
        cfg, hand = self.config, cell.robot
        to_world = yaw_rotation(self.yaw)
        self.target_pos = self.target_pos + to_world @ (action[:3].astype(np.float64) * cfg.max_wrist_step_m)
        self.target_pos[2] = max(self.target_pos[2], 0.0)
        turn = Rotation.from_rotvec(to_world @ (action[3:6].astype(np.float64) * cfg.max_wrist_rot_rad))
        self.target_quat = (turn * Rotation.from_quat(self.target_quat)).as_quat()
        lower, upper = hand.hand_joint_limits
        joints = lower + (action[6:].astype(np.float64) + 1.0) / 2.0 * (upper - lower)
        hand.send_action({"tcp.pose": np.concatenate([self.target_pos, self.target_quat]),
                          "hand.joints.pos": joints})
        self.steps += 1
        return {}

    # ------------------------------------------------------------------ reward
    def evaluate(self, cell: Workcell, action: np.ndarray, outcome: dict[str, Any], before: Any, after: Any
                 ) -> TaskStep:
        cfg, raw = self.config, self._raw
        to_lift = float(np.linalg.norm(raw["object_pos"] - self.lift_goal))
        success = to_lift < cfg.success_radius_m
        relative = raw["wrist_rot"].T @ raw["goal_rot"]
        reward, terms = dex_reward(
            float(np.linalg.norm(raw["tips"] - raw["object_pos"], axis=1).mean()),
            float(np.linalg.norm(raw["goal_pos"] - raw["wrist_pos"])),
            float(Rotation.from_matrix(relative).magnitude()),
            float(np.abs(raw["goal_joints"] - raw["joints"]).mean()), to_lift, cfg.lift_height_m, success, cfg.reward)
        info = {"object": self.object.name, "is_success": bool(success),
                "lift_m": float(raw["object_pos"][2] - self.start_pos[2]), "reward_terms": terms}
        return TaskStep(reward, False, self.steps >= cfg.max_steps, info)


class DexGraspEnv(RobotTaskEnv):
    """Goal-conditioned grasp-and-lift with the floating dexterous hand (see module docstring).

    Config fields may be given as keyword overrides (``gym.make("manipstack/DexGrasp-v0", objects="test")``).
    """

    def __init__(self, config: DexGraspConfig | None = None, render_mode: str | None = None,
                 workcell: Workcell | None = None, **overrides: Any) -> None:
        base = config or DexGraspConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        cell = workcell or make_workcell("floating-hand", time_step=self.config.time_step,
                                         solver_iterations=self.config.solver_iterations)
        super().__init__(DexGraspTask(self.config), cell, self.config.observation, render_mode=render_mode,
                         owns_workcell=workcell is None)

