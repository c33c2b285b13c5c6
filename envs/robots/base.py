"""The robot contract shared by simulated and real arms (modelled on LeRobot's ``Robot``).

Every backend (in-process sim, network bridge, vendor drivers) implements :class:`Robot`; tasks,
primitives, policies and evaluation code only ever talk to this interface, so they run unchanged
on hardware.

Keys are flat strings. State keys every arm offers:

- ``tcp.pose``: tool-centre-point pose ``[x, y, z, qx, qy, qz, qw]`` (7,), m, world frame.
- ``joints.pos``: arm joint positions (n,), rad.
- ``joints.vel``: arm joint velocities (n,), rad/s.
- ``gripper.width``: finger opening (), m.
- ``wrench``: wrist force/torque ``[fx, fy, fz, tx, ty, tz]`` (6,), N and N m, in the flange frame.
- ``<camera>.rgb`` uint8 (H, W, 3) and ``<camera>.depth`` float32 (H, W), m, for each camera.

Actions are dicts holding a subset of ``tcp.pose`` (7,) or ``joints.pos`` (n,) (never both) and
``gripper.width`` (); a key left out keeps its previous target. Each :meth:`Robot.send_action`
covers one control period of ``control_period_s`` seconds: a simulator advances physics by that
much, a hardware backend paces itself to that rate. The motion helpers at the bottom of this
module are built on that contract alone.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from manipstack.envs.core.poses import Pose, interpolate_poses, pose_to_pose7, rotation_angle_between

if TYPE_CHECKING:
    from manipstack.envs.core.camera import Camera

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Feature:
    """Shape and dtype of one observation or action entry."""

    shape: tuple[int, ...]
    dtype: str = "float64"

    def check(self, key: str, value: Any) -> np.ndarray:
        """Return ``value`` as an array of this feature's dtype, or raise naming the key and the problem."""
        try:
            array = np.asarray(value, dtype=self.dtype)
        except (TypeError, ValueError) as err:
            raise ValueError(f"action[{key!r}] must be numeric with shape {self.shape}: {err}") from None
        if array.shape != self.shape:
            raise ValueError(f"action[{key!r}] must have shape {self.shape}, got {array.shape}")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"action[{key!r}] contains NaN or inf: {array.tolist()}")
        return array


class RobotNotConnectedError(RuntimeError):
    """Raised when a robot is used before ``connect()`` or after ``disconnect()``."""


