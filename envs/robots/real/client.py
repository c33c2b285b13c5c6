"""The ``bridge`` backend: a robot on the other side of the driver bridge (``make_robot("bridge", ...)``).

It speaks to ``manipstack bridge serve`` over CurveZMQ (keys from ``manipstack bridge keygen``). Every call
has a timeout and raises :class:`~envs.robots.real.protocol.BridgeTimeoutError` naming the call and address
when the server does not answer; a refused key raises :class:`~envs.robots.real.protocol.BridgeAuthError`.
While connected a background thread sends heartbeats so the server's watchdog only fires when this process
dies or hangs; a second thread receives camera frames from the stream socket, so images never delay commands.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from manipstack.envs.core.camera import Intrinsics
from manipstack.envs.core.mesh_cache import default_cache_dir
from manipstack.envs.robots.base import Feature, FeatureNotSupportedError, Robot, RobotNotConnectedError
from manipstack.envs.robots.real.keys import ClientKeys, load_client_keys
from manipstack.envs.robots.real.protocol import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    REMOTE_WORLD_ATTRIBUTES,
    REMOTE_WORLD_METHODS,
    BridgeAuthError,
    BridgeError,
    BridgeTimeoutError,
    ProtocolError,
    RemoteError,
    SessionError,
    decode,
    encode,
)
from manipstack.envs.robots.real.safety import SafetyViolationError

log = logging.getLogger(__name__)

_REMOTE_ERRORS: dict[str, type[Exception]] = {
    "ValueError": ValueError,
    "TypeError": TypeError,
    "KeyError": KeyError,
    "FileNotFoundError": FileNotFoundError,
    "SafetyViolationError": SafetyViolationError,
    "ProtocolError": ProtocolError,
    "SessionError": SessionError,
    "RobotNotConnectedError": RobotNotConnectedError,
    "FeatureNotSupportedError": FeatureNotSupportedError,
}

_AUTH_FAILURES = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL


def _raise_remote(error: Any) -> None:
    if not isinstance(error, dict):
        raise ProtocolError(f"malformed error reply: {error!r}")
    type_name, message = str(error.get("type")), str(error.get("message"))
    cls = _REMOTE_ERRORS.get(type_name)
    if cls is None:
        raise RemoteError(type_name, message)
    raise cls(message)


class RemoteCamera:
    """A camera on the bridge server, fed by the frame stream (same ``capture()`` as a local camera)."""

    def __init__(self, robot: BridgeRobot, name: str, intrinsics: Intrinsics) -> None:
        self.robot, self.name, self.intrinsics = robot, name, intrinsics

    def capture(self) -> dict[str, np.ndarray]:
        """The next frame to arrive: ``rgb`` uint8 (H, W, 3), ``depth`` float32 (H, W) m, ``intrinsics`` K (3, 3),
        ``extrinsics`` world_from_cam (4, 4); waits at most the robot's ``frame_timeout_s``."""
        return self.robot._wait_frame(self.name, newer_than=self.robot._frame_seq(self.name))


class RemoteWorld:
    """The digital twin's :class:`~envs.core.world.World`, driven over the bridge (``--backend sim`` servers).

    It offers exactly the scene protocol (:class:`~manipstack.envs.core.scene_protocol.SceneWorld`): its methods
    (:data:`~envs.robots.real.protocol.REMOTE_WORLD_METHODS`) with the same signatures, units and frames run on
    the twin, its attributes are read there (``REMOTE_WORLD_ATTRIBUTES``) except ``cache_dir``, this process's
    cache folder. So task code and :class:`~envs.core.camera.SimCamera` run against it unchanged. Mesh and URDF
    paths are opened by the server: run it on the same machine or a shared filesystem when a task loads files.
    """

    def __init__(self, robot: BridgeRobot) -> None:
        self._robot = robot
        self.cache_dir = default_cache_dir()

    def _call_world(self, attribute: str, *args: Any, **kwargs: Any) -> Any:
        def plain(value: Any) -> Any:  # file paths travel as strings
            return os.fspath(value) if isinstance(value, os.PathLike) else value

        return self._robot._call("twin.call_world", timeout_s=max(self._robot.timeout_s, 30.0), attribute=attribute,
                                 args=[plain(a) for a in args], kwargs={k: plain(v) for k, v in kwargs.items()})

    def __getattr__(self, name: str) -> Any:
        if name in REMOTE_WORLD_METHODS:
            return functools.partial(self._call_world, name)
        if name in REMOTE_WORLD_ATTRIBUTES:
            return self._call_world(name)
        raise AttributeError(f"{name!r} is not a World method or attribute available on the twin")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *REMOTE_WORLD_METHODS, *REMOTE_WORLD_ATTRIBUTES})


