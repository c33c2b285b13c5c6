"""FMB franka_server HTTP backend against the stand-in server over the sim Panda (and behind the bridge)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from manipstack.envs.robots import make_robot
from manipstack.envs.robots.motion import move_to_pose
from manipstack.envs.robots.real.fmb_franka import FmbFrankaConfig, FmbFrankaHttp, RobotCommunicationError
from manipstack.envs.robots.real.fmb_standin import FmbStandinServer
from manipstack.envs.robots.real.keys import generate_keys
from manipstack.envs.robots.real.server import server_process
from manipstack.envs.robots.sim.panda import SimPandaConfig

pytestmark = pytest.mark.timeout(60)
HOME = SimPandaConfig().home_joints


@pytest.fixture(scope="module")
def standin() -> Iterator[FmbStandinServer]:
    with FmbStandinServer() as server:
        yield server


def _robot(standin: FmbStandinServer, **overrides: object) -> FmbFrankaHttp:
    settings = {"url": standin.url, "control_period_s": 0.02, "home_joints": HOME, **overrides}
    return make_robot("fmb-franka-http", **settings)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="url must start with http"):
        FmbFrankaConfig(url="robot-pc:5000")
    with pytest.raises(ValueError, match="gripper_close_below_m"):
        FmbFrankaConfig(gripper_close_below_m=0.2)


def test_gripper_commands_spaced_by_one_second(standin: FmbStandinServer) -> None:
    with _robot(standin, control_period_s=0.01) as robot:  # default min_gripper_interval_s = 1.0
        assert robot.config.min_gripper_interval_s == 1.0
        first = robot.send_action({"gripper.width": 0.0})
        robot.send_action({"gripper.width": 0.0})  # unchanged: no request
        second = robot.send_action({"gripper.width": 0.08})
        assert float(first["gripper.width"]) == 0.0 and float(second["gripper.width"]) == 0.08
    gripper = [(t, route) for t, route in standin.requests if route.endswith("_gripper")][-2:]
    assert [route for _, route in gripper] == ["close_gripper", "open_gripper"]
    assert gripper[1][0] - gripper[0][0] >= 1.0


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
        np.testing.assert_allclose(robot.get_observation()["joints.pos"], HOME, atol=0.02)
    assert any(route == "jointreset" for _, route in standin.requests)


def test_unreachable_server_fails_after_retries() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    robot = FmbFrankaHttp(url=f"http://127.0.0.1:{port}", retries=2, retry_backoff_s=0.01, timeout_s=0.2)
    with pytest.raises(RobotCommunicationError, match="failed after 3 attempts"):
        robot.connect()
    assert not robot.is_connected


def test_silent_server_times_out() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        robot = FmbFrankaHttp(url=f"http://127.0.0.1:{silent.getsockname()[1]}", retries=1, timeout_s=0.2)
        start = time.monotonic()
        with pytest.raises(RobotCommunicationError, match="within 0.2 s each"):
            robot.connect()
        assert time.monotonic() - start < 1.5


def test_bridge_serves_fmb_backend(standin: FmbStandinServer, tmp_path: Path) -> None:
    generate_keys(tmp_path)
    args = ["--keys", str(tmp_path), "--bind", "tcp://127.0.0.1:0", "--backend", "fmb-franka-http",
            "--fmb.url", standin.url, "--fmb.control-period-s", "0.02", "--fmb.home-joints", *map(str, HOME)]
    with server_process(args) as (_, endpoint):
        with make_robot("bridge", address=endpoint, keys=tmp_path) as robot:
            assert set(robot.action_features) == {"tcp.pose", "gripper.width"}
            pose = robot.get_observation()["tcp.pose"]
            target = pose + np.array([0.0, 0.01, 0.0, 0, 0, 0, 0])
            applied = robot.send_action({"tcp.pose": target})
            np.testing.assert_allclose(applied["tcp.pose"], target, atol=1e-12)
            applied = robot.send_action({"tcp.pose": np.concatenate([[0.0, 0.0, -1.0], pose[3:]])})
            assert applied["tcp.pose"][2] >= 0.005  # the safety layer runs in front of the HTTP backend too
