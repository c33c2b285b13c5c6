"""FMB franka_server HTTP backend and its stand-in: FMB's protocol, reset semantics, frames, gripper widths,
concurrency, bad server answers, and the safety layer at FMB's reset pose.

FMB's protocol as this file states it was read from rail-berkeley/fmb (``robot_infra/franka_server.py`` and the
client ``robot_infra/envs/franka_fmb_env.py``); the tables below are written from that, independently of the
constants in ``envs/robots/real/fmb_franka.py``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from manipstack.envs.robots import make_robot
from manipstack.envs.robots.motion import move_to_pose
from manipstack.envs.robots.real.fmb_franka import (
    FmbFrankaConfig,
    FmbFrankaHttp,
    RobotCommunicationError,
    RobotResetError,
)
from manipstack.envs.robots.real.fmb_standin import FmbStandinServer
from manipstack.envs.robots.real.keys import generate_keys
from manipstack.envs.robots.real.safety import SafetyConfig, SafetyLayer, SafetyViolationError
from manipstack.envs.robots.real.server import server_process
from manipstack.envs.robots.sim.panda import SimPandaConfig

pytestmark = pytest.mark.timeout(60)

# FMB's franka_server, from its source: JSON read routes -> keys, text command routes -> answers.
FMB_READS = {"getpos": ["pose"], "getvel": ["vel"], "getforce": ["force"], "gettorque": ["torque"],
             "getq": ["q"], "getdq": ["dq"], "getjacobian": ["jacobian"], "get_gripper": ["gripper"],
             "getstate": ["pose", "vel", "force", "torque", "q", "dq", "jacobian", "gripper"]}
FMB_SHAPES = {"pose": (7,), "vel": (6,), "force": (3,), "torque": (3,), "q": (7,), "dq": (7,), "jacobian": (6, 7),
              "gripper": ()}
FMB_COMMANDS = {"clearerr": "Clear", "precision_mode": "Precision", "compliance_mode": "Compliance",
                "open_gripper": "Opened", "close_gripper": "Closed", "stopimp": "Stopped impedance",
                "startimp": "Started impedance", "jointreset": "Reset Joint"}
FMB_RESET_JOINTS = [-0.07, -0.1, 0.0, -2.5, -0.1, 2.5, -0.6]
FMB_WORKSPACE_BASE = ((0.3, -0.35, 0.02), (0.82, 0.3, 0.4))  # union of FMB's client bounding boxes, base frame
README_SAFETY = SafetyConfig(on_violation="refuse", allow_joint_commands=False,
                             workspace_min=(-0.45, -0.45, 0.005), workspace_max=(0.35, 0.45, 0.6))


@pytest.fixture(scope="module")
def standin() -> Iterator[FmbStandinServer]:
    with FmbStandinServer(time_scale=0.05) as server:  # FMB's fixed waits (a 13 s reset) 20 times faster
        yield server


def _robot(standin: FmbStandinServer, **overrides: Any) -> FmbFrankaHttp:
    """The backend on the stand-in; requests wait 5 s (FMB's default 1 s) unless a test is about timeouts: the
    stand-in's sim answers slowly when other jobs load the cores."""
    settings = {"url": standin.url, "control_period_s": 0.02, "min_gripper_interval_s": 0.1, "timeout_s": 5.0,
                **overrides}
    return make_robot("fmb-franka-http", **settings)


def _post(url: str, route: str, **kwargs: Any) -> requests.Response:
    return requests.post(f"{url}/{route}", timeout=10.0, **kwargs)


# ------------------------------------------------------------------ configuration
def test_config_validation() -> None:
    for url in ("robot-pc:5000", "http://", "http://robot-pc:99999", "ftp://robot-pc:5000"):
        with pytest.raises(ValueError, match="url must look like http://HOST:PORT"):
            FmbFrankaConfig(url=url)
    with pytest.raises(ValueError, match="gripper_close_below_m must lie between"):
        FmbFrankaConfig(gripper_close_below_m=0.2)
    with pytest.raises(ValueError, match="base_pose_world must be 7 values"):
        FmbFrankaConfig(base_pose_world=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0))
    with pytest.raises(ValueError, match="home_joints needs 7 finite values"):
        FmbFrankaConfig(home_joints=(0.0,) * 6)
    defaults = FmbFrankaConfig()
    assert list(defaults.home_joints) == FMB_RESET_JOINTS and defaults.gripper_open_width_m == 0.09
    assert defaults.base_pose_world[:3] == SimPandaConfig().base_position  # the project's workcell placement


