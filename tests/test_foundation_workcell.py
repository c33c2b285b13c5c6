"""Workcells by registered robot name: the Panda and the floating hand, custom registrations, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import manipstack.envs.robots as robots
from manipstack.envs.robots import make_workcell, register_workcell, workcell_names
from manipstack.envs.robots.real.sim_twin import SimTwinConfig
from manipstack.envs.robots.sim.hand import SimHand
from manipstack.envs.robots.sim.panda import SimPanda
from manipstack.envs.robots.sim.workcell import FloatingHandWorkcellConfig, SimWorkcell, SimWorkcellConfig

pytestmark = pytest.mark.timeout(60)


def test_shipped_robots_are_registered() -> None:
    assert {"panda", "floating-hand"} <= set(workcell_names())


def test_panda_workcell_is_the_sim_workcell() -> None:
    cell = make_workcell("panda", time_step=1 / 120, solver_iterations=10)
    reference = SimWorkcell(SimWorkcellConfig(time_step=1 / 120, solver_iterations=10))
    try:
        assert isinstance(cell.robot, SimPanda) and cell.robot.is_connected
        assert cell.world.body_names == reference.world.body_names == ["plane", "panda"]
        assert cell.world.time_step == 1 / 120
        np.testing.assert_array_equal(cell.robot.get_observation()["joints.pos"],
                                      reference.robot.get_observation()["joints.pos"])
    finally:
        cell.close()
        reference.close()


def test_floating_hand_workcell_holds_the_hand_above_the_table() -> None:
    cell = make_workcell("floating-hand", home_position=(0.05, 0.0, 0.25))
    try:
        hand = cell.robot
        assert isinstance(hand, SimHand) and hand.is_connected
        assert cell.world.body_names == ["plane", "hand"]
        obs = hand.get_observation()
        np.testing.assert_allclose(obs["tcp.pose"][:3], (0.05, 0.0, 0.25))
        np.testing.assert_array_equal(obs["hand.joints.pos"], hand.home_hand_joints)
        cell.reset()
        cell.reset()
        assert cell.world.body_names == ["plane", "hand"]
    finally:
        cell.close()
        cell.close()  # idempotent


def test_floating_hand_config_errors_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="above the table"):
        FloatingHandWorkcellConfig(home_position=(0.0, 0.0, -0.1))
    with pytest.raises(ValueError, match="unit quaternion"):
        FloatingHandWorkcellConfig(home_quat_xyzw=(0.0, 0.0, 0.0, 2.0))


def test_unknown_names_fail_clearly() -> None:
    with pytest.raises(ValueError, match=r"unknown workcell robot 'ur5'; registered: \[.*'floating-hand'.*'panda'"):
        make_workcell("ur5")
    with pytest.raises(ValueError, match=r"backend='bridge'"):
        make_workcell("bridge", address="tcp://127.0.0.1:9")  # the pre-registry call, now a hint
    with pytest.raises(ValueError, match=r"unknown workcell backend 'ros'; available: \['bridge', 'sim'\]"):
        make_workcell("panda", backend="ros")
    with pytest.raises(ValueError, match="twin robot must be one of"):
        SimTwinConfig(robot="ur5")


def test_registered_factory_is_called_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(robots, "_WORKCELLS", dict(robots._WORKCELLS))  # the registration ends with the test
    register_workcell("test-cell", lambda **kwargs: ("built", kwargs))
    assert "test-cell" in workcell_names()
    assert make_workcell("test-cell", time_step=0.01) == ("built", {"time_step": 0.01})