class Robot(abc.ABC):
    """A robot arm with a gripper and optional cameras.

    Subclasses implement the ``_connect``/``_disconnect``/``_get_observation``/``_send_action``
    hooks; this base class handles connection bookkeeping, context-manager use and action checking.
    """

    name: str = "robot"
    control_period_s: float = 0.05

    def __init__(self) -> None:
        self._connected = False
        self.cameras: dict[str, Camera] = {}
        """Cameras of this robot by name; their frames also appear in observations as ``<name>.rgb``/``.depth``."""

    # -------------------------------------------------------------- features
    @property
    @abc.abstractmethod
    def observation_features(self) -> dict[str, Feature]:
        """Flat key -> :class:`Feature` of :meth:`get_observation`; valid while disconnected."""

    @property
    @abc.abstractmethod
    def action_features(self) -> dict[str, Feature]:
        """Flat key -> :class:`Feature` accepted by :meth:`send_action`; valid while disconnected."""

    @property
    def home_joints(self) -> np.ndarray:
        """Arm joint positions (n,) in rad of the home configuration."""
        raise NotImplementedError

    @property
    def gripper_max_width(self) -> float:
        """Widest opening of the gripper in m."""
        return 0.08

    # -------------------------------------------------------------- connection
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Bring the robot up; calling it when already connected does nothing."""
        if self._connected:
            return
        self._connect()
        self._connected = True

    def disconnect(self) -> None:
        """Release the robot; safe to call more than once."""
        if not self._connected:
            return
        try:
            self._disconnect()
        finally:
            self._connected = False

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def _require_connected(self) -> None:
        if not self._connected:
            raise RobotNotConnectedError(f"{self.name} is not connected: call connect() first")

    # -------------------------------------------------------------- I/O
    def get_observation(self) -> dict[str, np.ndarray]:
        """Current state and camera images as a flat dict (see module docstring for keys)."""
        self._require_connected()
        return self._get_observation()

    def send_action(self, action: dict[str, Any]) -> dict[str, np.ndarray]:
        """Command one control period; returns the action actually applied (after any clamping)."""
        self._require_connected()
        return self._send_action(self.validate_action(action))

    def validate_action(self, action: dict[str, Any]) -> dict[str, np.ndarray]:
        """Check keys, shapes and finiteness; raises ``ValueError`` naming the problem.

        Values pass unchanged (wrappers and the bridge validate too, so a change here would be applied
        several times): the backend that consumes a ``tcp.pose`` normalises its quaternion once
        (:func:`unit_quaternion_pose`)."""
        if not isinstance(action, dict):
            raise ValueError(f"action must be a dict of key -> array, got {type(action).__name__}")
        features = self.action_features
        unknown = set(action) - set(features)
        if unknown:
            raise ValueError(f"unknown action keys {sorted(unknown)}; expected a subset of {sorted(features)}")
        if "tcp.pose" in action and "joints.pos" in action:
            raise ValueError("an action holds either 'tcp.pose' or 'joints.pos', not both")
        checked = {key: features[key].check(key, value) for key, value in action.items()}
        if "tcp.pose" in checked:
            quat_norm = np.linalg.norm(checked["tcp.pose"][3:])
            if not 0.5 < quat_norm < 1.5:
                raise ValueError(f"action['tcp.pose'] quaternion must be unit length, got norm {quat_norm:.3f}")
        return checked

    def home(self) -> None:
        """Move the arm to its home configuration and open the gripper."""
        self.send_action({"gripper.width": self.gripper_max_width})
        move_to_joints(self, self.home_joints)

    @abc.abstractmethod
    def _connect(self) -> None: ...

    @abc.abstractmethod
    def _disconnect(self) -> None: ...

    @abc.abstractmethod
    def _get_observation(self) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def _send_action(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class RobotWrapper(Robot):
    """A robot that forwards the whole contract to ``inner`` (connected and disconnected with it); a subclass
    overrides only what it changes, e.g. checking actions (safety) or watching them (recording)."""

    def __init__(self, inner: Robot) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name
        self.control_period_s = inner.control_period_s
        self.cameras = inner.cameras

    @property
    def observation_features(self) -> dict[str, Feature]:
        return self.inner.observation_features

    @property
    def action_features(self) -> dict[str, Feature]:
        return self.inner.action_features

    @property
    def home_joints(self) -> np.ndarray:
        return self.inner.home_joints

    @property
    def gripper_max_width(self) -> float:
        return self.inner.gripper_max_width

    def _connect(self) -> None:
        self.inner.connect()

    def _disconnect(self) -> None:
        self.inner.disconnect()

    def _get_observation(self) -> dict[str, np.ndarray]:
        return self.inner.get_observation()

    def _send_action(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.inner.send_action(action)


class Workcell(Protocol):
    """A simulated table with an arm that a task builds its scene in.

    ``world`` is a :class:`~envs.core.world.World` (or the same methods served by a digital twin over the
    driver bridge) and ``robot`` the arm in it, connected. :meth:`reset` empties the world to the table and
    the arm at home; :meth:`close` releases both.
    """

    world: Any
    robot: Robot

    def reset(self) -> None: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------- motion helpers
def unit_quaternion_pose(pose7: np.ndarray) -> np.ndarray:
    """A copy of a pose (x, y, z, qx, qy, qz, qw) with its quaternion scaled to unit length."""
    pose7 = np.array(pose7, dtype=float)
    pose7[3:] /= np.linalg.norm(pose7[3:])
    return pose7


def tcp_pose(robot: Robot) -> Pose:
    """Current TCP (position (3,) m, quaternion (x, y, z, w)), world frame."""
    pose7 = robot.get_observation()["tcp.pose"]
    return pose7[:3], pose7[3:]


def move_to_pose(
    robot: Robot,
    position: np.ndarray,
    quat_xyzw: np.ndarray,
    max_step_m: float = 0.01,
    max_step_rad: float = 0.08,
    position_tol_m: float = 0.001,
    angle_tol_rad: float = np.deg2rad(0.5),
    settle_periods: int = 40,
    stop_force_n: float | None = None,
) -> bool:
    """Move the TCP along a straight Cartesian line to a target pose.

    Waypoints are spaced at most ``max_step_m`` (m) and ``max_step_rad`` (rad) apart, one per control
    period; then the goal is held for up to ``settle_periods`` periods until within tolerance.

    With ``stop_force_n`` the move is *guarded*: once the wrist force (the ``wrench`` observation)
    differs from its value at the start of the move by more than ``stop_force_n`` N, the arm backs off to
    the last waypoint before the contact and the move ends (a real arm's guarded move does the same).

    Returns:
        True if the TCP ended within ``position_tol_m`` and ``angle_tol_rad`` of the target.
    """
    observation = robot.get_observation()
    start = (observation["tcp.pose"][:3], observation["tcp.pose"][3:])
    start_force = observation["wrench"][:3]
    goal = (np.asarray(position, dtype=float), np.asarray(quat_xyzw, dtype=float))
    distance = float(np.linalg.norm(goal[0] - start[0]))
    angle = rotation_angle_between(start[1], goal[1])
    num = max(1, int(np.ceil(max(distance / max_step_m, angle / max_step_rad))))
    goal7 = pose_to_pose7(*goal)
    waypoints = [pose_to_pose7(*w) for w in interpolate_poses(start, goal, num)] + [goal7] * settle_periods
    for i, waypoint in enumerate(waypoints):
        if i >= num or stop_force_n is not None:
            observation = robot.get_observation()
            pos, quat = observation["tcp.pose"][:3], observation["tcp.pose"][3:]
            if stop_force_n is not None and np.linalg.norm(observation["wrench"][:3] - start_force) > stop_force_n:
                robot.send_action({"tcp.pose": waypoints[i - 2] if i >= 2 else pose_to_pose7(*start)})
                log.debug("guarded move stopped by contact %.1f mm from its target",
                          1000 * np.linalg.norm(pos - goal[0]))
                return False
            if i >= num and _within(pos, quat, goal, position_tol_m, angle_tol_rad):
                return True
        robot.send_action({"tcp.pose": waypoint})
    pos, quat = tcp_pose(robot)
    reached = _within(pos, quat, goal, position_tol_m, angle_tol_rad)
    if not reached:
        log.info("move_to_pose stopped %.1f mm from its target", 1000 * np.linalg.norm(pos - goal[0]))
    return reached


def _within(position: np.ndarray, quat: np.ndarray, goal: Pose, position_tol_m: float, angle_tol_rad: float) -> bool:
    """Whether a TCP pose is within tolerance (m, rad) of ``goal``."""
    return bool(np.linalg.norm(position - goal[0]) < position_tol_m
                and rotation_angle_between(quat, goal[1]) < angle_tol_rad)


def move_to_joints(
    robot: Robot, joints_rad: np.ndarray, max_step_rad: float = 0.05, tol_rad: float = 0.005, settle_periods: int = 40
) -> bool:
    """Move the arm joints linearly to ``joints_rad`` (n,), at most ``max_step_rad`` per period per joint."""
    start = robot.get_observation()["joints.pos"]
    goal = np.asarray(joints_rad, dtype=float)
    num = max(1, int(np.ceil(np.max(np.abs(goal - start)) / max_step_rad)))
    for fraction in np.linspace(0, 1, num + 1)[1:]:
        robot.send_action({"joints.pos": start + fraction * (goal - start)})
    for _ in range(settle_periods):
        if np.max(np.abs(robot.get_observation()["joints.pos"] - goal)) < tol_rad:
            return True
        robot.send_action({"joints.pos": goal})
    return bool(np.max(np.abs(robot.get_observation()["joints.pos"] - goal)) < tol_rad)


def _command_gripper(robot: Robot, width_m: float, max_periods: int, still_tol_m: float = 2e-4) -> float:
    """Command a gripper width and wait (bounded) until the fingers stop moving; returns the final width in m."""
    previous = None
    for _ in range(max_periods):
        robot.send_action({"gripper.width": width_m})
        width = float(robot.get_observation()["gripper.width"])
        if previous is not None and abs(width - previous) < still_tol_m:
            return width
        previous = width
    return float(robot.get_observation()["gripper.width"])


def open_gripper(robot: Robot, width_m: float | None = None, max_periods: int = 30) -> float:
    """Open to ``width_m`` (default fully); returns the reached width in m."""
    return _command_gripper(robot, robot.gripper_max_width if width_m is None else width_m, max_periods)


def close_gripper(robot: Robot, max_periods: int = 30) -> float:
    """Close until the fingers stop (on an object or fully shut); returns the final width in m."""
    return _command_gripper(robot, 0.0, max_periods)


def is_grasping(robot: Robot, min_width_m: float = 0.002) -> bool:
    """True if a closed gripper is held open by something (VPG's check): width above ``min_width_m``."""
    return float(robot.get_observation()["gripper.width"]) > min_width_m
