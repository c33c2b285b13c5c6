"""``fmb-franka-http``: a Franka Panda driven through the HTTP routes of FMB's ``franka_server``.

FMB (Luo et al. 2024) runs a Flask server next to the Franka controller: ``POST /pose`` with
``{"arr": [x, y, z, qx, qy, qz, qw]}`` sets the impedance controller's TCP target; ``POST /getstate`` returns
``pose`` (7,), ``q`` (7,), ``dq`` (7,), ``force`` (3,), ``torque`` (3,), ``gripper_pos`` (finger width, m);
``/open_gripper``, ``/close_gripper``, ``/jointreset``, ``/clearerr``, ``/precision_mode`` and
``/compliance_mode`` take no body. Every request has a timeout and is retried on connection failures.
The gripper is binary (open or closed), and FMB needs at least ``min_gripper_interval_s`` between gripper
commands, which :meth:`FmbFrankaHttp.send_action` waits out. One ``send_action`` covers one control period:
it sleeps for the rest of the period after sending (FMB runs at 10 Hz).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import requests

from manipstack.envs.core.poses import unit_quaternion_pose
from manipstack.envs.robots.base import Feature, Robot

log = logging.getLogger(__name__)


class RobotCommunicationError(ConnectionError):
    """The robot's HTTP server did not answer successfully after all retries."""


