"""Sim Panda through the robot contract: motion accuracy, gripper, grasping, errors."""

from __future__ import annotations

import numpy as np
import pytest

from manipstack.envs.core.poses import euler_to_quat, rotation_angle_between
from manipstack.envs.core.world import World
from manipstack.envs.robots import RobotNotConnectedError, make_robot
from manipstack.envs.robots.motion import close_gripper, is_grasping, move_to_pose, open_gripper, tcp_pose


@pytest.fixture
def world_and_panda():
    world = World()
    world.add_plane()
    panda = make_robot("sim", world=world)
    panda.connect()
    yield world, panda
    panda.disconnect()
    world.close()


def test_move_to_pose_reaches_random_targets_within_2mm_and_1deg(world_and_panda):
    _, panda = world_and_panda
    rng = np.random.default_rng(0)
    for _ in range(6):
        position = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), rng.uniform(0.05, 0.4)])
        quat = euler_to_quat([np.pi + rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(-1.5, 1.5)])
        assert move_to_pose(panda, position, quat)
        reached_pos, reached_quat = tcp_pose(panda)
        assert np.linalg.norm(reached_pos - position) < 0.002
        assert np.rad2deg(rotation_angle_between(reached_quat, quat)) < 1.0


def test_pick_a_block_and_detect_the_grasp(world_and_panda):
    world, panda = world_and_panda
    world.add_primitive("block", "box", [0.04, 0.04, 0.04], position=[0.05, 0.0, 0.02], mass=0.1, friction=1.0)
    down = euler_to_quat([np.pi, 0, 0])
    open_gripper(panda)
    move_to_pose(panda, [0.05, 0.0, 0.15], down, max_step_m=0.03)
    move_to_pose(panda, [0.05, 0.0, 0.02], down)
    width = close_gripper(panda)
    assert width == pytest.approx(0.04, abs=0.004)
    assert is_grasping(panda)
    move_to_pose(panda, [0.05, 0.0, 0.2], down)
    assert world.body_pose("block")[0][2] > 0.15
    open_gripper(panda)
    close_gripper(panda)
    assert not is_grasping(panda)


def test_observation_matches_features_and_wrench_feels_weight(world_and_panda):
    _, panda = world_and_panda
    panda.send_action({"gripper.width": 0.08})  # one control period so the sensor has a reading
    obs = panda.get_observation()
    for key, feature in panda.observation_features.items():
        assert obs[key].shape == feature.shape, key
    assert np.linalg.norm(obs["wrench"][:3]) > 5.0  # hand + fingers weigh ~1 kg


def test_contract_errors_and_clamping(world_and_panda):
    _, panda = world_and_panda
    with pytest.raises(ValueError, match="NaN"):
        panda.send_action({"gripper.width": float("nan")})
    with pytest.raises(ValueError, match="shape"):
        panda.send_action({"joints.pos": [0.0, 1.0]})
    with pytest.raises(ValueError, match="unknown action keys"):
        panda.send_action({"joint.pos": np.zeros(7)})
    with pytest.raises(ValueError, match="not both"):
        panda.send_action({"joints.pos": np.zeros(7), "tcp.pose": np.r_[0, 0, 0.3, 0, 0, 0, 1.0]})
    applied = panda.send_action({"gripper.width": 0.5})
    assert applied["gripper.width"] == pytest.approx(0.08)
    applied = panda.send_action({"joints.pos": np.full(7, 10.0)})
    assert np.all(applied["joints.pos"] <= panda.joint_limits[1])
    panda.disconnect()
    panda.disconnect()
    with pytest.raises(RobotNotConnectedError):
        panda.get_observation()


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="unknown robot backend 'ur5'"):
        make_robot("ur5")
