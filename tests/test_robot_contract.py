"""Robot-contract conformance: every backend passes the same suite.

Backends: the in-process sim Panda (plain, and behind the safety layer), the bridge client talking to a
``manipstack bridge serve --backend sim`` subprocess, and the FMB franka_server HTTP backend (behind the
safety layer, as the bridge server runs it) talking to the stand-in server over the sim Panda.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from manipstack.envs.core.camera import Intrinsics, SimCamera, look_at
from manipstack.envs.core.world import World
from manipstack.envs.robots import Feature, Robot, RobotNotConnectedError, make_robot
from manipstack.envs.robots.real.fmb_standin import FmbStandinServer
from manipstack.envs.robots.real.keys import generate_keys
from manipstack.envs.robots.real.safety import SafetyConfig, SafetyLayer
from manipstack.envs.robots.real.server import server_process
from manipstack.envs.robots.sim.panda import SimPandaConfig

pytestmark = pytest.mark.timeout(60)

STATE_KEYS = ("tcp.pose", "joints.pos", "joints.vel", "gripper.width", "wrench")
SAFETY = SafetyConfig()


@dataclass
class Case:
    """A backend under test and the bounds it promises to enforce (None: not enforced by this backend)."""

    robot: Robot
    workspace: tuple[np.ndarray, np.ndarray] | None
    joint_limits: tuple[np.ndarray, np.ndarray] | None


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("keys")
    generate_keys(directory)
    return directory


@pytest.fixture(scope="module")
def bridge_endpoint(keys) -> Iterator[str]:
    args = ["--keys", str(keys), "--bind", "tcp://127.0.0.1:0", "--twin.camera-width", "64",
            "--twin.camera-height", "48", "--stream-hz", "30"]
    with server_process(args) as (_, endpoint):
        yield endpoint


@pytest.fixture(scope="module")
def fmb_url() -> Iterator[str]:
    with FmbStandinServer() as standin:
        yield standin.url


def _sim_with_camera() -> tuple[World, Robot]:
    world = World()
    world.add_plane()
    camera = SimCamera(world, Intrinsics.from_fov(64, 48, 45.0), look_at([0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1, 0, 0]))
    return world, make_robot("sim", world=world, cameras={"top": camera})


@pytest.fixture(params=["sim", "sim+safety", "bridge", "fmb-franka-http"])
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    box = (np.array(SAFETY.workspace_min), np.array(SAFETY.workspace_max))
    panda_limits = (np.array(SAFETY.joint_lower), np.array(SAFETY.joint_upper))
    world = None
    if request.param == "sim":
        world, robot = _sim_with_camera()
        limits = (np.array([-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671]),
                  np.array([2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671]))  # URDF limits
        test_case = Case(robot, None, limits)
    elif request.param == "sim+safety":
        world, robot = _sim_with_camera()
        test_case = Case(SafetyLayer(robot, SAFETY), box, panda_limits)
    elif request.param == "bridge":
        endpoint = request.getfixturevalue("bridge_endpoint")
        robot = make_robot("bridge", address=endpoint, keys=request.getfixturevalue("keys"), timeout_s=2.0)
        test_case = Case(robot, box, panda_limits)
    else:
        url = request.getfixturevalue("fmb_url")
        backend = make_robot("fmb-franka-http", url=url, control_period_s=0.02, min_gripper_interval_s=0.1,
                             home_joints=SimPandaConfig().home_joints)
        test_case = Case(SafetyLayer(backend, SAFETY), box, None)
    try:
        yield test_case
    finally:
        test_case.robot.disconnect()
        if world is not None:
            world.close()


def test_features_valid_while_disconnected(case: Case) -> None:
    robot = case.robot
    assert not robot.is_connected
    obs_features, action_features = robot.observation_features, robot.action_features
    assert set(STATE_KEYS) <= set(obs_features)
    assert {"tcp.pose", "gripper.width"} <= set(action_features)
    assert all(isinstance(f, Feature) for f in [*obs_features.values(), *action_features.values()])
    assert obs_features["tcp.pose"].shape == (7,) and obs_features["gripper.width"].shape == ()
    with pytest.raises(RobotNotConnectedError, match="connect"):
        robot.get_observation()
    with pytest.raises(RobotNotConnectedError):
        robot.send_action({"gripper.width": 0.04})


def test_connect_disconnect_idempotent(case: Case) -> None:
    robot = case.robot
    robot.connect()
    robot.connect()
    assert robot.is_connected
    robot.disconnect()
    robot.disconnect()
    assert not robot.is_connected
    with robot:
        assert robot.is_connected
        robot.get_observation()
    assert not robot.is_connected


def test_observation_matches_features(case: Case) -> None:
    with case.robot as robot:
        obs = robot.get_observation()
        features = robot.observation_features
        assert set(obs) == set(features)
        for key, feature in features.items():
            value = np.asarray(obs[key])
            assert value.shape == feature.shape, key
            assert value.dtype == np.dtype(feature.dtype), key
            if value.dtype.kind == "f":
                assert np.all(np.isfinite(value)), key


def test_send_action_returns_applied(case: Case) -> None:
    with case.robot as robot:
        pose = robot.get_observation()["tcp.pose"]
        target = pose + np.array([0.004, -0.003, 0.0, 0, 0, 0, 0])
        applied = robot.send_action({"tcp.pose": target})
        assert set(applied) == {"tcp.pose"}
        np.testing.assert_allclose(applied["tcp.pose"][:3], target[:3], atol=1e-9)
        applied = robot.send_action({"gripper.width": robot.gripper_max_width})
        assert set(applied) == {"gripper.width"}
        assert applied["gripper.width"].shape == ()
        assert 0.0 <= float(applied["gripper.width"]) <= robot.gripper_max_width


def test_malformed_actions_rejected(case: Case) -> None:
    with case.robot as robot:
        pose = robot.get_observation()["tcp.pose"]
        with pytest.raises(ValueError, match="NaN or inf"):
            robot.send_action({"tcp.pose": np.full(7, np.nan)})
        with pytest.raises(ValueError, match="NaN or inf"):
            robot.send_action({"gripper.width": np.inf})
        with pytest.raises(ValueError, match="shape"):
            robot.send_action({"tcp.pose": pose[:3]})
        with pytest.raises(ValueError, match="unknown action keys"):
            robot.send_action({"teleport": 1.0})
        np.testing.assert_allclose(robot.get_observation()["tcp.pose"][:3], pose[:3], atol=0.01)


def test_out_of_bounds_clamped(case: Case) -> None:
    with case.robot as robot:
        applied = robot.send_action({"gripper.width": 0.5})
        assert float(applied["gripper.width"]) <= robot.gripper_max_width + 1e-12
        if case.workspace is not None:
            lo, hi = case.workspace
            quat = robot.get_observation()["tcp.pose"][3:]
            for _ in range(8):
                applied = robot.send_action({"tcp.pose": np.concatenate([[2.0, -3.0, -1.0], quat])})
                assert np.all(applied["tcp.pose"][:3] >= lo - 1e-9) and np.all(applied["tcp.pose"][:3] <= hi + 1e-9)
                position = robot.get_observation()["tcp.pose"][:3]
                assert np.all(position >= lo - 0.01) and np.all(position <= hi + 0.01), position
        if case.joint_limits is not None and "joints.pos" in robot.action_features:
            lo, hi = case.joint_limits
            applied = robot.send_action({"joints.pos": robot.home_joints + 10.0})
            assert np.all(applied["joints.pos"] <= hi + 1e-9) and np.all(applied["joints.pos"] >= lo - 1e-9)


def test_cameras_give_intrinsics_and_aligned_rgbd(case: Case) -> None:
    if case.robot.observation_features.get("top.rgb") is None:
        pytest.skip(f"{case.robot.name} has no cameras")
    with case.robot as robot:
        assert set(robot.cameras) == {"top"}
        camera = robot.cameras["top"]
        frame = camera.capture()
        height, width = camera.intrinsics.height, camera.intrinsics.width
        assert frame["rgb"].shape == (height, width, 3) and frame["rgb"].dtype == np.uint8
        assert frame["depth"].shape == (height, width) and frame["depth"].dtype == np.float32
        np.testing.assert_allclose(frame["intrinsics"], camera.intrinsics.matrix)
        assert frame["extrinsics"].shape == (4, 4)
        np.testing.assert_allclose(frame["extrinsics"][:3, 3], [0.0, 0.0, 1.0], atol=1e-9)
        # the camera looks straight down from 1 m: most pixels see the table top at a depth of 1 m
        assert np.all((frame["depth"] > 0) & (frame["depth"] <= 1.0 + 1e-3))
        assert abs(float(np.median(frame["depth"])) - 1.0) < 1e-3
