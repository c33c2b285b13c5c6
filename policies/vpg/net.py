"""Fully convolutional push and grasp Q-networks over rotated heightmaps (VPG, rebuilt small for CPU).

VPG (Zeng et al. 2018) runs two FCNs (push, grasp), each of two ImageNet DenseNet-121 towers, on the
RGB-D heightmap rotated to each of R angles; every output pixel is the Q value of executing the
primitive there at that angle. Nothing here downloads weights, so the towers are replaced by a small
convolution trunk (stride 4) shared by a push head and a grasp head, trained from scratch.

All R rotations of both primitives come from one batched forward pass: the padded heightmap is
rotated R times with ``affine_grid``/``grid_sample`` (rotation ``i`` maps direction ``2 pi i / R`` of
the heightmap onto +x, the axis along which the network learns to push and close the fingers), the
batch goes through the net (stride 4), and each heightmap pixel reads its Q value from its rotated
position in the low-resolution output by bilinear interpolation (rotation back, crop and upsampling in one
``grid_sample``). Training evaluates single pixels the same way on small windows (:func:`q_at_pixels`).

Shapes: B batch, R rotations, C channels, H x W heightmap, P x P padded square (P = ceil(H sqrt 2), a
multiple of 4). Heightmap axes: rows = y, cols = x (``envs.core.heightmap``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from manipstack.errors import InputError

IN_CHANNELS = 4  # RGB in [0, 1] + height / HEIGHT_SCALE
HEIGHT_SCALE = 0.05  # m


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class QNet(nn.Module):
    """Shared trunk + push and grasp heads; ``(N, 4, P, P) -> (N, 2, P/4, P/4)`` Q maps (0 push, 1 grasp).

    Args:
        width: channels of the trunk at 1/4 resolution.
    """

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.trunk = nn.Sequential(  # receptive field 39 pixels (16 cm at 4 mm); no dilation (slow on CPU)
            _conv(IN_CHANNELS, width // 2, stride=2),
            _conv(width // 2, width, stride=2),
            *(_conv(width, width) for _ in range(4)),
        )
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width // 2, 1), nn.ReLU(inplace=True), nn.Conv2d(width // 2, 1, 1))
            for _ in range(2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.trunk(x)  # (N, width, P/4, P/4)
        return torch.cat([head(features) for head in self.heads], dim=1)  # (N, 2, P/4, P/4)


def padded_size(height: int, width: int) -> int:
    """Side P of the square that holds an H x W image under any rotation, with ``(P - H) / 2`` and
    ``(P - W) / 2`` multiples of 4 so the crop back to H x W falls on the net's stride-4 grid (H, W multiples of 4)."""
    if height % 4 or width % 4:
        raise InputError(f"heightmap sides must be multiples of 4 pixels, got {height} x {width}")
    side = max(height, width)
    return side + 8 * int(math.ceil((math.hypot(height, width) - side) / 8))


def rotation_grids(angles: torch.Tensor, size: int) -> torch.Tensor:
    """Sampling grids (N, P, P, 2) that rotate a (P, P) image so direction ``angles`` (N,) rad lands on +x.

    ``grid_sample(img, grid)`` reads the input at ``Rot(angle) @ p`` for output point ``p`` (normalised
    (x = col, y = row) coordinates).
    """
    cos, sin = torch.cos(angles), torch.sin(angles)
    zeros = torch.zeros_like(angles)
    theta = torch.stack([torch.stack([cos, -sin, zeros], -1), torch.stack([sin, cos, zeros], -1)], -2)  # (N, 2, 3)
    return F.affine_grid(theta, [len(angles), 1, size, size], align_corners=False)


def preprocess(color: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
    """Network input (B, 4, H, W) from colour uint8 (B, H, W, 3) and height (B, H, W) in m."""
    rgb = color.permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, W)
    return torch.cat([rgb, (height.float() / HEIGHT_SCALE).unsqueeze(1)], dim=1)


def rotate_inputs(inputs: torch.Tensor, angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int, int]:
    """Pad each input (B, C, H, W) to P x P and rotate it by each of its angles (B, K) rad.

    Returns:
        rotated inputs (B*K, C, P, P), the flat angles (B*K,), P, and the (top, left) offset of the
        H x W heightmap inside the padded square.
    """
    B, C, H, W = inputs.shape
    K = angles.shape[1]
    P = padded_size(H, W)
    top, left = (P - H) // 2, (P - W) // 2
    padded = F.pad(inputs, (left, P - W - left, top, P - H - top))  # (B, C, P, P)
    repeated = padded.unsqueeze(1).expand(B, K, C, P, P).reshape(B * K, C, P, P)
    flat_angles = angles.reshape(B * K)
    rotated = F.grid_sample(repeated, rotation_grids(flat_angles, P), mode="nearest", align_corners=False)
    return rotated, flat_angles, P, top, left