# ------------------------------------------------------------------ the stand-in speaks FMB's protocol
def test_every_fmb_route_answers_with_fmbs_keys(standin: FmbStandinServer) -> None:
    for route, keys in FMB_READS.items():
        response = _post(standin.url, route)
        assert response.status_code == 200, route
        body = response.json()
        assert sorted(body) == sorted(keys), route
        for key in keys:
            assert np.asarray(body[key], dtype=float).shape == FMB_SHAPES[key], (route, key)
    pose = _post(standin.url, "getpos").json()["pose"]
    assert _post(standin.url, "pose", json={"arr": pose}).text == "Moved"
    for route, answer in FMB_COMMANDS.items():
        assert _post(standin.url, route).text == answer, route
    assert len(FMB_READS) + len(FMB_COMMANDS) + 1 == 18  # every route of FMB's server
    assert requests.get(f"{standin.url}/getstate", timeout=10.0).status_code == 405  # POST only, as Flask
    assert _post(standin.url, "gripper_pos").status_code == 404
    assert _post(standin.url, "pose", json={"arr": pose[:6]}).status_code == 500  # FMB's assert len == 7


def test_standin_reports_base_frame_external_wrench_and_jacobian(standin: FmbStandinServer) -> None:
    _post(standin.url, "jointreset")
    state = _post(standin.url, "getstate").json()
    np.testing.assert_allclose(state["q"], FMB_RESET_JOINTS, atol=0.01)
    x, y, z = state["pose"][:3]
    assert 0.45 < x < 0.55 and abs(y) < 0.1 and 0.15 < z < 0.3  # FMB's reset pose, robot base frame
    np.testing.assert_allclose(state["force"] + state["torque"], 0.0, atol=1e-6)  # nothing touched: no wrench
    np.testing.assert_allclose(state["vel"], np.reshape(state["jacobian"], (6, 7)) @ state["dq"], atol=1e-9)
    # the zero Jacobian predicts the TCP displacement of a small joint step (base frame)
    with standin.lock:
        jacobian = standin._tcp_jacobian(np.array(state["q"]))
        standin._kinematics.reset_joints("panda", range(7), np.array(state["q"]) + 1e-4)
        moved = standin._kinematics.link_pose("panda", 11)[0] - np.array(standin.robot.config.base_position)
    np.testing.assert_allclose(moved - state["pose"][:3], jacobian[:3] @ np.full(7, 1e-4), atol=1e-6)


def test_standin_gripper_widths(standin: FmbStandinServer) -> None:
    _post(standin.url, "close_gripper")
    deadline = time.monotonic() + 10.0
    while _post(standin.url, "get_gripper").json()["gripper"] > 0.012 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 0.008 < _post(standin.url, "get_gripper").json()["gripper"] <= 0.012  # FMB grasps toward 0.01 m
    _post(standin.url, "open_gripper")


