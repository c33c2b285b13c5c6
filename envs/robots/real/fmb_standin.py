"""A stand-in for FMB's ``franka_server``: its 18 HTTP routes with its request and answer shapes, over the
simulated Panda.

It lets the ``fmb-franka-http`` backend (and FMB's own client) run without the lab's hardware. Mirrored from
FMB's ``robot_infra/franka_server.py`` (see :mod:`manipstack.envs.robots.real.fmb_franka` for the protocol):

- every route is ``POST`` (another method gets 405, an unknown path 404, as from Flask); reads answer JSON,
  commands a short text; ``/pose`` takes ``{"arr": [x, y, z, qx, qy, qz, qw]}`` and a malformed body gets
  HTTP 500 (as FMB's unhandled assert / KeyError does; the twin also refuses non-finite poses, FMB does not);
- poses in the robot **base frame** (the sim world's Panda base at ``SimPandaConfig.base_position``);
- ``force`` / ``torque``: the *external* wrench the hand and fingers exert on their surroundings (sum over
  their contacts, taken about the TCP), in the TCP frame (the stiffness frame K of libfranka's
  ``K_F_ext_hat_K``) or, with ``force_base_frame``, the base frame: zero at rest with nothing touched, like
  libfranka's estimate with the hand's load compensated; contacts of other links are not included;
- ``vel`` = ``jacobian @ dq``, the zero Jacobian (6, 7) of the TCP in the base frame (numerical, from a
  kinematic copy of the arm); ``gripper`` the measured finger width in m;
- ``/open_gripper`` opens toward ``gripper_dist`` (FMB's ``--gripper_dist``; the simulated hand stops at its
  0.08 m), ``/close_gripper`` grasps toward 0.01 m;
- ``/jointreset`` blocks like FMB's: impedance off (1 s), error clearing (3 s), a joint controller to FMB's
  reset joints (1 s + up to 30 one-second checks for 0.01 rad), controller off (1 s), impedance back on (5 s):
  about 13 s at ``time_scale`` 1; tests scale every wait down. Overlapping resets are counted
  (:attr:`FmbStandinServer.overlapping_jointresets`: on FMB's server each launches another controller) and run
  one after the other here;
- ``/stopimp`` holds the arm and ignores ``/pose`` until ``/startimp`` (5 s); the impedance-mode routes are
  recorded only (:attr:`FmbStandinServer.modes`), they do not change the simulated gains.

Physics runs in its own thread in real time, like a real arm whose controller keeps tracking the last target
between requests. The HTTP server is threaded (like Flask's), so one client's long ``/jointreset`` or open
keep-alive connection never blocks another; each connection times out after ``request_timeout_s`` of
silence. Binds 127.0.0.1 on an ephemeral port by default; stdlib ``http.server`` only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from manipstack.envs.core.world import World
from manipstack.envs.robots.real.fmb_franka import (
    FMB_GRASP_WIDTH_M,
    FMB_OPEN_WIDTH_M,
    FMB_READ_ROUTES,
    FMB_RESET_JOINTS,
    FMB_ROUTE_REPLIES,
    FMB_STATE_SHAPES,
)
from manipstack.envs.robots.real.sim_twin import SimTwin, SimTwinConfig
from manipstack.envs.robots.sim.panda import ARM_JOINTS, TCP_LINK, SimPandaConfig

log = logging.getLogger(__name__)

HAND_LINKS = frozenset({7, 8, 9, 10, 11})
"""Links of the simulated Panda whose contacts make up the external wrench: flange, hand, fingers, TCP."""

FMB_ROUTES = frozenset({"getstate", *FMB_READ_ROUTES, *FMB_ROUTE_REPLIES})
"""All 18 routes of FMB's franka_server."""

MAX_BODY_BYTES = 1 << 16
"""Largest request body accepted (bytes); a /pose body is under 200."""


