"""Driver bridge: wire format, keys and CLI, sim-twin identity, and behaviour under faults.

Servers run as subprocesses (``manipstack bridge serve``) bound to 127.0.0.1 on ephemeral ports.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import trimesh
import zmq

from manipstack import cli
from manipstack.envs.core.camera import Intrinsics, SimCamera, look_at
from manipstack.envs.core.poses import euler_to_quat, quat_multiply
from manipstack.envs.core.scene_protocol import SCENE_WORLD_ATTRIBUTES, SCENE_WORLD_METHODS, SceneWorld
from manipstack.envs.robots import FeatureNotSupportedError, Robot, make_robot, make_workcell
from manipstack.envs.robots.motion import close_gripper, move_hand_joints, move_to_pose, open_gripper
from manipstack.envs.robots.real.client import BridgeRobot
from manipstack.envs.robots.real.keys import generate_keys, load_client_keys
from manipstack.envs.robots.real.protocol import (
    BridgeAuthError,
    BridgeTimeoutError,
    ProtocolError,
    SessionError,
    decode,
    encode,
)
from manipstack.envs.robots.real.safety import SafetyViolationError
from manipstack.envs.robots.real.server import server_process
from manipstack.envs.robots.real.sim_twin import SimTwin, SimTwinConfig
from manipstack.envs.robots.recording import ActionRecorder
from manipstack.eval.bench.bridge import watchdog_release

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    generate_keys(directory)
    return directory


@pytest.fixture(scope="module")
def server(keys: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """A digital-twin server shared by the tests that leave it serving (each ends its session); its watchdog waits
    1 s (default 0.1 s) so that a test process descheduled on a busy machine keeps its session."""
    with server_process(["--keys", str(keys), "--bind", "tcp://127.0.0.1:0", "--safety.watchdog-timeout-s", "1.0"]
                        ) as running:
        yield running


@pytest.fixture(scope="module")
def hand_server(keys: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """A digital twin of the floating-hand workcell (no camera)."""
    with server_process(["--keys", str(keys), "--bind", "tcp://127.0.0.1:0", "--twin.robot", "floating-hand",
                         "--twin.no-camera", "--safety.watchdog-timeout-s", "1.0"]) as running:
        yield running


def _client(endpoint: str, keys: Path, **kwargs: Any) -> BridgeRobot:
    """A client without the camera stream; calls wait 10 s (default 1 s) unless a test is about timeouts: a twin
    stepping physics answers slowly when other jobs load the cores."""
    return make_robot("bridge", address=endpoint, keys=keys, stream=False, **{"timeout_s": 10.0, **kwargs})


# ---------------------------------------------------------------------------- wire format, keys, CLI
def test_arrays_round_trip_exactly() -> None:
    message = {"a": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2], "b": np.array(0.25), "c": [1, "x", b"\0"],
               "d": np.zeros((2, 0), np.uint8), "e": np.float32(1.5), "f": np.array([True, False])}
    back = decode(encode(message))
    for key in ("a", "b", "d", "f"):
        assert back[key].dtype == message[key].dtype and back[key].shape == message[key].shape
        np.testing.assert_array_equal(back[key], message[key])
    assert back["c"] == [1, "x", b"\0"] and back["e"] == 1.5
    with pytest.raises(TypeError, match="dtype object"):
        encode({"x": np.array([None])})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xc1", "undecodable"),
        (msgpack.packb(msgpack.ExtType(1, msgpack.packb(["<f8", [3], b"\0" * 8]))), "needs 24 bytes"),
        (msgpack.packb(msgpack.ExtType(1, msgpack.packb(["|O", [1], b"\0" * 8]))), "not allowed"),
        (msgpack.packb(msgpack.ExtType(1, msgpack.packb(["<f8", [-1], b""]))), "non-negative"),
        (msgpack.packb(msgpack.ExtType(9, b"")), "unknown msgpack extension"),
    ],
)
def test_malformed_payloads_raise_protocol_error(payload: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode(payload)


def test_keygen_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["bridge", "keygen", str(tmp_path / "k")])
    names = sorted(p.relative_to(tmp_path / "k").as_posix() for p in (tmp_path / "k").rglob("*") if p.is_file())
    assert names == ["authorized/client.key", "client.key", "client.key_secret", "server.key", "server.key_secret"]
    assert (tmp_path / "k" / "server.key_secret").stat().st_mode & 0o077 == 0
    assert load_client_keys(tmp_path / "k").server_public
    with pytest.raises(SystemExit) as exit_info:  # the CLI reports the existing keys in one line, exit status 2
        cli.main(["bridge", "keygen", str(tmp_path / "k")])
    assert exit_info.value.code == 2 and "pass --force" in capsys.readouterr().err


def test_serve_help_explains_fields(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bridge", "serve", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--keys", "--bind", "--backend", "--safety.watchdog-timeout-s", "--safety.workspace-min",
                   "--fmb.url", "--twin.camera-width"):
        assert option in text
    assert "Client silence in s" in text


def test_missing_keys_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="manipstack bridge keygen"):
        make_robot("bridge", address="tcp://127.0.0.1:9", keys=tmp_path)


# ---------------------------------------------------------------------------- identity with the in-process sim
def scripted_pick(robot: Robot, scene: Any, seed: int) -> tuple[list[dict[str, np.ndarray]], list[float], np.ndarray]:
    """Pick a seeded box off the table; returns (applied actions, reward per primitive, final box pose (7,)).

    ``scene`` is the workcell's World, in-process or the twin's through ``robot.twin``."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-0.08, 0.08, size=2)
    yaw = float(rng.uniform(-0.5, 0.5))
    scene.add_primitive("box", "box", (0.04, 0.04, 0.04), (x, y, 0.02), euler_to_quat([0.0, 0.0, yaw]), mass=0.05)
    down = quat_multiply(euler_to_quat([0.0, 0.0, yaw]), np.array([1.0, 0.0, 0.0, 0.0]))
    recorder = ActionRecorder(robot)
    recorder.connect()
    rewards = []
    steps = [
        lambda: move_to_pose(recorder, [x, y, 0.15], down),
        lambda: open_gripper(recorder),
        lambda: move_to_pose(recorder, [x, y, 0.02], down),
        lambda: close_gripper(recorder),
        lambda: move_to_pose(recorder, [x, y, 0.2], down),
    ]
    for step in steps:
        step()
        rewards.append(float(scene.body_pose("box")[0][2] > 0.1))
    return recorder.applied, rewards, np.concatenate(scene.body_pose("box"))


