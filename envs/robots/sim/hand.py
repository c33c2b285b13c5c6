"""A floating multi-finger hand in PyBullet behind the robot contract: the wrist is held at a pose by a
force-limited constraint, the fingers are PD-driven.

Any hand described by a URDF + hand spec JSON works (see ``assets/hands/``); joints are addressed in the
spec's order, whatever their number J. Units: m, rad, N, N m, s; quaternions (x, y, z, w); world frame.

Contract features (:mod:`manipstack.envs.robots.base`): observations ``tcp.pose`` (the wrist pose (7,)),
``hand.joints.pos`` / ``hand.joints.vel`` (J,), ``wrench`` (the force/torque (6,) the wrist constraint applied
to the hand in the last physics step, wrist frame: hanging still, the hand's weight pointing up; zeros before the
first step after a reset) and camera images; actions ``tcp.pose`` (the wrist target: moves the constraint) and
``hand.joints.pos`` (finger PD targets, clamped to the spec's limits). The hand has no arm joints and no
parallel gripper.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manipstack.assets.hands import DEFAULT_HAND_SPEC
from manipstack.envs.core.camera import Camera
from manipstack.envs.core.poses import pose_to_pose7, unit_quaternion_pose
from manipstack.envs.core.world import World
from manipstack.envs.robots.base import Feature, Robot, camera_features, camera_observations
from manipstack.envs.robots.motion import move_to_pose

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class SimHandConfig:
    """Floating-hand settings."""

    spec: Path = DEFAULT_HAND_SPEC
    """Hand spec JSON; its ``urdf`` entry is resolved relative to the spec's folder."""
    wrist_max_force: float = 2000.0
    """Max force in N of the constraint holding the wrist (large: the wrist is effectively fixed)."""
    joint_max_torque: float = 0.7
    """Max motor torque per finger joint in N m (Allegro: about 0.7)."""
    position_gain: float = 0.3
    """Position gain of the joint PD motors."""
    friction: float = 1.0
    """Lateral friction coefficient of every hand link (PyBullet multiplies it with the other body's)."""
    name: str = "hand"
    """Body name in the world."""
    control_period_s: float = 1.0 / 24.0
    """Duration of one ``send_action`` in s (physics steps = period / world time step)."""

    def __post_init__(self) -> None:
        if not Path(self.spec).is_file():
            raise FileNotFoundError(f"hand spec not found: {self.spec}")
        if self.wrist_max_force <= 0 or self.joint_max_torque <= 0:
            raise ValueError("wrist_max_force and joint_max_torque must be > 0")
        if self.control_period_s <= 0:
            raise ValueError(f"control_period_s must be > 0, got {self.control_period_s}")


