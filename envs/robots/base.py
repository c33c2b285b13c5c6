"""The robot contract shared by simulated and real robots (modelled on LeRobot's ``Robot``).

Every backend (in-process sim, network bridge, vendor drivers) implements :class:`Robot`; tasks,
primitives, policies and evaluation code only ever talk to this interface, so they run unchanged
on hardware.

Keys are flat strings, grouped into feature groups. A robot offers the groups it has, and code asks
its ``observation_features`` / ``action_features`` (or :meth:`Robot.require_action`) instead of assuming.

Arm state (every robot):

- ``tcp.pose``: tool-centre-point pose ``[x, y, z, qx, qy, qz, qw]`` (7,), m, world frame (a floating hand's
  TCP is its wrist).
- ``joints.pos``: arm joint positions (n,), rad; ``joints.vel``: arm joint velocities (n,), rad/s. Only robots
  with arm joints have them (a floating hand has none).
- ``wrench``: wrist force/torque ``[fx, fy, fz, tx, ty, tz]`` (6,), N and N m, in the flange (wrist) frame.

End-effector groups (optional, a robot has at most one):

- parallel gripper: ``gripper.width``, finger opening (), m (:attr:`Robot.gripper_max_width`).
- dexterous hand: ``hand.joints.pos`` finger joint positions (J,), rad (J = 16 for the shipped hand) and
  ``hand.joints.vel`` (J,), rad/s (:attr:`Robot.hand_joint_limits`, :attr:`Robot.home_hand_joints`).

Cameras: ``<camera>.rgb`` uint8 (H, W, 3) and ``<camera>.depth`` float32 (H, W), m, for each camera.

Actions are dicts holding a subset of the robot's action keys: ``tcp.pose`` (7,) or ``joints.pos`` (n,) (never
both), and the end effector's ``gripper.width`` () or ``hand.joints.pos`` (J,); a key left out keeps its
previous target. Each :meth:`Robot.send_action` covers one control period of ``control_period_s`` seconds: a
simulator advances physics by that much, a hardware backend paces itself to that rate. Motion helpers built on
this contract alone live in :mod:`manipstack.envs.robots.motion`, primitives on top of them in
:mod:`manipstack.envs.robots.primitives`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from manipstack.envs.core.camera import Camera
    from manipstack.envs.core.scene_protocol import SceneWorld

ARM_JOINT_KEYS = ("joints.pos", "joints.vel")
"""Feature group of arm joints (observation keys; ``joints.pos`` is also an action)."""
GRIPPER_KEYS = ("gripper.width",)
"""Feature group of a parallel gripper (observation and action)."""
HAND_KEYS = ("hand.joints.pos", "hand.joints.vel")
"""Feature group of a dexterous hand (observation keys; ``hand.joints.pos`` is also an action)."""


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


def camera_features(cameras: dict[str, Camera]) -> dict[str, Feature]:
    """Observation features of cameras: ``<name>.rgb`` uint8 (H, W, 3) and ``<name>.depth`` float32 (H, W), m."""
    features: dict[str, Feature] = {}
    for name, cam in cameras.items():
        features[f"{name}.rgb"] = Feature((cam.intrinsics.height, cam.intrinsics.width, 3), "uint8")
        features[f"{name}.depth"] = Feature((cam.intrinsics.height, cam.intrinsics.width), "float32")
    return features


def camera_observations(cameras: dict[str, Camera]) -> dict[str, np.ndarray]:
    """One frame of every camera as observation entries (``<name>.rgb``, ``<name>.depth``; see
    :func:`camera_features`)."""
    obs: dict[str, np.ndarray] = {}
    for name, cam in cameras.items():
        frame = cam.capture()
        obs[f"{name}.rgb"], obs[f"{name}.depth"] = frame["rgb"], frame["depth"]
    return obs


class RobotNotConnectedError(RuntimeError):
    """Raised when a robot is used before ``connect()`` or after ``disconnect()``."""


class FeatureNotSupportedError(ValueError):
    """Raised when code needs a feature group the robot does not have (e.g. a gripper helper on a hand)."""


class Robot(abc.ABC):
    """A robot (arm state, optionally arm joints, one optional end effector) with optional cameras.

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
        """Arm joint positions (n,) in rad of the home configuration.

        Raises:
            FeatureNotSupportedError: the robot has no arm joints (``joints.pos``).
        """
        self.require_observation("joints.pos", "home_joints")
        raise NotImplementedError(f"{type(self).__name__} does not define home_joints")

    @property
    def gripper_max_width(self) -> float:
        """Widest opening of the parallel gripper in m (0.08 unless the backend says otherwise).

        Raises:
            FeatureNotSupportedError: the robot has no parallel gripper (``gripper.width``).
        """
        self.require_action("gripper.width", "gripper_max_width")
        return 0.08

    @property
    def home_hand_joints(self) -> np.ndarray:
        """Finger joint positions (J,) in rad of the hand's home (open) pose.

        Raises:
            FeatureNotSupportedError: the robot has no dexterous hand (``hand.joints.pos``).
        """
        self.require_observation("hand.joints.pos", "home_hand_joints")
        raise NotImplementedError(f"{type(self).__name__} does not define home_hand_joints")

    @property
    def hand_joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Finger joint (lower (J,), upper (J,)) limits in rad.

        Raises:
            FeatureNotSupportedError: the robot has no dexterous hand (``hand.joints.pos``).
        """
        self.require_observation("hand.joints.pos", "hand_joint_limits")
        raise NotImplementedError(f"{type(self).__name__} does not define hand_joint_limits")

    def require_action(self, key: str, use: str) -> None:
        """Raise :class:`FeatureNotSupportedError` naming ``use`` unless ``key`` is one of the action keys."""
        features = self.action_features
        if key not in features:
            raise FeatureNotSupportedError(
                f"{use} needs the action {key!r}, which robot {self.name!r} does not have; its actions: "
                f"{sorted(features)}"
            )

    def require_observation(self, key: str, use: str) -> None:
        """Raise :class:`FeatureNotSupportedError` naming ``use`` unless ``key`` is one of the observation keys."""
        features = self.observation_features
        if key not in features:
            raise FeatureNotSupportedError(
                f"{use} needs the observation {key!r}, which robot {self.name!r} does not have; its state: "
                f"{sorted(k for k in features if not k.endswith(('.rgb', '.depth')))}"
            )

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
        (:func:`~manipstack.envs.core.poses.unit_quaternion_pose`)."""
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
        """Open the end effector (gripper fully, hand to :attr:`home_hand_joints`), then move the arm joints to
        :attr:`home_joints` if the robot has them. A robot without arm joints that has a home pose (a floating
        hand) overrides this to move there too."""
        from manipstack.envs.robots.motion import move_hand_joints, move_to_joints  # built on this class

        actions = self.action_features
        if "gripper.width" in actions:
            self.send_action({"gripper.width": self.gripper_max_width})
        if "hand.joints.pos" in actions:
            move_hand_joints(self, self.home_hand_joints)
        if "joints.pos" in actions:
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

    @property
    def home_hand_joints(self) -> np.ndarray:
        return self.inner.home_hand_joints

    @property
    def hand_joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.hand_joint_limits

    def _connect(self) -> None:
        self.inner.connect()

    def _disconnect(self) -> None:
        self.inner.disconnect()

    def _get_observation(self) -> dict[str, np.ndarray]:
        return self.inner.get_observation()

    def _send_action(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.inner.send_action(action)


class Workcell(Protocol):
    """A simulated table with a robot that a task builds its scene in.

    ``world`` offers the :class:`~manipstack.envs.core.scene_protocol.SceneWorld` methods (an in-process
    :class:`~manipstack.envs.core.world.World`, or a digital twin's world served over the driver bridge) and
    ``robot`` is the robot in it, connected. :meth:`reset` empties the world to the table and the robot at home;
    :meth:`close` releases both.
    """

    world: SceneWorld
    robot: Robot

    def reset(self) -> None: ...

    def close(self) -> None: ...