def test_identity_with_in_process_sim(server: tuple[subprocess.Popen, str], keys: Path) -> None:
    twin = SimTwin(SimTwinConfig(camera=False))
    try:
        expected = scripted_pick(twin.robot, twin.world, seed=3)
    finally:
        twin.close()
    with _client(server[1], keys) as robot:
        robot.reset_twin()
        actual = scripted_pick(robot, robot.twin, seed=3)
    assert expected[1][-1] == 1.0, "the scripted pick should lift the box"
    assert len(actual[0]) == len(expected[0])
    for got, want in zip(actual[0], expected[0]):
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    assert actual[1] == expected[1]
    np.testing.assert_array_equal(actual[2], expected[2])


def test_twin_world_runs_only_allowlisted_methods(server: tuple[subprocess.Popen, str], keys: Path) -> None:
    with _client(server[1], keys) as robot:
        robot.reset_twin()
        assert robot.twin.body_names == ["plane", "panda"]
        for name in ("close", "client", "_bodies", "__class__", "reset_simulation"):
            with pytest.raises(ValueError, match="cannot be called remotely"):
                robot._call("twin.call_world", attribute=name, args=[], kwargs={})
        with pytest.raises(AttributeError, match="not a World method"):
            robot.twin.close()
        with pytest.raises(ValueError, match="cannot be removed"):
            robot.twin.remove_body("panda")
        with pytest.raises(ValueError, match="takes no arguments"):
            robot._call("twin.call_world", attribute="sim_time", args=[1], kwargs={})


