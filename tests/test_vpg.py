"""VPG push-grasp: env scenes and primitives, Q-network geometry, learner, checkpoints, metrics (toy sizes)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from manipstack.envs.core.scene import ObjectSpec, load_scene, save_scene
from manipstack.envs.core.world import World
from manipstack.envs.robots import primitives as prim
from manipstack.envs.robots.recording import ActionRecorder
from manipstack.envs.tasks import push_grasp_rafts as rafts
from manipstack.envs.tasks.push_grasp import GRASP, PUSH, PushGraspConfig, PushGraspEnv
from manipstack.eval.vpg import (
    EvalVPGConfig,
    aggregate,
    evaluate,
    method_summary,
    model_name,
    seed_mean,
    summarize_episode,
)
from manipstack.grasp_models.checkpoint import load_train_state, load_weights, save_checkpoint
from manipstack.policies.vpg.agent import VPGAgent, VPGConfig, load_agent
from manipstack.policies.vpg.net import QNet, padded_size, q_at_pixels, q_maps, rotation_grids
from manipstack.train.vpg import TrainVPGConfig, train

RED = (1.0, 0.0, 0.0)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small nets run fastest on one thread on a busy 2-core machine (OpenMP threads spin-wait otherwise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def env():
    environment = PushGraspEnv(heightmap_size=64, num_objects=2)
    yield environment
    environment.close()


def _case(tmp_path, objects: list[ObjectSpec], name: str = "case.json"):
    path = tmp_path / name
    save_scene(path, objects)
    return path


def _pixel(env: PushGraspEnv, name: str) -> tuple[int, int]:
    return env.workspace.world_to_pixel(env.world.body_pose(name)[0])


def test_case_loads_exactly(env, tmp_path):
    yaw = 0.4
    quat = (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))
    objects = [ObjectSpec("cube", (0.04, 0.04, 0.04), RED, (0.05, -0.03, 0.02), quat),
               ObjectSpec("rect_prism", (0.08, 0.03, 0.03), (0.0, 0.0, 1.0), (-0.06, 0.08, 0.015))]
    path = _case(tmp_path, objects)
    assert load_scene(path) == objects
    obs, info = env.reset(options={"case": str(path)})
    assert info["objects_left"] == 2 and info["objects_lost"] == 0
    center = np.array([*env.config.workspace_center, 0.0])
    for name, spec in zip(env.object_names, objects):
        position, orientation = env.world.body_pose(name)
        assert np.allclose(position, center + spec.position, atol=0.002)
        assert abs(abs(float(np.dot(orientation, spec.orientation))) - 1) < 1e-3
    row, col = _pixel(env, env.object_names[0])
    assert obs["height"][row, col] == pytest.approx(0.04, abs=0.004)
    assert np.allclose(obs["color"][row, col] / 255, RED, atol=0.25)


def test_shipped_cases_load_and_lie_in_the_workspace():
    from manipstack.eval.vpg import DEMO_CASES, SHIPPED_CASES

    files = sorted(SHIPPED_CASES.glob("*.json"))
    assert len(files) == 11 and all((SHIPPED_CASES / f"{name}.json").is_file() for name in DEMO_CASES)
    stress = sorted((SHIPPED_CASES.parent / "vpg_stress_cases").glob("*.json"))
    assert len(stress) == 12
    for path in files + stress:
        for spec in load_scene(path):
            assert max(abs(spec.position[0]), abs(spec.position[1])) + min(spec.size[:2]) / 2 < 0.224, path.name


def test_malformed_case_is_refused_with_a_message(env, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"objects": [{"shape": "cube", "size": [0.04, 0.04], "color": [1, 0, 0],
                                            "position": [0, 0, 0.02]}]}))
    with pytest.raises(ValueError, match="'size' must be 3"):
        env.reset(options={"case": str(bad)})
    bad.write_text(json.dumps({"objects": [{"shape": "teapot", "size": [0.04] * 3, "color": [1, 0, 0],
                                            "position": [0, 0, 0.02]}]}))
    with pytest.raises(ValueError, match="neither a block"):
        env.reset(options={"case": str(bad)})


def test_grasp_at_block_centre_succeeds_and_in_empty_space_fails(env, tmp_path):
    path = _case(tmp_path, [ObjectSpec("cube", (0.04, 0.04, 0.04), RED, (0.0, 0.0, 0.02))])
    env.reset(options={"case": str(path)})
    row, col = _pixel(env, "object_0")
    _, reward, _, _, info = env.step([GRASP, 0, row + 12, col])  # 8 cm beside the block
    assert reward == 0.0 and not info["grasp_success"] and info["objects_left"] == 1
    _, reward, terminated, _, info = env.step([GRASP, 0, row, col])
    assert reward == 1.0 and info["grasp_success"] and info["objects_left"] == 0 and terminated


def test_grasp_angle_convention_with_a_long_prism(env, tmp_path):
    """An 8 cm prism along x fits the 8 cm gripper only across its 3 cm width (fingers closing along y)."""
    path = _case(tmp_path, [ObjectSpec("rect_prism", (0.08, 0.03, 0.03), RED, (0.0, 0.0, 0.015))])
    R = env.config.num_rotations
    env.reset(options={"case": str(path)})
    row, col = _pixel(env, "object_0")
    _, reward, *_ = env.step([GRASP, 0, row, col])  # fingers close along x: the prism's 8 cm length
    assert reward == 0.0
    _, reward, *_ = env.step([GRASP, R // 4, row, col])  # fingers close along y
    assert reward == 1.0


def test_push_moves_a_block_about_10_cm(env, tmp_path):
    path = _case(tmp_path, [ObjectSpec("cube", (0.04, 0.04, 0.04), RED, (-0.05, 0.0, 0.02))])
    env.reset(options={"case": str(path)})
    start = env.world.body_pose("object_0")[0]
    row, col = env.workspace.world_to_pixel(start - [0.027, 0.0, 0.0])  # just behind the block
    _, reward, _, _, info = env.step([PUSH, 0, row, col])  # rotation 0 pushes along +x
    moved = env.world.body_pose("object_0")[0] - start
    assert 0.07 < moved[0] < 0.12 and abs(moved[1]) < 0.02
    assert reward == 0.5 and info["scene_changed"]


def test_a_push_off_the_table_is_counted_lost_and_not_rewarded(env, tmp_path):
    path = _case(tmp_path, [ObjectSpec("cube", (0.04, 0.04, 0.04), RED, (0.19, 0.0, 0.02))])
    env.reset(options={"case": str(path)})
    start = env.world.body_pose("object_0")[0]
    _, reward, terminated, _, info = env.step([PUSH, 0, *env.workspace.world_to_pixel(start - [0.035, 0.0, 0.0])])
    assert info["objects_lost"] == 1 and info["objects_left"] == 0 and terminated
    assert reward == 0.0


def test_dropped_objects_that_settle_at_the_edge_are_not_part_of_the_test(tmp_path):
    env = PushGraspEnv(heightmap_size=64, num_objects=6, drop_half_extent=0.22)  # drops reach the edge
    try:
        (x0, x1), (y0, y1), _ = env.workspace.bounds
        margin = env.config.drop_edge_margin
        _, info = env.reset(seed=0)
        assert info["objects_lost"] > 0 and info["objects_left"] + info["objects_lost"] == 6
        for name in env.object_names:
            x, y, _ = env.world.body_pose(name)[0]
            assert x0 + margin <= x <= x1 - margin and y0 + margin <= y <= y1 - margin
        near_edge = _case(tmp_path, [ObjectSpec("cube", (0.04, 0.04, 0.04), RED, (0.21, 0.0, 0.02))])
        _, info = env.reset(options={"case": str(near_edge)})  # a case is loaded as written
        assert info["objects_left"] == 1 and info["objects_lost"] == 0
    finally:
        env.close()


def test_a_push_ends_inside_the_workspace(env):
    """As VPG's robot: a push towards the edge stops at the workspace limit instead of 10 cm further."""
    env.reset(seed=0)
    (x0, x1), (y0, y1), _ = env.workspace.bounds
    start = np.array([x1 - 0.04, 0.5 * (y0 + y1)])

    def farthest_x(bounds):
        recorder = ActionRecorder(env.robot)
        recorder.connect()  # the env's arm is connected already: this only marks the wrapper
        prim.push(recorder, start, 0.0, 0.0, env.config.primitives, bounds=bounds)
        return max(a["tcp.pose"][0] for a in recorder.applied if "tcp.pose" in a)

    assert farthest_x(None) == pytest.approx(start[0] + env.config.primitives.push_length, abs=1e-6)
    assert farthest_x(np.asarray(env.workspace.bounds)[:2]) == pytest.approx(x1, abs=1e-6)


