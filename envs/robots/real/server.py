"""The driver bridge server: ``manipstack bridge serve``, run next to the hardware (or as a sim digital twin).

It owns one backend wrapped in a :class:`~envs.robots.real.safety.SafetyLayer` and serves it over ZeroMQ with
CurveZMQ authentication and encryption (only client keys in ``KEYS/authorized/`` get in):

- command socket (ROUTER, ``--bind``): request/reply calls, see :mod:`envs.robots.real.protocol`;
- stream socket (PUB, ``--stream-bind``): camera frames at ``stream_hz``, so images never queue in
  front of command replies.

One client at a time holds the *session* (``hello``) and may move the robot; anyone authorised may call
``describe``, ``ping`` and ``get_observation`` (e.g. a monitoring client). Every message carrying the
session token feeds the heartbeat watchdog; after ``safety.watchdog_timeout_s`` of silence the robot is halted
(position held, gripper left as it is, a hand's fingers held) and the session ends, so a new client can take
over. A malformed message gets an error reply and changes nothing. ``describe`` reports the robot's features
and the properties of the feature groups it has (:data:`~envs.robots.real.protocol.DESCRIBED_PROPERTIES`), so
nothing here assumes an arm or a gripper.

With the ``sim`` backend the server is a digital twin running in lockstep: physics advances one control
period per ``send_action``, exactly as the in-process sim backend, so episodes are reproducible. Its workcell
is a registered one (``--twin.robot panda|floating-hand``); its scene can be built remotely through ``twin.*``
calls (data only, see :data:`SCENE_METHODS`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tyro
import zmq
from zmq.auth.thread import ThreadAuthenticator

from manipstack.envs.core.camera import Camera
from manipstack.envs.robots.base import Feature, FeatureNotSupportedError, Robot, camera_features
from manipstack.envs.robots.real.fmb_franka import FmbFrankaConfig, FmbFrankaHttp
from manipstack.envs.robots.real.keys import load_server_keys
from manipstack.envs.robots.real.protocol import (
    DESCRIBED_PROPERTIES,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    ProtocolError,
    SessionError,
    decode,
    encode,
    error_reply,
)
from manipstack.envs.robots.real.safety import SafetyConfig, SafetyLayer, Watchdog
from manipstack.envs.robots.real.sim_twin import SCENE_METHODS, SimTwin, SimTwinConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeConfig:
    """Serve a robot backend over the authenticated, encrypted driver bridge."""

    keys: Path
    """Keys folder from `manipstack bridge keygen` (needs server.key_secret and authorized/*.key)."""
    backend: Literal["sim", "fmb-franka-http"] = "sim"
    """Robot behind the bridge: a simulated workcell as a digital twin (its robot: --twin.robot), or a Franka via
    FMB's franka_server."""
    bind: str = "tcp://127.0.0.1:5555"
    """ZeroMQ endpoint of the command socket; use tcp://0.0.0.0:PORT to accept remote clients."""
    stream_bind: str | None = None
    """Endpoint of the camera stream socket; default: the command port + 1 (an ephemeral port if bind uses 0)."""
    stream_hz: float = 5.0
    """Camera frame rate in Hz while a client has streaming on. A sim camera renders in the server loop
    (about 0.1 s per 640x480 frame on a CPU), so a high rate slows command replies on the twin."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    """Limits enforced on every command and the heartbeat watchdog."""
    twin: SimTwinConfig = field(default_factory=SimTwinConfig)
    """Digital-twin workcell (backend sim)."""
    fmb: FmbFrankaConfig = field(default_factory=FmbFrankaConfig)
    """franka_server connection (backend fmb-franka-http)."""
    ready_file: Path | None = None
    """Write the bound command endpoint to this file once serving (lets scripts and tests wait for it)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Logging verbosity."""

    def __post_init__(self) -> None:
        if not self.bind.startswith(("tcp://", "ipc://", "inproc://")):
            raise ValueError(f"bind must be a ZeroMQ endpoint like tcp://127.0.0.1:5555, got {self.bind!r}")
        if self.stream_hz <= 0:
            raise ValueError(f"stream_hz must be > 0, got {self.stream_hz}")


def _stream_endpoint(bind: str, bound: str) -> str:
    """Stream endpoint next to the command endpoint ``bound`` (port + 1, or ephemeral if ``bind`` asked for 0)."""
    if not bound.startswith("tcp://"):
        return bound + ".stream"
    host, port = bound[len("tcp://"):].rsplit(":", 1)
    if bind.endswith(":0") or bind.endswith(":*"):
        return f"tcp://{host}:0"
    return f"tcp://{host}:{int(port) + 1}"


class BridgeServer:
    """Serves one robot to one session-holding client at a time (see module docstring).

    Args:
        robot: the backend, already wrapped in its safety layer; connected on start.
        keys_dir: CurveZMQ keys folder (server secret key + ``authorized/``).
        bind: command endpoint; ``tcp://127.0.0.1:0`` picks a free port (see :attr:`endpoint`).
        stream_bind: camera stream endpoint (default next to ``bind``).
        cameras: cameras to stream by name.
        twin: the digital twin behind ``robot`` (enables ``twin.*`` calls), or None for hardware.
        stream_hz: camera frame rate in Hz while streaming.
    """

    def __init__(
        self,
        robot: SafetyLayer,
        keys_dir: Path,
        bind: str = "tcp://127.0.0.1:5555",
        stream_bind: str | None = None,
        cameras: dict[str, Camera] | None = None,
        twin: SimTwin | None = None,
        stream_hz: float = 5.0,
    ) -> None:
        keys = load_server_keys(keys_dir)
        self.robot = robot
        self.cameras = dict(cameras or {})
        self.twin = twin
        self.stream_period_s = 1.0 / stream_hz
        self.watchdog = Watchdog(robot.config.watchdog_timeout_s)
        self._session: bytes | None = None
        self._streaming = False
        self._next_frame = 0.0
        self._seq = 0
        self._closed = False

        self.context = zmq.Context()
        self.auth = ThreadAuthenticator(self.context, log=logging.getLogger(f"{__name__}.auth"))
        self.auth.start()
        self.auth.configure_curve(domain="*", location=str(keys.authorized_dir))
        self.socket = self._curve_socket(zmq.ROUTER, keys.public, keys.secret)
        self.socket.bind(bind)
        self.endpoint: str = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.stream = self._curve_socket(zmq.PUB, keys.public, keys.secret)
        self.stream.setsockopt(zmq.SNDHWM, 2)
        self.stream.bind(stream_bind or _stream_endpoint(bind, self.endpoint))
        self.stream_endpoint: str = self.stream.getsockopt_string(zmq.LAST_ENDPOINT)
        # method -> (handler, needs the session, accepted parameter names; None: checked by the handler)
        self._handlers: dict[str, tuple[Callable[[dict[str, Any]], Any], bool, frozenset[str] | None]] = {
            "describe": (self._describe, False, frozenset()),
            "ping": (lambda params: {"time": time.time()}, False, frozenset()),
            "hello": (self._hello, False, frozenset()),
            "heartbeat": (lambda params: None, True, frozenset()),
            "bye": (self._bye, True, frozenset()),
            "get_observation": (lambda params: self.robot.get_observation(), False, frozenset()),  # observers too
            "send_action": (self._send_action, True, frozenset({"action"})),
            "home": (lambda params: self.robot.home(), True, frozenset()),
            "halt": (lambda params: self.robot.halt(), True, frozenset()),
            "stream": (self._stream, True, frozenset({"enable"})),
        }
        for name in SCENE_METHODS:  # keyword arguments checked by the SimTwin method's signature
            self._handlers[f"twin.{name}"] = (self._twin_call(name), True, None)
        try:
            self.robot.connect()
        except Exception:
            self._close_transport()
            raise

    def _curve_socket(self, kind: int, public: bytes, secret: bytes) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        return sock

    def close(self) -> None:
        """Halt the arm if a client held it, release backend and sockets; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._session is not None:
                try:
                    self.robot.halt()
                except Exception as err:  # still release sockets and backend
                    log.error("could not halt the arm while shutting down: %s", err)
            self.robot.disconnect()
            if self.twin is not None:
                self.twin.close()
        finally:
            self._close_transport()

    def _close_transport(self) -> None:
        self.socket.close()
        self.stream.close()
        self.auth.stop()
        self.context.term()

    # -------------------------------------------------------------- loop
    def serve(self, should_stop: Callable[[], bool] = lambda: False, poll_s: float = 0.005) -> None:
        """Serve until ``should_stop()`` is true; checks it, the watchdog and the stream every ``poll_s`` s."""
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        while not should_stop():
            poller.poll(timeout=poll_s * 1000)
            self.process_pending()
            self.check_watchdog()
            self._publish_frames_if_due()

    def process_pending(self, max_messages: int = 1000) -> int:
        """Answer every queued request (at most ``max_messages``); returns how many were answered."""
        handled = 0
        while handled < max_messages:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                break
            received = time.monotonic()
            identity, payload = frames[0], frames[1:]
            reply = self.handle(payload, received)
            self.socket.send_multipart([identity, encode(reply)])
            handled += 1
        return handled

    def handle(self, payload: list[bytes], received: float | None = None) -> dict[str, Any]:
        """Reply map for one request given as its message frames; never raises."""
        request_id = None
        try:
            if len(payload) != 1:
                raise ProtocolError(f"a request is one message frame, got {len(payload)}")
            request = decode(payload[0])
            if not isinstance(request, dict):
                raise ProtocolError(f"a request is a map, got {type(request).__name__}")
            request_id = request.get("id")
            if not isinstance(request_id, int) or isinstance(request_id, bool):
                request_id = None
                raise ProtocolError("a request needs an integer 'id'")
            method, params = request.get("method"), request.get("params", {})
            if not isinstance(method, str) or method not in self._handlers:
                raise ProtocolError(f"unknown method {method!r}; expected one of {sorted(self._handlers)}")
            if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
                raise ProtocolError("'params' must be a map with string keys")
            handler, needs_session, accepted = self._handlers[method]
            if accepted is not None and not set(params) <= accepted:
                raise ProtocolError(f"unknown parameters {sorted(set(params) - accepted)} for {method!r}; "
                                    f"accepted: {sorted(accepted)}")
            token = request.get("session")
            from_holder = self._session is not None and token == self._session
            if from_holder:
                self.watchdog.feed(received)  # any message of the session holder is a sign of life
            elif needs_session:
                raise SessionError("no session: call hello first (the watchdog may have ended an earlier one)"
                                   if self._session is None else "another client holds the robot session")
            try:
                return {"id": request_id, "ok": True, "result": handler(params)}
            finally:
                if from_holder and self._session is not None:
                    self.watchdog.feed()  # the client cannot speak while it waits for this reply
        except Exception as err:  # every failure becomes an error reply; the server keeps serving
            log.debug("request %s rejected: %s: %s", request_id, type(err).__name__, err)
            return error_reply(request_id, err)

    def check_watchdog(self) -> None:
        """Halt the arm and end the session if the session holder has gone silent."""
        if self._session is not None and self.watchdog.expired():
            log.warning("client silent for more than %.3f s: halting the arm", self.watchdog.timeout_s)
            self._end_session()
            try:
                self.robot.halt()
            except Exception as err:  # keep serving: the operator must see this, and a client may retry
                log.error("watchdog could not halt the arm: %s: %s", type(err).__name__, err)

    def _end_session(self) -> None:
        self._session = None
        self._streaming = False
        self.watchdog.disarm()

    # -------------------------------------------------------------- handlers
    def _describe(self, params: dict[str, Any]) -> dict[str, Any]:
        robot = self.robot
        return {
            "protocol": PROTOCOL_VERSION,
            "name": robot.backend.name,
            "observation_features": {k: [list(f.shape), f.dtype] for k, f in self._observation_features().items()},
            "action_features": {k: [list(f.shape), f.dtype] for k, f in robot.action_features.items()},
            "control_period_s": robot.control_period_s,
            "properties": self._properties(),
            "cameras": {
                name: {"intrinsics": cam.intrinsics.matrix, "width": cam.intrinsics.width,
                       "height": cam.intrinsics.height}
                for name, cam in self.cameras.items()
            },
            "stream_endpoint": self.stream_endpoint,
            "watchdog_timeout_s": self.watchdog.timeout_s,
            "twin": self.twin is not None,
            "workcell": self.twin.robot_name if self.twin is not None else None,
        }

    def _properties(self) -> dict[str, Any]:
        """The robot's :data:`DESCRIBED_PROPERTIES` that it has (by its feature groups)."""
        properties = {}
        for name in DESCRIBED_PROPERTIES:
            try:
                properties[name] = getattr(self.robot, name)
            except (FeatureNotSupportedError, NotImplementedError):
                continue
        return properties

    def _observation_features(self) -> dict[str, Feature]:
        return {**self.robot.observation_features, **camera_features(self.cameras)}

    def _hello(self, params: dict[str, Any]) -> dict[str, Any]:
        if self._session is not None and not self.watchdog.expired():
            raise SessionError("another client holds the robot session; it ends when that client says bye "
                               "or goes silent for the watchdog timeout")
        if self._session is not None:
            self.check_watchdog()
        self._session = secrets.token_bytes(16)
        self.watchdog.feed()
        log.info("new session")
        return {"session": self._session}

    def _bye(self, params: dict[str, Any]) -> None:
        self._end_session()
        self.robot.halt()
        log.info("session ended by the client")

    def _send_action(self, params: dict[str, Any]) -> dict[str, np.ndarray]:
        action = params.get("action")
        if not isinstance(action, dict):
            raise ValueError("send_action needs params {'action': {key: array}}")
        return self.robot.send_action(action)

    def _stream(self, params: dict[str, Any]) -> None:
        enable = params.get("enable")
        if not isinstance(enable, bool):
            raise ValueError("stream needs params {'enable': true|false}")
        if enable and not self.cameras:
            raise ValueError("this server has no cameras to stream")
        self._streaming = enable
        self._next_frame = time.monotonic()

    def _twin_call(self, name: str) -> Callable[[dict[str, Any]], Any]:
        def call(params: dict[str, Any]) -> Any:
            if self.twin is None:
                raise ValueError(f"twin.{name} needs the sim backend (this server drives {self.robot.backend.name})")
            result = getattr(self.twin, name)(**params)
            if name == "reset":
                config = self.robot.config
                self.robot = SafetyLayer(self.twin.robot, config)
                self.robot.connect()
                self.cameras = dict(self.twin.cameras)
            return result

        return call

    # -------------------------------------------------------------- camera stream
    def _publish_frames_if_due(self) -> None:
        now = time.monotonic()
        if not self._streaming or now < self._next_frame:
            return
        if now < self._next_frame + self.stream_period_s and self.socket.poll(0):
            return  # commands first, unless the frame is a whole period late
        self._next_frame = max(self._next_frame + self.stream_period_s, now)
        for name, cam in self.cameras.items():
            start = time.monotonic()
            try:
                frame = cam.capture()
            except Exception as err:  # a failing camera must not take the arm's command channel down
                log.error("camera %s failed to capture: %s: %s", name, type(err).__name__, err)
                continue
            self._seq += 1
            message = {"camera": name, "seq": self._seq, "t_capture_start": start, "t_capture_end": time.monotonic(),
                       "rgb": frame["rgb"], "depth": frame["depth"], "intrinsics": frame["intrinsics"],
                       "extrinsics": frame["extrinsics"]}
            self.stream.send(encode(message), copy=False)


def build_server(config: ServeConfig) -> BridgeServer:
    """The server for a config: backend (+ twin), safety layer, sockets bound."""
    twin = None
    backend: Robot
    if config.backend == "sim":
        twin = SimTwin(config.twin)
        backend, cameras = twin.robot, dict(twin.cameras)
    else:
        backend, cameras = FmbFrankaHttp(config.fmb), {}
    try:
        return BridgeServer(SafetyLayer(backend, config.safety), config.keys, config.bind, config.stream_bind,
                            cameras=cameras, twin=twin, stream_hz=config.stream_hz)
    except Exception:
        if twin is not None:
            twin.close()
        raise


def run(config: ServeConfig) -> None:
    """Serve until SIGINT/SIGTERM."""
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = {"now": False}

    def request_stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    server = build_server(config)
    try:
        log.info("serving %s on %s (camera stream %s)", config.backend, server.endpoint, server.stream_endpoint)
        if config.ready_file is not None:
            tmp = config.ready_file.with_suffix(".tmp")
            tmp.write_text(server.endpoint)
            tmp.replace(config.ready_file)
        server.serve(lambda: stop["now"])
    finally:
        server.close()


def main(argv: list[str] | None = None) -> None:
    run(tyro.cli(ServeConfig, args=argv))


@contextlib.contextmanager
def server_process(args: list[str], ready_timeout_s: float = 30.0) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run ``manipstack bridge serve ARGS`` in a subprocess; yields ``(process, command endpoint)`` once it serves.

    The process is terminated (then killed) on exit. ``--ready-file`` is added here.
    """
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "endpoint"
        command = [sys.executable, "-m", "manipstack.envs.robots.real.server", *args, "--ready-file", str(ready)]
        process = subprocess.Popen(command)
        try:
            deadline = time.monotonic() + ready_timeout_s
            while not ready.exists():
                if process.poll() is not None:
                    raise RuntimeError(f"bridge server exited with code {process.returncode} before serving")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"bridge server not ready within {ready_timeout_s} s")
                time.sleep(0.02)
            yield process, ready.read_text()
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


if __name__ == "__main__":
    main()