def _scene_calls(mesh_path: Path) -> dict[str, Any]:
    """One call of every scene-protocol member (name -> call on a world), in an order that builds a scene."""
    camera_pose = look_at(np.array([0.0, 0.0, 1.0]), np.zeros(3), up=np.array([1.0, 0.0, 0.0]))
    return {
        "add_primitive": lambda w: w.add_primitive("box", "box", (0.04, 0.04, 0.04), (0.1, 0.0, 0.1), mass=0.05),
        "add_urdf": lambda w: w.add_urdf("cube", "cube_small.urdf", (-0.1, 0.1, 0.1)),
        "add_mesh": lambda w: w.add_mesh("mesh", mesh_path, (0.0, -0.15, 0.05), mass=0.02, decompose=False),
        "has_body": lambda w: (w.has_body("box"), w.has_body("nothing")),
        "set_dynamics": lambda w: w.set_dynamics("box", -1, lateralFriction=0.5),
        "set_color": lambda w: w.set_color("box", (1.0, 0.0, 0.0, 1.0)),
        "enable_sleeping": lambda w: w.enable_sleeping("cube"),
        "wake_up": lambda w: w.wake_up("cube"),
        "set_visible": lambda w: (w.set_visible("cube", False), w.set_visible("cube", True)),
        "set_body_pose": lambda w: w.set_body_pose("box", (0.1, 0.0, 0.05), (0.0, 0.0, 0.0, 1.0)),
        "set_body_velocity": lambda w: w.set_body_velocity("box", (0.0, 0.1, 0.0)),
        "step": lambda w: w.step(24),
        "body_velocity": lambda w: w.body_velocity("box"),
        "step_until_static": lambda w: w.step_until_static(max_time=1.0),
        "body_pose": lambda w: w.body_pose("box"),
        "aabb": lambda w: w.aabb("box"),
        "contact_points": lambda w: w.contact_points("box", "plane"),
        "closest_points": lambda w: w.closest_points("box", "cube", 1.0),
        "render": lambda w: SimCamera(w, Intrinsics.from_fov(16, 12, 45.0), camera_pose).capture(),
        "remove_body": lambda w: w.remove_body("mesh"),
        "body_names": lambda w: w.body_names,
        "sim_time": lambda w: w.sim_time,
        "time_step": lambda w: w.time_step,
        "cache_dir": lambda w: w.cache_dir,
    }


