"""``fmb-franka-http``: a Franka Panda driven through the HTTP routes of FMB's ``franka_server``.

FMB (Luo et al. 2024, rail-berkeley/fmb, ``robot_infra/franka_server.py``) runs a Flask server (port 5000)
next to the Franka controller. Every route is ``POST``. What this backend relies on, as FMB's server
implements it (read from its source; see :data:`FMB_STATE_SHAPES` and :data:`FMB_ROUTE_REPLIES`):

- ``/getstate`` answers JSON ``{"pose", "vel", "force", "torque", "q", "dq", "jacobian", "gripper"}``:
  ``pose`` (7,) TCP ``[x, y, z, qx, qy, qz, qw]`` in m in the robot **base frame** (libfranka's ``O_T_EE``,
  scipy quaternion order); ``vel`` (6,) TCP twist ``jacobian @ dq`` (m/s, rad/s, base frame); ``force`` (3,) N
  and ``torque`` (3,) N m, libfranka's *estimated external* wrench in the stiffness frame K (the EE frame; the
  base frame if the server runs with ``--force_base_frame``); ``q`` / ``dq`` (7,) rad, rad/s; ``jacobian``
  (6, 7) zero Jacobian (base frame); ``gripper`` () finger width in m (sum of both finger joints).
  ``/getpos`` ``/getvel`` ``/getforce`` ``/gettorque`` ``/getq`` ``/getdq`` ``/getjacobian`` ``/get_gripper``
  answer one of those keys each.
- ``/pose`` with JSON ``{"arr": [x, y, z, qx, qy, qz, qw]}`` (base frame) sets the equilibrium pose of the
  Cartesian impedance controller.
- ``/open_gripper`` moves the fingers to the server's ``--gripper_dist`` (0.09 m by default, 0.075 m for FMB's
  multi-object task); ``/close_gripper`` is a grasp to 0.01 m (130 N, any width accepted). FMB's client leaves at
  least 1 s between gripper commands: the Franka gripper freezes when toggled faster.
- ``/jointreset`` blocks until done (about 13 s, up to about 45 s): it stops the impedance controller, runs a
  joint controller to :data:`FMB_RESET_JOINTS`, waits (at most 30 s) for the joints, then restarts impedance
  control. It answers ``Reset Joint`` even when its own wait timed out, so :meth:`FmbFrankaHttp.home` checks the
  joints afterwards. A second request while one runs launches a second controller on the real arm.
- ``/clearerr``, ``/precision_mode``, ``/compliance_mode``, ``/startimp``, ``/stopimp`` take no body and answer
  a short text.

Frames: ``tcp.pose`` is reported in the world frame of the robot contract. The base's pose in that frame is
explicit configuration (:attr:`FmbFrankaConfig.base_pose_world`); its default puts the base where the
project's workcell (and the sim twin) has the Panda, 0.55 m behind the table centre, so FMB's base-frame
workspace (x 0.3..0.82 m, |y| <= 0.35 m, z 0.02..0.4 m) lies inside the default safety box. Identity reports
FMB's own base frame. The wrench is passed through as FMB reports it.

Reads (``/getstate``) are retried on connection failures and timeouts; commands never are (a command that
timed out may have been applied). A server answer that is not FMB's (missing key, wrong shape, non-finite,
HTTP error, no answer) raises one :class:`RobotCommunicationError` naming the route and the problem, before
anything is commanded from it. One ``send_action`` covers one control period: it sleeps for the rest of the
period after sending (FMB runs at 10 Hz).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import requests
from scipy.spatial.transform import Rotation

from manipstack.envs.core.poses import unit_quaternion_pose
from manipstack.envs.robots.base import Feature, Robot

log = logging.getLogger(__name__)

FMB_RESET_JOINTS = (-0.07, -0.1, 0.0, -2.5, -0.1, 2.5, -0.6)
"""Joint target in rad of FMB's ``/jointreset`` (its ``JOINT_RESET_TARGET``); the TCP ends near x = 0.5 m,
z = 0.2 m in the base frame, gripper pointing down."""

FMB_OPEN_WIDTH_M = 0.09
"""Width in m FMB's ``/open_gripper`` commands by default (its ``--gripper_dist``)."""

