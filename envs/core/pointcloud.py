"""Back-projection of depth images to point clouds."""

from __future__ import annotations

import numpy as np


def depth_to_points_camera(depth_m: np.ndarray, intrinsics_matrix: np.ndarray) -> np.ndarray:
    """Back-project metric depth (H, W) to camera-frame points (H, W, 3) in m (OpenCV frame).

    Pixel centres are at (col + 0.5, row + 0.5). Pixels with depth 0 give (0, 0, 0).
    """
    height, width = depth_m.shape
    fx, fy = intrinsics_matrix[0, 0], intrinsics_matrix[1, 1]
    cx, cy = intrinsics_matrix[0, 2], intrinsics_matrix[1, 2]
    cols = np.arange(width, dtype=np.float32) + 0.5
    rows = np.arange(height, dtype=np.float32) + 0.5
    x = (cols[None, :] - cx) / fx * depth_m
    y = (rows[:, None] - cy) / fy * depth_m
    return np.stack([x, y, depth_m.astype(np.float32)], axis=-1)


def depth_to_points_world(
    depth_m: np.ndarray, intrinsics_matrix: np.ndarray, world_from_cam: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """World-frame points of the valid pixels.

    Returns:
        points (N, 3) in m, world frame, and the boolean mask (H, W) of the pixels they came from.
    """
    valid = depth_m > 0
    cam_points = depth_to_points_camera(depth_m, intrinsics_matrix)[valid]
    world_points = cam_points @ world_from_cam[:3, :3].T + world_from_cam[:3, 3]
    return world_points.astype(np.float32), valid


def frame_to_points_world(frame: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) in m and their RGB colours (N, 3) uint8 from a camera ``capture()`` frame."""
    points, valid = depth_to_points_world(frame["depth"], frame["intrinsics"], frame["extrinsics"])
    return points, frame["rgb"][valid]
