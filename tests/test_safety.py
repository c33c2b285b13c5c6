"""Safety layer: clamping with logged before/after values, refusal, malformed input, watchdog, halting; for an arm
(the Panda) and for a robot without arm joints (the floating hand)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pytest

from manipstack.envs.core.poses import rotation_angle_between
from manipstack.envs.core.world import World
from manipstack.envs.robots.real.safety import SafetyConfig, SafetyLayer, SafetyViolationError, Watchdog
from manipstack.envs.robots.sim.hand import SimHand
from manipstack.envs.robots.sim.panda import SimPanda
from manipstack.envs.robots.sim.workcell import PALM_DOWN_QUAT_XYZW

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def world() -> Iterator[World]:
    with World() as world:
        world.add_plane()
        yield world


def _safe(world: World, **config: object) -> SafetyLayer:
    robot = SafetyLayer(SimPanda(world), SafetyConfig(**config))
    robot.connect()
    return robot


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="workspace_min must be 3 values below workspace_max"):
        SafetyConfig(workspace_min=(0.0, 0.0, 0.5), workspace_max=(1.0, 1.0, 0.1))
    with pytest.raises(ValueError, match="on_violation must be one of"):
        SafetyConfig(on_violation="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="watchdog_timeout_s must be > 0"):
        SafetyConfig(watchdog_timeout_s=0.0)
    with pytest.raises(ValueError, match="joint_lower must be below joint_upper"):
        SafetyConfig(joint_lower=(1.0,) * 7, joint_upper=(0.0,) * 7)


def test_workspace_clamp_is_logged_with_before_and_after(world: World, caplog: pytest.LogCaptureFixture) -> None:
    robot = _safe(world, workspace_max=(0.35, 0.45, 0.3), max_relative_target_m=1.0, max_cartesian_speed_mps=100.0)
    quat = robot.get_observation()["tcp.pose"][3:]
    with caplog.at_level(logging.WARNING, logger="manipstack.envs.robots.real.safety"):
        applied = robot.send_action({"tcp.pose": np.concatenate([[0.0, 0.0, 0.9], quat])})
    assert applied["tcp.pose"][2] == pytest.approx(0.3)
    event = robot.clamp_events[-1]
    assert event.reason == "workspace box"
    assert event.before[2] == pytest.approx(0.9) and event.after[2] == pytest.approx(0.3)
    assert "workspace box" in caplog.text and "0.9" in caplog.text and "0.3" in caplog.text


def test_step_and_speed_limits(world: World) -> None:
    robot = _safe(world, max_relative_target_m=0.05, max_cartesian_speed_mps=0.24)
    pose = robot.get_observation()["tcp.pose"]
    applied = robot.send_action({"tcp.pose": pose + np.array([0.2, 0, 0, 0, 0, 0, 0])})
    step = np.linalg.norm(applied["tcp.pose"][:3] - pose[:3])
    assert step == pytest.approx(0.24 * robot.control_period_s)  # the tighter of the two limits
    assert {e.reason for e in robot.clamp_events} == {"max_relative_target_m", "max_cartesian_speed_mps"}


def test_orientation_step_limited(world: World) -> None:
    robot = _safe(world, max_relative_target_rad=0.2)
    pose = robot.get_observation()["tcp.pose"]
    flipped = np.concatenate([pose[:3], [0.0, 1.0, 0.0, 0.0]])  # half a turn about z from pointing down
    applied = robot.send_action({"tcp.pose": flipped})
    assert rotation_angle_between(pose[3:], applied["tcp.pose"][3:]) == pytest.approx(0.2, abs=1e-6)


def test_box_clamp_never_jumps_further_than_the_step_limit(world: World) -> None:
    """An arm measured outside the box (here: a box ending 0.15 m short of it) holding still is led back
    toward the box by at most max_relative_target_m per command, never snapped onto the box."""
    measured = _safe(world).get_observation()["tcp.pose"]  # at home
    robot = _safe(world, workspace_max=(measured[0] - 0.15, 0.45, 0.6), max_relative_target_m=0.1,
                  max_cartesian_speed_mps=100.0)
    applied = robot.send_action({"tcp.pose": measured})
    step = applied["tcp.pose"][:3] - measured[:3]
    assert np.linalg.norm(step) == pytest.approx(0.1, abs=1e-9)
    np.testing.assert_allclose(step, [-0.1, 0.0, 0.0], atol=1e-9)  # straight toward the box face
    assert [e.reason for e in robot.clamp_events] == ["workspace box", "max_relative_target_m"]


def test_box_clamp_respects_the_speed_limit_too(world: World) -> None:
    measured = _safe(world).get_observation()["tcp.pose"]  # at home
    robot = _safe(world, workspace_max=(measured[0] - 0.15, 0.45, 0.6), max_cartesian_speed_mps=0.24)
    max_step = 0.24 * robot.control_period_s
    previous = measured
    for _ in range(3):
        applied = robot.send_action({"tcp.pose": robot.get_observation()["tcp.pose"]})["tcp.pose"]
        assert np.linalg.norm(applied[:3] - previous[:3]) <= max_step + 1e-9
        previous = applied
    assert applied[0] < measured[0] - 2 * max_step  # heading back into the box, one step per command


@pytest.mark.parametrize("mode", ["clamp", "refuse"])
def test_holding_still_inside_the_box_is_unchanged(world: World, mode: str) -> None:
    robot = _safe(world, on_violation=mode)
    received = []
    backend_send = robot.inner.send_action
    robot.inner.send_action = lambda action: received.append(action["tcp.pose"].copy()) or backend_send(action)
    measured = robot.get_observation()["tcp.pose"]
    robot.send_action({"tcp.pose": measured})
    assert np.array_equal(received[0], measured) and not robot.clamp_events


def test_joint_limits_and_relative_target(world: World) -> None:
    robot = _safe(world, max_relative_target_rad=0.1)
    joints = robot.get_observation()["joints.pos"]
    applied = robot.send_action({"joints.pos": joints + np.array([5.0, 0, 0, 0, 0, 0, -0.05])})
    np.testing.assert_allclose(applied["joints.pos"] - joints, [0.1, 0, 0, 0, 0, 0, -0.05], atol=1e-9)
    assert [e.reason for e in robot.clamp_events] == ["joint limits", "max_relative_target_rad"]


def test_refuse_mode_does_not_move(world: World) -> None:
    robot = _safe(world, on_violation="refuse")
    obs = robot.get_observation()
    with pytest.raises(SafetyViolationError, match="outside the workspace box"):
        robot.send_action({"tcp.pose": np.concatenate([[0.0, 0.0, -0.2], obs["tcp.pose"][3:]])})
    with pytest.raises(SafetyViolationError, match="outside the joint limits"):
        robot.send_action({"joints.pos": obs["joints.pos"] + 4.0})
    np.testing.assert_array_equal(robot.get_observation()["joints.pos"], obs["joints.pos"])  # no physics step


def test_joint_commands_can_be_disabled(world: World) -> None:
    robot = _safe(world, allow_joint_commands=False)
    assert "joints.pos" not in robot.action_features
    with pytest.raises(ValueError, match="unknown action keys"):
        robot.send_action({"joints.pos": robot.home_joints})


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"tcp.pose": [0.0, 0.0, np.nan, 0, 0, 0, 1]}, "NaN or inf"),
        ({"gripper.width": -np.inf}, "NaN or inf"),
        ({"tcp.pose": [0.0, 0.0, 0.3]}, "must have shape"),
        ({"joints.pos": "home"}, "must be numeric"),
        ({"tcp.pose": [0.0, 0.0, 0.3, 0, 0, 0, 0]}, "unit length"),
        ([0.1, 0.2], "action must be a dict"),
    ],
)
def test_malformed_input_rejected(world: World, action: object, message: str) -> None:
    robot = _safe(world)
    with pytest.raises(ValueError, match=message):
        robot.send_action(action)  # type: ignore[arg-type]


def test_watchdog_expiry() -> None:
    now = [0.0]
    dog = Watchdog(0.1, clock=lambda: now[0])
    assert not dog.expired()  # disarmed until fed
    dog.feed()
    now[0] = 0.09
    assert not dog.expired()
    now[0] = 0.11
    assert dog.expired()
    dog.disarm()
    assert not dog.expired()


def test_halt_stops_arm_and_keeps_gripper(world: World) -> None:
    robot = _safe(world)
    obs = robot.get_observation()
    robot.send_action({"gripper.width": 0.02})
    for _ in range(3):
        robot.send_action({"joints.pos": obs["joints.pos"] + np.array([0.3, 0.3, 0, 0, 0, 0, 0])})
    assert np.max(np.abs(robot.get_observation()["joints.vel"])) > 0.2  # moving
    speed = robot.halt()
    after = robot.get_observation()
    assert speed < robot.config.halt_velocity_tol_radps
    assert np.max(np.abs(after["joints.vel"])) < robot.config.halt_velocity_tol_radps
    assert float(after["gripper.width"]) < 0.03  # still closing toward 2 cm, not opened


def test_an_unclamped_pose_reaches_the_backend_bit_for_bit(world: World) -> None:
    """Neither the safety layer nor validation rewrites a pose it lets through (nor the caller's array), so a
    wrapped arm moves exactly like a bare one; the backend normalises the quaternion once."""
    robot = _safe(world)
    received = []
    backend_send = robot.inner.send_action
    robot.inner.send_action = lambda action: received.append(action["tcp.pose"].copy()) or backend_send(action)
    quat = np.array([1.0, 1e-9, 0.0, 0.0]) / np.linalg.norm([1.0, 1e-9, 0.0, 0.0])
    pose = np.concatenate([robot.get_observation()["tcp.pose"][:3], quat * (1 + 1e-12)])
    sent = pose.copy()
    applied = robot.send_action({"tcp.pose": sent})
    assert np.array_equal(sent, pose) and np.array_equal(received[0], pose)
    assert np.linalg.norm(applied["tcp.pose"][3:]) == pytest.approx(1.0, abs=1e-15)


# ---------------------------------------------------------------------------- a robot without arm joints: the hand
def _safe_hand(world: World, **config: object) -> SafetyLayer:
    robot = SafetyLayer(SimHand(world, position=(0.0, 0.0, 0.3), quat_xyzw=PALM_DOWN_QUAT_XYZW), SafetyConfig(**config))
    robot.connect()  # the Panda's default arm joint limits do not apply: the hand has no arm joints
    return robot


def test_hand_joints_clamped_to_the_backend_limits_and_relative_target(world: World) -> None:
    robot = _safe_hand(world, max_relative_target_rad=0.1)
    lower, upper = robot.hand_joint_limits
    measured = robot.get_observation()["hand.joints.pos"]
    target = measured.copy()
    target[0], target[1] = upper[0] + 5.0, measured[1] - 0.05
    applied = robot.send_action({"hand.joints.pos": target})["hand.joints.pos"]
    assert applied[0] == pytest.approx(min(measured[0] + 0.1, upper[0]))
    assert applied[1] == pytest.approx(max(measured[1] - 0.05, lower[1]))
    assert np.all(applied >= lower) and np.all(applied <= upper)
    assert [(e.key, e.reason) for e in robot.clamp_events] == [("hand.joints.pos", "joint limits"),
                                                               ("hand.joints.pos", "max_relative_target_rad")]


def test_hand_refuse_mode_does_not_move(world: World) -> None:
    robot = _safe_hand(world, on_violation="refuse")
    obs, time_before = robot.get_observation(), world.sim_time
    with pytest.raises(SafetyViolationError, match=r"hand.joints.pos .* outside the joint limits"):
        robot.send_action({"hand.joints.pos": robot.hand_joint_limits[1] + 1.0,
                           "tcp.pose": obs["tcp.pose"] + np.array([0.01, 0, 0, 0, 0, 0, 0])})
    assert world.sim_time == time_before  # nothing was sent, no physics step
    with pytest.raises(SafetyViolationError, match="outside the workspace box"):
        robot.send_action({"tcp.pose": np.concatenate([[0.0, 0.0, -0.2], obs["tcp.pose"][3:]])})


def test_hand_wrist_target_kept_in_the_box_and_step_limited(world: World) -> None:
    robot = _safe_hand(world, max_cartesian_speed_mps=0.24)
    pose = robot.get_observation()["tcp.pose"]
    applied = robot.send_action({"tcp.pose": np.concatenate([[0.0, 0.0, 0.9], pose[3:]])})["tcp.pose"]
    assert np.linalg.norm(applied[:3] - pose[:3]) == pytest.approx(0.24 * robot.control_period_s)
    # the box first (z 0.9 -> 0.6 m), then the step limits (so the box never makes a target jump further)
    assert {e.reason for e in robot.clamp_events} == {"workspace box", "max_relative_target_m",
                                                      "max_cartesian_speed_mps"}


def test_halt_holds_wrist_and_fingers(world: World) -> None:
    robot = _safe_hand(world)
    obs = robot.get_observation()
    upper = robot.hand_joint_limits[1]
    for _ in range(3):
        robot.send_action({"hand.joints.pos": upper, "tcp.pose": obs["tcp.pose"] + np.array([0, 0, 0.02, 0, 0, 0, 0])})
    assert np.max(np.abs(robot.get_observation()["hand.joints.vel"])) > 0.2  # fingers closing
    sent = []
    backend_send = robot.inner.send_action
    robot.inner.send_action = lambda action: sent.append(dict(action)) or backend_send(action)
    speed = robot.halt()
    assert speed < robot.config.halt_velocity_tol_radps
    assert sent and all(set(action) == {"tcp.pose", "hand.joints.pos"} for action in sent)
    after = robot.get_observation()
    assert np.max(np.abs(after["hand.joints.vel"])) < robot.config.halt_velocity_tol_radps
    held = sent[0]["hand.joints.pos"]  # where the halt found the fingers, short of the closing targets
    assert np.any(held < upper - 0.1)
    np.testing.assert_allclose(after["hand.joints.pos"], held, atol=0.05)
    np.testing.assert_allclose(after["tcp.pose"][:3], sent[0]["tcp.pose"][:3], atol=0.002)
