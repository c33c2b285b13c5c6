"""UGG-style grasp diffusion: a transformer denoiser over the hand-pose vector, conditioned on point-cloud tokens.

Inputs: the object's point cloud (B, N, 3) in m, canonical frame (``grasp_models.observation``); output: hand poses
(B, D) in the same frame, D = 3 + 6 + J (wrist translation m, rot6d = rotation columns 0 and 1, joints rad: the
grasp dataset's layout). UGG (Lu et al. 2024) also diffuses K contact anchors on the object surface; they are not
part of this model yet.

- **Point tokens** (plain torch, PointNet++-style set abstraction): ``num_tokens`` centres by farthest-point
  sampling, the ``group_size`` nearest points of each as offsets from the centre -> shared MLP -> max, plus an MLP
  of the centre's position: (B, T, width) tokens.
- **Grasp tokens**: the normalised pose vector split into slices (translation, rot6d, joints in chunks of
  ``joints_per_token``), each embedded by its own linear layer, plus a learned slot embedding and the diffusion-step
  embedding: (B, G, width).
- **Denoiser**: a pre-norm ``nn.TransformerEncoder`` over the G grasp tokens and the T point tokens together (self
  attention); each grasp token's output is projected back to its slice.
- **Diffusion**: diffusers ``DDPMScheduler`` for the training loss (``add_noise`` at uniform steps), ``DDIMScheduler``
  for sampling in ``inference_steps`` steps (default 20), deterministic under a ``torch.Generator``.
- **Projection after sampling**: de-normalise, rot6d -> the nearest proper rotation's columns (Gram-Schmidt), joints
  clamped into the hand's limits.

The pose vector is standardised with per-dimension statistics of the training set (``pose_mean``, ``pose_std``);
points are divided by ``point_scale``. Shapes: B objects (or grasps), N points, T tokens, G grasp slices,
D pose dimensions, C = ``width``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from manipstack.errors import InputError
from manipstack.grasp_models.checkpoint import CheckpointKind, load_weights
from manipstack.grasp_models.diffusion import diffusion_schedulers, timestep_embedding
from manipstack.grasp_models.hand.model import matrix_to_rot6d, rot6d_to_matrix

PREDICTION_TYPES = ("epsilon", "sample")


@dataclass
class UGGConfig:
    """Architecture, diffusion and sampling settings of the UGG generator, with the statistics it needs."""

    num_joints: int = 16
    """J, the hand's joints (the pose vector has 3 + 6 + J values)."""
    joint_lower: list[float] = field(default_factory=lambda: [-0.5] * 16)
    """Lower joint limits in rad (spec order); sampled joints are clamped into [joint_lower, joint_upper]."""
    joint_upper: list[float] = field(default_factory=lambda: [1.6] * 16)
    """Upper joint limits in rad (spec order)."""
    pose_mean: list[float] = field(default_factory=lambda: [0.0] * 25)
    """Per-dimension mean of the training poses (canonical frame)."""
    pose_std: list[float] = field(default_factory=lambda: [1.0] * 25)
    """Per-dimension standard deviation of the training poses (> 0)."""
    point_scale: float = 0.05
    """Points (m, canonical frame) are divided by this."""
    num_tokens: int = 32
    """T, point tokens (set-abstraction centres)."""
    group_size: int = 16
    """Nearest points pooled into each token."""
    width: int = 128
    """C, token width."""
    layers: int = 4
    """Transformer layers."""
    heads: int = 4
    """Attention heads (must divide width)."""
    joints_per_token: int = 4
    """Joints per grasp token."""
    train_timesteps: int = 1000
    """DDPM diffusion steps in training."""
    beta_schedule: str = "squaredcos_cap_v2"
    """diffusers beta schedule."""
    prediction_type: str = "epsilon"
    """What the denoiser predicts: 'epsilon' (the noise) or 'sample' (the clean pose vector)."""
    inference_steps: int = 20
    """DDIM steps at sampling (<= 20 by default)."""

    def __post_init__(self) -> None:
        dim = 9 + self.num_joints
        if self.prediction_type not in PREDICTION_TYPES:
            raise InputError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        if len(self.joint_lower) != self.num_joints or len(self.joint_upper) != self.num_joints:
            raise InputError(f"joint_lower / joint_upper need {self.num_joints} values each")
        if any(lo > hi for lo, hi in zip(self.joint_lower, self.joint_upper)):
            raise InputError("joint_lower must be <= joint_upper for every joint")
        if len(self.pose_mean) != dim or len(self.pose_std) != dim or min(self.pose_std) <= 0:
            raise InputError(f"pose_mean / pose_std need {dim} values (std > 0)")
        if self.width % self.heads:
            raise InputError(f"heads ({self.heads}) must divide width ({self.width})")
        if self.num_tokens < 1 or self.group_size < 1 or self.joints_per_token < 1 or self.point_scale <= 0:
            raise InputError("num_tokens, group_size, joints_per_token and point_scale must be positive")
        if not 1 <= self.inference_steps <= self.train_timesteps:
            raise InputError(f"inference_steps must be in [1, train_timesteps], got {self.inference_steps}")

    @property
    def pose_dim(self) -> int:
        """D = 3 + 6 + J."""
        return 9 + self.num_joints