@dataclass(frozen=True)
class FmbStandinConfig:
    """The stand-in server: address, FMB's server flags, and how fast its fixed waits run."""

    host: str = "127.0.0.1"
    """Interface to bind (keep 127.0.0.1 unless you mean to expose it)."""
    port: int = 0
    """TCP port; 0 picks a free one (see FmbStandinServer.url). FMB's server uses 5000."""
    gripper_dist: float = FMB_OPEN_WIDTH_M
    """Width in m /open_gripper commands (FMB's --gripper_dist: 0.09, or 0.075 for multi-object tasks)."""
    force_base_frame: bool = False
    """Report force/torque in the base frame instead of the TCP frame (FMB's --force_base_frame)."""
    time_scale: float = 1.0
    """Factor on every fixed wait of FMB's server (controller start 5 s, stop 1 s, the reset's waits and its
    1 s checks): 1 mirrors FMB (/jointreset about 13 s); tests use less."""
    request_timeout_s: float = 10.0
    """A connection silent for this long (s) is closed, so an idle keep-alive client holds no thread."""
    start_joints: tuple[float, ...] = FMB_RESET_JOINTS
    """Arm joints in rad at start (FMB's reset joints: the state after a /jointreset)."""

    def __post_init__(self) -> None:
        if not 0 < self.gripper_dist <= 0.2:
            raise ValueError(f"gripper_dist must be in (0, 0.2] m, got {self.gripper_dist}")
        if not self.time_scale > 0 or not self.request_timeout_s > 0:
            raise ValueError(f"time_scale and request_timeout_s must be > 0, got {self.time_scale} and "
                             f"{self.request_timeout_s}")
        if len(self.start_joints) != len(ARM_JOINTS):
            raise ValueError(f"start_joints needs {len(ARM_JOINTS)} values in rad, got {len(self.start_joints)}")


class _Stopped(Exception):
    """The server is closing while a request waits."""