def test_fmb_style_client_runs_against_the_standin(standin: FmbStandinServer) -> None:
    """The calls FMB's client env makes (reset, go_to_rest, step), parsed the way it parses them."""
    url = standin.url

    def update_state() -> dict[str, np.ndarray]:
        state = _post(url, "getstate").json()
        parsed = {key: np.array(state[key]) for key in ("pose", "vel", "force", "torque", "q", "dq")}
        parsed["jacobian"] = np.reshape(np.array(state["jacobian"]), (6, 7))
        parsed["gripper"] = np.array(state["gripper"])
        return parsed

    def send_pose(pose: np.ndarray) -> None:
        _post(url, "clearerr")
        _post(url, "pose", json={"arr": np.asarray(pose).astype(np.float32).tolist()})

    _post(url, "open_gripper")  # on construction with start_gripper=0
    _post(url, "precision_mode")  # reset()
    start = update_state()["pose"]
    goal = start.copy()
    goal[2] = 0.3  # go_to_rest lifts to z = 0.3 m (base frame), at most 0.07 m per 0.1 s step
    for _ in range(50):
        current = update_state()["pose"]
        delta = goal - current
        if np.linalg.norm(delta[:3]) < 0.03:
            break
        delta[:3] *= min(1.0, 0.07 / np.linalg.norm(delta[:3]))
        send_pose(current + delta)
        time.sleep(0.1)
    assert abs(update_state()["pose"][2] - 0.3) < 0.03
    _post(url, "compliance_mode")
    state = update_state()  # step(): a 2 cm move in x and a gripper toggle
    send_pose(state["pose"] + np.array([0.02, 0, 0, 0, 0, 0, 0]))
    _post(url, "close_gripper")
    time.sleep(0.3)
    assert update_state()["pose"][0] > state["pose"][0] + 0.005
    _post(url, "open_gripper")
    assert "precision_mode" in standin.modes and "compliance_mode" in standin.modes


def test_two_clients_at_once_both_get_answers() -> None:
    with FmbStandinServer(time_scale=0.3) as standin, \
            socket.create_connection(standin.address) as idle:  # holds a connection open
        idle.sendall(b"POST /getstate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")  # answered; the connection stays open (keep-alive)
        reset = threading.Thread(target=_post, args=(standin.url, "jointreset"))
        reset.start()  # another client's /jointreset blocks for >= 3.6 s
        with _robot(standin) as first, _robot(standin) as second:  # two backends at once, both answered
            first.get_observation()
            second.get_observation()
            assert reset.is_alive()
        reset.join(timeout=30.0)
        assert not reset.is_alive()
        assert [route for _, route in standin.requests].count("jointreset") == 1


def test_silent_connection_is_dropped_after_the_request_timeout() -> None:
    with FmbStandinServer(request_timeout_s=0.3) as standin, socket.create_connection(standin.address) as silent:
        silent.settimeout(10.0)
        started = time.monotonic()
        assert silent.recv(1024) == b""  # closed by the server, not left holding a thread
        assert time.monotonic() - started < 5.0