def pose_statistics(poses: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-dimension mean and std (std floored at 1e-3) of training poses (M, D), for :class:`UGGConfig`."""
    poses = np.asarray(poses, np.float64)
    return poses.mean(axis=0).tolist(), np.maximum(poses.std(axis=0), 1e-3).tolist()


# ---------------------------------------------------------------------------------------------------- encoder
def farthest_point_indices(points: torch.Tensor, count: int) -> torch.Tensor:
    """Indices (B, count) of farthest-point samples of points (B, N, 3), starting at point 0 (deterministic)."""
    B, N, _ = points.shape
    chosen = torch.zeros(B, count, dtype=torch.long, device=points.device)
    distance = torch.full((B, N), float("inf"), device=points.device)
    last = torch.zeros(B, dtype=torch.long, device=points.device)
    batch = torch.arange(B, device=points.device)
    for i in range(count):
        chosen[:, i] = last
        distance = torch.minimum(distance, ((points - points[batch, last][:, None]) ** 2).sum(-1))  # (B, N)
        last = distance.argmax(dim=1)
    return chosen


class PointTokenizer(nn.Module):
    """Points (B, N, 3), normalised -> tokens (B, T, C) (set abstraction: FPS centres, kNN groups, shared MLP, max)."""

    def __init__(self, config: UGGConfig) -> None:
        super().__init__()
        self.num_tokens, self.group_size = config.num_tokens, config.group_size
        self.local = nn.Sequential(nn.Linear(3, 64), nn.GELU(), nn.Linear(64, 128), nn.GELU(),
                                   nn.Linear(128, config.width))
        self.position = nn.Sequential(nn.Linear(3, config.width), nn.GELU(), nn.Linear(config.width, config.width))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        B, N, _ = points.shape
        T, K = min(self.num_tokens, N), min(self.group_size, N)
        batch = torch.arange(B, device=points.device)[:, None]
        centres = points[batch, farthest_point_indices(points, T)]  # (B, T, 3)
        neighbours = torch.cdist(centres, points).topk(K, dim=-1, largest=False).indices  # (B, T, K)
        offsets = points[batch[..., None], neighbours] - centres[:, :, None]  # (B, T, K, 3)
        return self.local(offsets).max(dim=2).values + self.position(centres)  # (B, T, C)


# ---------------------------------------------------------------------------------------------------- denoiser
class UGGNet(nn.Module):
    """Point tokenizer + transformer denoiser (see the module docstring)."""

    def __init__(self, config: UGGConfig) -> None:
        super().__init__()
        self.config = config
        joints = list(range(9, config.pose_dim))
        chunks = [joints[i:i + config.joints_per_token] for i in range(0, len(joints), config.joints_per_token)]
        self.slices = [(0, 3), (3, 9), *[(c[0], c[-1] + 1) for c in chunks]]  # G (start, stop) pairs of the pose
        C = config.width
        self.tokenizer = PointTokenizer(config)
        self.embed = nn.ModuleList(nn.Linear(b - a, C) for a, b in self.slices)
        self.unembed = nn.ModuleList(nn.Linear(C, b - a) for a, b in self.slices)
        self.slot = nn.Parameter(torch.randn(len(self.slices), C) * 0.02)  # (G, C)
        self.point_type = nn.Parameter(torch.randn(C) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(C, C), nn.GELU(), nn.Linear(C, C))
        layer = nn.TransformerEncoderLayer(C, config.heads, 4 * C, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(C)

    def encode(self, points: torch.Tensor) -> torch.Tensor:
        """Point tokens (B, T, C) of normalised points (B, N, 3)."""
        return self.tokenizer(points) + self.point_type

    def denoise(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Denoiser output (B, D) for noisy normalised poses x (B, D) at steps t (B,) given point tokens (B, T, C)."""
        time = self.time_mlp(timestep_embedding(t, self.config.width))  # (B, C)
        grasp = torch.stack([embed(x[:, a:b]) for embed, (a, b) in zip(self.embed, self.slices)], dim=1)  # (B, G, C)
        grasp = grasp + self.slot + time[:, None]
        h = self.norm(self.transformer(torch.cat([grasp, tokens], dim=1)))[:, :len(self.slices)]  # (B, G, C)
        return torch.cat([unembed(h[:, g]) for g, unembed in enumerate(self.unembed)], dim=-1)  # (B, D)


# ---------------------------------------------------------------------------------------------------- generator
class UGGGenerator:
    """A :class:`UGGNet` with its statistics and schedulers: the training loss, and sampling with projection.

    Args:
        config: the generator config.
        device: torch device.
        net: an existing network (e.g. just trained or loaded); a new one is built if None (global torch seed).
    """

    def __init__(self, config: UGGConfig, device: str | torch.device = "cpu", net: UGGNet | None = None) -> None:
        self.config = config
        self.device = torch.device(device)
        self.net = (net or UGGNet(config)).to(self.device)
        as_tensor = lambda v: torch.tensor(v, dtype=torch.float32, device=self.device)  # noqa: E731
        self.mean, self.std = as_tensor(config.pose_mean), as_tensor(config.pose_std)
        self.lower, self.upper = as_tensor(config.joint_lower), as_tensor(config.joint_upper)
        self.ddpm, self.ddim = diffusion_schedulers(config.train_timesteps, config.beta_schedule,
                                                    config.prediction_type)

    def normalise_points(self, points: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Points (B, N, 3) m, canonical frame -> the network's input (B, N, 3)."""
        return torch.as_tensor(points, dtype=torch.float32, device=self.device) / self.config.point_scale

    def loss(self, points: torch.Tensor | np.ndarray, poses: torch.Tensor | np.ndarray,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """DDPM denoising MSE for poses (B, D) (canonical frame) of objects seen as points (B, N, 3) m."""
        x0 = (torch.as_tensor(poses, dtype=torch.float32, device=self.device) - self.mean) / self.std  # (B, D)
        tokens = self.net.encode(self.normalise_points(points))
        noise = torch.randn(x0.shape, generator=generator, device=self.device)
        t = torch.randint(0, self.config.train_timesteps, (len(x0),), generator=generator, device=self.device)
        prediction = self.net.denoise(self.ddpm.add_noise(x0, noise, t), t, tokens)
        return F.mse_loss(prediction, noise if self.config.prediction_type == "epsilon" else x0)

    @torch.no_grad()
    def sample(self, points: torch.Tensor | np.ndarray, samples_per_object: int = 1,
               generator: torch.Generator | None = None, steps: int | None = None) -> torch.Tensor:
        """Hand poses (B * S, D) in m / rad, canonical frame, object-major (object b's grasps are rows
        b*S ... b*S + S - 1), for objects seen as points (B, N, 3) m: DDIM in ``steps`` (default
        ``inference_steps``) steps, then projected (proper rotation, joints within the limits)."""
        self.net.eval()
        tokens = self.net.encode(self.normalise_points(points)).repeat_interleave(samples_per_object, dim=0)
        M = len(tokens)  # B * S
        self.ddim.set_timesteps(steps or self.config.inference_steps, device=self.device)
        x = torch.randn((M, self.config.pose_dim), generator=generator, device=self.device)
        for t in self.ddim.timesteps:
            x = self.ddim.step(self.net.denoise(x, t.expand(M).to(self.device), tokens), t, x).prev_sample
        return self.project(x * self.std + self.mean)

    def project(self, poses: torch.Tensor) -> torch.Tensor:
        """Poses (M, D) with rot6d replaced by the columns of the nearest proper rotation (Gram-Schmidt) and joints
        clamped into [joint_lower, joint_upper]."""
        rot6d = matrix_to_rot6d(rot6d_to_matrix(poses[:, 3:9]))
        joints = torch.maximum(torch.minimum(poses[:, 9:], self.upper), self.lower)
        return torch.cat([poses[:, :3], rot6d, joints], dim=-1)


# ---------------------------------------------------------------------------------------------------- checkpoint
@dataclass
class UGGCheckpointConfig:
    """``config.json`` of a UGG checkpoint: the generator, the observation it was trained on, how it was trained."""

    generator: UGGConfig
    observation: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)


def _build(config: UGGCheckpointConfig, folder: Path, device: str) -> UGGGenerator:
    generator = UGGGenerator(config.generator, device)
    load_weights(folder, generator.net, device)
    generator.net.eval()
    return generator


CHECKPOINT_KIND = CheckpointKind(UGGCheckpointConfig, _build)