@dataclass(frozen=True)
class FmbFrankaConfig:
    """Connection to an FMB franka_server."""

    url: str = "http://127.0.0.1:5000"
    """Base URL of the franka_server (FMB's Flask default port is 5000)."""
    timeout_s: float = 1.0
    """Timeout of each HTTP request in s."""
    retries: int = 2
    """Extra attempts after a connection failure or timeout before giving up."""
    retry_backoff_s: float = 0.05
    """Pause in s before each retry."""
    control_period_s: float = 0.1
    """Duration of one send_action in s (FMB controls at 10 Hz)."""
    min_gripper_interval_s: float = 1.0
    """Least time in s between two gripper commands; FMB's gripper ignores faster toggling."""
    gripper_max_width: float = 0.08
    """Opening of the open gripper in m."""
    gripper_close_below_m: float = 0.04
    """A commanded gripper.width below this (m) closes the gripper, otherwise it opens."""
    home_joints: tuple[float, ...] = (0.0, 0.0, 0.0, -1.9, 0.0, 2.0, 0.0)
    """Joint configuration in rad that the server's /jointreset moves to (FMB's reset_joint_target)."""
    reset_timeout_s: float = 30.0
    """Longest wait in s for the arm to come to rest after /jointreset."""
    impedance_mode: Literal["keep", "precision", "compliance"] = "keep"
    """Impedance mode to select on connect: keep the server's, or POST /precision_mode or /compliance_mode."""

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
        for name in ("timeout_s", "control_period_s", "gripper_max_width", "reset_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.retries < 0 or self.min_gripper_interval_s < 0 or self.retry_backoff_s < 0:
            raise ValueError("retries, retry_backoff_s and min_gripper_interval_s must be >= 0")
        if not 0 < self.gripper_close_below_m < self.gripper_max_width:
            raise ValueError(f"gripper_close_below_m must be in (0, {self.gripper_max_width}) m")
        if self.impedance_mode not in ("keep", "precision", "compliance"):
            raise ValueError(f"impedance_mode must be one of {{'keep', 'precision', 'compliance'}}, "
                             f"got {self.impedance_mode!r}")


class FmbFrankaHttp(Robot):
    """Franka Panda behind FMB's franka_server (TCP pose control + binary gripper).

    Args:
        config: server URL, timeouts, pacing.
        overrides: fields of :class:`FmbFrankaConfig` to replace (``make_robot("fmb-franka-http", url=...)``).
    """

    name = "fmb-franka"

    def __init__(self, config: FmbFrankaConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        base = config or FmbFrankaConfig()
        self.config = dataclasses.replace(base, **overrides)
        self.control_period_s = self.config.control_period_s
        self._session: requests.Session | None = None
        self._gripper_closed: bool | None = None
        self._last_gripper_time = -np.inf

    @property
    def observation_features(self) -> dict[str, Feature]:
        n = len(self.config.home_joints)
        return {"tcp.pose": Feature((7,)), "joints.pos": Feature((n,)), "joints.vel": Feature((n,)),
                "gripper.width": Feature(()), "wrench": Feature((6,))}

    @property
    def action_features(self) -> dict[str, Feature]:
        return {"tcp.pose": Feature((7,)), "gripper.width": Feature(())}

    @property
    def home_joints(self) -> np.ndarray:
        return np.array(self.config.home_joints, dtype=float)

    @property
    def gripper_max_width(self) -> float:
        return self.config.gripper_max_width

    # -------------------------------------------------------------- HTTP
    def _post(self, route: str, body: dict[str, Any] | None = None) -> requests.Response:
        """POST to a franka_server route with timeout and retries; raises RobotCommunicationError on failure."""
        assert self._session is not None, "connect() opens the HTTP session"
        url = f"{self.config.url.rstrip('/')}/{route}"
        last_error: Exception | None = None
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(self.config.retry_backoff_s)
            try:
                response = self._session.post(url, json=body, timeout=self.config.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as err:
                last_error = err
                log.info("POST %s failed (attempt %d): %s", url, attempt + 1, err)
                continue
            if response.status_code != 200:
                raise RobotCommunicationError(f"POST {url} answered HTTP {response.status_code}: {response.text[:200]}")
            return response
        raise RobotCommunicationError(
            f"POST {url} failed after {self.config.retries + 1} attempts within {self.config.timeout_s} s each: "
            f"{last_error}; is the franka_server running and reachable?"
        )

    def _state(self) -> dict[str, Any]:
        response = self._post("getstate")
        try:
            state = response.json()
            return {key: np.asarray(state[key], dtype=float) for key in
                    ("pose", "q", "dq", "force", "torque", "gripper_pos")}
        except (ValueError, KeyError, TypeError) as err:
            raise RobotCommunicationError(
                f"/getstate returned an unexpected body ({err}): {response.text[:200]}"
            ) from None

    # -------------------------------------------------------------- contract
    def _connect(self) -> None:
        self._session = requests.Session()
        try:
            self._post("clearerr")
            if self.config.impedance_mode != "keep":
                self._post(f"{self.config.impedance_mode}_mode")
            self._state()
        except RobotCommunicationError:
            self._session.close()
            self._session = None
            raise
        self._gripper_closed = None

    def _disconnect(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _get_observation(self) -> dict[str, np.ndarray]:
        state = self._state()
        return {
            "tcp.pose": state["pose"],
            "joints.pos": state["q"],
            "joints.vel": state["dq"],
            "gripper.width": np.array(float(state["gripper_pos"])),
            "wrench": np.concatenate([state["force"], state["torque"]]),
        }

    def _send_action(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        start = time.monotonic()
        applied: dict[str, np.ndarray] = {}
        if "tcp.pose" in action:
            pose7 = unit_quaternion_pose(action["tcp.pose"])
            self._post("pose", {"arr": pose7.tolist()})
            applied["tcp.pose"] = pose7
        if "gripper.width" in action:
            close = float(action["gripper.width"]) < self.config.gripper_close_below_m
            if close != self._gripper_closed:
                wait = self._last_gripper_time + self.config.min_gripper_interval_s - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self._post("close_gripper" if close else "open_gripper")
                self._last_gripper_time = time.monotonic()
                self._gripper_closed = close
            applied["gripper.width"] = np.array(0.0 if close else self.config.gripper_max_width)
        remaining = self.control_period_s - (time.monotonic() - start)
        if remaining > 0:
            time.sleep(remaining)
        return applied

    def home(self) -> None:
        """POST /jointreset, open the gripper and wait (bounded) until the arm is still at ``home_joints``."""
        self._require_connected()
        self._post("jointreset")
        self.send_action({"gripper.width": self.gripper_max_width})
        deadline = time.monotonic() + self.config.reset_timeout_s
        while time.monotonic() < deadline:
            obs = self._get_observation()
            if np.max(np.abs(obs["joints.vel"])) < 0.01 and np.max(np.abs(obs["joints.pos"] - self.home_joints)) < 0.02:
                return
            time.sleep(self.control_period_s)
        raise RobotCommunicationError(f"arm did not reach home_joints within {self.config.reset_timeout_s} s")
