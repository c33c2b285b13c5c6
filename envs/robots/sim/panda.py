"""Franka Panda with its parallel gripper in PyBullet (pybullet_data's ``franka_panda/panda.urdf``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from manipstack.envs.core.camera import Camera
from manipstack.envs.core.poses import pose_to_pose7, unit_quaternion_pose
from manipstack.envs.core.world import World
from manipstack.envs.robots.base import Feature, Robot, camera_features, camera_observations

log = logging.getLogger(__name__)

ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (9, 10)
FLANGE_JOINT = 7  # fixed joint between link 7 and the flange: hosts the force-torque sensor
TCP_LINK = 11  # panda_grasptarget: between the fingertips


@dataclass(frozen=True)
class SimPandaConfig:
    """Simulated Panda settings."""

    base_position: tuple[float, float, float] = (-0.55, 0.0, 0.0)
    """Robot base position in m, world frame (the table top is z = 0)."""
    home_joints: tuple[float, ...] = (0.0, -0.4, 0.0, -2.4, 0.0, 2.0, 0.785)
    """Home arm configuration in rad: TCP above the workspace, gripper pointing down."""
    control_period_s: float = 1.0 / 24.0
    """Duration of one ``send_action`` in s (physics steps = period / world time step)."""
    arm_position_gain: float = 0.3
    """Position gain of the arm joint motors."""
    gripper_force_n: float = 60.0
    """Max force per finger in N."""
    finger_friction: float = 1.5
    """Lateral friction coefficient of the finger pads."""
    name: str = "panda"
    """Body name in the world."""

    def __post_init__(self) -> None:
        if len(self.home_joints) != len(ARM_JOINTS):
            raise ValueError(f"home_joints needs {len(ARM_JOINTS)} values in rad, got {len(self.home_joints)}")
        if self.control_period_s <= 0:
            raise ValueError(f"control_period_s must be > 0, got {self.control_period_s}")


class SimPanda(Robot):
    """A Panda in a :class:`World`, driven through the robot contract.

    ``connect()`` loads the arm into the world (once) and puts it at home; the world keeps running
    after ``disconnect()``.

    Args:
        world: the physics world to live in.
        config: robot settings.
        cameras: cameras whose images join the observation as ``<name>.rgb`` / ``<name>.depth``.
    """

    def __init__(
        self, world: World, config: SimPandaConfig | None = None, cameras: dict[str, Camera] | None = None
    ) -> None:
        super().__init__()
        self.world = world
        self.config = config or SimPandaConfig()
        self.name = self.config.name
        self.cameras = dict(cameras or {})
        self.control_period_s = self.config.control_period_s
        self._steps_per_period = max(1, int(round(self.control_period_s / world.time_step)))
        self._lower = self._upper = self._max_force = None
        self._joint_targets = np.array(self.config.home_joints, dtype=float)
        self._gripper_target = self.gripper_max_width
        self._twin: World | None = None

    # -------------------------------------------------------------- features
    @property
    def observation_features(self) -> dict[str, Feature]:
        features = {
            "tcp.pose": Feature((7,)),
            "joints.pos": Feature((len(ARM_JOINTS),)),
            "joints.vel": Feature((len(ARM_JOINTS),)),
            "gripper.width": Feature(()),
            "wrench": Feature((6,)),
        }
        return {**features, **camera_features(self.cameras)}

    @property
    def action_features(self) -> dict[str, Feature]:
        return {"tcp.pose": Feature((7,)), "joints.pos": Feature((len(ARM_JOINTS),)), "gripper.width": Feature(())}

    @property
    def home_joints(self) -> np.ndarray:
        return np.array(self.config.home_joints, dtype=float)

    @property
    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Arm joint (lower, upper) limits in rad, each (7,)."""
        return self._lower.copy(), self._upper.copy()

    # -------------------------------------------------------------- lifecycle
    def _connect(self) -> None:
        world, name = self.world, self.name
        if not world.has_body(name):
            world.add_urdf(name, "franka_panda/panda.urdf", self.config.base_position, fixed=True)
            for finger in FINGER_JOINTS:
                world.set_dynamics(name, finger, lateralFriction=self.config.finger_friction,
                                   spinningFriction=0.01, frictionAnchor=1)
            world.enable_ft_sensor(name, FLANGE_JOINT)
        infos = world.joint_infos(name)
        self._lower = np.array([infos[j].lower for j in ARM_JOINTS])
        self._upper = np.array([infos[j].upper for j in ARM_JOINTS])
        self._max_force = np.array([infos[j].max_force for j in ARM_JOINTS])
        self.reset_to_home()

    def _disconnect(self) -> None:
        """The simulated arm stays in the world, and the IK twin is kept for the next connect (a workcell
        reconnects on every reset; a fresh physics client each time is slow and prints to stdout)."""

    def close(self) -> None:
        """Disconnect and release the IK twin's physics client; safe to call more than once."""
        self.disconnect()
        if self._twin is not None:
            self._twin.close()
            self._twin = None

    def reset_to_home(self) -> None:
        """Teleport to the home configuration with an open gripper (no dynamics simulated)."""
        self.world.reset_joints(self.name, ARM_JOINTS, self.config.home_joints)
        self.world.reset_joints(self.name, FINGER_JOINTS, [self.gripper_max_width / 2] * 2)
        self._joint_targets = self.home_joints
        self._gripper_target = self.gripper_max_width
        self._apply_targets()

    # -------------------------------------------------------------- I/O
    def _get_observation(self) -> dict[str, np.ndarray]:
        world, name = self.world, self.name
        joints, velocities = world.joint_states(name, ARM_JOINTS)
        fingers, _ = world.joint_states(name, FINGER_JOINTS)
        obs = {
            "tcp.pose": pose_to_pose7(*world.link_pose(name, TCP_LINK)),
            "joints.pos": joints,
            "joints.vel": velocities,
            "gripper.width": np.array(float(fingers.sum())),
            "wrench": world.joint_reaction_wrench(name, FLANGE_JOINT),
        }
        return {**obs, **camera_observations(self.cameras)}

    def _send_action(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        applied: dict[str, np.ndarray] = {}
        if "tcp.pose" in action:
            pose7 = unit_quaternion_pose(action["tcp.pose"])
            self._joint_targets = self._clamp_joints(self.solve_ik(pose7[:3], pose7[3:]))
            applied["tcp.pose"] = pose7
        elif "joints.pos" in action:
            self._joint_targets = self._clamp_joints(action["joints.pos"])
            applied["joints.pos"] = self._joint_targets.copy()
        if "gripper.width" in action:
            width = float(np.clip(action["gripper.width"], 0.0, self.gripper_max_width))
            if width != float(action["gripper.width"]):
                log.info("gripper width clamped from %.4f m to %.4f m", float(action["gripper.width"]), width)
            self._gripper_target = width
            applied["gripper.width"] = np.array(width)
        self._apply_targets()
        self.world.step(self._steps_per_period)
        return applied

    def solve_ik(self, position: np.ndarray, quat_xyzw: np.ndarray, tol_m: float = 1e-4) -> np.ndarray:
        """Arm joint positions (7,) in rad placing the TCP at a pose (m, world frame).

        IK runs on a kinematic twin of the arm (a world of its own) seeded with the current joints, so
        successive waypoints of a motion stay on one smooth branch; one plain solve usually lands within
        ``tol_m``. Otherwise PyBullet's null-space IK (which keeps the arm near home but is biased by
        millimetres) seeds up to three plain refinements.
        """
        twin = self._kinematic_twin()
        start, _ = self.world.joint_states(self.name, ARM_JOINTS)
        twin.reset_joints(self.name, ARM_JOINTS, start)
        solution = twin.inverse_kinematics(self.name, TCP_LINK, position, quat_xyzw)[: len(ARM_JOINTS)]
        if self._twin_error(solution, position) < tol_m:
            return solution
        twin.reset_joints(self.name, ARM_JOINTS, start)
        solution = twin.inverse_kinematics(
            self.name, TCP_LINK, position, quat_xyzw,
            rest_poses=list(self.config.home_joints) + [0.04, 0.04],
            lower=list(self._lower) + [0.0, 0.0], upper=list(self._upper) + [0.04, 0.04],
        )[: len(ARM_JOINTS)]
        for _ in range(3):
            if self._twin_error(solution, position) < tol_m:
                break
            solution = twin.inverse_kinematics(self.name, TCP_LINK, position, quat_xyzw)[: len(ARM_JOINTS)]
        return solution

    def _twin_error(self, joints_rad: np.ndarray, position: np.ndarray) -> float:
        """Distance in m between ``position`` and the twin's TCP with the arm at ``joints_rad`` (left there)."""
        twin = self._kinematic_twin()
        twin.reset_joints(self.name, ARM_JOINTS, joints_rad)
        return float(np.linalg.norm(twin.link_pose(self.name, TCP_LINK)[0] - position))

    def _kinematic_twin(self) -> World:
        if self._twin is None:
            self._twin = World(time_step=self.world.time_step, gravity=0.0)
            self._twin.add_urdf(self.name, "franka_panda/panda.urdf", self.config.base_position, fixed=True)
        return self._twin

    def _clamp_joints(self, joints_rad: np.ndarray) -> np.ndarray:
        clamped = np.clip(joints_rad, self._lower, self._upper)
        if not np.array_equal(clamped, joints_rad):
            log.info("joint targets clamped to limits: %s -> %s", np.round(joints_rad, 4), np.round(clamped, 4))
        return clamped

    def _apply_targets(self) -> None:
        self.world.set_joint_targets(
            self.name, ARM_JOINTS, self._joint_targets, self._max_force, self.config.arm_position_gain
        )
        self.world.set_joint_targets(
            self.name, FINGER_JOINTS, [self._gripper_target / 2] * 2, [self.config.gripper_force_n] * 2,
            position_gain=0.2, max_velocity=0.2,
        )

    # -------------------------------------------------------------- state for save/restore
    def controller_state(self) -> dict[str, np.ndarray]:
        """Motor targets (not part of PyBullet's saved state): arm joints (7,) rad, gripper width () m."""
        return {"joints": self._joint_targets.copy(), "gripper": np.array(self._gripper_target)}

    def set_controller_state(self, state: dict[str, np.ndarray]) -> None:
        self._joint_targets = np.array(state["joints"], dtype=float)
        self._gripper_target = float(state["gripper"])
        self._apply_targets()
