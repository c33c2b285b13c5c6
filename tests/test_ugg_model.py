"""The UGG grasp diffusion model: DDIM sample shapes and joint limits, overfitting one batch, save/load round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from manipstack.errors import InputError
from manipstack.grasp_models.checkpoint import load_checkpoint, save_checkpoint
from manipstack.grasp_models.hand.model import HandModel, rot6d_to_matrix
from manipstack.grasp_models.ugg.model import UGGCheckpointConfig, UGGConfig, UGGGenerator, pose_statistics

torch.set_num_threads(1)  # OpenMP threads spin-wait for cores on a busy 2-core machine

SMALL = {"num_tokens": 8, "group_size": 8, "width": 32, "layers": 2, "heads": 2, "inference_steps": 10}


def _batch(rng: np.random.Generator, hand: HandModel, batch: int = 8, points: int = 64):
    """Random canonical-frame points (B, N, 3) m and poses (B, D) inside the hand's limits."""
    cloud = (rng.normal(size=(batch, points, 3)) * 0.03).astype(np.float32)
    q, _ = np.linalg.qr(rng.normal(size=(batch, 3, 3)))
    q *= np.sign(np.linalg.det(q))[:, None, None]
    lower, upper = hand.lower.numpy(), hand.upper.numpy()
    joints = lower + rng.random((batch, hand.num_joints)) * (upper - lower)
    poses = np.concatenate([rng.normal(size=(batch, 3)) * 0.08, q[:, :, 0], q[:, :, 1], joints], axis=1)
    return cloud, poses.astype(np.float32)


def _config(hand: HandModel, poses: np.ndarray, **overrides) -> UGGConfig:
    mean, std = pose_statistics(poses)
    fields = {"num_joints": hand.num_joints, "joint_lower": hand.lower.tolist(), "joint_upper": hand.upper.tolist(),
              "pose_mean": mean, "pose_std": std, **SMALL}
    return UGGConfig(**{**fields, **overrides})


@pytest.fixture(scope="module")
def hand():
    return HandModel()


def test_ddim_samples_have_shapes_and_respect_joint_limits(hand):
    torch.manual_seed(0)
    cloud, poses = _batch(np.random.default_rng(0), hand, batch=3)
    # a wide pose spread makes the raw samples leave the limits, so the projection has work to do
    generator = UGGGenerator(_config(hand, poses, pose_std=[1.0] * hand.pose_dim))
    assert generator.config.inference_steps <= 20 and UGGConfig().inference_steps <= 20
    samples = generator.sample(cloud, samples_per_object=5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (15, hand.pose_dim) and torch.isfinite(samples).all()
    joints = samples[:, 9:]
    assert torch.all(joints >= hand.lower - 1e-6) and torch.all(joints <= hand.upper + 1e-6)
    assert torch.any(joints == hand.upper) or torch.any(joints == hand.lower)  # projection did clamp
    rotation = rot6d_to_matrix(samples[:, 3:9])
    assert torch.allclose(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(15, 3, 3), atol=1e-5)
    assert torch.allclose(samples[:, 3:6], rotation[:, :, 0], atol=1e-5)  # rot6d is already orthonormal
    assert torch.allclose(torch.linalg.det(rotation), torch.ones(15), atol=1e-5)


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample"])
def test_overfits_one_batch(hand, prediction_type):
    torch.manual_seed(0)
    cloud, poses = _batch(np.random.default_rng(1), hand)
    generator = UGGGenerator(_config(hand, poses, prediction_type=prediction_type))
    optimiser = torch.optim.Adam(generator.net.parameters(), lr=2e-3)
    generator.net.train()
    losses = []
    for _ in range(150):
        # the same noise and steps every time: one fixed batch to memorise
        loss = generator.loss(cloud, poses, torch.Generator().manual_seed(0))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5, (losses[0], losses[-1])


def test_save_load_round_trip_gives_identical_samples(hand, tmp_path):
    torch.manual_seed(0)
    cloud, poses = _batch(np.random.default_rng(2), hand, batch=2)
    generator = UGGGenerator(_config(hand, poses))
    config = UGGCheckpointConfig(generator.config, observation={"mode": "mesh"}, train={"steps": 0})
    save_checkpoint(tmp_path / "ckpt", generator.net, {"kind": "ugg", **dataclasses.asdict(config)})
    loaded = load_checkpoint(tmp_path / "ckpt", kind="ugg")
    assert loaded.config.generator == generator.config and loaded.config.observation == {"mode": "mesh"}
    a = generator.sample(cloud, 4, torch.Generator().manual_seed(7))
    b = loaded.model.sample(cloud, 4, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, loaded.model.sample(cloud, 4, torch.Generator().manual_seed(8)))
    with pytest.raises(InputError, match="'ugg' checkpoint, but a 'pose'"):
        load_checkpoint(tmp_path / "ckpt", kind="pose")


def test_config_checks():
    with pytest.raises(InputError, match="pose_mean"):
        UGGConfig(pose_mean=[0.0] * 3)
    with pytest.raises(InputError, match="joint_lower"):
        UGGConfig(joint_lower=[2.0] * 16)
    with pytest.raises(InputError, match="prediction_type"):
        UGGConfig(prediction_type="v")
