"""The pose estimator: a Diff9D-style diffusion model over (rotation, translation, size), and a direct-regression
baseline that shares every layer with it.

Inputs per instance (``grasp_models.pose.features``): a masked RGB crop (B, 3, S, S) and N back-projected points
(B, N, 3) in m, camera frame, and the class id (the instance mask and class come from the simulator's segmentation;
the estimator is not a detector). The points are centred on their centroid ``c`` and divided by ``POINT_SCALE``.

- **Encoders** (plain torch): a small CNN over the crop (4 stride-2 convolutions, GroupNorm, global average pool;
  Diff9D uses a ResNet18 at 192 px, which does not train in an hour on a 2-core CPU), a PointNet (shared MLP,
  max-pool) over the points, and a class embedding; concatenated and projected to a condition vector.
- **Pose vector** x (12,): rot6d = the object's y and x axes in the camera frame (projected to SO(3) by Gram-Schmidt
  starting from y, so a symmetric object's axis is exact), the translation residual ``t - c`` and the extents minus
  the class's mean extents, both standardised with statistics of the training set.
- **Diffusion** (``kind='diffusion'``): a residual MLP denoiser with FiLM conditioning on the condition vector and a
  sinusoidal time embedding; trained with diffusers' ``DDPMScheduler`` (``add_noise``, ``num_train_timesteps``),
  ``prediction_type`` 'epsilon' as Diff9D or 'sample' (x0); sampled with ``DDIMScheduler`` in
  ``inference_steps`` steps (default 3), deterministic under a ``torch.Generator``.
- **Regression** (``kind='regression'``): the same head called once with x = 0 at t = 0, trained to output x.

Shapes: B instances, N points, S crop side, D = 12 pose dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from manipstack.assets.pose_categories import CATEGORIES
from manipstack.errors import InputError
from manipstack.grasp_models.checkpoint import CheckpointKind, load_weights
from manipstack.grasp_models.diffusion import diffusion_schedulers, timestep_embedding

KINDS = ("diffusion", "regression")
PREDICTION_TYPES = ("epsilon", "sample")
POINT_SCALE = 0.1
"""Points are divided by this (m) after centring."""
POSE_DIM = 12


@dataclass
class PoseEstimatorConfig:
    """Architecture and sampling settings of the pose estimator (and the training-set statistics it needs)."""

    kind: str = "diffusion"
    """'diffusion' (DDPM training, DDIM sampling) or 'regression' (the same network, one direct prediction)."""
    crop_size: int = 64
    """Side in pixels of the masked RGB crop (<= 96 on this CPU)."""
    num_points: int = 256
    """Back-projected points per instance (Diff9D: 1024; 256 keeps an hour's training on a shared 2-core CPU)."""
    cnn_width: int = 32
    """Channels of the first crop convolution (doubling to 4x)."""
    point_width: int = 256
    """Width of the PointNet's global feature."""
    cond_dim: int = 256
    """Width of the condition vector (crop + points + class)."""
    hidden: int = 256
    """Width of the denoiser / regression head."""
    blocks: int = 4
    """Residual blocks in the head."""
    train_timesteps: int = 1000
    """DDPM diffusion steps in training."""
    beta_schedule: str = "squaredcos_cap_v2"
    """diffusers beta schedule ('linear' as Diff9D, 'squaredcos_cap_v2', ...)."""
    prediction_type: str = "sample"
    """What the denoiser predicts: 'epsilon' (the noise, Diff9D) or 'sample' (the clean pose vector)."""
    inference_steps: int = 3
    """DDIM steps at inference."""
    timestep_spacing: str = "trailing"
    """DDIM timestep spacing ('trailing' starts from the last training step, i.e. from pure noise)."""
    hypotheses: int = 1
    """DDIM samples per instance at inference (the encoders run once): the medoid rotation (least summed chordal
    distance to the others) and the mean translation and size are returned, as GenPose aggregates its samples."""
    class_mean_extents: list[list[float]] = field(default_factory=lambda: [[0.1, 0.1, 0.1]] * len(CATEGORIES))
    """Mean metric extents (m) per class (class id - 1), from the training set."""
    residual_mean: list[float] = field(default_factory=lambda: [0.0] * 6)
    """Mean of (t - c, extents - class mean) in m over the training set."""
    residual_std: list[float] = field(default_factory=lambda: [0.05] * 6)
    """Standard deviation of (t - c, extents - class mean) in m over the training set."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.prediction_type not in PREDICTION_TYPES:
            raise InputError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        if not 16 <= self.crop_size <= 96 or self.crop_size % 16:
            raise InputError(f"crop_size must be a multiple of 16 in [16, 96], got {self.crop_size}")
        if self.num_points < 16:
            raise InputError(f"num_points must be >= 16, got {self.num_points}")
        if self.hypotheses < 1:
            raise InputError(f"hypotheses must be >= 1, got {self.hypotheses}")
        if self.inference_steps < 1 or self.inference_steps > self.train_timesteps:
            raise InputError(f"inference_steps must be in [1, train_timesteps], got {self.inference_steps}")
        if len(self.class_mean_extents) != len(CATEGORIES) or len(self.residual_mean) != 6 \
                or len(self.residual_std) != 6 or min(self.residual_std) <= 0:
            raise InputError("class_mean_extents needs 6 rows of 3, residual_mean / residual_std 6 values (std > 0)")


# ---------------------------------------------------------------------------------------------------- rotations
def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) from rot6d (..., 6) = (y axis, x axis): Gram-Schmidt from y, z = x cross y."""
    y = F.normalize(rot6d[..., 0:3], dim=-1)
    x = rot6d[..., 3:6]
    x = F.normalize(x - (x * y).sum(-1, keepdim=True) * y, dim=-1)
    z = torch.cross(x, y, dim=-1)
    return torch.stack([x, y, z], dim=-1)


def matrix_to_rot6d(rotation: torch.Tensor) -> torch.Tensor:
    """rot6d (..., 6) = (y axis, x axis) of rotation matrices (..., 3, 3)."""
    return torch.cat([rotation[..., :, 1], rotation[..., :, 0]], dim=-1)


# ---------------------------------------------------------------------------------------------------- network
class CropEncoder(nn.Module):
    """Masked RGB crop (B, 3, S, S) in [0, 1] -> feature (B, 4 * width)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        channels = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(8, c_out), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)
        self.out_dim = channels[-1]

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        return self.net(crop).mean(dim=(2, 3))  # (B, C, S/16, S/16) -> (B, C)


class PointEncoder(nn.Module):
    """PointNet: points (B, N, 3) -> global feature (B, width) (shared MLP 3-64-128-width, max over N)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(3, 64), nn.ReLU(inplace=True), nn.Linear(64, 128), nn.ReLU(inplace=True),
                                 nn.Linear(128, width))
        self.out_dim = width

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.mlp(points).max(dim=1).values  # (B, N, width) -> (B, width)