def _plain(value: Any) -> Any:
    """Results as nested lists and plain scalars (msgpack turns tuples into lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def test_every_scene_protocol_member_is_served_like_in_process(
    server: tuple[subprocess.Popen, str], keys: Path, tmp_path: Path
) -> None:
    """Each SceneWorld member, called on the twin through the bridge, answers what the same call answers on an
    in-process workcell world; a member the bridge does not serve fails here."""
    mesh_path = tmp_path / "block.obj"
    trimesh.creation.box(extents=(0.03, 0.03, 0.03)).export(mesh_path)
    calls = _scene_calls(mesh_path)
    assert set(calls) == SCENE_WORLD_METHODS | SCENE_WORLD_ATTRIBUTES, "call every protocol member once"
    twin = SimTwin(SimTwinConfig(camera=False))
    try:
        expected = {name: _plain(call(twin.world)) for name, call in calls.items()}
    finally:
        twin.close()
    with _client(server[1], keys) as robot:
        robot.reset_twin()
        assert isinstance(robot.twin, SceneWorld)
        assert not {"reset", "close", "reset_simulation"} & set(dir(robot.twin))
        actual = {name: _plain(call(robot.twin)) for name, call in calls.items()}
    for name in calls:
        assert actual[name] == expected[name], name


def test_workcell_over_the_bridge_must_match_the_served_robot(
    server: tuple[subprocess.Popen, str], hand_server: tuple[subprocess.Popen, str], keys: Path
) -> None:
    with pytest.raises(ValueError, match=r"serves a 'panda' workcell, not 'floating-hand'.*--twin.robot floating-hand"):
        make_workcell("floating-hand", backend="bridge", address=server[1], keys=keys)
    with pytest.raises(ValueError, match=r"serves a 'floating-hand' workcell, not 'panda'"):
        make_workcell("panda", backend="bridge", address=hand_server[1], keys=keys)
    cell = make_workcell("floating-hand", backend="bridge", address=hand_server[1], keys=keys, timeout_s=10.0)
    try:
        assert cell.robot.is_connected and cell.robot.name == "hand"
        assert cell.world.body_names == ["plane", "hand"]
        assert "hand.joints.pos" in cell.robot.action_features and "joints.pos" not in cell.robot.action_features
        with pytest.raises(FeatureNotSupportedError, match="gripper_max_width"):
            _ = cell.robot.gripper_max_width
    finally:
        cell.close()
    with _client(server[1], keys) as robot, pytest.raises(FeatureNotSupportedError, match="home_hand_joints"):
        _ = robot.home_hand_joints


def scripted_hand_grasp(robot: Robot, scene: Any) -> tuple[list[dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """Lower the floating hand over a box and curl the fingers; returns (applied actions, final observation's
    tcp.pose + hand joints + wrench, final box pose (7,))."""
    scene.add_primitive("box", "box", (0.05, 0.05, 0.05), (0.1, 0.0, 0.025), mass=0.05)
    recorder = ActionRecorder(robot)
    recorder.connect()
    home = recorder.get_observation()["tcp.pose"]
    move_to_pose(recorder, home[:3] + np.array([0.0, 0.0, -0.15]), home[3:])
    lower, upper = recorder.hand_joint_limits
    move_hand_joints(recorder, np.clip(recorder.home_hand_joints + 0.5, lower, upper), settle_periods=5)
    obs = recorder.get_observation()
    state = np.concatenate([obs["tcp.pose"], obs["hand.joints.pos"], obs["wrench"]])
    return recorder.applied, state, np.concatenate(scene.body_pose("box"))


def test_hand_identity_with_in_process_twin(hand_server: tuple[subprocess.Popen, str], keys: Path) -> None:
    twin = SimTwin(SimTwinConfig(robot="floating-hand", camera=False))
    try:
        expected = scripted_hand_grasp(twin.robot, twin.world)
    finally:
        twin.close()
    with _client(hand_server[1], keys) as robot:
        robot.reset_twin()
        actual = scripted_hand_grasp(robot, robot.twin)
    assert len(actual[0]) == len(expected[0]) > 10
    for got, want in zip(actual[0], expected[0]):
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    np.testing.assert_array_equal(actual[1], expected[1])
    np.testing.assert_array_equal(actual[2], expected[2])


# ---------------------------------------------------------------------------- safety through the bridge
def test_server_rejects_nan_and_keeps_arm_in_box(server: tuple[subprocess.Popen, str], keys: Path) -> None:
    lo, hi = np.array([-0.45, -0.45, 0.005]), np.array([0.35, 0.45, 0.6])  # SafetyConfig defaults
    with _client(server[1], keys) as robot:
        robot.reset_twin()
        quat = robot.get_observation()["tcp.pose"][3:]
        # bypass the client's own checks: the server must refuse by itself
        with pytest.raises(ValueError, match="NaN or inf"):
            robot._call("send_action", action={"tcp.pose": np.array([0.0, 0.0, np.nan, 0, 0, 0, 1])})
        with pytest.raises(ValueError, match="must have shape"):
            robot._call("send_action", action={"joints.pos": np.zeros(3)})
        with pytest.raises(ValueError, match="unknown action keys"):
            robot._call("send_action", action={"teleport": 1.0})
        with pytest.raises(ValueError, match="send_action needs params"):
            robot._call("send_action", action=[1, 2, 3])
        for target in ([0.0, 0.0, -0.5], [1.5, 0.0, 0.3], [0.0, 0.9, 0.3]):
            for _ in range(25):
                applied = robot.send_action({"tcp.pose": np.concatenate([target, quat])})
                assert np.all(applied["tcp.pose"][:3] >= lo) and np.all(applied["tcp.pose"][:3] <= hi)
                position = robot.get_observation()["tcp.pose"][:3]
                assert np.all(position >= lo - 0.01) and np.all(position <= hi + 0.01), position


# ---------------------------------------------------------------------------- faults
def test_unknown_client_key_refused(server: tuple[subprocess.Popen, str], keys: Path, tmp_path: Path) -> None:
    rogue = tmp_path / "rogue"
    generate_keys(rogue)
    shutil.copyfile(keys / "server.key", rogue / "server.key")  # knows the server, but is not authorised
    robot = _client(server[1], rogue, timeout_s=30.0)
    start = time.monotonic()
    with pytest.raises(BridgeAuthError, match="refused this client's key"):
        robot.connect()
    assert time.monotonic() - start < 15.0  # reported from the handshake, not by waiting out the 30 s timeout
    with _client(server[1], keys) as good:
        good.get_observation()


def test_second_client_cannot_take_the_arm(server: tuple[subprocess.Popen, str], keys: Path) -> None:
    with _client(server[1], keys) as first:
        second = _client(server[1], keys)
        with pytest.raises(SessionError, match="another client holds the robot session"):
            second.connect()
        first.get_observation()


def _random_object(rng: np.random.Generator, depth: int = 0) -> Any:
    kind = int(rng.integers(0, 8 if depth < 3 else 5))
    if kind == 0:
        return int(rng.integers(-(2**62), 2**62))
    if kind == 1:
        return float(rng.normal()) if rng.random() < 0.8 else float(rng.choice([np.nan, np.inf, -np.inf]))
    if kind == 2:
        return rng.bytes(int(rng.integers(0, 40))).decode("latin-1")
    if kind == 3:
        return rng.bytes(int(rng.integers(0, 40)))
    if kind == 4:
        return [None, True, False][int(rng.integers(0, 3))]
    if kind == 5:
        return [_random_object(rng, depth + 1) for _ in range(int(rng.integers(0, 5)))]
    if kind == 6:
        return {str(_random_object(rng, 3)): _random_object(rng, depth + 1) for _ in range(int(rng.integers(0, 5)))}
    return msgpack.ExtType(int(rng.integers(0, 3)), rng.bytes(int(rng.integers(0, 30))))


def _random_action(rng: np.random.Generator) -> Any:
    key = ["tcp.pose", "joints.pos", "gripper.width", "wrench", "x"][int(rng.integers(0, 5))]
    shape = [(7,), (3,), (), (2, 7), (0,)][int(rng.integers(0, 5))]
    value = rng.normal(size=shape) * 10 ** rng.uniform(-3, 3)
    if rng.random() < 0.5 and value.size:
        value.flat[0] = [np.nan, np.inf, -np.inf][int(rng.integers(0, 3))]
    return {key: value} if rng.random() < 0.9 else _random_object(rng)


SESSION_METHODS = ["hello", "heartbeat", "bye", "send_action", "home", "halt", "stream", "twin.reset",
                   "twin.call_world", "twin.world", "twin.__init__", "__class__", "", "describe\0", "nope"]


def _fuzz_message(rng: np.random.Generator, index: int) -> list[bytes]:
    """One malformed or unauthorised request (never one the server may accept)."""
    kind = index % 7
    if kind == 0:
        return [rng.bytes(int(rng.integers(0, 200)))]
    if kind == 1:
        return [msgpack.packb(_random_object(rng))]
    if kind == 2:
        method = SESSION_METHODS[int(rng.integers(0, len(SESSION_METHODS)))]
        return [encode({"id": index, "method": method, "params": _random_object(rng, 2), "session": rng.bytes(16)})]
    if kind == 3:
        params = {"action": _random_action(rng)}
        return [encode({"id": index, "method": "send_action", "params": params, "session": rng.bytes(16)})]
    if kind == 4:
        bad_array = msgpack.ExtType(1, msgpack.packb([["<f8", "|O", "<c16", 3][int(rng.integers(0, 4))],
                                                      [int(rng.integers(-2, 5))], rng.bytes(int(rng.integers(0, 40)))]))
        return [msgpack.packb({"id": index, "method": "describe", "params": {"x": bad_array}})]
    if kind == 5:
        return [rng.bytes(int(rng.integers(0, 20))) for _ in range(int(rng.integers(2, 4)))]
    bad_ids = ["7", True, None, 1.5, [1]]
    return [msgpack.packb({"id": bad_ids[int(rng.integers(0, len(bad_ids)))], "method": "describe", "params": {}})]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to read the server's memory")
def test_fuzzed_messages_rejected_server_keeps_serving(server: tuple[subprocess.Popen, str], keys: Path) -> None:
    process, endpoint = server
    client_keys = load_client_keys(keys)
    rng = np.random.default_rng(0)
    with zmq.Context() as context, _client(endpoint, keys) as good:
        raw = context.socket(zmq.DEALER)
        raw.curve_secretkey, raw.curve_publickey = client_keys.secret, client_keys.public
        raw.curve_serverkey = client_keys.server_public
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(endpoint)
        hold = {"joints.pos": good.get_observation()["joints.pos"]}
        rss_before = None
        total, batch = 10_000, 250
        for start in range(0, total, batch):
            for index in range(start, start + batch):
                raw.send_multipart(_fuzz_message(rng, index))
            for _ in range(batch):
                assert raw.poll(5000), "the server stopped answering"
                reply = decode(raw.recv())
                assert reply["ok"] is False and reply["error"]["type"] and reply["error"]["message"]
            if (start + batch) % 1000 == 0:
                good.send_action(hold)
                assert set(good.get_observation()) >= {"tcp.pose", "joints.pos"}
                if rss_before is None:  # after a warm-up of 1000 messages
                    rss_before = _rss_kib(process.pid)
        growth_kib = _rss_kib(process.pid) - rss_before
        raw.close()
        assert growth_kib < 8 * 1024, f"server memory grew by {growth_kib} KiB"


def test_server_killed_mid_episode_raises_within_timeout(keys: Path) -> None:
    args = ["--keys", str(keys), "--bind", "tcp://127.0.0.1:0", "--safety.on-violation", "refuse"]
    with server_process(args) as (process, endpoint):
        robot = _client(endpoint, keys, timeout_s=5.0)  # generous while the server lives (a busy machine)
        robot.connect()
        pose = robot.get_observation()["tcp.pose"]
        with pytest.raises(SafetyViolationError, match="outside the workspace box"):
            robot.send_action({"tcp.pose": np.concatenate([[0.0, 0.0, -0.3], pose[3:]])})
        for i in range(5):
            robot.send_action({"tcp.pose": pose + np.array([0.002 * i, 0, 0, 0, 0, 0, 0])})
        robot.timeout_s = 0.5  # what the bounds below are about: a dead server is noticed within the timeout
        process.kill()
        process.wait()
        start = time.monotonic()
        with pytest.raises(BridgeTimeoutError, match=endpoint):
            robot.send_action({"tcp.pose": pose})
        # noticed within the timeout (twice: a heartbeat in flight may hold the socket first), with a margin for a busy
        # machine: the bound is that it does not hang
        assert time.monotonic() - start < 2 * 0.5 + 4.0
        start = time.monotonic()
        robot.disconnect()  # must not hang either
        assert time.monotonic() - start < 2 * 0.5 + 4.0
        assert not robot.is_connected


def test_client_killed_watchdog_halts_and_server_accepts_new_client(
    server: tuple[subprocess.Popen, str], keys: Path
) -> None:
    """Behaviour, with a margin for a busy machine; the release time itself is measured by ``manipstack bench
    bridge`` (about the 0.1 s watchdog timeout plus the halt on an idle machine)."""
    result = watchdog_release(server[1], keys, limit_s=20.0)
    assert result["joint_speed_while_moving_radps"] > 0.1
    assert result["watchdog_release_s"] < 10.0, result
    assert result["joint_speed_after_release_radps"] < 0.02, result
