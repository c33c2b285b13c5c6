"""A stand-in for FMB's ``franka_server``: the same HTTP routes, served over the simulated Panda.

It lets the ``fmb-franka-http`` backend (and anything built on it) run without the lab's hardware. Physics
runs in its own thread in real time, like a real arm whose impedance controller keeps tracking the last
target between requests. Binds 127.0.0.1 on an ephemeral port by default; stdlib ``http.server`` only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import numpy as np

from manipstack.envs.robots.motion import move_to_joints
from manipstack.envs.robots.real.sim_twin import SimTwin, SimTwinConfig
from manipstack.envs.robots.sim.panda import SimPandaConfig

log = logging.getLogger(__name__)


class FmbStandinServer:
    """FMB franka_server routes over a :class:`SimTwin` Panda.

    Args:
        host: interface to bind (keep 127.0.0.1 unless you mean to expose it).
        port: TCP port; 0 picks a free one (see :attr:`url`).
        panda: simulated arm settings.

    Attributes:
        requests: ``(monotonic time s, route)`` of every request served, for tests.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, panda: SimPandaConfig | None = None) -> None:
        self.twin = SimTwin(SimTwinConfig(camera=False), panda)
        self.robot = self.twin.robot
        self.robot.connect()
        self.lock = threading.Lock()
        self.requests: list[tuple[float, str]] = []
        self.modes: list[str] = []
        self._stop = threading.Event()
        self._http = HTTPServer((host, port), self._handler_class())
        self._threads = [
            threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
            threading.Thread(target=self._physics_loop, daemon=True),
        ]

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FmbStandinServer:
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the simulation; safe to call more than once."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._http.shutdown()
        self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=2.0)
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

    def _state(self) -> dict[str, Any]:
        obs = self.robot.get_observation()
        return {
            "pose": obs["tcp.pose"].tolist(),
            "q": obs["joints.pos"].tolist(),
            "dq": obs["joints.vel"].tolist(),
            "force": obs["wrench"][:3].tolist(),
            "torque": obs["wrench"][3:].tolist(),
            "gripper_pos": float(obs["gripper.width"]),
        }

    def _set_targets(self, joints: np.ndarray | None = None, gripper_width: float | None = None) -> None:
        state = self.robot.controller_state()
        if joints is not None:
            state["joints"] = joints
        if gripper_width is not None:
            state["gripper"] = np.array(gripper_width)
        self.robot.set_controller_state(state)

    def _route(self, route: str, body: Any) -> tuple[int, Any]:
        """Serve one route under the simulation lock; returns (HTTP status, JSON-able body or text)."""
        if route == "getstate":
            return HTTPStatus.OK, self._state()
        if route == "pose":
            arr = np.asarray(body.get("arr") if isinstance(body, dict) else None, dtype=float).reshape(-1)
            if arr.shape != (7,) or not np.all(np.isfinite(arr)):
                return HTTPStatus.BAD_REQUEST, "expected {'arr': [x, y, z, qx, qy, qz, qw]}"
            self._set_targets(joints=self.robot.solve_ik(arr[:3], arr[3:] / np.linalg.norm(arr[3:])))
            return HTTPStatus.OK, "Moved"
        if route == "open_gripper":
            self._set_targets(gripper_width=self.robot.gripper_max_width)
            return HTTPStatus.OK, "Opened"
        if route == "close_gripper":
            self._set_targets(gripper_width=0.0)
            return HTTPStatus.OK, "Closed"
        if route == "jointreset":
            move_to_joints(self.robot, self.robot.home_joints)
            return HTTPStatus.OK, "Reset Joint"
        if route in ("clearerr", "precision_mode", "compliance_mode"):
            self.modes.append(route)
            return HTTPStatus.OK, route
        return HTTPStatus.NOT_FOUND, f"no route /{route}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as with Flask behind requests.Session

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                route = self.path.strip("/")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    self._reply(HTTPStatus.BAD_REQUEST, "body is not JSON")
                    return
                with server.lock:
                    server.requests.append((time.monotonic(), route))
                    status, payload = server._route(route, body)
                self._reply(status, payload)

            def _reply(self, status: int, payload: Any) -> None:
                is_json = not isinstance(payload, str)
                data = (json.dumps(payload) if is_json else payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if is_json else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
                log.debug("fmb stand-in: " + format, *args)

        return Handler