FMB_GRASP_WIDTH_M = 0.01
"""Width in m FMB's ``/close_gripper`` grasps toward (fixed in its server; the fingers stop on an object)."""

FMB_STATE_SHAPES: dict[str, tuple[int, ...]] = {
    "pose": (7,), "vel": (6,), "force": (3,), "torque": (3,), "q": (7,), "dq": (7,), "jacobian": (6, 7),
    "gripper": (),
}
"""Keys of FMB's ``/getstate`` answer and their shapes (units in the module docstring)."""

FMB_READ_ROUTES: dict[str, str] = {
    "getpos": "pose", "getvel": "vel", "getforce": "force", "gettorque": "torque", "getq": "q", "getdq": "dq",
    "getjacobian": "jacobian", "get_gripper": "gripper",
}
"""FMB's single-value read routes and the one key each answers (JSON ``{key: value}``)."""

FMB_ROUTE_REPLIES: dict[str, str] = {
    "startimp": "Started impedance", "stopimp": "Stopped impedance", "jointreset": "Reset Joint",
    "open_gripper": "Opened", "close_gripper": "Closed", "clearerr": "Clear", "pose": "Moved",
    "precision_mode": "Precision", "compliance_mode": "Compliance",
}
"""FMB's command routes and the text each answers on success."""

