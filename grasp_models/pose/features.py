"""Estimator inputs from an RGB-D frame and an instance mask, and training targets (numpy only).

For one instance: the **masked RGB crop** (pixels outside the mask set to 0) of a square around the mask's bounding
box, resized by nearest neighbour to ``crop_size`` x ``crop_size``; and the **back-projected points** of the mask's
valid depth pixels (camera frame, OpenCV, m), ``num_points`` of them drawn from the generator (with replacement
when the mask has fewer). Targets are the object's rotation (camera frame; for objects symmetric about y a
canonical representative, see :func:`canonical_rotation`), translation (m) and metric extents (m).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manipstack.assets.pose_categories import CATEGORIES

MUG_ID = CATEGORIES.index("mug") + 1
SYMMETRIC_IDS = tuple(CATEGORIES.index(c) + 1 for c in ("bottle", "bowl", "can"))


@dataclass
class InstanceInputs:
    """One instance's inputs: crop uint8 (S, S, 3), points float32 (N, 3) m camera frame, 2-D box
    ``(y1, x1, y2, x2)`` px (NOCS's ``bboxes`` order) and the number of valid depth pixels it came from."""

    crop: np.ndarray
    points: np.ndarray
    bbox: np.ndarray
    valid_pixels: int


def mask_bbox(mask: np.ndarray) -> np.ndarray:
    """``(y1, x1, y2, x2)`` of a boolean mask (end exclusive), as NOCS writes ``bboxes``."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.array([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1])


def square_crop(image: np.ndarray, bbox: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Nearest-neighbour crop (size, size, ...) of a square ``margin`` times the box's longer side, centred on it
    (pixels beyond the image edge repeat the edge)."""
    y1, x1, y2, x2 = bbox
    side = max(y2 - y1, x2 - x1) * margin
    cy, cx = (y1 + y2) / 2, (x1 + x2) / 2
    offsets = (np.arange(size) + 0.5) / size * side - side / 2
    rows = np.clip(np.floor(cy + offsets).astype(int), 0, image.shape[0] - 1)
    cols = np.clip(np.floor(cx + offsets).astype(int), 0, image.shape[1] - 1)
    return image[rows[:, None], cols[None, :]]


def instance_inputs(rgb: np.ndarray, depth_m: np.ndarray, mask: np.ndarray, intrinsics: np.ndarray,
                    rng: np.random.Generator, crop_size: int = 64, num_points: int = 1024,
                    margin: float = 1.15) -> InstanceInputs | None:
    """Crop and points of one instance (see module docstring); None if its mask has no valid depth pixel."""
    mask = np.asarray(mask, dtype=bool)
    valid = mask & (depth_m > 0)
    count = int(valid.sum())
    if count == 0:
        return None
    bbox = mask_bbox(mask)
    crop = square_crop(rgb * mask[..., None].astype(rgb.dtype), bbox, crop_size, margin)
    rows, cols = np.nonzero(valid)
    pick = rng.choice(count, size=num_points, replace=count < num_points)
    rows, cols = rows[pick], cols[pick]
    z = depth_m[rows, cols]
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    points = np.stack([(cols + 0.5 - cx) / fx * z, (rows + 0.5 - cy) / fy * z, z], axis=1).astype(np.float32)
    return InstanceInputs(crop, points, bbox, count)


def is_symmetric_id(class_id: int, handle_visible: bool) -> bool:
    """Symmetric about y: bottle, bowl, can, and a mug whose handle is hidden (NOCS's rule)."""
    return class_id in SYMMETRIC_IDS or (class_id == MUG_ID and not handle_visible)


def canonical_rotation(rotation: np.ndarray) -> np.ndarray:
    """The representative of ``rotation`` (3, 3) (object to camera) among its turns about the object's y axis whose
    x axis is closest to the camera's x axis (or z, when y is along camera x): a unique label for a symmetric
    object, so a regressor is not asked to hit an arbitrary angle."""
    y = rotation[:, 1] / np.linalg.norm(rotation[:, 1])
    reference = np.array([1.0, 0.0, 0.0]) if abs(y[0]) < 0.95 else np.array([0.0, 0.0, 1.0])
    x = reference - (reference @ y) * y
    x /= np.linalg.norm(x)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def rotation_from_sRT(sRT: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Rotation (3, 3), translation (3,) m and scale of a NOCS ``sRT``."""
    scale = float(np.cbrt(np.linalg.det(sRT[:3, :3])))
    return sRT[:3, :3] / scale, sRT[:3, 3].copy(), scale


def sRT_from_pose(rotation: np.ndarray, translation: np.ndarray, extents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NOCS ``sRT`` (4, 4) and ``scales`` (3,) of a pose and metric extents (3,) m (s = box diagonal)."""
    scale = float(np.linalg.norm(extents))
    sRT = np.eye(4)
    sRT[:3, :3] = rotation * scale
    sRT[:3, 3] = translation
    return sRT, np.asarray(extents, dtype=float) / scale