# ------------------------------------------------------------------ backend against the stand-in
def test_observation_in_world_frame_and_fmb_base_frame(standin: FmbStandinServer) -> None:
    with _robot(standin) as robot, _robot(standin, base_pose_world=(0, 0, 0, 0, 0, 0, 1)) as base_robot:
        world_pose = robot.get_observation()["tcp.pose"]
        fmb = robot.fmb_state()
        np.testing.assert_allclose(world_pose[:3], fmb["pose"][:3] + np.array([-0.55, 0.0, 0.0]), atol=1e-3)
        np.testing.assert_allclose(base_robot.get_observation()["tcp.pose"][:3], fmb["pose"][:3], atol=1e-3)
        obs = robot.get_observation()
        assert obs["jacobian"].shape == (6, 7) and obs["tcp.vel"].shape == (6,)
    turned = FmbFrankaHttp(url=standin.url, base_pose_world=(0.1, 0.2, 0.3, 0.0, 0.0, np.sin(0.4), np.cos(0.4)))
    pose = np.array([0.5, 0.1, 0.2, 1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(turned.base_from_world(turned.world_from_base(pose)), pose, atol=1e-12)


def test_gripper_widths_and_one_second_spacing(standin: FmbStandinServer) -> None:
    now = [0.0]  # an injected clock that only sleeping advances

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with _robot(standin, min_gripper_interval_s=1.0, control_period_s=0.01, clock=lambda: now[0],
                sleep=sleep) as robot:
        first = robot.send_action({"gripper.width": 0.0})
        robot.send_action({"gripper.width": 0.0})  # unchanged: no request
        second = robot.send_action({"gripper.width": robot.gripper_max_width})
        assert float(first["gripper.width"]) == 0.01  # FMB's grasp width
        assert float(second["gripper.width"]) == 0.09 == robot.gripper_max_width  # FMB's --gripper_dist
        assert now[0] >= 1.0  # three 0.01 s periods, plus the wait for 1 s since the close was answered
    gripper = [route for _, route in standin.requests if route.endswith("_gripper")][-2:]
    assert gripper == ["close_gripper", "open_gripper"]


def test_connect_clears_errors_and_sets_impedance_mode(standin: FmbStandinServer) -> None:
    standin.modes.clear()
    with _robot(standin, impedance_mode="precision"):
        pass
    assert standin.modes == ["clearerr", "precision_mode"]


def test_move_to_pose_and_home(standin: FmbStandinServer) -> None:
    with _robot(standin) as robot:
        start = robot.get_observation()["tcp.pose"]
        goal = start[:3] + np.array([0.03, -0.02, -0.03])
        assert move_to_pose(robot, goal, start[3:], position_tol_m=0.002)
        np.testing.assert_allclose(robot.get_observation()["tcp.pose"][:3], goal, atol=0.002)
        robot.home()
        np.testing.assert_allclose(robot.get_observation()["joints.pos"], FMB_RESET_JOINTS, atol=0.02)
        assert float(robot.get_observation()["gripper.width"]) > 0.07  # home opens the gripper


def test_home_with_a_long_jointreset_sends_exactly_one_request() -> None:
    """The issue's case scaled by 0.5: a request timeout with 2 retries against a reset taking more than 10
    times as long (FMB's 13 s against the old 1 s) must still send one /jointreset."""
    with FmbStandinServer(time_scale=0.5) as standin:  # the reset takes >= 6 s
        away = _post(standin.url, "getstate").json()["pose"]
        away[1] += 0.05
        away[2] += 0.05
        for _ in range(20):  # leave the reset pose (plain requests with a long timeout: a busy machine is slow)
            _post(standin.url, "pose", json={"arr": away})
        with _robot(standin, timeout_s=0.5, retries=2, jointreset_timeout_s=30.0) as robot:
            started = time.monotonic()
            robot.home()
            assert time.monotonic() - started >= 5.0  # >= 10 x timeout_s
            np.testing.assert_allclose(robot.get_observation()["joints.pos"], FMB_RESET_JOINTS, atol=0.02)
        assert [route for _, route in standin.requests].count("jointreset") == 1
        assert standin.overlapping_jointresets == 0


def test_jointreset_timeout_is_not_retried_and_blocks_a_second_home() -> None:
    with FmbStandinServer(time_scale=0.1) as standin:  # the reset takes >= 1.2 s
        with _robot(standin, jointreset_timeout_s=0.3, retries=2) as robot:
            with pytest.raises(RobotCommunicationError, match="jointreset.*may still be running"):
                robot.home()
            with pytest.raises(RobotResetError, match="may still be running"):
                robot.home()
        deadline = time.monotonic() + 20.0
        while standin.resetting and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [route for _, route in standin.requests].count("jointreset") == 1
        assert standin.overlapping_jointresets == 0


def test_home_fails_clearly_when_home_joints_are_not_fmbs_target(standin: FmbStandinServer) -> None:
    with _robot(standin, home_joints=SimPandaConfig().home_joints) as robot:
        with pytest.raises(RobotResetError, match="from home_joints"):
            robot.home()


# ------------------------------------------------------------------ safety at FMB's reset pose
@pytest.mark.parametrize("safety", [SafetyConfig(), README_SAFETY], ids=["defaults", "readme-command"])
def test_holding_the_measured_pose_at_fmbs_reset_passes_safety_unchanged(
    standin: FmbStandinServer, safety: SafetyConfig
) -> None:
    _post(standin.url, "jointreset")
    robot = SafetyLayer(_robot(standin), safety)
    with robot:
        sent = []
        backend_send = robot.inner.send_action
        robot.inner.send_action = lambda action: sent.append(action["tcp.pose"].copy()) or backend_send(action)
        measured = robot.get_observation()["tcp.pose"]
        applied = robot.send_action({"tcp.pose": measured})
        assert np.array_equal(sent[0], measured) and not robot.clamp_events
        np.testing.assert_allclose(applied["tcp.pose"], measured, atol=1e-12)
        # FMB's whole base-frame workspace lies inside the box once placed in the world frame
        for corner in np.array(np.meshgrid(*zip(*FMB_WORKSPACE_BASE))).reshape(3, -1).T:
            world = robot.inner.world_from_base(np.concatenate([corner, [1.0, 0.0, 0.0, 0.0]]))[:3]
            assert np.all(world >= safety.workspace_min) and np.all(world <= safety.workspace_max), corner


# ------------------------------------------------------------------ bad answers from the server
class _FakeServer:
    """An HTTP server answering /getstate with whatever a test sets (``answer``), recording every route."""

    def __init__(self) -> None:
        self.answer: tuple[int, Any] = (200, {})
        self.hang = threading.Event()
        self.release = threading.Event()
        self.routes: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                route = self.path.strip("/")
                fake.routes.append(route)
                if fake.hang.is_set():
                    fake.release.wait(5.0)
                status, body = fake.answer if route == "getstate" else (200, "ok")
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out on a hanging answer
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def fake() -> Iterator[_FakeServer]:
    server = _FakeServer()
    yield server
    server.close()


def _good_state() -> dict[str, Any]:
    return {"pose": [0.5, 0.0, 0.2, 1.0, 0.0, 0.0, 0.0], "vel": [0.0] * 6, "force": [0.0] * 3, "torque": [0.0] * 3,
            "q": FMB_RESET_JOINTS, "dq": [0.0] * 7, "jacobian": np.zeros((6, 7)).tolist(), "gripper": 0.08}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.pop("vel"), r"/getstate answer lacks FMB's keys \['vel'\]"),
        (lambda s: s.update(q=FMB_RESET_JOINTS[:6]), r"/getstate key 'q' has shape \(6,\), FMB sends \(7,\)"),
        (lambda s: s.update(jacobian=[0.0] * 42), r"/getstate key 'jacobian' has shape \(42,\)"),
        (lambda s: s.update(pose=[0.5, 0, 0.2, 1, 0, 0, float("nan")]), r"/getstate key 'pose' holds NaN"),
        (lambda s: s.update(gripper="open"), r"/getstate key 'gripper' is not numeric"),
        (lambda s: s.update(gripper_pos=s.pop("gripper")), r"lacks FMB's keys \['gripper'\]"),
    ],
    ids=["missing-key", "wrong-length", "flat-jacobian", "nan", "not-numeric", "old-key-name"],
)
def test_bad_state_raises_one_clear_error_and_commands_nothing(fake: _FakeServer, mutate, message: str) -> None:
    fake.answer = (200, _good_state())
    robot = SafetyLayer(FmbFrankaHttp(url=fake.url, control_period_s=0.01), SafetyConfig())
    robot.connect()
    state = _good_state()
    mutate(state)
    fake.answer = (200, state)
    with pytest.raises(RobotCommunicationError, match=message):
        robot.send_action({"tcp.pose": np.array([0.0, 0.0, 0.2, 1.0, 0.0, 0.0, 0.0])})
    assert "pose" not in fake.routes  # the arm is never commanded from a half-parsed state
    robot.disconnect()


