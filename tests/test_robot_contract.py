"""Robot-contract conformance: every backend passes the same suite.

Backends: the in-process sim Panda (plain, and behind the safety layer), the bridge client talking to a
``manipstack bridge serve --backend sim`` subprocess, and the FMB franka_server HTTP backend (behind the
safety layer, as the bridge server runs it) talking to the stand-in server over the sim Panda; and the
floating dexterous hand in-process (plain, and behind the safety layer) and over the bridge
(``--twin.robot floating-hand``). Each backend is checked for the feature groups it has (arm joints, parallel
gripper or dexterous hand).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from manipstack.envs.core.camera import Intrinsics, SimCamera, look_at
from manipstack.envs.core.world import World
from manipstack.envs.robots import Feature, FeatureNotSupportedError, Robot, RobotNotConnectedError, make_robot
from manipstack.envs.robots.base import ARM_JOINT_KEYS, GRIPPER_KEYS, HAND_KEYS
from manipstack.envs.robots.motion import close_gripper, is_grasping, move_hand_joints, move_to_joints, open_gripper
from manipstack.envs.robots.real.fmb_standin import FmbStandinConfig, FmbStandinServer
from manipstack.envs.robots.real.keys import generate_keys
from manipstack.envs.robots.real.safety import SafetyConfig, SafetyLayer
from manipstack.envs.robots.real.server import server_process
from manipstack.envs.robots.sim.hand import DEFAULT_HAND_SPEC, SimHand
from manipstack.envs.robots.sim.workcell import PALM_DOWN_QUAT_XYZW

pytestmark = pytest.mark.timeout(60)

STATE_KEYS = ("tcp.pose", "wrench")
"""State every robot has; the feature groups (arm joints, gripper or hand) come on top."""
SAFETY = SafetyConfig()
HAND_JOINTS = 16  # the shipped allegro_like hand
_SPEC_JOINTS = json.loads(DEFAULT_HAND_SPEC.read_text())["joints"]
HAND_LIMITS = (np.array([j["lower"] for j in _SPEC_JOINTS]), np.array([j["upper"] for j in _SPEC_JOINTS]))
"""Finger joint (lower, upper) limits in rad from the hand spec."""


@dataclass
class Case:
    """A backend under test and the bounds it promises to enforce (None: not enforced by this backend)."""

    robot: Robot
    workspace: tuple[np.ndarray, np.ndarray] | None
    joint_limits: tuple[np.ndarray, np.ndarray] | None
    hand_limits: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def is_hand(self) -> bool:
        return self.hand_limits is not None


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("keys")
    generate_keys(directory)
    return directory


BUSY_MACHINE_WATCHDOG = ["--safety.watchdog-timeout-s", "2.0"]
"""The servers' watchdog waits 2 s (default 0.1 s): a test process descheduled on a busy machine keeps its session."""


@pytest.fixture(scope="module")
def bridge_endpoint(keys) -> Iterator[str]:
    args = ["--keys", str(keys), "--bind", "tcp://127.0.0.1:0", "--twin.camera-width", "64",
            "--twin.camera-height", "48", "--stream-hz", "30", *BUSY_MACHINE_WATCHDOG]
    with server_process(args) as (_, endpoint):
        yield endpoint


@pytest.fixture(scope="module")
def hand_bridge_endpoint(keys) -> Iterator[str]:
    args = ["--keys", str(keys), "--bind", "tcp://127.0.0.1:0", "--twin.robot", "floating-hand",
            "--twin.camera-width", "64", "--twin.camera-height", "48", "--stream-hz", "30", *BUSY_MACHINE_WATCHDOG]
    with server_process(args) as (_, endpoint):
        yield endpoint


@pytest.fixture(scope="module")
def fmb_url() -> Iterator[str]:
    with FmbStandinServer(FmbStandinConfig(time_scale=0.05)) as standin:  # FMB's 13 s /jointreset in 0.65 s
        yield standin.url


def _sim_with_camera() -> tuple[World, Robot]:
    world = World()
    world.add_plane()
    camera = SimCamera(world, Intrinsics.from_fov(64, 48, 45.0), look_at([0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1, 0, 0]))
    return world, make_robot("sim", world=world, cameras={"top": camera})


def _hand_with_camera() -> tuple[World, SimHand]:
    world = World()
    world.add_plane()
    camera = SimCamera(world, Intrinsics.from_fov(64, 48, 45.0), look_at([0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1, 0, 0]))
    return world, SimHand(world, position=(0.0, 0.0, 0.3), quat_xyzw=PALM_DOWN_QUAT_XYZW, cameras={"top": camera})


