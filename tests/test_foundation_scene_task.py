"""Scene files, objects in a world, the generic Task/RobotTaskEnv shell and the policy runner (toy sizes)."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from manipstack.envs.core.scene import (
    ObjectPhysics,
    ObjectSpec,
    add_objects,
    load_scene,
    object_files,
    remove_outside,
    save_scene,
)
from manipstack.envs.core.task import CameraSpec, ObservationConfig, RobotTaskEnv, Task, TaskStep
from manipstack.envs.core.world import World
from manipstack.envs.robots import make_workcell
from manipstack.envs.tasks.push_grasp import PushGraspEnv
from manipstack.errors import InputError, MissingInputError
from manipstack.eval.runner import EpisodeJob, rollout, run_episodes

RED = (1.0, 0.0, 0.0)


def _write(tmp_path, objects: list[dict[str, Any]]):
    path = tmp_path / "scene.json"
    path.write_text(json.dumps({"objects": objects}))
    return path


def test_scene_round_trip_and_errors_name_file_object_and_key(tmp_path):
    specs = [ObjectSpec("cube", (0.04, 0.04, 0.04), RED, (0.0, 0.0, 0.02)),
             ObjectSpec("primitive:sphere", (0.03, 0.03, 0.03), RED, (0.1, 0.0, 0.015), (0.0, 0.0, 0.0, 1.0))]
    save_scene(tmp_path / "ok.json", specs)
    assert load_scene(tmp_path / "ok.json") == specs
    cube = {"shape": "cube", "size": [0.04] * 3, "color": [1, 0, 0], "position": [0, 0, 0.02]}
    bad = _write(tmp_path, [cube, {**cube, "orientaton": [0, 0, 0, 1]}])
    with pytest.raises(InputError, match=r"scene.json object 1: unknown key 'orientaton'"):
        load_scene(bad)
    with pytest.raises(InputError, match=r"object 0: 'position' must be 3"):
        load_scene(_write(tmp_path, [{**cube, "position": [0, 0]}]))
    with pytest.raises(InputError, match="unknown top-level key 'camera'"):
        (tmp_path / "top.json").write_text(json.dumps({"objects": [cube], "camera": 1}))
        load_scene(tmp_path / "top.json")
    with pytest.raises(MissingInputError, match="scene file not found"):
        load_scene(tmp_path / "missing.json")
    with pytest.raises(InputError, match="holds no mesh or URDF"):
        object_files(tmp_path)


def test_objects_are_added_at_the_scene_origin_and_removed_outside_the_box():
    with World(time_step=1 / 240) as world:
        world.add_plane()
        specs = [ObjectSpec("cube", (0.04, 0.04, 0.04), RED, (0.0, 0.0, 0.02)),
                 ObjectSpec("primitive:box", (0.03, 0.03, 0.03), RED, (0.3, 0.0, 0.015))]
        names = add_objects(world, specs, (0.5, 0.0, 0.0), ObjectPhysics(mass=0.1))
        assert names == ["object_0", "object_1"]
        world.step_until_static(max_time=1.0)
        assert np.allclose(world.body_pose("object_0")[0], [0.5, 0.0, 0.02], atol=2e-3)
        removed = remove_outside(world, names, np.array([[0.3, 0.7], [-0.2, 0.2]]))
        assert removed == ["object_1"] and names == ["object_0"] and not world.has_body("object_1")


class ReachTask(Task):
    """A toy task: the action is a TCP height offset; observation = TCP height and the block's height (m)."""

    reset_options = frozenset({"start"})

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 2.0, (2,), np.float64)
        self.action_space = spaces.Box(-0.05, 0.05, (1,), np.float64)

    def reset(self, cell, rng, options):
        cell.reset()
        add_objects(cell.world, [ObjectSpec("cube", (0.04,) * 3, RED, (float(rng.uniform(-0.1, 0.1)), 0.0, 0.02))],
                    (0.0, 0.0, 0.0), ObjectPhysics())
        self.steps = 0
        return {"start": options.get("start", "home")}

    def observe(self, cell, frames):
        assert set(frames) == {"top"} and frames["top"]["depth"].shape == (24, 32)
        return np.array([cell.robot.get_observation()["tcp.pose"][2], cell.world.body_pose("object_0")[0][2]])

    def act(self, cell, action, observation):
        pose = cell.robot.get_observation()["tcp.pose"].copy()
        pose[2] += float(action[0])
        cell.robot.send_action({"tcp.pose": pose})
        self.steps += 1
        return {"moved": float(action[0])}

    def evaluate(self, cell, action, outcome, before, after):
        return TaskStep(-abs(after[0] - 0.3), False, self.steps >= 3, {"moved": outcome["moved"]})


def _reach_env() -> RobotTaskEnv:
    camera = CameraSpec("top", 32, 24, 60.0, (0.0, 0.0, 1.0), (0.0, 0.0, 0.0), up=(1.0, 0.0, 0.0))
    return RobotTaskEnv(ReachTask(), make_workcell("panda"), ObservationConfig((camera,), render_camera=camera),
                        render_mode="rgb_array")


def test_robot_task_env_composes_task_cameras_and_workcell():
    env = _reach_env()
    try:
        check_env(env, skip_render_check=True)
        obs, info = env.reset(seed=3, options={"start": "here"})
        assert info == {"start": "here"} and obs.shape == (2,)
        obs, reward, terminated, truncated, info = env.step(np.array([0.02]))
        assert info["moved"] == 0.02 and reward <= 0 and not terminated and not truncated
        assert env.render().shape == (24, 32, 3)
        with pytest.raises(InputError, match="outside the action space"):
            env.step(np.array([1.0]))
        with pytest.raises(InputError, match="unknown reset options"):
            env.reset(options={"goal": 1})
    finally:
        env.close()
        env.close()


class HighestPixelGrasp:
    """A scripted policy: grasp at the highest heightmap pixel, fingers closing along x."""

    def reset(self) -> None:
        pass

    def act(self, observation):
        row, col = np.unravel_index(int(np.argmax(observation["height"])), observation["height"].shape)
        return np.array([1, 0, row, col])


def _toy_env() -> gym.Env:
    return PushGraspEnv(heightmap_size=32, num_rotations=4, num_objects=2, max_actions=2, render_mode="rgb_array")


def test_runner_records_frames_and_gives_the_same_episodes_on_ray_workers():
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this test module
    jobs = [EpisodeJob(seed, tag=f"s{seed}", record=seed == 0) for seed in range(4)]
    local = run_episodes(_toy_env, HighestPixelGrasp, jobs)
    assert [e.job.seed for e in local] == [0, 1, 2, 3] and all(1 <= len(e.actions) <= 2 for e in local)
    recorded = local[0]
    assert len(recorded.frames) == len(recorded.actions) + 1 and len(recorded.observations) == len(recorded.actions)
    remote = run_episodes(functools.partial(_toy_env), HighestPixelGrasp, jobs, workers=2)
    for a, b in zip(local, remote):
        assert [x.tolist() for x in a.actions] == [x.tolist() for x in b.actions] and a.rewards == b.rewards


def test_rollout_stops_at_max_steps():
    env = _toy_env()
    try:
        episode = rollout(env, HighestPixelGrasp(), EpisodeJob(5), max_steps=1)
    finally:
        env.close()
    assert len(episode.actions) == 1 and episode.final_info is episode.infos[-1]