SIM_BASE_POSE_WORLD = (-0.55, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
"""Panda base pose in the project's workcell (``SimPandaConfig.base_position``, no rotation)."""


class RobotCommunicationError(ConnectionError):
    """The robot's HTTP server did not answer, answered an error, or answered something not in its protocol."""


class RobotAnswerError(RobotCommunicationError):
    """The robot's HTTP server answered, but with an HTTP error or a body outside its protocol."""


class RobotResetError(RuntimeError):
    """A joint reset did not bring the arm to its reset joints, or may still be running."""


@dataclass(frozen=True)
class FmbFrankaConfig:
    """Connection to an FMB franka_server."""

    url: str = "http://127.0.0.1:5000"
    """Base URL of the franka_server (FMB's Flask listens on port 5000)."""
    timeout_s: float = 1.0
    """Timeout in s of each HTTP request except /jointreset."""
    retries: int = 2
    """Extra attempts of a read (/getstate) after a connection failure or timeout. Commands are never retried."""
    retry_backoff_s: float = 0.05
    """Pause in s before each retry of a read."""
    jointreset_timeout_s: float = 50.0
    """Longest wait in s for /jointreset to answer (FMB's takes about 13 s, up to about 45 s when its joint
    controller times out). Sent once, never retried; after a timeout, home() refuses for as long again."""
    control_period_s: float = 0.1
    """Duration of one send_action in s (FMB controls at 10 Hz)."""
    min_gripper_interval_s: float = 1.0
    """Least time in s from the answer to one gripper command to the next command (FMB's client waits 1 s)."""
    gripper_open_width_m: float = FMB_OPEN_WIDTH_M
    """Width in m the server opens the gripper to: its --gripper_dist (0.09, or 0.075 for multi-object tasks)."""
    gripper_close_below_m: float = 0.05
    """A commanded gripper.width below this (m) closes the gripper (a grasp toward 0.01 m), otherwise it opens."""
    home_joints: tuple[float, ...] = FMB_RESET_JOINTS
    """Joint configuration in rad the server's /jointreset moves to (FMB's JOINT_RESET_TARGET)."""
    home_tolerance_rad: float = 0.03
    """Largest joint deviation in rad from home_joints that counts as a successful reset (FMB waits for 0.01)."""
    base_pose_world: tuple[float, ...] = SIM_BASE_POSE_WORLD
    """Robot base pose ``[x, y, z, qx, qy, qz, qw]`` (m) in the world frame tcp.pose is reported in. Default:
    the project's workcell placement (0.55 m behind the table centre); 0 0 0 0 0 0 1 gives FMB's base frame."""
    impedance_mode: Literal["keep", "precision", "compliance"] = "keep"
    """Impedance mode to select on connect: keep the server's, or POST /precision_mode or /compliance_mode."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        try:
            port_ok = parts.port is None or 0 < parts.port < 65536
        except ValueError:
            port_ok = False
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            raise ValueError(f"url must look like http://HOST:PORT (FMB's franka_server uses port 5000), "
                             f"got {self.url!r}")
        for name in ("timeout_s", "jointreset_timeout_s", "control_period_s", "gripper_open_width_m",
                     "home_tolerance_rad"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.retries < 0 or self.min_gripper_interval_s < 0 or self.retry_backoff_s < 0:
            raise ValueError("retries, retry_backoff_s and min_gripper_interval_s must be >= 0")
        if not FMB_GRASP_WIDTH_M < self.gripper_close_below_m < self.gripper_open_width_m:
            raise ValueError(f"gripper_close_below_m must lie between the grasp width {FMB_GRASP_WIDTH_M} m and "
                             f"gripper_open_width_m {self.gripper_open_width_m} m, got {self.gripper_close_below_m}")
        joints = np.asarray(self.home_joints, dtype=float)
        if joints.shape != (7,) or not np.all(np.isfinite(joints)):
            raise ValueError(f"home_joints needs 7 finite values in rad, got {self.home_joints}")
        base = np.asarray(self.base_pose_world, dtype=float)
        if base.shape != (7,) or not np.all(np.isfinite(base)) or abs(np.linalg.norm(base[3:]) - 1.0) > 1e-3:
            raise ValueError(f"base_pose_world must be 7 values x y z qx qy qz qw with a unit quaternion, "
                             f"got {self.base_pose_world}")
        if self.impedance_mode not in ("keep", "precision", "compliance"):
            raise ValueError(f"impedance_mode must be one of {{'keep', 'precision', 'compliance'}}, "
                             f"got {self.impedance_mode!r}")


def parse_fmb_values(body: Any, keys: tuple[str, ...], route: str) -> dict[str, np.ndarray]:
    """FMB state values from a decoded JSON answer, checked key by key.

    Args:
        body: the decoded JSON of an answer of ``/route``.
        keys: keys of :data:`FMB_STATE_SHAPES` the answer must hold.
        route: route name for error messages.

    Returns:
        key -> float array of the shape in :data:`FMB_STATE_SHAPES` (units as FMB sends them).

    Raises:
        RobotAnswerError: naming the route, the key and what is wrong with it.
    """
    if not isinstance(body, dict):
        raise RobotAnswerError(f"/{route} answered {type(body).__name__}, not FMB's JSON object with keys "
                                      f"{list(keys)}")
    missing = [key for key in keys if key not in body]
    if missing:
        raise RobotAnswerError(f"/{route} answer lacks FMB's keys {missing} (has {sorted(body)[:12]}): "
                                      f"is this FMB's franka_server?")
    values = {}
    for key in keys:
        shape = FMB_STATE_SHAPES[key]
        try:
            value = np.asarray(body[key], dtype=float)
        except (TypeError, ValueError):
            raise RobotAnswerError(f"/{route} key {key!r} is not numeric: {str(body[key])[:80]}") from None
        if value.shape != shape:
            raise RobotAnswerError(f"/{route} key {key!r} has shape {value.shape}, FMB sends {shape}")
        if not np.all(np.isfinite(value)):
            raise RobotAnswerError(f"/{route} key {key!r} holds NaN or inf: {value.tolist()}")
        values[key] = value
    if "pose" in values and not 0.9 < np.linalg.norm(values["pose"][3:]) < 1.1:
        raise RobotAnswerError(f"/{route} pose quaternion is not unit length: {values['pose'][3:].tolist()}")
    return values


class FmbFrankaHttp(Robot):
    """Franka Panda behind FMB's franka_server (TCP pose control + binary gripper).

    Args:
        config: server URL, timeouts, pacing, frames.
        clock: monotonic clock in s (tests inject one).
        sleep: sleep function taking s (tests inject one).
        overrides: fields of :class:`FmbFrankaConfig` to replace (``make_robot("fmb-franka-http", url=...)``).
    """

    name = "fmb-franka"

    def __init__(
        self,
        config: FmbFrankaConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        **overrides: Any,
    ) -> None:
        super().__init__()
        base = config or FmbFrankaConfig()
        self.config = dataclasses.replace(base, **overrides)
        self.control_period_s = self.config.control_period_s
        self._clock, self._sleep = clock, sleep
        self._session: requests.Session | None = None
        self._gripper_closed: bool | None = None
        self._last_gripper_time = -np.inf
        self._reset_busy_until = -np.inf
        pose = np.asarray(self.config.base_pose_world, dtype=float)
        self._base_position, self._base_rotation = pose[:3], Rotation.from_quat(pose[3:] / np.linalg.norm(pose[3:]))

    @property
    def observation_features(self) -> dict[str, Feature]:
        """Contract state keys plus FMB's ``tcp.vel`` (6,) m/s + rad/s and ``jacobian`` (6, 7), world frame."""
        return {"tcp.pose": Feature((7,)), "tcp.vel": Feature((6,)), "joints.pos": Feature((7,)),
                "joints.vel": Feature((7,)), "jacobian": Feature((6, 7)), "gripper.width": Feature(()),
                "wrench": Feature((6,))}

    @property
    def action_features(self) -> dict[str, Feature]:
        return {"tcp.pose": Feature((7,)), "gripper.width": Feature(())}

    @property
    def home_joints(self) -> np.ndarray:
        return np.array(self.config.home_joints, dtype=float)

    @property
    def gripper_max_width(self) -> float:
        return self.config.gripper_open_width_m

    # -------------------------------------------------------------- frames
    def world_from_base(self, pose7_base: np.ndarray) -> np.ndarray:
        """A TCP pose (7,) in the robot base frame (m, quaternion x y z w) expressed in the world frame."""
        position = self._base_position + self._base_rotation.apply(pose7_base[:3])
        quat = (self._base_rotation * Rotation.from_quat(pose7_base[3:])).as_quat()
        return np.concatenate([position, quat])

    def base_from_world(self, pose7_world: np.ndarray) -> np.ndarray:
        """A TCP pose (7,) in the world frame expressed in the robot base frame (what FMB's /pose takes)."""
        inverse = self._base_rotation.inv()
        position = inverse.apply(pose7_world[:3] - self._base_position)
        quat = (inverse * Rotation.from_quat(pose7_world[3:])).as_quat()
        return np.concatenate([position, quat])

    # -------------------------------------------------------------- HTTP
    def _post(self, route: str, body: dict[str, Any] | None = None, read: bool = False,
              timeout_s: float | None = None) -> requests.Response:
        """POST to a franka_server route; a read is retried, a command sent once.

        Raises:
            RobotCommunicationError: no answer within the timeout or no connection (after all attempts of a
                read); :class:`RobotAnswerError` for an HTTP status other than 200. The message names the route.
        """
        if self._session is None:
            raise RobotCommunicationError(f"/{route}: no HTTP session (connect() first)")
        url = f"{self.config.url.rstrip('/')}/{route}"
        timeout = self.config.timeout_s if timeout_s is None else timeout_s
        attempts = self.config.retries + 1 if read else 1
        last_error: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                self._sleep(self.config.retry_backoff_s)
            try:
                response = self._session.post(url, json=body, timeout=timeout)
            except (requests.ConnectionError, requests.Timeout) as err:
                last_error = err
                log.info("POST %s failed (attempt %d of %d): %s", url, attempt + 1, attempts, err)
                continue
            except requests.RequestException as err:  # malformed URL, bad redirect, ...: not worth a retry
                raise RobotCommunicationError(f"POST {url} failed: {err}") from None
            if response.status_code != 200:
                raise RobotAnswerError(f"POST {url} answered HTTP {response.status_code}: {response.text[:200]!r}")
            return response
        if isinstance(last_error, requests.ReadTimeout):
            reason = f"no answer within {timeout} s"
        else:
            reason = f"cannot connect ({type(last_error).__name__}: {str(last_error)[:160]})"
        sent = "" if read else "; commands are sent once, so it may or may not have been applied"
        raise RobotCommunicationError(
            f"POST {url} failed after {attempts} attempt(s): {reason}{sent}; is FMB's franka_server running "
            f"and reachable?"
        )

    def _json(self, response: requests.Response, route: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise RobotAnswerError(f"/{route} answered non-JSON {response.text[:120]!r}") from None

    def fmb_state(self) -> dict[str, np.ndarray]:
        """FMB's ``/getstate``, checked, as FMB sends it (base frame): keys of :data:`FMB_STATE_SHAPES`."""
        self._require_connected()
        return self._read_state()

    def _read_state(self) -> dict[str, np.ndarray]:
        return parse_fmb_values(self._json(self._post("getstate", read=True), "getstate"),
                                tuple(FMB_STATE_SHAPES), "getstate")

    # -------------------------------------------------------------- contract
    def _connect(self) -> None:
        self._session = requests.Session()
        try:
            self._post("clearerr")
            if self.config.impedance_mode != "keep":
                self._post(f"{self.config.impedance_mode}_mode")
            self._read_state()
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
        state = self._read_state()
        rotation = self._base_rotation.as_matrix()
        twist_rotation = np.kron(np.eye(2), rotation)  # block-diagonal (6, 6): linear and angular parts
        return {
            "tcp.pose": self.world_from_base(state["pose"]),
            "tcp.vel": twist_rotation @ state["vel"],
            "joints.pos": state["q"],
            "joints.vel": state["dq"],
            "jacobian": twist_rotation @ state["jacobian"],
            "gripper.width": np.array(float(state["gripper"])),
            "wrench": np.concatenate([state["force"], state["torque"]]),
        }

    def _send_action(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        start = self._clock()
        applied: dict[str, np.ndarray] = {}
        if "tcp.pose" in action:
            pose7 = unit_quaternion_pose(action["tcp.pose"])
            self._post("pose", {"arr": self.base_from_world(pose7).tolist()})
            applied["tcp.pose"] = pose7
        if "gripper.width" in action:
            close = float(action["gripper.width"]) < self.config.gripper_close_below_m
            if close != self._gripper_closed:
                wait = self._last_gripper_time + self.config.min_gripper_interval_s - self._clock()
                if wait > 0:
                    self._sleep(wait)
                self._gripper_closed = None  # unknown until the server has answered
                self._post("close_gripper" if close else "open_gripper")
                self._last_gripper_time = self._clock()
                self._gripper_closed = close
            applied["gripper.width"] = np.array(FMB_GRASP_WIDTH_M if close else self.config.gripper_open_width_m)
        remaining = self.control_period_s - (self._clock() - start)
        if remaining > 0:
            self._sleep(remaining)
        return applied

    def home(self) -> None:
        """Open the gripper, then one ``POST /jointreset`` (FMB's reset), then check the joints.

        The reset blocks on the server for about 13 s; it is sent once with ``jointreset_timeout_s`` and never
        retried. If it times out it may still be running, so home() refuses for another
        ``jointreset_timeout_s``.

        Raises:
            RobotResetError: an earlier reset may still run, or the arm is not at ``home_joints`` afterwards.
            RobotCommunicationError: the server did not answer /jointreset (in time) or answered an error.
        """
        self._require_connected()
        now = self._clock()
        if now < self._reset_busy_until:
            raise RobotResetError(
                f"an earlier /jointreset timed out and may still be running on the server; not sending another "
                f"for {self._reset_busy_until - now:.0f} s (check the arm and FMB's server log)")
        self.send_action({"gripper.width": self.gripper_max_width})
        try:
            self._post("jointreset", timeout_s=self.config.jointreset_timeout_s)
        except RobotAnswerError:
            raise  # answered (an error): the reset is over
        except RobotCommunicationError as err:  # no answer: it may still be switching controllers
            self._reset_busy_until = self._clock() + self.config.jointreset_timeout_s
            raise RobotCommunicationError(
                f"{err}. FMB's /jointreset may still be running, so it is not resent: home() refuses for "
                f"{self.config.jointreset_timeout_s} s") from None
        joints = self._read_state()["q"]
        deviation = np.abs(joints - self.home_joints)
        if np.max(deviation) > self.config.home_tolerance_rad:
            raise RobotResetError(
                f"/jointreset answered but joints {np.round(joints, 3).tolist()} rad are up to "
                f"{np.max(deviation):.3f} rad from home_joints {list(self.config.home_joints)} (tolerance "
                f"{self.config.home_tolerance_rad} rad): FMB's reset gives up after 30 s, or home_joints differ "
                f"from the server's reset target")