@pytest.fixture(params=["sim", "sim+safety", "bridge", "fmb-franka-http", "hand", "hand+safety", "hand-bridge"])
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
        robot = make_robot("bridge", address=endpoint, keys=request.getfixturevalue("keys"), timeout_s=10.0)
        test_case = Case(robot, box, panda_limits)
    elif request.param == "fmb-franka-http":
        url = request.getfixturevalue("fmb_url")
        backend = make_robot("fmb-franka-http", url=url, control_period_s=0.02, min_gripper_interval_s=0.1,
                             timeout_s=5.0)  # the stand-in's sim answers slowly when other jobs load the cores
        test_case = Case(SafetyLayer(backend, SAFETY), box, None)
    elif request.param in ("hand", "hand+safety"):
        world, hand = _hand_with_camera()
        robot = hand if request.param == "hand" else SafetyLayer(hand, SAFETY)
        test_case = Case(robot, None if request.param == "hand" else box, None, HAND_LIMITS)
    else:
        endpoint = request.getfixturevalue("hand_bridge_endpoint")
        robot = make_robot("bridge", address=endpoint, keys=request.getfixturevalue("keys"), timeout_s=10.0)
        test_case = Case(robot, box, None, HAND_LIMITS)
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
    assert set(STATE_KEYS) <= set(obs_features) and "tcp.pose" in action_features
    assert all(isinstance(f, Feature) for f in [*obs_features.values(), *action_features.values()])
    assert obs_features["tcp.pose"].shape == (7,) and obs_features["wrench"].shape == (6,)
    if case.is_hand:  # a floating hand: no arm joints, no gripper, 16 finger joints
        assert set(HAND_KEYS) <= set(obs_features) and "hand.joints.pos" in action_features
        assert not set(ARM_JOINT_KEYS + GRIPPER_KEYS) & set(obs_features)
        assert not set(ARM_JOINT_KEYS + GRIPPER_KEYS) & set(action_features)
        for key in HAND_KEYS:
            assert obs_features[key].shape == (HAND_JOINTS,), key
        assert action_features["hand.joints.pos"].shape == (HAND_JOINTS,)
        ee_action = {"hand.joints.pos": np.zeros(HAND_JOINTS)}
    else:  # an arm with a parallel gripper
        assert set(ARM_JOINT_KEYS + GRIPPER_KEYS) <= set(obs_features) and "gripper.width" in action_features
        assert not set(HAND_KEYS) & set(obs_features)
        assert obs_features["gripper.width"].shape == ()
        assert obs_features["joints.pos"].shape == obs_features["joints.vel"].shape
        ee_action = {"gripper.width": 0.04}
    with pytest.raises(RobotNotConnectedError, match="connect"):
        robot.get_observation()
    with pytest.raises(RobotNotConnectedError):
        robot.send_action(ee_action)


def test_helpers_refuse_feature_groups_the_robot_lacks(case: Case) -> None:
    """Gripper helpers on a hand (and hand helpers on an arm) fail clearly before anything moves."""
    with case.robot as robot:
        before = robot.get_observation()["tcp.pose"]
        if case.is_hand:
            for helper in (open_gripper, close_gripper, is_grasping):
                with pytest.raises(FeatureNotSupportedError, match="gripper.width"):
                    helper(robot)
            with pytest.raises(FeatureNotSupportedError, match="joints.pos"):
                move_to_joints(robot, np.zeros(7))
            for attribute in ("gripper_max_width", "home_joints"):
                with pytest.raises(FeatureNotSupportedError, match=attribute):
                    getattr(robot, attribute)
            assert robot.home_hand_joints.shape == (HAND_JOINTS,)
        else:
            with pytest.raises(FeatureNotSupportedError, match="hand.joints.pos"):
                move_hand_joints(robot, np.zeros(HAND_JOINTS))
            for attribute in ("home_hand_joints", "hand_joint_limits"):
                with pytest.raises(FeatureNotSupportedError, match=attribute):
                    getattr(robot, attribute)
            assert 0.0 < robot.gripper_max_width <= 0.1
        np.testing.assert_allclose(robot.get_observation()["tcp.pose"][:3], before[:3], atol=0.005)


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
        if case.is_hand:
            applied = robot.send_action({"hand.joints.pos": robot.home_hand_joints})
            assert set(applied) == {"hand.joints.pos"}
            assert applied["hand.joints.pos"].shape == (HAND_JOINTS,)
            lo, hi = case.hand_limits
            assert np.all(applied["hand.joints.pos"] >= lo - 1e-12) and np.all(applied["hand.joints.pos"] <= hi + 1e-12)
            return
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
            if case.is_hand:
                robot.send_action({"hand.joints.pos": np.full(HAND_JOINTS, np.inf)})
            else:
                robot.send_action({"gripper.width": np.inf})
        if case.is_hand:
            with pytest.raises(ValueError, match="shape"):
                robot.send_action({"hand.joints.pos": np.zeros(HAND_JOINTS + 1)})
            with pytest.raises(ValueError, match="unknown action keys"):
                robot.send_action({"gripper.width": 0.04})
        with pytest.raises(ValueError, match="shape"):
            robot.send_action({"tcp.pose": pose[:3]})
        with pytest.raises(ValueError, match="unknown action keys"):
            robot.send_action({"teleport": 1.0})
        np.testing.assert_allclose(robot.get_observation()["tcp.pose"][:3], pose[:3], atol=0.01)


def test_out_of_bounds_clamped(case: Case) -> None:
    with case.robot as robot:
        if case.is_hand:
            lo, hi = case.hand_limits
            for offset in (10.0, -10.0):
                applied = robot.send_action({"hand.joints.pos": hi + offset if offset > 0 else lo + offset})
                assert np.all(applied["hand.joints.pos"] >= lo - 1e-12), applied
                assert np.all(applied["hand.joints.pos"] <= hi + 1e-12), applied
        else:
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


def test_home_opens_the_end_effector(case: Case) -> None:
    with case.robot as robot:
        robot.home()
        obs = robot.get_observation()
        if case.is_hand:
            np.testing.assert_allclose(obs["hand.joints.pos"], robot.home_hand_joints, atol=0.05)
        else:
            assert float(obs["gripper.width"]) > 0.9 * robot.gripper_max_width - 0.005
            np.testing.assert_allclose(obs["joints.pos"], robot.home_joints, atol=0.05)


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