def test_a_packed_plank_needs_a_push_before_it_can_be_grasped(env, tmp_path):
    """Fingers landing on a neighbouring plank stop (guarded descent), so the grasp fails without crushing
    anything; a push along the plank's length slides it out of the raft and the same grasp then succeeds."""
    planks, _ = rafts.raft(np.random.default_rng(0), 3, np.zeros(2), yaw=0.0)
    path = _case(tmp_path, [ObjectSpec(**plank) for plank in planks])
    R = env.config.num_rotations
    env.reset(options={"case": str(path)})
    length = planks[1]["size"][0]
    row, col = _pixel(env, "object_1")
    for rotation in (0, R // 8, R // 4):  # along, diagonal and across the plank
        _, reward, *_ = env.step([GRASP, rotation, row, col])
        assert reward == 0.0
    for name, plank in zip(env.object_names, planks):  # nothing was pushed into the table
        assert env.world.body_pose(name)[0][2] == pytest.approx(plank["position"][2], abs=0.004)
    env.reset(options={"case": str(path)})
    start = env.world.body_pose("object_1")[0]
    behind = env.workspace.world_to_pixel(start - [length / 2 + 0.012, 0.0, 0.0])
    _, reward, *_ = env.step([PUSH, 0, *behind])
    assert reward == 0.5
    moved = env.world.body_pose("object_1")[0] - start
    assert moved[0] > 0.06
    _, reward, *_, info = env.step([GRASP, R // 4, *_pixel(env, "object_1")])
    assert reward == 1.0 and info["objects_left"] == 2


def test_raft_scenes_pack_planks_side_by_side():
    rng = np.random.default_rng(1)
    planks, footprints = rafts.place_rafts(rng, max_objects=10, half_extent=0.1)
    assert 2 <= len(planks) <= 8 and 1 <= len(footprints) <= 2
    for a, b in zip(planks, planks[1:]):
        if a["size"] == b["size"] and a["orientation"] == b["orientation"]:  # neighbours in one raft
            gap = np.linalg.norm(np.subtract(a["position"], b["position"])) - a["size"][1]
            assert 0 < gap < 0.001
    for plank in planks:
        assert plank["size"][0] > 0.08 and 2 * plank["size"][1] > 0.08  # too long, and two too wide, to grasp


def test_random_reset_drops_objects_and_refuses_bad_input(env):
    _, info = env.reset(seed=3)
    assert info["objects_left"] + info["objects_lost"] == 2
    with pytest.raises(ValueError, match="action"):
        env.step([2, 0, 0, 0])
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"cases": "x"})


def test_rotation_maps_direction_onto_plus_x():
    """Rotation i must present heightmap direction 2 pi i / R along the net's +x axis."""

    class Probe(torch.nn.Module):
        def forward(self, x):  # push channel: the input height at the stride-4 sample points
            return torch.nn.functional.avg_pool2d(x[:, 3:4], 4).repeat(1, 2, 1, 1)

    H = 64
    inputs = torch.zeros(1, 4, H, H)
    angle = math.pi / 2  # rotation 4 of 16: +row direction
    inputs[0, 3, 40:44, 30:34] = 1.0  # a blob 10 pixels toward +row from (30, 32)
    P = padded_size(H, H)
    padded = torch.nn.functional.pad(inputs, [(P - H) // 2] * 4)
    rotated = torch.nn.functional.grid_sample(padded, rotation_grids(torch.tensor([angle]), P), mode="nearest",
                                              align_corners=False)
    rows, cols = torch.nonzero(rotated[0, 3] > 0.5, as_tuple=True)
    centre = (P - 1) / 2
    # the blob sits at +row (below the centre) in the heightmap, so at +x (right of centre) when rotated
    assert cols.float().mean() - centre > 5 and abs(rows.float().mean() - centre) < 3
    q = q_maps(Probe(), inputs, torch.tensor([[angle]]))
    assert q[0, 0, 0, 41, 31] > 0.2 and q[0, 0, 0, 10, 10] == 0


def test_q_at_pixels_equals_q_maps():
    torch.manual_seed(0)
    net = QNet(16)
    inputs = torch.rand(3, 4, 64, 64)
    angles = torch.rand(3, 2) * 2 * math.pi
    rows, cols = torch.tensor([2, 30, 63]), torch.tensor([60, 0, 31])
    with torch.no_grad():
        full = q_maps(net, inputs, angles)  # (B, K, 2, H, W)
        picked = torch.stack([full[b, :, :, rows[b], cols[b]] for b in range(3)])
        assert torch.allclose(q_at_pixels(net, inputs, angles, rows, cols, crop=64), picked, atol=1e-5)


def test_net_shapes_overfit_one_batch_and_save_load(tmp_path):
    torch.manual_seed(0)
    config = VPGConfig(num_rotations=4, heightmap_size=32, pixel_size=0.014, width=16)
    agent = VPGAgent(config, seed=0)
    obs = {"color": np.zeros((32, 32, 3), np.uint8), "height": np.zeros((32, 32), np.float32)}
    obs["height"][10:16, 10:20] = 0.04
    assert agent.predict(obs).shape == (2, 4, 32, 32)
    for action, reward in (([1, 1, 12, 14], 1.0), ([0, 2, 8, 8], 0.0), ([1, 3, 20, 25], 0.0)):
        agent.replay.add(obs["color"], obs["height"], np.array(action), reward, reward)
    agent.config.replay_samples = 2
    losses = [agent.update(0) for _ in range(100)]
    assert losses[-1] < 0.01 < losses[0]
    q = agent.predict(obs)
    assert q[1, 1, 12, 14] == pytest.approx(1.0, abs=0.1) and q[0, 2, 8, 8] == pytest.approx(0.0, abs=0.1)
    env_config = PushGraspConfig(heightmap_size=32, num_rotations=4)
    save_checkpoint(tmp_path / "ckpt", agent.net, {"kind": "vpg", "agent": config.__dict__,
                                                   "env": dataclasses.asdict(env_config)})
    loaded, _ = load_agent(tmp_path / "ckpt")
    assert np.allclose(loaded.predict(obs), q, atol=1e-6)


def test_choose_respects_masks_and_failure_memory():
    agent = VPGAgent(VPGConfig(method="grasping-only", num_rotations=2, heightmap_size=16, pixel_size=0.01))
    height = np.zeros((16, 16), np.float32)
    height[4:6, 4:6] = 0.03
    q = np.zeros((2, 2, 16, 16))
    q[:, :, 0, 0] = 5.0  # highest value on the empty table: must be ignored
    q[1, 1, 5, 5] = 1.0
    action, _ = agent.choose(q, height, explore=False)
    assert action.tolist() == [1, 1, 5, 5]
    agent.observe_result(action, 0.0)
    action, _ = agent.choose(q, height, explore=False)
    assert action[0] == 1 and (action[2], action[3]) != (5, 5) and height[action[2], action[3]] > 0


def test_push_reward_is_a_learning_choice():
    paper = VPGAgent(VPGConfig(num_rotations=2, heightmap_size=8, pixel_size=0.05))
    ablation = VPGAgent(VPGConfig(num_rotations=2, heightmap_size=8, pixel_size=0.05, push_reward=0.0))
    push, grasp = np.array([PUSH, 0, 1, 1]), np.array([GRASP, 0, 1, 1])
    assert paper.learning_reward(push, 0.5) == 0.5 and ablation.learning_reward(push, 0.5) == 0.0
    assert ablation.learning_reward(grasp, 1.0) == 1.0 and ablation.learning_reward(push, 0.0) == 0.0
    # endless scene-changing pushes: the fixed point of q = r + 0.5 q is 2 r (1.0 with VPG's push reward, 0 without)
    q = 0.0
    for _ in range(60):
        q = paper.target(paper.learning_reward(push, 0.5), np.full((2, 2, 8, 8), q), np.full((8, 8), 0.03, np.float32))
    assert q == pytest.approx(1.0)


def test_targets_follow_the_method():
    next_q = np.full((2, 2, 8, 8), 0.8)
    height = np.full((8, 8), 0.03, np.float32)
    vpg = VPGAgent(VPGConfig(num_rotations=2, heightmap_size=8, pixel_size=0.05))
    assert vpg.target(0.5, next_q, height) == pytest.approx(0.5 + 0.5 * 0.8)
    assert vpg.target(1.0, None, None) == 1.0  # terminal
    reactive = VPGAgent(VPGConfig(method="reactive", num_rotations=2, heightmap_size=8, pixel_size=0.05))
    assert reactive.target(0.5, next_q, height) == 0.5


def _train_config(out, iterations: int, resume: bool = False) -> TrainVPGConfig:
    return TrainVPGConfig(
        iterations=iterations, seed=1, out=out, checkpoint_every=1, resume=resume,
        env=PushGraspConfig(num_objects=1, heightmap_size=32, num_rotations=4, max_actions=2),
        agent=VPGConfig(width=8),
    )


def test_two_iterations_checkpoint_round_trip_and_exact_resume(tmp_path):
    """A run stopped at an episode-end checkpoint and resumed ends with the same weights as an unbroken run."""
    straight = train(_train_config(tmp_path / "a", 4))
    snapshots = sorted(int(p.name.split("_")[1]) for p in (tmp_path / "a" / "checkpoints").glob("iter_*"))
    stop = next(n for n in snapshots if n >= 2)  # episodes last 1-2 actions, so one ends at 2 or 3
    train(_train_config(tmp_path / "b", stop))
    resumed = train(_train_config(tmp_path / "b", 4, resume=True))
    a, _ = load_agent(straight)
    b, config = load_agent(resumed)
    assert config.agent.method == "vpg" and config.env.heightmap_size == 32
    for pa, pb in zip(a.net.state_dict().values(), b.net.state_dict().values()):
        assert torch.equal(pa, pb)
    net = QNet(8)
    load_weights(straight, net)
    assert all(torch.equal(x, y) for x, y in zip(net.state_dict().values(), a.net.state_dict().values()))
    assert len(load_train_state(resumed)["agent"]["replay"]["rewards"]) == 4


def test_metrics_match_hand_computed_episodes():
    completed = summarize_episode([GRASP, PUSH, GRASP, GRASP], [1.0, 0.5, 0.0, 1.0], True, 2,
                                  objects_moved=[0, 1, 2, 0])
    assert completed == {"num_objects": 2, "actions": 4, "grasps": 3, "grasp_successes": 2, "pushes": 1,
                         "cleared": True, "completed": True, "objects_lost": 0, "failed_grasps": 1,
                         "failed_grasps_moving_objects": 1, "longest_push_streak": 1}
    perfect = summarize_episode([GRASP, GRASP], [1.0, 1.0], True, 2)
    failed = summarize_episode([GRASP] * 10, [0.0] * 10, False, 2)
    lost = summarize_episode([PUSH, GRASP], [0.5, 1.0], True, 2, objects_lost=1)  # cleared, one pushed out
    assert lost["cleared"] and not lost["completed"]  # the paper's evaluate.py: not every object was grasped
    metrics = aggregate([completed, perfect, failed, lost])
    assert metrics["completion"] == pytest.approx(2 / 4) and metrics["clearance"] == pytest.approx(3 / 4)
    assert metrics["objects_lost"] == 1
    assert metrics["failed_grasp_disturbance"] == pytest.approx(1 / 11)  # 1 of the 11 failed grasps moved something
    assert metrics["max_push_streak"] == 1 and metrics["pushes"] == 2
    assert summarize_episode([PUSH, PUSH, GRASP, PUSH], [0.5] * 4, False, 2)["longest_push_streak"] == 2
    assert metrics["grasp_success"] == pytest.approx((2 / 3 + 1) / 2)  # averaged over completed runs only
    assert metrics["action_efficiency"] == pytest.approx((2 / 4 + 2 / 2) / 2)
    assert aggregate([failed])["grasp_success"] == 0.0 and aggregate([failed])["action_efficiency"] == 0.0


def test_method_summary_is_mean_and_std_over_checkpoints_of_their_seed_means():
    def model(method, completion_by_seed):
        episodes = [{**summarize_episode([GRASP], [1.0 if done else 0.0], done, 1), "eval_seed": seed}
                    for seed, runs in enumerate(completion_by_seed) for done in runs]
        return {"method": method, "seed_mean": seed_mean(episodes), **aggregate(episodes)}

    models = {"a": model("vpg", [[True, True], [True, False]]),  # seed means 1.0 and 0.5 -> 0.75
              "b": model("vpg", [[True, True], [True, True]]),  # 1.0
              "c": model("vpg", [[False, False], [True, False]]),  # 0.0 and 0.5 -> 0.25
              "d": model("reactive", [[True], [True]])}
    summary = method_summary(models)
    assert summary["vpg"]["completion"]["mean"] == pytest.approx((0.75 + 1.0 + 0.25) / 3)
    assert summary["vpg"]["completion"]["std"] == pytest.approx(np.std([0.75, 1.0, 0.25], ddof=1))
    assert summary["vpg"]["closest_to_mean"] == "a" and summary["vpg"]["checkpoints"] == ["a", "b", "c"]
    assert summary["reactive"]["completion"] == {"mean": 1.0, "std": 0.0}


def test_eval_writes_metrics_for_a_case(tmp_path):
    agent = VPGAgent(VPGConfig(num_rotations=4, heightmap_size=32, pixel_size=0.014, width=8))
    env_config = PushGraspConfig(heightmap_size=32, num_rotations=4, max_actions=2)
    save_checkpoint(tmp_path / "vpg", agent.net, {"kind": "vpg", "agent": dataclasses.asdict(agent.config),
                                                  "env": dataclasses.asdict(env_config)})
    cases = tmp_path / "cases"
    cases.mkdir()
    _case(cases, [ObjectSpec("cube", (0.04, 0.04, 0.04), RED, (0.0, 0.0, 0.02))], "one.json")
    metrics = evaluate(EvalVPGConfig(checkpoint=(tmp_path / "vpg",), cases=cases, runs=1, out=tmp_path / "out"))
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for key in ("completion", "grasp_success", "action_efficiency", "runs", "per_case", "command", "git_commit"):
        assert key in saved
    assert 0 <= metrics["completion"] <= 1 and set(saved["per_case"]) == {"one"}
    assert (tmp_path / "out" / "vpg" / "qmaps.png").is_file() and (tmp_path / "out" / "vpg" / "episode.gif").is_file()
    with pytest.raises(ValueError, match="exactly one"):
        EvalVPGConfig(checkpoint=(tmp_path / "vpg",), runs=1)
    with pytest.raises(ValueError, match="distinct names"):
        EvalVPGConfig(checkpoint=(tmp_path / "a" / "last", tmp_path / "b" / "last"), cases=cases)
    runs = [tmp_path / run / "checkpoints" / "last" for run in ("vpg-s0", "vpg-s1")]
    assert [model_name(r) for r in runs] == ["vpg-s0-last", "vpg-s1-last"]  # training runs' checkpoints together


def test_same_seed_same_scene_and_same_agent_choice():
    torch.manual_seed(0)
    observations, actions = [], []
    for _ in range(2):
        torch.manual_seed(0)
        env = PushGraspEnv(heightmap_size=32, num_rotations=4, num_objects=3)
        try:
            obs, _ = env.reset(seed=7)
            agent = VPGAgent(VPGConfig(num_rotations=4, heightmap_size=32, pixel_size=env.config.pixel_size, width=8),
                             seed=3)
            _, action, _ = agent.act(obs, explore=True)
            obs, *_ = env.step(action)
            observations.append(obs)
            actions.append(action)
        finally:
            env.close()
    assert np.array_equal(actions[0], actions[1])
    assert np.array_equal(observations[0]["height"], observations[1]["height"])
    assert np.array_equal(observations[0]["color"], observations[1]["color"])


def test_learning_curves_average_runs_of_a_method(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from manipstack.eval.vpg_curves import VPGCurvesConfig, plot

    runs = []
    for name, agent, rate in (("v0", {"method": "vpg"}, 0.2), ("v1", {"method": "vpg", "push_reward": 0.5}, 0.4),
                              ("g0", {"method": "grasping-only"}, 0.5),
                              ("n0", {"method": "vpg", "push_reward": 0.0}, 0.9)):
        run = tmp_path / name
        writer = SummaryWriter(str(run))
        for step in range(0, 101, 10):
            writer.add_scalar("train/grasp_success_rate", rate * step / 100, step)
        writer.close()
        (run / "train_config.json").write_text(json.dumps({"agent": agent}))
        runs.append(run)
    numbers = plot(VPGCurvesConfig(runs=tuple(runs), out=tmp_path / "curves.png", points=3))
    curve = numbers["curves"]["grasp success rate"]["vpg"]
    assert curve["iterations"] == [0.0, 50.0, 100.0] and curve["runs"] == 2
    assert curve["mean"] == pytest.approx([0.0, 0.15, 0.3])
    assert curve["std"][2] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    ablation = numbers["curves"]["grasp success rate"]["vpg (push reward 0)"]  # its own group, as in eval vpg
    assert ablation["runs"] == 1 and ablation["mean"][2] == pytest.approx(0.9)
    assert numbers["curves"]["push-then-grasp success rate"] == {}  # no run logged that tag
    assert (tmp_path / "curves.png").stat().st_size > 1000


@pytest.mark.parametrize("family", ["polygons", "lshapes", "tori", "stars", "blocks"])
def test_object_families_draw_seeded_shapes_of_2_to_10_cm(family, tmp_path):
    from manipstack.assets.vpg_objects import EXTENT_RANGE, random_shape
    from manipstack.envs.core.scene import ObjectPhysics, add_object, is_parts_folder

    def draw(seed):
        return random_shape(family, np.random.default_rng(seed), tmp_path, lambda mesh: np.ones(3), [])

    shape, size = draw(3)
    assert draw(3) == (shape, size)
    if family != "blocks":
        assert EXTENT_RANGE[0] - 1e-9 <= max(size) <= EXTENT_RANGE[1] + 1e-9 and is_parts_folder(shape)
        assert draw(4) != (shape, size)
    with World() as world:
        world.add_plane()
        add_object(world, "thing", ObjectSpec(shape, size, RED, (0.0, 0.0, 0.06)), (0.0, 0.0, 0.0), ObjectPhysics())
        assert world.step_until_static(max_time=3.0)  # comes to rest ...
        contacts = world.closest_points("thing", "plane", 0.005)
        assert contacts and min(c[8] for c in contacts) > -0.003  # ... on the table, not sunk into it


def test_env_drops_objects_of_the_chosen_families():
    env = PushGraspEnv(heightmap_size=32, num_rotations=4, num_objects=3, object_families=("lshapes", "tori"))
    try:
        _, info = env.reset(seed=2)
        assert info["objects_left"] + info["objects_lost"] == 3
        assert all(Path(spec.shape).name.split("-")[0] in ("lshapes", "tori") for spec in env.object_specs().values())
    finally:
        env.close()
    with pytest.raises(ValueError, match="unknown object families"):
        PushGraspConfig(object_families=("teapots",))
