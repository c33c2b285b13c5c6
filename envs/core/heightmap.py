"""Orthographic top-down heightmaps over a workspace box (VPG's definition).

A heightmap pixel holds the height (m) above the workspace floor of the highest point that falls in
it; empty pixels hold 0. Rows index y and columns index x, both increasing from the box's minimum
corner: pixel (row, col) covers x in [x0 + col * s, x0 + (col + 1) * s), y likewise with row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manipstack.envs.core.pointcloud import frame_to_points_world
from manipstack.errors import InputError


@dataclass(frozen=True)
class Workspace:
    """An axis-aligned box in the world frame: bounds (3, 2) = [[x0, x1], [y0, y1], [z0, z1]] in m."""

    bounds: np.ndarray
    pixel_size: float

    def __post_init__(self) -> None:
        bounds = np.asarray(self.bounds, dtype=float)
        if bounds.shape != (3, 2) or np.any(bounds[:, 1] <= bounds[:, 0]):
            raise InputError(f"bounds must be [[x0, x1], [y0, y1], [z0, z1]] with x0 < x1 etc., got {bounds}")
        if self.pixel_size <= 0:
            raise InputError(f"pixel_size must be > 0 m, got {self.pixel_size}")
        object.__setattr__(self, "bounds", bounds)

    @property
    def shape(self) -> tuple[int, int]:
        """Heightmap (rows, cols) = (y cells, x cells)."""
        extent = self.bounds[:2, 1] - self.bounds[:2, 0]
        cols, rows = np.round(extent / self.pixel_size).astype(int)
        return int(rows), int(cols)

    def pixel_to_world(self, row: float, col: float, height: float = 0.0) -> np.ndarray:
        """World point (3,) in m at the centre of pixel (row, col), ``height`` m above the floor."""
        x = self.bounds[0, 0] + (col + 0.5) * self.pixel_size
        y = self.bounds[1, 0] + (row + 0.5) * self.pixel_size
        return np.array([x, y, self.bounds[2, 0] + height])

    def world_to_pixel(self, point: np.ndarray) -> tuple[int, int]:
        """(row, col) of the pixel containing a world point (x, y, ...) in m."""
        col = int(np.floor((point[0] - self.bounds[0, 0]) / self.pixel_size))
        row = int(np.floor((point[1] - self.bounds[1, 0]) / self.pixel_size))
        return row, col


def heightmap_from_points(
    points: np.ndarray, colors: np.ndarray, workspace: Workspace
) -> tuple[np.ndarray, np.ndarray]:
    """Project world points into a heightmap; higher points win.

    Args:
        points: (N, 3) world-frame points in m.
        colors: (N, 3) uint8 colours of the points.
        workspace: box and pixel size.

    Returns:
        color heightmap uint8 (rows, cols, 3) and height heightmap float32 (rows, cols) in m.
    """
    rows, cols = workspace.shape
    (x0, _), (y0, _), (z0, z1) = workspace.bounds
    col_idx = np.floor((points[:, 0] - x0) / workspace.pixel_size).astype(np.int64)
    row_idx = np.floor((points[:, 1] - y0) / workspace.pixel_size).astype(np.int64)
    inside = (
        (col_idx >= 0) & (col_idx < cols) & (row_idx >= 0) & (row_idx < rows)
        & (points[:, 2] >= z0) & (points[:, 2] < z1)
    )
    points, colors, row_idx, col_idx = points[inside], colors[inside], row_idx[inside], col_idx[inside]
    order = np.argsort(-points[:, 2], kind="stable")  # highest first
    flat = row_idx[order] * cols + col_idx[order]
    cells, first = np.unique(flat, return_index=True)  # first occurrence = highest point of the cell
    winners = order[first]
    height = np.zeros(rows * cols, dtype=np.float32)
    color = np.zeros((rows * cols, 3), dtype=np.uint8)
    height[cells] = points[winners, 2] - z0
    color[cells] = colors[winners]
    return color.reshape(rows, cols, 3), height.reshape(rows, cols)


def heightmap_from_frames(frames: list[dict[str, np.ndarray]], workspace: Workspace) -> tuple[np.ndarray, np.ndarray]:
    """Fuse one or more camera ``capture()`` frames into (color uint8 (H, W, 3), height float32 (H, W) m)."""
    clouds = [frame_to_points_world(f) for f in frames]
    points = np.concatenate([c[0] for c in clouds])
    colors = np.concatenate([c[1] for c in clouds])
    return heightmap_from_points(points, colors, workspace)
