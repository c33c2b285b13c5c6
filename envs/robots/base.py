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
much, a hardware backend paces itself to that rate. Motion helpers built on this contract alone live in
:mod:`manipstack.envs.robots.motion`, primitives on top of them in :mod:`manipstack.envs.robots.primitives`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from manipstack.envs.core.camera import Camera

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
        """Move the arm to its home configuration and open the gripper."""
        from manipstack.envs.robots.motion import move_to_joints  # the helpers are built on this class

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