class BridgeRobot(Robot):
    """Client of a bridge server.

    Args:
        address: server command endpoint, e.g. ``tcp://robot-pc:5555``.
        keys: keys folder holding ``client.key_secret`` and ``server.key``.
        timeout_s: reply timeout of each call in s.
        stream: receive camera frames (observations then include ``<camera>.rgb`` / ``.depth``).
        frame_timeout_s: longest wait in s for a camera frame.
        heartbeat_period_s: heartbeat interval in s; default a fifth of the server's watchdog timeout.
    """

    name = "bridge"

    def __init__(
        self,
        address: str = "tcp://127.0.0.1:5555",
        keys: str | Path = "keys",
        timeout_s: float = 1.0,
        stream: bool = True,
        frame_timeout_s: float = 2.0,
        heartbeat_period_s: float | None = None,
    ) -> None:
        super().__init__()
        if timeout_s <= 0 or frame_timeout_s <= 0:
            raise ValueError(f"timeouts must be > 0 s, got timeout_s={timeout_s}, frame_timeout_s={frame_timeout_s}")
        self.address = address
        self.keys: ClientKeys = load_client_keys(Path(keys))
        self.timeout_s = float(timeout_s)
        self.stream = stream
        self.frame_timeout_s = float(frame_timeout_s)
        self._heartbeat_period_s = heartbeat_period_s
        self.twin = RemoteWorld(self)
        self._context: zmq.Context | None = None
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._lock = threading.Lock()
        self._next_id = 0
        self._session: bytes | None = None
        self._description: dict[str, Any] | None = None
        self._last_call = 0.0
        self._threads_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._frames: dict[str, dict[str, Any]] = {}
        self._frames_changed = threading.Condition()

    # -------------------------------------------------------------- transport
    def _curve(self, sock: zmq.Socket) -> zmq.Socket:
        sock.curve_secretkey = self.keys.secret
        sock.curve_publickey = self.keys.public
        sock.curve_serverkey = self.keys.server_public
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        return sock

    def _open(self) -> None:
        if self._context is None:
            self._context = zmq.Context()
        if self._socket is None:
            self._socket = self._curve(self._context.socket(zmq.DEALER))
            self._monitor = self._socket.get_monitor_socket(_AUTH_FAILURES)
            self._socket.connect(self.address)

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.disable_monitor()
            self._monitor.close()
            self._socket.close()
            self._socket = self._monitor = None

    def _close(self) -> None:
        self._close_socket()
        if self._context is not None:
            self._context.term()
            self._context = None

    def _call(self, method: str, timeout_s: float | None = None, **params: Any) -> Any:
        """One request/reply; raises BridgeTimeoutError / BridgeAuthError / the server's error type."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        if not self._lock.acquire(timeout=timeout):
            raise BridgeTimeoutError(f"bridge call {method!r} could not start within {timeout} s (socket busy)")
        return self._call_locked(method, timeout, params)

    def _call_locked(self, method: str, timeout: float, params: dict[str, Any]) -> Any:
        """Body of :meth:`_call`; the caller holds ``_lock``, which is released here."""
        try:
            self._open()
            self._next_id += 1
            request: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
            if self._session is not None:
                request["session"] = self._session
            reply = self._exchange(request, timeout)
            self._last_call = time.monotonic()
        finally:
            self._lock.release()
        if reply.get("ok") is True:
            return reply.get("result")
        _raise_remote(reply.get("error"))

    def _exchange(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        sock, monitor = self._socket, self._monitor
        try:
            sock.send(encode(request), zmq.NOBLOCK)
        except zmq.Again:
            self._close_socket()
            raise BridgeTimeoutError(f"bridge send queue to {self.address} is full: is the server running?") from None
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            ready = dict(poller.poll(remaining * 1000))
            if monitor in ready:
                event = recv_monitor_message(monitor)
                if event["event"] & _AUTH_FAILURES:
                    self._close_socket()
                    raise BridgeAuthError(
                        f"server {self.address} refused this client's key: copy client.key into the server's "
                        f"authorized/ folder and restart it, and check that server.key matches the server"
                    )
            if sock in ready:
                reply = decode(sock.recv())
                if isinstance(reply, dict) and reply.get("id") == request["id"]:
                    return reply
                log.debug("dropping stale or foreign reply %r", reply.get("id") if isinstance(reply, dict) else reply)
        self._close_socket()  # drop queued requests: they must not reach a server that comes back later
        raise BridgeTimeoutError(
            f"no reply to {request['method']!r} from {self.address} within {timeout} s: is `manipstack bridge serve` "
            f"running and reachable?"
        )

    # -------------------------------------------------------------- description
    def _describe(self) -> dict[str, Any]:
        if self._description is None:
            try:
                description = self._call("describe")
            finally:
                if not self._connected:
                    self._close()
            if description.get("protocol") != PROTOCOL_VERSION:
                raise BridgeError(f"server speaks bridge protocol {description.get('protocol')}, "
                                  f"this client {PROTOCOL_VERSION}: update one side")
            self._description = description
            self.name = str(description["name"])  # the served robot's name (its body name on a digital twin)
            self.cameras = {
                name: RemoteCamera(self, name, Intrinsics(cam["intrinsics"][0, 0], cam["intrinsics"][1, 1],
                                                          cam["intrinsics"][0, 2], cam["intrinsics"][1, 2],
                                                          cam["width"], cam["height"]))
                for name, cam in description["cameras"].items()
            } if self.stream else {}
        return self._description

    @staticmethod
    def _features(raw: dict[str, Any]) -> dict[str, Feature]:
        return {key: Feature(tuple(shape), dtype) for key, (shape, dtype) in raw.items()}

    @property
    def observation_features(self) -> dict[str, Feature]:
        """Fetched from the server once (a short connection while disconnected), then cached."""
        features = self._features(self._describe()["observation_features"])
        if not self.stream:
            cams = self._describe()["cameras"]
            features = {k: f for k, f in features.items() if k.rsplit(".", 1)[0] not in cams}
        return features

    @property
    def action_features(self) -> dict[str, Feature]:
        return self._features(self._describe()["action_features"])

    def _property(self, name: str) -> Any:
        """A robot property the server described; FeatureNotSupportedError if the served robot lacks it."""
        properties = self._describe()["properties"]
        if name not in properties:
            raise FeatureNotSupportedError(
                f"robot {self.name!r} served at {self.address} has no {name} (it describes {sorted(properties)})"
            )
        return properties[name]

    @property
    def home_joints(self) -> np.ndarray:
        return np.asarray(self._property("home_joints"), dtype=float)

    @property
    def gripper_max_width(self) -> float:
        return float(self._property("gripper_max_width"))

    @property
    def home_hand_joints(self) -> np.ndarray:
        return np.asarray(self._property("home_hand_joints"), dtype=float)

    @property
    def hand_joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = self._property("hand_joint_limits")
        return np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)

    @property
    def workcell(self) -> str | None:
        """Registered workcell name of the served digital twin's robot (``"panda"``, ...), None for hardware."""
        return self._describe()["workcell"]

    @property
    def control_period_s(self) -> float:  # type: ignore[override]
        return float(self._describe()["control_period_s"])

    # -------------------------------------------------------------- lifecycle
    def _connect(self) -> None:
        description = self._describe()
        try:
            self._session = self._call("hello")["session"]
            self._threads_stop.clear()
            period = self._heartbeat_period_s or description["watchdog_timeout_s"] / 5
            self._threads = [threading.Thread(target=self._heartbeat_loop, args=(period,), daemon=True)]
            if self.cameras:
                endpoint = self._stream_address(description["stream_endpoint"])
                self._threads.append(threading.Thread(target=self._stream_loop, args=(endpoint,), daemon=True))
            for thread in self._threads:
                thread.start()
            if self.cameras:
                self._call("stream", enable=True)
        except BaseException:
            self._stop_threads()
            self._session = None
            self._close()
            raise

    def _disconnect(self) -> None:
        self._stop_threads()
        try:
            self._call("bye")
        except (BridgeError, OSError) as err:
            log.warning("bridge server did not acknowledge bye (%s); its watchdog halts the arm", err)
        finally:
            self._session = None
            self._frames.clear()
            self._close()

    def _stop_threads(self) -> None:
        self._threads_stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads = []

    def _stream_address(self, server_endpoint: str) -> str:
        """The server's stream endpoint, reached through the host this client uses for commands."""
        if not (server_endpoint.startswith("tcp://") and self.address.startswith("tcp://")):
            return server_endpoint
        host = self.address[len("tcp://"):].rsplit(":", 1)[0]
        return f"tcp://{host}:{server_endpoint.rsplit(':', 1)[1]}"

    def _heartbeat_loop(self, period_s: float) -> None:
        """Send a heartbeat whenever no call went out for ``period_s`` s; a call in flight counts as one."""
        while not self._threads_stop.wait(period_s):
            if time.monotonic() - self._last_call < period_s or not self._lock.acquire(blocking=False):
                continue
            try:
                self._call_locked("heartbeat", self.timeout_s, {})
            except SessionError as err:
                log.error("bridge session lost, heartbeats stop: %s", err)
                return
            except (BridgeError, OSError) as err:
                log.warning("bridge heartbeat failed: %s", err)

    def _stream_loop(self, endpoint: str) -> None:
        sock = self._curve(self._context.socket(zmq.SUB))
        sock.setsockopt(zmq.RCVHWM, 4)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(endpoint)
        try:
            while not self._threads_stop.is_set():
                if not sock.poll(50):
                    continue
                try:
                    frame = decode(sock.recv())
                    name = frame["camera"]
                except (ProtocolError, KeyError, TypeError) as err:
                    log.warning("dropping malformed camera frame: %s", err)
                    continue
                frame["t_received"] = time.monotonic()
                with self._frames_changed:
                    self._frames[name] = frame
                    self._frames_changed.notify_all()
        finally:
            sock.close()

    # -------------------------------------------------------------- frames
    def _frame_seq(self, camera: str) -> int:
        with self._frames_changed:
            return self._frames[camera]["seq"] if camera in self._frames else -1

    def _wait_frame(self, camera: str, newer_than: int = -1) -> dict[str, Any]:
        """Latest frame of ``camera`` with sequence number above ``newer_than`` (waits up to frame_timeout_s)."""
        self._require_connected()
        with self._frames_changed:
            ok = self._frames_changed.wait_for(
                lambda: camera in self._frames and self._frames[camera]["seq"] > newer_than, self.frame_timeout_s
            )
            if not ok:
                raise BridgeTimeoutError(f"no frame from camera {camera!r} within {self.frame_timeout_s} s")
            return dict(self._frames[camera])

    # -------------------------------------------------------------- I/O
    def _get_observation(self) -> dict[str, np.ndarray]:
        obs = self._call("get_observation")
        for name in self.cameras:
            frame = self._wait_frame(name)
            obs[f"{name}.rgb"], obs[f"{name}.depth"] = frame["rgb"], frame["depth"]
        return obs

    def _send_action(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._call("send_action", action=action)

    def home(self) -> None:
        """The server backend's homing motion (may take seconds)."""
        self._require_connected()
        self._call("home", timeout_s=max(self.timeout_s, 60.0))

    def reset_twin(self) -> None:
        """Empty the digital twin's workcell: table plane and robot (at home, end effector open) only."""
        self._call("twin.reset", timeout_s=max(self.timeout_s, 30.0))


class RemoteWorkcell:
    """A digital twin's workcell used from a client: ``robot`` is a connected :class:`BridgeRobot` (no camera
    stream) and ``world`` its :class:`RemoteWorld`.

    Args:
        robot: the registered workcell name the twin must serve (``--twin.robot``); anything else raises
            ``ValueError`` before the session is claimed.
        bridge_kwargs: keyword arguments of :class:`BridgeRobot` (``address``, ``keys``, ``timeout_s``, ...).
    """

    def __init__(self, robot: str = "panda", **bridge_kwargs: Any) -> None:
        self.robot = BridgeRobot(**{"stream": False, **bridge_kwargs})
        served = self.robot.workcell
        if served != robot:
            self.robot.disconnect()
            if served is None:
                raise ValueError(f"the bridge server at {self.robot.address} drives hardware ({self.robot.name!r}), "
                                 f"not a digital twin: a {robot!r} workcell needs `manipstack bridge serve --backend "
                                 f"sim --twin.robot {robot}`")
            raise ValueError(f"the digital twin at {self.robot.address} serves a {served!r} workcell, not {robot!r}: "
                             f"start it with --twin.robot {robot}")
        self.robot.connect()
        self.world = self.robot.twin
        self.reset()

    def reset(self) -> None:
        """Empty the twin to its table and robot (at home, end effector open)."""
        self.robot.reset_twin()

    def close(self) -> None:
        """End the session (the server halts the robot); safe to call more than once."""
        self.robot.disconnect()
