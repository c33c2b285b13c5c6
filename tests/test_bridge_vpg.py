"""A VPG evaluation episode run on the digital twin behind the driver bridge equals the in-process one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from manipstack.envs.robots import make_workcell
from manipstack.envs.robots.real.keys import generate_keys
from manipstack.envs.robots.real.server import server_process
from manipstack.eval.vpg import EvalVPGConfig, make_env
from manipstack.policies.vpg.agent import load_agent

CHECKPOINT = Path(__file__).resolve().parents[1] / "assets" / "checkpoints" / "vpg" / "vpg"


def _episode(env, agent, seed: int, max_actions: int) -> dict[str, list]:
    """Greedy actions, rewards and final object poses (name -> (7,)) of one seeded episode."""
    obs, _ = env.reset(seed=seed)
    agent.new_episode()
    actions, rewards = [], []
    for _ in range(max_actions):
        _, action, _ = agent.act(obs, explore=False)
        obs, reward, terminated, truncated, _ = env.step(action)
        agent.observe_result(action, reward)
        actions.append(action.tolist())
        rewards.append(float(reward))
        if terminated or truncated:
            break
    poses = {name: np.concatenate(env.world.body_pose(name)) for name in env.object_names}
    return {"actions": actions, "rewards": rewards, "poses": poses, "height": obs["height"]}


@pytest.mark.timeout(240)
def test_vpg_episode_through_bridge_matches_in_process(tmp_path: Path) -> None:
    agent, config = load_agent(CHECKPOINT)
    eval_config = EvalVPGConfig(checkpoint=(CHECKPOINT,), random=4, max_actions=4, video=False)
    env = make_env(config, eval_config)
    try:
        expected = _episode(env, agent, seed=7, max_actions=4)
    finally:
        env.close()

    generate_keys(tmp_path / "keys")
    physics = ["--twin.time-step", str(config.env.time_step),
               "--twin.solver-iterations", str(config.env.solver_iterations), "--twin.no-camera",
               "--safety.max-relative-target-m", "1.0", "--safety.max-relative-target-rad", "3.0",
               "--safety.max-cartesian-speed-mps", "10.0",
               "--safety.watchdog-timeout-s", "5.0"]  # a test process descheduled on a busy machine keeps its session
    with server_process(["--keys", str(tmp_path / "keys"), "--bind", "tcp://127.0.0.1:0", *physics]) as (_, address):
        workcell = make_workcell("panda", backend="bridge", address=address, keys=tmp_path / "keys", timeout_s=10.0)
        env = make_env(config, eval_config, workcell=workcell)
        try:
            agent, _ = load_agent(CHECKPOINT)
            actual = _episode(env, agent, seed=7, max_actions=4)
        finally:
            env.close()
            workcell.close()

    assert len(expected["actions"]) >= 2 and sum(expected["rewards"]) > 0, "the episode should grasp something"
    assert actual["actions"] == expected["actions"]
    assert actual["rewards"] == expected["rewards"]
    assert actual["poses"].keys() == expected["poses"].keys()
    for name, pose in expected["poses"].items():
        np.testing.assert_array_equal(actual["poses"][name], pose)
    np.testing.assert_array_equal(actual["height"], expected["height"])