@pytest.mark.parametrize(
    ("answer", "message"),
    [((500, "<title>500 Internal Server Error</title>"), "getstate answered HTTP 500"),
     ((200, "not json"), "/getstate answered non-JSON"),
     ((200, [1, 2, 3]), "/getstate answered list, not FMB's JSON object")],
    ids=["http-500", "not-json", "not-an-object"],
)
def test_bad_answers_fail_connect_with_one_clear_error(fake: _FakeServer, answer: tuple, message: str) -> None:
    fake.answer = answer
    robot = FmbFrankaHttp(url=fake.url)
    with pytest.raises(RobotCommunicationError, match=message):
        robot.connect()
    assert not robot.is_connected and fake.routes.count("getstate") == 1  # an answer is not retried


def test_hanging_server_reads_retried_commands_sent_once(fake: _FakeServer) -> None:
    fake.answer = (200, _good_state())
    robot = FmbFrankaHttp(url=fake.url, timeout_s=0.2, retries=2, retry_backoff_s=0.01, control_period_s=0.01)
    robot.connect()
    fake.hang.set()
    start = time.monotonic()
    with pytest.raises(RobotCommunicationError, match=r"getstate failed after 3 attempt\(s\): no answer within 0.2 s"):
        robot.get_observation()
    with pytest.raises(RobotCommunicationError, match="pose failed after 1 attempt.*sent once"):
        robot.send_action({"tcp.pose": np.array([0.0, 0.0, 0.2, 1.0, 0.0, 0.0, 0.0])})
    assert time.monotonic() - start < 5.0
    assert fake.routes.count("getstate") == 4 and fake.routes.count("pose") == 1
    robot.disconnect()