class SimHand(Robot):
    """A floating hand in a :class:`World`, driven through the robot contract (or directly with :meth:`reset`
    and :meth:`set_joint_targets`).

    The hand is loaded at construction, at the given wrist pose. ``connect()`` leaves a hand already in the
    world exactly as it is (no physics call); after the world was emptied (a workcell reset) it loads the hand
    again at its home: the construction pose with the fingers at the spec's ``open_pose``. The hand stays in
    the world after ``disconnect()``.

    Args:
        world: the world to load the hand into.
        config: hand settings.
        position: initial wrist position (3,), m; quat_xyzw: initial wrist orientation (x, y, z, w). This pose is
            also the hand's home.
        cameras: cameras whose images join the observation as ``<name>.rgb`` / ``<name>.depth``.
    """

    def __init__(self, world: World, config: SimHandConfig | None = None,
                 position: Sequence[float] = (0.0, 0.0, 0.0),
                 quat_xyzw: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
                 cameras: dict[str, Camera] | None = None) -> None:
        super().__init__()
        self.world, self.config = world, config or SimHandConfig()
        spec_path = Path(self.config.spec)
        self.spec = json.loads(spec_path.read_text())
        self._urdf = spec_path.parent / self.spec["urdf"]
        self.name = self.config.name
        self.cameras = dict(cameras or {})
        self.control_period_s = self.config.control_period_s
        self._steps_per_period = max(1, int(round(self.control_period_s / world.time_step)))
        self.home_position = np.array(position, dtype=float)
        """Home wrist position (3,), m, world frame (the construction pose)."""
        self.home_quat_xyzw = np.array(quat_xyzw, dtype=float)
        """Home wrist orientation (x, y, z, w), world frame."""
        self._load(position, quat_xyzw)

    def _load(self, position: Sequence[float], quat_xyzw: Sequence[float]) -> None:
        """Load the URDF with the wrist at a pose, set link friction and create the wrist constraint."""
        world = self.world
        world.add_urdf(self.name, self._urdf, position, quat_xyzw)
        by_name = {j.name: j for j in world.joint_infos(self.name)}
        missing = [j["name"] for j in self.spec["joints"] if j["name"] not in by_name]
        if missing:
            raise ValueError(f"hand spec joints missing from the URDF: {missing}")
        self.joint_ids = [by_name[j["name"]].index for j in self.spec["joints"]]
        self.lower = np.array([j["lower"] for j in self.spec["joints"]])
        self.upper = np.array([j["upper"] for j in self.spec["joints"]])
        self.link_ids = [-1, *sorted(j.index for j in by_name.values())]
        for link in self.link_ids:
            world.set_dynamics(self.name, link, lateralFriction=self.config.friction)
        self._constraint = world.create_world_constraint(self.name, position, quat_xyzw, self.config.wrist_max_force)

    @property
    def num_joints(self) -> int:
        """Number of actuated finger joints J."""
        return len(self.joint_ids)

    # -------------------------------------------------------------- features
    @property
    def observation_features(self) -> dict[str, Feature]:
        features = {
            "tcp.pose": Feature((7,)),
            "hand.joints.pos": Feature((self.num_joints,)),
            "hand.joints.vel": Feature((self.num_joints,)),
            "wrench": Feature((6,)),
        }
        return {**features, **camera_features(self.cameras)}

    @property
    def action_features(self) -> dict[str, Feature]:
        return {"tcp.pose": Feature((7,)), "hand.joints.pos": Feature((self.num_joints,))}

    @property
    def home_hand_joints(self) -> np.ndarray:
        """The spec's ``open_pose`` (J,), rad."""
        if "open_pose" not in self.spec:
            raise ValueError(f"hand spec {self.config.spec} has no 'open_pose': add J = {self.num_joints} joint "
                             f"angles in rad to home the hand")
        return self._check_joints(self.spec["open_pose"])

    @property
    def hand_joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Finger joint (lower, upper) limits in rad from the spec, each (J,)."""
        return self.lower.copy(), self.upper.copy()

    # -------------------------------------------------------------- lifecycle
    def _connect(self) -> None:
        if not self.world.has_body(self.name):
            self._load(self.home_position, self.home_quat_xyzw)
            self.reset(self.home_position, self.home_quat_xyzw, self.home_hand_joints)

    def _disconnect(self) -> None:
        """The simulated hand stays in the world."""

    def close(self) -> None:
        """Disconnect; safe to call more than once (the world belongs to its owner)."""
        self.disconnect()

    def home(self) -> None:
        """Open the fingers to :attr:`home_hand_joints`, then move the wrist to its home pose in a straight line."""
        super().home()
        move_to_pose(self, self.home_position, self.home_quat_xyzw)

    # -------------------------------------------------------------- I/O
    def _get_observation(self) -> dict[str, np.ndarray]:
        world, name = self.world, self.name
        position, quat = world.body_pose(name)
        joints, velocities = world.joint_states(name, self.joint_ids)
        obs = {
            "tcp.pose": pose_to_pose7(position, quat),
            "hand.joints.pos": joints,
            "hand.joints.vel": velocities,
            "wrench": world.world_constraint_wrench(self._constraint, name),
        }
        return {**obs, **camera_observations(self.cameras)}

    def _send_action(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        applied: dict[str, np.ndarray] = {}
        if "tcp.pose" in action:
            pose7 = unit_quaternion_pose(action["tcp.pose"])
            self.world.move_world_constraint(self._constraint, pose7[:3], pose7[3:], self.config.wrist_max_force)
            applied["tcp.pose"] = pose7
        if "hand.joints.pos" in action:
            joints = np.asarray(action["hand.joints.pos"], dtype=float)
            clamped = np.clip(joints, self.lower, self.upper)
            if not np.array_equal(clamped, joints):
                log.info("hand joint targets clamped to limits: %s -> %s", np.round(joints, 4), np.round(clamped, 4))
            self.set_joint_targets(clamped)
            applied["hand.joints.pos"] = clamped
        self.world.step(self._steps_per_period)
        return applied

    # -------------------------------------------------------------- direct control (grasp validation)
    def reset(self, position: Sequence[float], quat_xyzw: Sequence[float], joints_rad: Sequence[float]) -> None:
        """Teleport the wrist to a pose and the fingers to joint angles (J,) rad, all at rest; motors hold them."""
        joints_rad = self._check_joints(joints_rad)
        self.world.set_body_pose(self.name, position, quat_xyzw)
        self.world.set_body_velocity(self.name)
        self.world.move_world_constraint(self._constraint, position, quat_xyzw, self.config.wrist_max_force)
        self.world.reset_joints(self.name, self.joint_ids, joints_rad)
        self.set_joint_targets(joints_rad)

    def set_joint_targets(self, joints_rad: Sequence[float]) -> None:
        """PD targets (J,) rad for the finger joints, each motor limited to ``joint_max_torque``."""
        joints_rad = self._check_joints(joints_rad)
        self.world.set_joint_targets(self.name, self.joint_ids, joints_rad, [self.config.joint_max_torque]
                                     * self.num_joints, position_gain=self.config.position_gain)

    def _check_joints(self, joints_rad: Sequence[float]) -> np.ndarray:
        joints = np.asarray(joints_rad, dtype=float)
        if joints.shape != (self.num_joints,) or not np.all(np.isfinite(joints)):
            raise ValueError(f"need {self.num_joints} finite joint angles in rad, got {joints.tolist()}")
        return joints