class FiLMBlock(nn.Module):
    """Residual MLP block whose normalised input is scaled and shifted by the condition."""

    def __init__(self, hidden: int, cond: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.film = nn.Linear(cond, 2 * hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).chunk(2, dim=-1)
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


class PoseNet(nn.Module):
    """Encoders + head (see module docstring)."""

    def __init__(self, config: PoseEstimatorConfig) -> None:
        super().__init__()
        self.config = config
        self.crop_encoder = CropEncoder(config.cnn_width)
        self.point_encoder = PointEncoder(config.point_width)
        self.class_embedding = nn.Embedding(len(CATEGORIES) + 1, 32)
        self.condition = nn.Sequential(
            nn.Linear(self.crop_encoder.out_dim + config.point_width + 32, config.cond_dim), nn.SiLU(),
            nn.Linear(config.cond_dim, config.cond_dim))
        self.time_mlp = nn.Sequential(nn.Linear(64, config.cond_dim), nn.SiLU(), nn.Linear(config.cond_dim,
                                                                                          config.cond_dim))
        self.input = nn.Linear(POSE_DIM, config.hidden)
        self.blocks = nn.ModuleList(FiLMBlock(config.hidden, config.cond_dim) for _ in range(config.blocks))
        self.output = nn.Sequential(nn.LayerNorm(config.hidden), nn.Linear(config.hidden, POSE_DIM))

    def encode(self, crop: torch.Tensor, points: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
        """Condition (B, cond_dim) from crops (B, 3, S, S) in [0, 1], normalised points (B, N, 3), class ids (B,)."""
        features = torch.cat([self.crop_encoder(crop), self.point_encoder(points), self.class_embedding(class_ids)],
                             dim=-1)
        return self.condition(features)

    def head(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Head output (B, D) for pose vectors x (B, D) at diffusion steps t (B,) under conditions (B, cond_dim)."""
        c = cond + self.time_mlp(timestep_embedding(t, 64))
        h = self.input(x)
        for block in self.blocks:
            h = block(h, c)
        return self.output(h)


# ---------------------------------------------------------------------------------------------------- estimator
@dataclass
class PoseBatch:
    """A batch of model inputs (tensors on the model's device) and the centroids they were centred on."""

    crop: torch.Tensor  # (B, 3, S, S) float in [0, 1]
    points: torch.Tensor  # (B, N, 3) normalised
    class_ids: torch.Tensor  # (B,) long
    centroid: torch.Tensor  # (B, 3) m


class PoseEstimator:
    """A :class:`PoseNet` with its statistics and schedulers: turns inputs into poses and pose vectors back.

    Args:
        config: the estimator config.
        device: torch device.
        net: an existing network (e.g. just trained); a new one is built if None.
    """

    def __init__(self, config: PoseEstimatorConfig, device: str | torch.device = "cpu",
                 net: PoseNet | None = None) -> None:
        self.config = config
        self.device = torch.device(device)
        self.net = (net or PoseNet(config)).to(self.device)
        self.class_mean = torch.tensor(config.class_mean_extents, dtype=torch.float32, device=self.device)
        self.res_mean = torch.tensor(config.residual_mean, dtype=torch.float32, device=self.device)
        self.res_std = torch.tensor(config.residual_std, dtype=torch.float32, device=self.device)
        self.ddpm, self.ddim = diffusion_schedulers(config.train_timesteps, config.beta_schedule,
                                                    config.prediction_type, config.timestep_spacing)

    def batch(self, crops: np.ndarray, points: np.ndarray, class_ids: np.ndarray) -> PoseBatch:
        """Tensors from numpy crops (B, S, S, 3) uint8, points (B, N, 3) m and class ids (B,)."""
        crop = torch.as_tensor(crops, device=self.device).permute(0, 3, 1, 2).float() / 255.0
        pts = torch.as_tensor(points, dtype=torch.float32, device=self.device)
        centroid = pts.mean(dim=1)
        pts = (pts - centroid[:, None]) / POINT_SCALE
        return PoseBatch(crop, pts, torch.as_tensor(class_ids, dtype=torch.long, device=self.device), centroid)

    def to_vector(self, rotation: torch.Tensor, translation: torch.Tensor, extents: torch.Tensor,
                  batch: PoseBatch) -> torch.Tensor:
        """Pose vectors (B, D) from rotations (B, 3, 3), translations (B, 3) m and extents (B, 3) m."""
        residual = torch.cat([translation - batch.centroid, extents - self.class_mean[batch.class_ids - 1]], dim=-1)
        return torch.cat([matrix_to_rot6d(rotation), (residual - self.res_mean) / self.res_std], dim=-1)

    def from_vector(self, x: torch.Tensor, batch: PoseBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rotations (B, 3, 3) in SO(3), translations (B, 3) m and extents (B, 3) m (>= 5 mm) from pose vectors."""
        residual = x[:, 6:] * self.res_std + self.res_mean
        extents = (residual[:, 3:] + self.class_mean[batch.class_ids - 1]).clamp(min=0.005)
        return rot6d_to_matrix(x[:, :6]), residual[:, :3] + batch.centroid, extents

    def loss(self, batch: PoseBatch, target: torch.Tensor, generator: torch.Generator | None = None,
             noise_draws: int = 4) -> torch.Tensor:
        """Training loss for target pose vectors (B, D): DDPM denoising MSE over ``noise_draws`` noise levels per
        instance (the encoders run once), or the regression MSE."""
        cond = self.net.encode(batch.crop, batch.points, batch.class_ids)
        if self.config.kind == "regression":
            zeros = torch.zeros_like(target)
            return F.mse_loss(self.net.head(zeros, torch.zeros(len(target), device=self.device), cond), target)
        B = len(target)
        cond = cond.repeat(noise_draws, 1)  # (K * B, cond_dim)
        x0 = target.repeat(noise_draws, 1)  # (K * B, D)
        noise = torch.randn(x0.shape, generator=generator, device=self.device)
        t = torch.randint(0, self.config.train_timesteps, (noise_draws * B,), generator=generator, device=self.device)
        x_t = self.ddpm.add_noise(x0, noise, t)
        prediction = self.net.head(x_t, t, cond)
        return F.mse_loss(prediction, noise if self.config.prediction_type == "epsilon" else x0)

    @torch.no_grad()
    def sample(self, batch: PoseBatch, generator: torch.Generator | None = None, steps: int | None = None,
               hypotheses: int | None = None) -> torch.Tensor:
        """Pose vectors (B, D): DDIM sampling in ``steps`` (default ``inference_steps``) of ``hypotheses`` (default
        the config's) samples per instance, aggregated by :func:`aggregate_hypotheses`; or one regression pass."""
        cond = self.net.encode(batch.crop, batch.points, batch.class_ids)
        B = len(cond)
        if self.config.kind == "regression":
            return self.net.head(torch.zeros(B, POSE_DIM, device=self.device), torch.zeros(B, device=self.device),
                                 cond)
        K = hypotheses or self.config.hypotheses
        cond = cond.repeat(K, 1)  # (K * B, cond_dim), hypothesis-major
        self.ddim.set_timesteps(steps or self.config.inference_steps, device=self.device)
        x = torch.randn((K * B, POSE_DIM), generator=generator, device=self.device)
        for t in self.ddim.timesteps:
            prediction = self.net.head(x, t.expand(K * B).to(self.device), cond)
            x = self.ddim.step(prediction, t, x).prev_sample
        return aggregate_hypotheses(x.reshape(K, B, POSE_DIM))

    @torch.no_grad()
    def estimate(self, crops: np.ndarray, points: np.ndarray, class_ids: np.ndarray,
                 generator: torch.Generator | None = None, steps: int | None = None, hypotheses: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rotations (B, 3, 3), translations (B, 3) m and extents (B, 3) m, camera frame, from numpy inputs."""
        self.net.eval()
        batch = self.batch(crops, points, class_ids)
        rotation, translation, extents = self.from_vector(self.sample(batch, generator, steps, hypotheses), batch)
        return (rotation.cpu().numpy().astype(np.float64), translation.cpu().numpy().astype(np.float64),
                extents.cpu().numpy().astype(np.float64))


def aggregate_hypotheses(x: torch.Tensor) -> torch.Tensor:
    """One pose vector (B, D) from K samples (K, B, D): the rot6d of the medoid rotation (the sample whose
    rotation has the least summed squared chordal distance to the others) and the mean of the other entries."""
    K, B, _ = x.shape
    if K == 1:
        return x[0]
    rotations = rot6d_to_matrix(x[..., :6].reshape(K * B, 6)).reshape(K, B, 3, 3)
    distances = ((rotations[:, None] - rotations[None]) ** 2).sum(dim=(-2, -1))  # (K, K, B)
    medoid = distances.sum(dim=1).argmin(dim=0)  # (B,)
    return torch.cat([x[medoid, torch.arange(B, device=x.device), :6], x[..., 6:].mean(dim=0)], dim=1)


def build_estimator(config: PoseEstimatorConfig, folder: Path, device: str) -> PoseEstimator:
    """Rebuild an estimator from a checkpoint folder (its weights loaded)."""
    estimator = PoseEstimator(config, device)
    load_weights(folder, estimator.net, device)
    estimator.net.eval()
    return estimator


@dataclass
class PoseCheckpointConfig:
    """``config.json`` of a pose checkpoint: the estimator and how it was trained."""

    estimator: PoseEstimatorConfig
    train: dict[str, Any] = field(default_factory=dict)


def _build(config: PoseCheckpointConfig, folder: Path, device: str) -> PoseEstimator:
    return build_estimator(config.estimator, folder, device)


CHECKPOINT_KIND = CheckpointKind(PoseCheckpointConfig, _build)