class FmbStandinServer:
    """FMB franka_server routes over a :class:`SimTwin` Panda.

    Args:
        config: address, FMB flags, time scale.
        panda: simulated arm settings (its ``home_joints`` default to ``config.start_joints``).
        overrides: fields of :class:`FmbStandinConfig` to replace (``FmbStandinServer(time_scale=0.1)``).

    Attributes:
        requests: ``(monotonic time s, route)`` of every request received, for tests.
        modes: ``clearerr`` / ``precision_mode`` / ``compliance_mode`` requests in order, for tests.
        overlapping_jointresets: /jointreset requests that arrived while another was running.
    """

    def __init__(self, config: FmbStandinConfig | None = None, panda: SimPandaConfig | None = None,
                 **overrides: Any) -> None:
        self.config = cfg = dataclasses.replace(config or FmbStandinConfig(), **overrides)
        panda = panda or SimPandaConfig(home_joints=cfg.start_joints)
        self.twin = SimTwin(SimTwinConfig(camera=False), panda)
        self.robot = self.twin.robot
        self.robot.connect()
        self._base_position = np.array(panda.base_position, dtype=float)  # base frame = world frame shifted
        self._kinematics = World(time_step=self.twin.world.time_step, gravity=0.0)
        self._kinematics.add_urdf(self.robot.name, "franka_panda/panda.urdf", panda.base_position, fixed=True)
        self.lock = threading.Lock()
        """Guards the simulation (physics thread and request threads)."""
        self.requests: list[tuple[float, str]] = []
        self.modes: list[str] = []
        self.overlapping_jointresets = 0
        self._impedance = True  # FMB's server starts the impedance controller before serving
        self._resetting = 0
        self._reset_lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._connections: set[socket.socket] = set()
        self._http = ThreadingHTTPServer((cfg.host, cfg.port), self._handler_class())
        self._http.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
            threading.Thread(target=self._physics_loop, daemon=True),
        ]

    @property
    def address(self) -> tuple[str, int]:
        """Bound (host, port)."""
        host, port = self._http.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    @property
    def resetting(self) -> bool:
        """True while a /jointreset runs."""
        return self._resetting > 0

    def start(self) -> FmbStandinServer:
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        """Stop serving (waiting requests are answered 503), drop open connections, release the simulation;
        safe to call more than once."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._threads[0].is_alive():
            self._http.shutdown()
        self._http.server_close()
        with self.lock:
            for connection in list(self._connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=2.0)
        with self.lock:
            self._closed = True
            self._kinematics.close()
            self.twin.close()

    def __enter__(self) -> FmbStandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- simulation
    def _physics_loop(self) -> None:
        """Step physics at real time, one world step per ``time_step`` s of wall clock (bounded catch-up)."""
        world = self.twin.world
        next_time = time.monotonic()
        while not self._stop.is_set():
            next_time += world.time_step
            with self.lock:
                world.step()
            delay = next_time - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.1:  # fell far behind (e.g. a long IK); do not try to catch up in a burst
                next_time = time.monotonic()

    def _wait(self, fmb_seconds: float) -> None:
        """Wait one of FMB's fixed waits (s at time_scale 1); raises _Stopped if the server closes meanwhile."""
        if self._stop.wait(fmb_seconds * self.config.time_scale):
            raise _Stopped

    def _tcp_jacobian(self, joints: np.ndarray) -> np.ndarray:
        """Zero Jacobian (6, 7) of the TCP at ``joints`` (rad): rows vx vy vz (m/s) and wx wy wz (rad/s) per
        rad/s of each joint, base frame (= world axes here), by central differences on the kinematic copy."""
        step = 1e-6
        jacobian = np.zeros((6, len(ARM_JOINTS)))
        for j in range(len(ARM_JOINTS)):
            poses = []
            for sign in (1.0, -1.0):
                perturbed = np.array(joints, dtype=float)
                perturbed[j] += sign * step
                self._kinematics.reset_joints(self.robot.name, ARM_JOINTS, perturbed)
                poses.append(self._kinematics.link_pose(self.robot.name, TCP_LINK))
            (p_plus, q_plus), (p_minus, q_minus) = poses
            jacobian[:3, j] = (p_plus - p_minus) / (2 * step)
            jacobian[3:, j] = (Rotation.from_quat(q_plus) * Rotation.from_quat(q_minus).inv()).as_rotvec() / (2 * step)
        return jacobian

    def _external_wrench(self, tcp_position: np.ndarray, tcp_quat: np.ndarray) -> np.ndarray:
        """Wrench (6,) N, N m the hand exerts on what it touches, about the TCP, in the TCP (or base) frame."""
        force, torque = np.zeros(3), np.zeros(3)
        for contact in self.twin.world.contact_points(self.robot.name):
            if contact[3] not in HAND_LINKS:
                continue
            # PyBullet: force on body A (the arm) = normal force along the normal from B to A plus friction.
            on_arm = contact[9] * np.asarray(contact[7]) + contact[10] * np.asarray(contact[11]) \
                + contact[12] * np.asarray(contact[13])
            by_arm = -on_arm  # libfranka's sign: what the robot applies to its environment is positive
            force += by_arm
            torque += np.cross(np.asarray(contact[5]) - tcp_position, by_arm)
        if self.config.force_base_frame:
            return np.concatenate([force, torque])
        to_tcp = Rotation.from_quat(tcp_quat).inv()
        return np.concatenate([to_tcp.apply(force), to_tcp.apply(torque)])

    def _state(self) -> dict[str, Any]:
        """FMB's /getstate values (base frame), read under the lock."""
        obs = self.robot.get_observation()
        position, quat = obs["tcp.pose"][:3], obs["tcp.pose"][3:]
        jacobian = self._tcp_jacobian(obs["joints.pos"])
        wrench = self._external_wrench(position, quat)
        state = {
            "pose": [*(position - self._base_position), *quat],
            "vel": jacobian @ obs["joints.vel"],
            "force": wrench[:3],
            "torque": wrench[3:],
            "q": obs["joints.pos"],
            "dq": obs["joints.vel"],
            "jacobian": jacobian,
            "gripper": float(obs["gripper.width"]),
        }
        assert set(state) == set(FMB_STATE_SHAPES)
        return {key: np.asarray(value, dtype=float).tolist() for key, value in state.items()}

    def _hold(self, joints: np.ndarray | None = None) -> None:
        """Arm joint targets := ``joints`` (rad), default the measured joints (a controller holding still)."""
        state = self.robot.controller_state()
        state["joints"] = self.robot.get_observation()["joints.pos"] if joints is None else np.asarray(joints)
        self.robot.set_controller_state(state)

    def _gripper(self, width_m: float) -> None:
        state = self.robot.controller_state()
        state["gripper"] = np.array(min(width_m, self.robot.gripper_max_width))
        self.robot.set_controller_state(state)

    def _move(self, body: Any) -> tuple[int, str]:
        """FMB's /pose: set the impedance controller's equilibrium (base frame) -> IK joint targets."""
        arr = body.get("arr") if isinstance(body, dict) else None
        try:
            pose = np.asarray(arr, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            pose = np.zeros(0)
        if pose.shape != (7,) or not np.all(np.isfinite(pose)) or np.linalg.norm(pose[3:]) < 1e-6:
            return HTTPStatus.INTERNAL_SERVER_ERROR, "expected JSON {'arr': [x, y, z, qx, qy, qz, qw]} (finite)"
        with self.lock:
            if self._impedance:  # without a controller nobody listens to the equilibrium topic
                joints = self.robot.solve_ik(pose[:3] + self._base_position, pose[3:] / np.linalg.norm(pose[3:]))
                self._hold(joints)
        return HTTPStatus.OK, FMB_ROUTE_REPLIES["pose"]

    def _stop_impedance(self) -> None:
        with self.lock:
            self._impedance = False
            self._hold()
        self._wait(1.0)

    def _start_impedance(self) -> None:
        self._wait(5.0)  # roslaunch of the impedance controller
        with self.lock:
            self._hold()  # equilibrium = where the arm is
            self._impedance = True

    def _joint_reset(self) -> None:
        """FMB's reset_joint sequence with its waits (scaled), see the module docstring."""
        with self.lock:
            if self._resetting:
                self.overlapping_jointresets += 1
                log.warning("overlapping /jointreset: on FMB's server this launches another joint controller")
            self._resetting += 1
        try:
            with self._reset_lock:
                self._stop_impedance()
                self._wait(3.0)
                target = np.array(FMB_RESET_JOINTS)
                with self.lock:
                    self._hold(target)  # the joint controller
                self._wait(2.0)
                for _ in range(31):  # FMB checks once a second and gives up after 30 s
                    with self.lock:
                        joints = self.robot.get_observation()["joints.pos"]
                    if np.allclose(target - joints, 0.0, atol=1e-2, rtol=1e-2):
                        break
                    self._wait(1.0)
                else:
                    log.warning("joint reset TIMEOUT (as FMB's server, it goes on)")
                with self.lock:
                    self._hold()  # joint controller stopped
                self._wait(1.0)
                self._start_impedance()
        finally:
            with self.lock:
                self._resetting -= 1

    def _route(self, route: str, body: Any) -> tuple[int, Any]:
        """Serve one route; returns (HTTP status, JSON-able body or text)."""
        if route == "getstate":
            with self.lock:
                return HTTPStatus.OK, self._state()
        if route in FMB_READ_ROUTES:
            key = FMB_READ_ROUTES[route]
            with self.lock:
                return HTTPStatus.OK, {key: self._state()[key]}
        if route == "pose":
            return self._move(body)
        if route in ("open_gripper", "close_gripper"):
            with self.lock:
                self._gripper(self.config.gripper_dist if route == "open_gripper" else FMB_GRASP_WIDTH_M)
        elif route == "jointreset":
            self._joint_reset()
        elif route == "startimp":
            self._start_impedance()
        elif route == "stopimp":
            self._stop_impedance()
        elif route in ("clearerr", "precision_mode", "compliance_mode"):
            with self.lock:
                self.modes.append(route)
        else:
            return HTTPStatus.NOT_FOUND, f"no route /{route} on FMB's franka_server"
        return HTTPStatus.OK, FMB_ROUTE_REPLIES[route]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Flask's threaded server with requests.Session
            timeout = server.config.request_timeout_s  # socket timeout: silent connections are closed

            def setup(self) -> None:
                super().setup()
                # headers and body go out as two writes: without this, Nagle + delayed ACK add 40 ms per answer
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with server.lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with server.lock:
                        server._connections.discard(self.connection)

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                route = self.path.split("?", 1)[0].strip("/")
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY_BYTES:
                    self.close_connection = True
                    self._reply(HTTPStatus.BAD_REQUEST, f"Content-Length must be 0..{MAX_BODY_BYTES}")
                    return
                raw = self.rfile.read(length) if length else b""
                with server.lock:
                    server.requests.append((time.monotonic(), route))
                    closed = server._closed
                if closed or server._stop.is_set():
                    self.close_connection = True
                    self._reply(HTTPStatus.SERVICE_UNAVAILABLE, "stand-in is shutting down")
                    return
                try:
                    body = json.loads(raw) if raw and route == "pose" else None
                except (json.JSONDecodeError, UnicodeDecodeError):
                    body = None  # /pose answers 500 below, like FMB's request.json["arr"]
                try:
                    status, payload = server._route(route, body)
                except _Stopped:
                    self.close_connection = True
                    status, payload = HTTPStatus.SERVICE_UNAVAILABLE, "stand-in is shutting down"
                except Exception as err:  # an answer in every case, like Flask's 500 page
                    log.exception("fmb stand-in: /%s failed", route)
                    status, payload = HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(err).__name__}: {err}"
                self._reply(status, payload)

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                if self.path.split("?", 1)[0].strip("/") in FMB_ROUTES:
                    self._reply(HTTPStatus.METHOD_NOT_ALLOWED, "FMB's franka_server routes take POST only")
                else:
                    self._reply(HTTPStatus.NOT_FOUND, "no such route on FMB's franka_server")

            def _reply(self, status: int, payload: Any) -> None:
                is_json = not isinstance(payload, str)
                data = (json.dumps(payload) if is_json else payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json" if is_json else "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client went away
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
                log.debug("fmb stand-in: " + format, *args)

        return Handler
