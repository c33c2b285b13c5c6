"""Wire format of the driver bridge: msgpack messages carrying numpy arrays, and the errors both ends raise.

A request is a map ``{"id": int, "method": str, "params": map, "session"?: bytes}``; its reply is
``{"id": int, "ok": true, "result": ...}`` or
``{"id": int | nil, "ok": false, "error": {"type": str, "message": str}}``.
Arrays travel as msgpack extension type :data:`NDARRAY_EXT`, whose payload is the msgpack array
``[dtype_str, shape, raw_bytes]`` (little-endian, C order). Only plain numeric and boolean dtypes are
accepted, so decoding never builds Python objects from the wire.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from manipstack.envs.core.scene_protocol import SCENE_WORLD_ATTRIBUTES, SCENE_WORLD_METHODS

PROTOCOL_VERSION = 2
"""Bridge protocol version; client and server refuse to talk across versions (2: ``describe`` reports the
robot's properties by name, see :data:`DESCRIBED_PROPERTIES`)."""

NDARRAY_EXT = 1
"""msgpack extension type code of a numpy array."""

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest message either end accepts (bytes); bigger ones are dropped by ZeroMQ before decoding."""

_ALLOWED_DTYPES = frozenset(
    np.dtype(name).newbyteorder("<").str
    for name in ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
                 "float16", "float32", "float64")
)


class BridgeError(RuntimeError):
    """Base class of bridge failures (transport, protocol, session, remote errors)."""


class BridgeTimeoutError(BridgeError, TimeoutError):
    """The other end did not answer within the call's timeout."""


class BridgeAuthError(BridgeError):
    """The server refused this client's CurveZMQ key (not in the server's ``authorized/`` folder)."""


class ProtocolError(BridgeError, ValueError):
    """A message that is not a well-formed bridge request or reply."""


class SessionError(BridgeError):
    """The call needs the robot session, which another client holds or which the watchdog ended."""


class RemoteError(BridgeError):
    """An error raised on the server that has no more specific local counterpart."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name} on the bridge server: {message}")
        self.type_name = type_name


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        array = obj if obj.flags.c_contiguous else obj.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        dtype = array.dtype.str
        if dtype not in _ALLOWED_DTYPES:
            raise TypeError(f"cannot send arrays of dtype {array.dtype}; use a numeric or bool dtype")
        return msgpack.ExtType(NDARRAY_EXT, msgpack.packb([dtype, list(array.shape), array.tobytes()]))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} for the bridge")


def _ext_hook(code: int, payload: bytes) -> np.ndarray:
    if code != NDARRAY_EXT:
        raise ProtocolError(f"unknown msgpack extension type {code}")
    try:
        dtype, shape, data = msgpack.unpackb(payload, raw=False, use_list=True)
    except (ValueError, TypeError, msgpack.UnpackException) as err:
        raise ProtocolError(f"malformed array payload: {err}") from None
    if not isinstance(dtype, str) or dtype not in _ALLOWED_DTYPES:
        raise ProtocolError(f"array dtype {dtype!r} is not allowed")
    if not isinstance(shape, list) or not all(isinstance(n, int) and 0 <= n < 2**31 for n in shape):
        raise ProtocolError(f"array shape must be a list of non-negative ints, got {shape!r}")
    if not isinstance(data, bytes):
        raise ProtocolError("array data must be bytes")
    itemsize = np.dtype(dtype).itemsize
    expected = itemsize * int(np.prod(shape, dtype=np.int64))
    if expected != len(data):
        raise ProtocolError(f"array of shape {shape} and dtype {dtype} needs {expected} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def encode(message: Any) -> bytes:
    """Serialise a message (maps, lists, scalars, bytes, numpy arrays) to msgpack bytes."""
    return msgpack.packb(message, default=_default, use_bin_type=True)


def decode(data: bytes) -> Any:
    """Parse msgpack bytes into Python objects and numpy arrays; raises :class:`ProtocolError` on bad input."""
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except ProtocolError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as err:
        raise ProtocolError(f"undecodable message ({type(err).__name__}: {err})") from None


def error_reply(request_id: int | None, err: BaseException) -> dict[str, Any]:
    """Reply map reporting ``err`` to the caller of request ``request_id``."""
    return {"id": request_id, "ok": False, "error": {"type": type(err).__name__, "message": str(err)}}


DESCRIBED_PROPERTIES = ("home_joints", "gripper_max_width", "home_hand_joints", "hand_joint_limits")
"""Robot properties ``describe`` reports under ``"properties"``, each only where the served robot has the feature
group it belongs to (arm joints, parallel gripper, dexterous hand); a client raises
:class:`~manipstack.envs.robots.base.FeatureNotSupportedError` for one that is absent."""

REMOTE_WORLD_METHODS = SCENE_WORLD_METHODS
"""World methods a client may run on the twin: those of the scene protocol
(:class:`~manipstack.envs.core.scene_protocol.SceneWorld`): scene building, queries, stepping and rendering."""

LOCAL_WORLD_ATTRIBUTES = frozenset({"cache_dir"})
"""Scene-protocol attributes a client answers itself: meshes a task generates go to the client's cache folder
(the server opens them by path, so both share a filesystem)."""

REMOTE_WORLD_ATTRIBUTES = SCENE_WORLD_ATTRIBUTES - LOCAL_WORLD_ATTRIBUTES
"""World attributes a client may read on the twin."""
