"""Diffusion pieces shared by the diffusion models (pose, UGG): diffusers schedulers and the step embedding."""

from __future__ import annotations

import math

import torch
from diffusers import DDIMScheduler, DDPMScheduler


def diffusion_schedulers(train_timesteps: int, beta_schedule: str, prediction_type: str,
                         timestep_spacing: str = "trailing") -> tuple[DDPMScheduler, DDIMScheduler]:
    """A ``DDPMScheduler`` for the training loss (``add_noise``) and a ``DDIMScheduler`` for sampling over the same
    noise schedule; no sample clipping, and the last DDIM step goes to alpha = 1."""
    args = {"num_train_timesteps": train_timesteps, "beta_schedule": beta_schedule,
            "prediction_type": prediction_type, "clip_sample": False}
    return DDPMScheduler(**args), DDIMScheduler(**args, timestep_spacing=timestep_spacing, set_alpha_to_one=True)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of diffusion steps t (B,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
