"""The pose estimator: shapes, valid DDIM rotations, overfitting one batch, save/load round trip, deterministic
training and resume, the eval / bench entry points, and the pose-driven grasping env."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from manipstack.errors import InputError
from manipstack.eval.bench.pose import BenchPoseConfig
from manipstack.eval.bench.pose import run as bench_run
from manipstack.eval.pose import EvalPoseConfig
from manipstack.eval.pose import run as eval_run
from manipstack.grasp_models.checkpoint import load_checkpoint, save_checkpoint
from manipstack.grasp_models.pose.model import (
    PoseEstimator,
    PoseEstimatorConfig,
    aggregate_hypotheses,
    matrix_to_rot6d,
    rot6d_to_matrix,
)
from manipstack.policies.pose_grasp.policy import GroundTruthPosePolicy
from manipstack.train.pose import TrainPoseConfig, train
from manipstack.train.pose_data import PoseDataConfig, build_pose_dataset

torch.set_num_threads(1)  # OpenMP threads spin-wait for cores on a busy 2-core machine

SMALL = {"crop_size": 32, "num_points": 64, "cnn_width": 16, "point_width": 64, "cond_dim": 64, "hidden": 64,
         "blocks": 2}


def _inputs(rng, batch=8):
    config = PoseEstimatorConfig(**SMALL)
    crops = rng.integers(0, 255, (batch, config.crop_size, config.crop_size, 3), dtype=np.uint8)
    points = (rng.normal(size=(batch, config.num_points, 3)) * 0.03 + [0, 0, 0.7]).astype(np.float32)
    return crops, points, rng.integers(1, 7, batch)


def _random_rotations(rng, n):
    q, _ = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    return q * np.sign(np.linalg.det(q))[:, None, None]


@pytest.mark.parametrize("kind", ["diffusion", "regression"])
def test_estimates_have_shapes_and_valid_rotations(kind):
    torch.manual_seed(0)
    estimator = PoseEstimator(PoseEstimatorConfig(kind=kind, **SMALL))
    rotation, translation, extents = estimator.estimate(*_inputs(np.random.default_rng(0)),
                                                        torch.Generator().manual_seed(0))
    assert rotation.shape == (8, 3, 3) and translation.shape == (8, 3) and extents.shape == (8, 3)
    assert np.allclose(rotation @ np.swapaxes(rotation, 1, 2), np.eye(3), atol=1e-5)
    assert np.allclose(np.linalg.det(rotation), 1.0, atol=1e-5) and np.all(extents > 0)
    # rot6d -> matrix keeps the y axis exactly (symmetric objects) and is the identity on rotations
    R = torch.as_tensor(_random_rotations(np.random.default_rng(1), 5), dtype=torch.float32)
    assert torch.allclose(rot6d_to_matrix(torch.cat([R[..., :, 1], R[..., :, 0]], -1)), R, atol=1e-5)


def _turn_about_z(angle: float) -> torch.Tensor:
    c, s = np.cos(angle), np.sin(angle)
    return torch.as_tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float32)


def test_hypotheses_aggregate_to_the_medoid_rotation_and_mean_translation():
    R = torch.as_tensor(_random_rotations(np.random.default_rng(2), 2), dtype=torch.float32)  # (B=2, 3, 3)
    # K = 4 hypotheses per instance: R, R turned by +-0.1 rad about z, and an outlier turned by pi. Squared chordal
    # distance is 4 (1 - cos angle): summed, 8.04 for R, 8.08 for each turned one, 15.96 for the outlier.
    turns = (0.0, 0.1, -0.1, np.pi)
    rotations = torch.stack([R @ _turn_about_z(a) for a in turns])  # (K, B, 3, 3)
    rest = torch.arange(4 * 2 * 6, dtype=torch.float32).reshape(4, 2, 6)
    x = torch.cat([matrix_to_rot6d(rotations), rest], dim=-1)  # (K, B, 12)
    aggregated = aggregate_hypotheses(x)
    assert aggregated.shape == (2, 12)
    assert torch.allclose(rot6d_to_matrix(aggregated[:, :6]), R, atol=1e-5)
    assert torch.allclose(aggregated[:, 6:], rest.mean(dim=0))
    assert torch.equal(aggregate_hypotheses(x[:1]), x[0])


def test_several_hypotheses_keep_shapes_and_one_hypothesis_is_the_plain_sample():
    torch.manual_seed(0)
    estimator = PoseEstimator(PoseEstimatorConfig(**SMALL))
    inputs = _inputs(np.random.default_rng(0))
    one = estimator.estimate(*inputs, torch.Generator().manual_seed(0))
    again = estimator.estimate(*inputs, torch.Generator().manual_seed(0), hypotheses=1)
    several = estimator.estimate(*inputs, torch.Generator().manual_seed(0), hypotheses=5)
    assert all(np.array_equal(a, b) for a, b in zip(one, again))
    assert [a.shape for a in several] == [a.shape for a in one]
    assert np.allclose(np.linalg.det(several[0]), 1.0, atol=1e-5)
    with pytest.raises(InputError, match="hypotheses"):
        PoseEstimatorConfig(hypotheses=0)


@pytest.mark.parametrize("kind", ["diffusion", "regression"])
def test_overfits_one_batch(kind):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    estimator = PoseEstimator(PoseEstimatorConfig(kind=kind, **SMALL))
    crops, points, ids = _inputs(rng)
    batch = estimator.batch(crops, points, ids)
    rotation = torch.as_tensor(_random_rotations(rng, 8), dtype=torch.float32)
    target = estimator.to_vector(rotation, batch.centroid + 0.01, torch.full((8, 3), 0.1), batch)
    optimizer = torch.optim.Adam(estimator.net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(150):
        loss = estimator.loss(batch, target, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-20:]) < 0.1 * np.mean(losses[:5])
    estimated, _, _ = estimator.estimate(crops, points, ids, torch.Generator().manual_seed(1))
    cos = (np.trace(np.swapaxes(estimated, 1, 2) @ rotation.numpy(), axis1=1, axis2=2) - 1) / 2
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).mean() < 25


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    config = PoseEstimatorConfig(**SMALL)
    estimator = PoseEstimator(config)
    save_checkpoint(tmp_path / "ckpt", estimator.net, {"kind": "pose", "estimator": config.__dict__, "train": {}})
    loaded = load_checkpoint(tmp_path / "ckpt", kind="pose").model
    inputs = _inputs(np.random.default_rng(2))
    a = estimator.estimate(*inputs, torch.Generator().manual_seed(3))
    b = loaded.estimate(*inputs, torch.Generator().manual_seed(3))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    with pytest.raises(InputError, match="vpg"):
        load_checkpoint(tmp_path / "ckpt", kind="vpg")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pose")
    path = folder / "tiny.h5"
    import os

    old = os.environ.get("MANIPSTACK_CACHE")
    os.environ["MANIPSTACK_CACHE"] = str(folder / "cache")
    try:
        build_pose_dataset(PoseDataConfig(out=path, scenes=4, seed=1, domain="shifted", instances="test"))
    finally:
        if old is None:
            os.environ.pop("MANIPSTACK_CACHE")
        else:
            os.environ["MANIPSTACK_CACHE"] = old
    return path


def _train_config(dataset, out, **kw):
    return TrainPoseConfig(dataset=dataset, out=out, steps=6, batch_size=4, checkpoint_every=3, val_fraction=0.25,
                           estimator=PoseEstimatorConfig(**SMALL), **kw)


def test_training_is_deterministic_and_resumes(tiny_dataset, tmp_path):
    train(_train_config(tiny_dataset, tmp_path / "a"))
    train(_train_config(tiny_dataset, tmp_path / "b"))
    train(dataclass_replace(_train_config(tiny_dataset, tmp_path / "c"), steps=3))
    train(_train_config(tiny_dataset, tmp_path / "c", resume=True))
    weights = [load_checkpoint(tmp_path / run / "checkpoints" / "final").model.net.state_dict() for run in "abc"]
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
        assert torch.allclose(weights[0][key], weights[2][key], atol=1e-6), key
    with pytest.raises(InputError, match="resume"):
        train(_train_config(tiny_dataset, tmp_path / "none", resume=True))


def dataclass_replace(config, **kw):
    import dataclasses

    return dataclasses.replace(config, **kw)


def test_eval_writes_nocs_pickles_and_metrics(tiny_dataset, tmp_path):
    train(_train_config(tiny_dataset, tmp_path / "run", kind="regression"))
    out = tmp_path / "eval"
    metrics = eval_run(EvalPoseConfig(out=out, checkpoint=tmp_path / "run" / "checkpoints" / "final",
                                      dataset=tiny_dataset))
    assert metrics["instances"] >= 4 and (out / "mAP_curves.png").is_file()
    pickles = sorted((out / "predictions").glob("*.pkl"))
    assert len(pickles) == 4
    rescored = eval_run(EvalPoseConfig(out=tmp_path / "rescored", predictions=out / "predictions"))
    assert rescored["mean"] == metrics["mean"]
    assert set(json.loads((out / "metrics.json").read_text())["mean"]) == {
        "IoU25", "IoU50", "IoU75", "5deg2cm", "5deg5cm", "10deg2cm", "10deg5cm"}
    with pytest.raises(InputError, match="either"):
        EvalPoseConfig(out=out, checkpoint=tmp_path, predictions=out)


def test_bench_reports_both_estimators(tmp_path):
    results = bench_run(BenchPoseConfig(diffusion=None, regression=None, batch=4, repeats=1, out=tmp_path))
    for kind in ("diffusion", "regression"):
        assert results[kind]["estimates_per_s_batched"] > 0 and results[kind]["one_object_ms"] > 0


def test_true_pose_grasp_lifts_the_object():
    env = gym.make("manipstack/PoseGrasp-v0", privileged=True).unwrapped
    try:
        obs, info = env.reset(seed=2, options={"category": "can"})
        assert obs["mask"].sum() > 100 and int(obs["class_id"]) == 4
        _, reward, terminated, _, info = env.step(GroundTruthPosePolicy().act(obs))
        assert terminated and reward == 1.0 and info["position_error_cm"] < 1e-6
        env.reset(seed=2)
        bad = GroundTruthPosePolicy().act(obs)
        bad[6:9] = bad[3:6]
        with pytest.raises(InputError, match="parallel"):
            env.step(bad)
    finally:
        env.close()


def test_demo_section_draws_overlays(tmp_path):
    from manipstack.eval.bench.pose import SHIPPED
    from manipstack.eval.pose import demo

    if not (SHIPPED / "diffusion").is_dir():
        pytest.skip("no shipped pose checkpoint")
    section = demo(tmp_path, seed=0)
    assert section.metrics["instances"] > 0 and all(p.is_file() for p in section.images)
