"""Contract tests parametrised over every registered env id (STYLE rules 9 and 10)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from manipstack import envs

# Small settings so the whole sweep stays fast; every env accepts its config fields as keyword overrides.
TOY_KWARGS: dict[str, dict] = {"manipstack/PushGrasp-v0": {"num_objects": 3, "heightmap_size": 64}}


def _make(env_id: str) -> gym.Env:
    return gym.make(env_id, **TOY_KWARGS.get(env_id, {}))


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_check_env(env_id):
    env = _make(env_id)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_same_seed_same_actions_same_observations(env_id):
    rollouts = []
    for _ in range(2):
        env = _make(env_id)
        try:
            env.action_space.seed(5)
            obs, _ = env.reset(seed=11)
            trace = [obs]
            for _ in range(2):
                obs, reward, *_ = env.step(env.action_space.sample())
                trace += [obs, reward]
            rollouts.append(trace)
        finally:
            env.close()
    assert all(_equal(a, b) for a, b in zip(*rollouts))


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_malformed_action_is_refused_with_a_message(env_id):
    env = _make(env_id)
    try:
        env.reset(seed=0)
        with pytest.raises(ValueError, match="action"):
            env.step(np.full(np.shape(env.action_space.sample()), -7))
    finally:
        env.close()


def test_every_env_id_is_namespaced_and_registered():
    assert envs.ENV_IDS, "no env registered on import envs"
    for env_id in envs.ENV_IDS:
        assert env_id.startswith("manipstack/") and env_id.endswith("-v0")
        assert env_id in gym.registry


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_envs_run_side_by_side_in_subprocesses(env_id):
    """One physics client per env: two async copies reset and step independently (SubprocVecEnv-style)."""
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="async", **TOY_KWARGS.get(env_id, {}))
    try:
        vec.action_space.seed(0)
        obs, _ = vec.reset(seed=[1, 2])
        obs, rewards, *_ = vec.step(vec.action_space.sample())
        assert len(rewards) == 2
        assert all(np.shape(v)[0] == 2 for v in (obs.values() if isinstance(obs, dict) else [obs]))
    finally:
        vec.close()
