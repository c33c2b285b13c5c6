"""The floating dexterous hand behind the robot contract: physics untouched by connect, a real wrist wrench,
one control period per action, clamping to the spec, determinism and the floating-hand workcell."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from manipstack.envs.core.poses import quat_to_matrix
from manipstack.envs.core.world import World
from manipstack.envs.robots import make_workcell
from manipstack.envs.robots.motion import move_hand_joints, move_to_pose
from manipstack.envs.robots.sim.hand import SimHand
from manipstack.envs.robots.sim.workcell import PALM_DOWN_QUAT_XYZW

pytestmark = pytest.mark.timeout(60)


def _physics_state(world: World, hand: SimHand) -> np.ndarray:
    joints, velocities = world.joint_states(hand.name, hand.joint_ids)
    return np.concatenate([*world.body_pose(hand.name), *world.body_velocity(hand.name), joints, velocities])


def _hand_mass_kg(hand: SimHand) -> float:
    root = ET.parse(Path(hand.config.spec).parent / hand.spec["urdf"]).getroot()
    return sum(float(mass.get("value")) for mass in root.iter("mass"))


def test_connect_and_observe_leave_a_loaded_hand_untouched() -> None:
    """The grasp validator's use: a hand loaded at construction and driven by reset/set_joint_targets gives the
    same physics whether or not it is also connected and observed through the contract."""
    states = []
    for use_contract in (False, True):
        with World(gravity=0.0) as world:
            world.add_primitive("box", "box", (0.04, 0.04, 0.04), (0.0, 0.0, 1.1), mass=0.05)
            hand = SimHand(world, position=(0.0, 0.0, 1.0))
            joints = np.array(hand.spec["init_pose"])
            if use_contract:
                hand.connect()
                hand.get_observation()
            hand.reset((0.0, 0.01, 1.0), (0.0, 0.0, 0.0, 1.0), joints)
            hand.set_joint_targets(np.clip(joints + 0.3, hand.lower, hand.upper))
            world.step(60)
            if use_contract:
                hand.get_observation()
                hand.disconnect()
                hand.connect()
            world.step(60)
            states.append(np.concatenate([_physics_state(world, hand), *world.body_pose("box")]))
    np.testing.assert_array_equal(states[0], states[1])


def test_wrench_is_the_wrist_constraint_force_in_the_wrist_frame() -> None:
    with World() as world:
        hand = SimHand(world, position=(0.0, 0.0, 0.5), quat_xyzw=PALM_DOWN_QUAT_XYZW)
        with hand:
            hand.send_action({"hand.joints.pos": hand.home_hand_joints})
            for _ in range(10):
                hand.send_action({})
            obs = hand.get_observation()
        world_from_wrist = quat_to_matrix(obs["tcp.pose"][3:])
        weight_n = _hand_mass_kg(hand) * world.gravity
        # hanging still, the mount carries the hand's weight: straight up in the world frame
        np.testing.assert_allclose(world_from_wrist @ obs["wrench"][:3], [0.0, 0.0, weight_n], atol=0.01 * weight_n)
        # the fingers reach out along world +x, so the mount also holds a torque about world -y
        torque_world = world_from_wrist @ obs["wrench"][3:]
        assert torque_world[1] < -0.05 * weight_n


def test_guarded_move_stops_on_table_contact() -> None:
    """Lowering the wrist at 1 cm per period changes the mount force by under 5 N in free air (the wrench right
    after a reset, before any step, reads zero, so the move starts after one held period); the fingers touching
    the table change it by tens of N, which ends a move guarded at 10 N above the table."""
    cell = make_workcell("floating-hand")
    try:
        hand = cell.robot
        hand.send_action({})
        start = hand.get_observation()["tcp.pose"]
        reached = move_to_pose(hand, [start[0], start[1], 0.0], start[3:], stop_force_n=10.0)
        assert not reached, "the table is in the way"
        height = float(hand.get_observation()["tcp.pose"][2])
        assert 0.05 < height < start[2] - 0.1, height
    finally:
        cell.close()


def test_one_control_period_per_action_and_targets_clamped(caplog: pytest.LogCaptureFixture) -> None:
    cell = make_workcell("floating-hand")
    try:
        hand = cell.robot
        before = cell.world.sim_time
        with caplog.at_level(logging.INFO, logger="manipstack.envs.robots.sim.hand"):
            applied = hand.send_action({"hand.joints.pos": hand.upper + 1.0})
        np.testing.assert_array_equal(applied["hand.joints.pos"], hand.upper)
        assert "clamped" in caplog.text
        steps = round(hand.control_period_s / cell.world.time_step)
        assert cell.world.sim_time == pytest.approx(before + steps * cell.world.time_step)
        target = np.clip(hand.home_hand_joints + 0.3, hand.lower, hand.upper)
        assert move_hand_joints(hand, target, tol_rad=0.05)
    finally:
        cell.close()


def _episode() -> dict[str, np.ndarray]:
    cell = make_workcell("floating-hand", time_step=1 / 240, solver_iterations=20)
    try:
        hand = cell.robot
        cell.world.add_primitive("box", "box", (0.05, 0.05, 0.05), (0.1, 0.0, 0.025), mass=0.1)
        home = hand.get_observation()["tcp.pose"]
        move_to_pose(hand, home[:3] + [0.02, 0.0, -0.2], home[3:])
        move_hand_joints(hand, np.clip(hand.home_hand_joints + 0.6, hand.lower, hand.upper))
        obs = hand.get_observation()
        box = np.concatenate(cell.world.body_pose("box"))
        cell.reset()
        after_reset = hand.get_observation()
        return {**obs, "box": box, "home": home,
                "reset.tcp.pose": after_reset["tcp.pose"], "reset.hand.joints.pos": after_reset["hand.joints.pos"]}
    finally:
        cell.close()


def test_same_actions_same_observations_and_reset_returns_home() -> None:
    first, second = _episode(), _episode()
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    np.testing.assert_array_equal(first["reset.tcp.pose"], first["home"])
    np.testing.assert_allclose(first["reset.tcp.pose"][:3], (0.0, 0.0, 0.3))
    assert not np.array_equal(first["tcp.pose"], first["home"])  # the episode moved the wrist
