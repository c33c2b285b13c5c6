"""DexGrasp-v0: canonicalisation, reward and success on hand-built states, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from manipstack.envs.core.poses import yaw_rotation
from manipstack.envs.tasks.dex_grasp import DexGraspEnv, RewardWeights, canonical_observation, dex_reward
from manipstack.errors import InputError


def _raw(rng: np.random.Generator) -> dict:
    rot = lambda: np.linalg.qr(rng.normal(size=(3, 3)))[0]  # noqa: E731
    return {"joints": rng.normal(size=16), "joint_vel": rng.normal(size=16), "wrist_pos": rng.normal(size=3),
            "wrist_rot": rot(), "tips": rng.normal(size=(4, 3)), "object_pos": rng.normal(size=3),
            "object_rot": rot(), "object_lin_vel": rng.normal(size=3), "object_ang_vel": rng.normal(size=3),
            "goal_pos": rng.normal(size=3), "goal_rot": rot(), "goal_joints": rng.normal(size=16),
            "lift_goal": rng.normal(size=3), "progress": np.float64(0.3)}


def test_canonical_observation_is_invariant_to_rotating_the_scene_about_z():
    rng = np.random.default_rng(0)
    raw, origin, yaw, turn = _raw(rng), np.array([0.03, -0.02]), 0.4, 1.3
    spin = yaw_rotation(turn)
    turned = {k: (v @ spin.T if k in ("wrist_pos", "tips", "object_pos", "object_lin_vel", "object_ang_vel",
                                      "goal_pos", "lift_goal") else spin @ v if k.endswith("_rot") else v)
              for k, v in raw.items()}
    a = canonical_observation(raw, origin, yaw)
    b = canonical_observation(turned, spin[:2, :2] @ origin, yaw + turn)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_reward_terms_on_hand_built_states():
    far, _ = dex_reward(0.3, 0.3, 1.0, 0.5, 0.2, 0.2, False)
    at_goal, terms = dex_reward(0.03, 0.01, 0.05, 0.05, 0.2, 0.2, False)
    lifted, lifted_terms = dex_reward(0.03, 0.01, 0.05, 0.05, 0.01, 0.2, True)
    assert far < at_goal < lifted
    assert terms["lift"] == pytest.approx(0.0) and lifted_terms["success"] == RewardWeights().success


def test_success_when_the_object_reaches_the_lift_goal():
    env = DexGraspEnv(objects="proc_box_0060")
    try:
        env.reset(seed=0)
        task = env.task
        outcomes = []
        for offset in (0.04, 0.06):  # within / beyond the 5 cm success radius
            task._raw = {**task.raw_state(env.workcell), "object_pos": task.lift_goal + [0.0, offset, 0.0]}
            outcomes.append(task.evaluate(env.workcell, np.zeros(22), {}, None, None).info["is_success"])
        assert outcomes == [True, False]
    finally:
        env.close()


def test_bad_objects_are_one_error_naming_them(tmp_path):
    with pytest.raises(InputError, match="not_an_object"):
        DexGraspEnv(objects="not_an_object")
    (tmp_path / "broken.obj").write_text("this is not a mesh")
    with pytest.raises(InputError, match="broken"):
        DexGraspEnv(objects=str(tmp_path))