def q_maps(net: QNet, inputs: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Q maps of both primitives for each input at each of its angles.

    Args:
        net: the Q network.
        inputs: (B, 4, H, W) network inputs (see :func:`preprocess`).
        angles: (B, K) rad, the rotations to evaluate per input (K = R for acting, 1-2 for training).

    Returns:
        (B, K, 2, H, W) Q values; ``[b, k, p, row, col]`` = Q of primitive p at angle ``angles[b, k]``,
        executed at heightmap pixel (row, col).
    """
    B, _, H, W = inputs.shape
    K = angles.shape[1]
    rotated, flat_angles, P, top, left = rotate_inputs(inputs, angles)
    q = net(rotated)  # (B*K, 2, P/4, P/4) in rotated frames
    # each heightmap pixel centre p (normalised, padded frame) sits at Rot(-angle) p in the rotated frame
    x = ((left + torch.arange(W, device=inputs.device) + 0.5) / P * 2 - 1).view(1, 1, W)
    y = ((top + torch.arange(H, device=inputs.device) + 0.5) / P * 2 - 1).view(1, H, 1)
    cos, sin = torch.cos(flat_angles).view(-1, 1, 1), torch.sin(flat_angles).view(-1, 1, 1)
    grid = torch.stack([cos * x + sin * y, -sin * x + cos * y], dim=-1)  # (B*K, H, W, 2)
    q = F.grid_sample(q, grid.to(q.dtype), mode="bilinear", align_corners=False)  # (B*K, 2, H, W)
    return q.reshape(B, K, 2, H, W)


def q_at_pixels(
    net: QNet, inputs: torch.Tensor, angles: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, crop: int = 64
) -> torch.Tensor:
    """Q values of both primitives at one heightmap pixel per input, for each of its angles (for training).

    The fully convolutional net only needs the input around the pixel: each rotated heightmap is cut to a
    ``crop`` x ``crop`` window (aligned to the net's stride 4) centred on the pixel's rotated position, which
    holds the net's whole receptive field (39 pixels), so the value equals :func:`q_maps`'s while the cost
    drops by ``(crop / P)^2``.

    Args:
        net: the Q network.
        inputs: (B, 4, H, W) network inputs.
        angles: (B, K) rad.
        rows, cols: (B,) heightmap pixel per input.
        crop: window side in pixels (multiple of 4).

    Returns:
        (B, K, 2) Q values (push, grasp).
    """
    B = inputs.shape[0]
    K = angles.shape[1]
    rotated, flat_angles, P, top, left = rotate_inputs(inputs, angles)
    crop = min(crop, P)
    # normalised position of each pixel centre in the padded frame, then in the rotated frame: Rot(-angle) p
    x = ((left + cols.float() + 0.5) / P * 2 - 1).repeat_interleave(K)  # (B*K,)
    y = ((top + rows.float() + 0.5) / P * 2 - 1).repeat_interleave(K)
    cos, sin = torch.cos(flat_angles), torch.sin(flat_angles)
    u = ((cos * x + sin * y) + 1) / 2 * P  # continuous pixel coordinates in the rotated image
    v = ((-sin * x + cos * y) + 1) / 2 * P
    u0 = (torch.floor((u - crop / 2) / 4) * 4).clamp(0, P - crop).long()  # (B*K,) window origins
    v0 = (torch.floor((v - crop / 2) / 4) * 4).clamp(0, P - crop).long()
    windows = torch.stack([rotated[i, :, v0[i]: v0[i] + crop, u0[i]: u0[i] + crop] for i in range(B * K)])
    q = net(windows)  # (B*K, 2, crop/4, crop/4)
    grid = torch.stack([(u - u0) / crop * 2 - 1, (v - v0) / crop * 2 - 1], dim=-1).view(B * K, 1, 1, 2)
    values = F.grid_sample(q, grid.to(q.dtype), mode="bilinear", align_corners=False)  # (B*K, 2, 1, 1)
    return values.view(B, K, 2)