def test_unreachable_server_fails_after_retries() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    robot = FmbFrankaHttp(url=f"http://127.0.0.1:{port}", retries=2, retry_backoff_s=0.01, timeout_s=0.2)
    with pytest.raises(RobotCommunicationError, match="clearerr failed after 1 attempt.*cannot connect"):
        robot.connect()
    assert not robot.is_connected
    assert isinstance(RobotCommunicationError("x"), ConnectionError)


# ------------------------------------------------------------------ behind the bridge
def test_bridge_serves_fmb_backend_with_the_readme_command(standin: FmbStandinServer, tmp_path: Path) -> None:
    generate_keys(tmp_path)
    args = ["--keys", str(tmp_path), "--bind", "tcp://127.0.0.1:0", "--backend", "fmb-franka-http",
            "--fmb.url", standin.url, "--fmb.control-period-s", "0.02", "--safety.on-violation", "refuse",
            "--safety.no-allow-joint-commands", "--safety.workspace-min", "-0.45", "-0.45", "0.005",
            "--safety.workspace-max", "0.35", "0.45", "0.6"]
    with server_process(args) as (_, endpoint):
        with make_robot("bridge", address=endpoint, keys=tmp_path, timeout_s=10.0) as robot:
            assert set(robot.action_features) == {"tcp.pose", "gripper.width"}
            pose = robot.get_observation()["tcp.pose"]
            applied = robot.send_action({"tcp.pose": pose})  # holding still is not refused
            np.testing.assert_allclose(applied["tcp.pose"], pose, atol=1e-12)
            target = pose + np.array([0.0, 0.01, 0.0, 0, 0, 0, 0])
            applied = robot.send_action({"tcp.pose": target})
            np.testing.assert_allclose(applied["tcp.pose"], target, atol=1e-12)
            with pytest.raises(SafetyViolationError, match="outside the workspace box"):
                robot.send_action({"tcp.pose": np.concatenate([[0.0, 0.0, -1.0], pose[3:]])})
