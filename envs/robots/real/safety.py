"""The one place where commands to a robot are made safe: workspace box, joint limits (arm and hand), step and
speed limits, NaN/inf/shape rejection, and a heartbeat watchdog that halts motion when the client goes silent.

:class:`SafetyLayer` wraps any backend behind the robot contract and is what the bridge server drives, so
every command from the network passes through it. It checks the feature groups the backend has (arm joints,
parallel gripper, dexterous hand; see :mod:`manipstack.envs.robots.base`). Frames and units: TCP positions in m
in the world frame of the wrapped backend's ``tcp.pose`` (a hardware backend places its robot base in that frame
by configuration, e.g. ``FmbFrankaConfig.base_pose_world``), joint positions in rad, gripper widths in m, times
in s.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from manipstack.envs.core.poses import rotation_angle_between
from manipstack.envs.robots.base import Feature, Robot, RobotWrapper
from manipstack.envs.robots.motion import hold_action

log = logging.getLogger(__name__)

# Franka Emika Panda joint limits from the manufacturer's datasheet, rad.
PANDA_JOINT_LOWER = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
PANDA_JOINT_UPPER = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)


class SafetyViolationError(ValueError):
    """A command outside the configured bounds, refused because ``on_violation="refuse"``."""


@dataclass(frozen=True)
class SafetyConfig:
    """Limits the driver side enforces on every command, whatever the backend."""

    workspace_min: tuple[float, float, float] = (-0.45, -0.45, 0.005)
    """Lower corner (x, y, z) of the box the TCP target must stay in, m, world frame (table top z = 0) as the
    backend reports ``tcp.pose`` in it."""
    workspace_max: tuple[float, float, float] = (0.35, 0.45, 0.6)
    """Upper corner (x, y, z) of the TCP workspace box, m, world frame."""
    joint_lower: tuple[float, ...] = PANDA_JOINT_LOWER
    """Lower arm joint limits, rad (default: Franka Panda datasheet); unused for a robot without arm joints (a
    floating hand). A dexterous hand's finger joints are limited by the backend's ``hand_joint_limits``."""
    joint_upper: tuple[float, ...] = PANDA_JOINT_UPPER
    """Upper arm joint limits, rad (default: Franka Panda datasheet)."""
    on_violation: Literal["clamp", "refuse"] = "clamp"
    """What a TCP target outside the workspace or a joint target outside the limits gets: clamped onto the
    bound (logged) or refused with SafetyViolationError (the arm does not move). Step and speed limits always
    clamp."""
    max_relative_target_m: float = 0.1
    """Largest distance in m a TCP position target may lead the measured TCP position (LeRobot's
    max_relative_target, in Cartesian space)."""
    max_relative_target_rad: float = 0.35
    """Largest difference in rad between a joint target (arm or hand) and the measured joint position, and
    between a TCP orientation target and the measured orientation."""
    max_cartesian_speed_mps: float = 0.5
    """Largest commanded TCP speed in m/s: the TCP target moves at most this times the control period per
    command."""
    allow_joint_commands: bool = True
    """Accept ``joints.pos`` actions. The workspace box constrains TCP targets only, so set this to False
    on hardware to force every arm command through the box."""
    watchdog_timeout_s: float = 0.1
    """Client silence in s after which the bridge server halts the robot (hold position, gripper unchanged, hand
    fingers held where they are)."""
    halt_max_periods: int = 48
    """Control periods the halt may take to bring the arm to rest (bounded wait)."""
    halt_velocity_tol_radps: float = 0.01
    """Joint speed in rad/s (arm and hand joints) under which the robot counts as halted."""

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.workspace_min, float), np.asarray(self.workspace_max, float)
        if lo.shape != (3,) or hi.shape != (3,) or np.any(lo >= hi):
            raise ValueError(f"workspace_min must be 3 values below workspace_max, got {lo} and {hi}")
        jl, ju = np.asarray(self.joint_lower, float), np.asarray(self.joint_upper, float)
        if jl.shape != ju.shape or np.any(jl >= ju):
            raise ValueError(f"joint_lower must be below joint_upper element-wise, got {jl} and {ju}")
        if self.on_violation not in ("clamp", "refuse"):
            raise ValueError(f"on_violation must be one of {{'clamp', 'refuse'}}, got {self.on_violation!r}")
        for name in ("max_relative_target_m", "max_relative_target_rad", "max_cartesian_speed_mps",
                     "watchdog_timeout_s", "halt_velocity_tol_radps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.halt_max_periods < 1:
            raise ValueError(f"halt_max_periods must be >= 1, got {self.halt_max_periods}")


@dataclass(frozen=True)
class ClampEvent:
    """One clamp: which action key, why, and the value before and after (units of that key)."""

    key: str
    reason: str
    before: np.ndarray
    after: np.ndarray


class Watchdog:
    """Heartbeat deadline: :meth:`expired` turns true when :meth:`feed` was not called for ``timeout_s`` s.

    Disarmed until the first feed; :meth:`disarm` stops it again (no client to watch).
    """

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self._clock = clock
        self._last_fed: float | None = None

    def feed(self, now: float | None = None) -> None:
        """Record a sign of life at ``now`` (default: the clock's current time, s)."""
        self._last_fed = self._clock() if now is None else now

    def disarm(self) -> None:
        self._last_fed = None

    def expired(self, now: float | None = None) -> bool:
        """True if armed and silent for longer than the timeout."""
        if self._last_fed is None:
            return False
        return (self._clock() if now is None else now) - self._last_fed > self.timeout_s


class SafetyLayer(RobotWrapper):
    """A backend wrapped so that every action is checked, clamped or refused, and logged.

    Checks, in order, for each ``send_action``: keys, shapes and finiteness (``ValueError``); joint
    commands allowed; TCP target inside the workspace box; TCP target within ``max_relative_target_m`` /
    ``_rad`` of the measured pose and within ``max_cartesian_speed_mps`` of the previous target; joint
    targets within the limits and within ``max_relative_target_rad`` of the measured joints; gripper width
    within ``[0, gripper_max_width]``; hand joint targets within the backend's ``hand_joint_limits`` and within
    ``max_relative_target_rad`` of the measured hand joints (clamped, or refused with ``on_violation="refuse"``
    when outside the limits). Arm joint limits are checked only on a backend with arm joints. The box comes
    before the step limits, so clamping onto the box never moves a target further than the step limits allow:
    with the arm measured inside the box the target ends inside it (the box is convex), and an arm measured
    outside is led back at most one step per command.

    Args:
        backend: the robot to protect; connected and disconnected with this layer.
        config: the limits.
    """

    def __init__(self, backend: Robot, config: SafetyConfig | None = None) -> None:
        super().__init__(backend)
        self.config = config or SafetyConfig()
        self.name = f"safe-{backend.name}"
        self.clamp_events: deque[ClampEvent] = deque(maxlen=1000)
        self.clamp_count = 0
        self._previous_target: np.ndarray | None = None
        self._lo = np.asarray(self.config.workspace_min, float)
        self._hi = np.asarray(self.config.workspace_max, float)
        self._joint_lo = np.asarray(self.config.joint_lower, float)
        self._joint_hi = np.asarray(self.config.joint_upper, float)
        self._hand_limits: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def backend(self) -> Robot:
        """The protected robot (the wrapper's ``inner``)."""
        return self.inner

    # -------------------------------------------------------------- contract passthrough
    @property
    def action_features(self) -> dict[str, Feature]:
        features = dict(self.backend.action_features)
        if not self.config.allow_joint_commands:
            features.pop("joints.pos", None)
        return features

    def _connect(self) -> None:
        self.backend.connect()
        features = self.backend.observation_features
        if "joints.pos" in features and features["joints.pos"].shape != self._joint_lo.shape:
            raise ValueError(
                f"safety joint limits have {len(self._joint_lo)} entries but {self.backend.name} has "
                f"joints of shape {features['joints.pos'].shape}"
            )
        if "hand.joints.pos" in self.backend.action_features:
            lower, upper = (np.asarray(limit, float) for limit in self.backend.hand_joint_limits)
            shape = self.backend.action_features["hand.joints.pos"].shape
            if lower.shape != shape or upper.shape != shape or np.any(lower > upper):
                raise ValueError(f"{self.backend.name} reports hand joint limits {lower} .. {upper} that do not fit "
                                 f"its hand.joints.pos of shape {shape}")
            self._hand_limits = (lower, upper)
        self._previous_target = None

    def home(self) -> None:
        """The backend's own homing motion (a configured, known-safe trajectory)."""
        self._require_connected()
        self.backend.home()
        self._previous_target = None

    # -------------------------------------------------------------- clamping
    def _record(self, key: str, reason: str, before: np.ndarray, after: np.ndarray) -> None:
        event = ClampEvent(key, reason, np.array(before, copy=True), np.array(after, copy=True))
        self.clamp_events.append(event)
        self.clamp_count += 1
        log.warning("safety clamp of %s (%s): %s -> %s", key, reason,
                    np.round(event.before, 5).tolist(), np.round(event.after, 5).tolist())

    def _clamp_pose(self, pose7: np.ndarray, measured7: np.ndarray) -> np.ndarray:
        cfg = self.config
        position, quat = pose7[:3].copy(), pose7[3:].copy()
        inside = np.clip(position, self._lo, self._hi)
        if not np.array_equal(inside, position):
            if cfg.on_violation == "refuse":
                raise SafetyViolationError(
                    f"tcp.pose position {np.round(position, 4).tolist()} m is outside the workspace box "
                    f"{self._lo.tolist()} .. {self._hi.tolist()}"
                )
            # The box comes first: the step and speed limits below then also bound the move onto the box, so
            # an arm measured outside the box (a box in the wrong frame, a push) is led back gradually.
            self._record("tcp.pose", "workspace box", position, inside)
            position = inside
        lead = position - measured7[:3]
        if np.linalg.norm(lead) > cfg.max_relative_target_m:
            clamped = measured7[:3] + lead * cfg.max_relative_target_m / np.linalg.norm(lead)
            self._record("tcp.pose", "max_relative_target_m", position, clamped)
            position = clamped
        previous = measured7[:3] if self._previous_target is None else self._previous_target
        max_step = cfg.max_cartesian_speed_mps * self.control_period_s
        step = position - previous
        if np.linalg.norm(step) > max_step:
            clamped = previous + step * max_step / np.linalg.norm(step)
            self._record("tcp.pose", "max_cartesian_speed_mps", position, clamped)
            position = clamped
        angle = rotation_angle_between(measured7[3:], quat)
        if angle > cfg.max_relative_target_rad:
            slerp = Slerp([0.0, 1.0], Rotation.from_quat(np.stack([measured7[3:], quat])))
            clamped = slerp([cfg.max_relative_target_rad / angle]).as_quat()[0]
            self._record("tcp.pose", "max_relative_target_rad (orientation)", quat, clamped)
            quat = clamped
        self._previous_target = position.copy()
        return np.concatenate([position, quat])

    def _clamp_joints(self, joints: np.ndarray, measured: np.ndarray, key: str = "joints.pos",
                      limits: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Joint targets (rad) of action ``key`` within ``limits`` (default: the arm's) and within
        ``max_relative_target_rad`` of the measured joints."""
        cfg = self.config
        lo, hi = (self._joint_lo, self._joint_hi) if limits is None else limits
        limited = np.clip(joints, lo, hi)
        if not np.array_equal(limited, joints):
            if cfg.on_violation == "refuse":
                raise SafetyViolationError(
                    f"{key} {np.round(joints, 4).tolist()} rad is outside the joint limits "
                    f"{lo.tolist()} .. {hi.tolist()}"
                )
            self._record(key, "joint limits", joints, limited)
        near = np.clip(limited, measured - cfg.max_relative_target_rad, measured + cfg.max_relative_target_rad)
        near = np.clip(near, lo, hi)
        if not np.array_equal(near, limited):
            self._record(key, "max_relative_target_rad", limited, near)
        return near

    def _send_action(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "joints.pos" in action and not self.config.allow_joint_commands:
            raise SafetyViolationError("joints.pos commands are disabled (allow_joint_commands=False)")
        safe = dict(action)
        if "tcp.pose" in action or "joints.pos" in action or "hand.joints.pos" in action:
            measured = self.backend.get_observation()
            if "hand.joints.pos" in action:  # first: a refusal leaves the TCP target history as it was
                safe["hand.joints.pos"] = self._clamp_joints(action["hand.joints.pos"], measured["hand.joints.pos"],
                                                             "hand.joints.pos", self._hand_limits)
            if "tcp.pose" in action:
                safe["tcp.pose"] = self._clamp_pose(action["tcp.pose"], measured["tcp.pose"])
            elif "joints.pos" in action:
                safe["joints.pos"] = self._clamp_joints(action["joints.pos"], measured["joints.pos"])
                self._previous_target = None
        if "gripper.width" in action:
            width = np.clip(action["gripper.width"], 0.0, self.gripper_max_width)
            if width != action["gripper.width"]:
                self._record("gripper.width", "gripper range", action["gripper.width"], width)
            safe["gripper.width"] = width
        return self.backend.send_action(safe)

    # -------------------------------------------------------------- halting
    def halt(self) -> float:
        """Stop the robot where it is: hold what it has as measured now (see
        :func:`~manipstack.envs.robots.motion.hold_action`: the arm joints, or the TCP pose where joint commands
        are not available or there are no arm joints, plus a hand's finger joints) until its joints are still,
        leaving a gripper as it is.

        Returns:
            Largest joint speed (arm and hand joints) in rad/s measured at the end (bounded by
            ``halt_max_periods`` periods).
        """
        self._require_connected()
        measured = self.backend.get_observation()
        hold: dict[str, Any] = hold_action(self.backend, measured)
        self._previous_target = None
        speed = _joint_speed(measured)
        for _ in range(self.config.halt_max_periods):
            self.backend.send_action(hold)
            speed = _joint_speed(self.backend.get_observation())
            if speed < self.config.halt_velocity_tol_radps:
                break
        log.warning("robot halted: holding %s, max joint speed now %.4f rad/s", " + ".join(hold), speed)
        return speed


def _joint_speed(observation: dict[str, np.ndarray]) -> float:
    """Largest absolute joint speed in rad/s over the arm and hand joints an observation has (0 without any)."""
    speeds = [np.abs(observation[key]) for key in ("joints.vel", "hand.joints.vel") if key in observation]
    return float(max((np.max(s) for s in speeds if s.size), default=0.0))
