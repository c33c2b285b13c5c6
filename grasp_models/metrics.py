"""Grasp-quality and diversity metrics (DexGraspNet): Q1 (epsilon) force closure, joint entropy, wrist spread."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.transform import Rotation

from manipstack.grasp_models.hand.model import HandModel
from manipstack.grasp_models.objects import ObjectModel


def q1_metric(points: np.ndarray, normals: np.ndarray, friction: float = 0.8, cone_edges: int = 8,
              torque_scale: float = 1.0) -> float:
    """Ferrari-Canny Q1 (epsilon) of point contacts with Coulomb friction.

    Args:
        points: contact positions (N, 3) in m, relative to the wrench reference (object centre).
        normals: outward unit surface normals (N, 3); contact forces push inward (-normal).
        friction: friction coefficient mu of the linearised cones.
        cone_edges: edges per friction cone.
        torque_scale: torques are divided by this length in m (e.g. the object radius), making Q1 unitless.

    Returns:
        Radius of the largest origin-centred ball inside the convex hull of the unit-normal-force contact
        wrenches; 0 when the origin is outside the hull or the wrenches do not span 6-D.
    """
    points, normals = np.asarray(points, float).reshape(-1, 3), np.asarray(normals, float).reshape(-1, 3)
    if len(points) == 0:
        return 0.0
    wrenches = []
    for p, n in zip(points, normals):
        n = n / np.linalg.norm(n)
        t1 = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 else [0.0, 1.0, 0.0])
        t1 /= np.linalg.norm(t1)
        t2 = np.cross(n, t1)
        for a in np.linspace(0.0, 2 * np.pi, cone_edges, endpoint=False):
            force = -n + friction * (np.cos(a) * t1 + np.sin(a) * t2)
            wrenches.append(np.concatenate([force, np.cross(p, force) / torque_scale]))
    try:
        hull = ConvexHull(np.array(wrenches))
    except (QhullError, ValueError):
        return 0.0
    offsets = hull.equations[:, -1]  # normal . x + offset <= 0 inside; distance of origin to a facet = -offset
    return float(max(0.0, (-offsets).min()))


def grasp_contacts(hand: HandModel, obj: ObjectModel, poses: torch.Tensor, threshold: float = 0.005
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per hand pose (B, 3 + 6 + J): contact candidates within ``threshold`` m of the surface as
    (points (N, 3) m object frame, outward object normals (N, 3))."""
    with torch.no_grad():
        points, _ = hand.contact_candidates(hand.forward(poses))
        dist, normals = obj.query(points)
    points, normals = points.cpu().numpy(), normals.cpu().numpy()
    near = (dist.abs() < threshold).cpu().numpy()
    return [(points[b][near[b]], normals[b][near[b]]) for b in range(len(poses))]


def grasp_q1(hand: HandModel, obj: ObjectModel, poses: torch.Tensor, friction: float = 0.8) -> np.ndarray:
    """Q1 (B,) of hand poses (B, 3 + 6 + J) on ``obj``, torques scaled by the object radius."""
    return np.array([q1_metric(p, n, friction, torque_scale=obj.radius)
                     for p, n in grasp_contacts(hand, obj, poses)])


def joint_entropy(joints: np.ndarray, lower: np.ndarray, upper: np.ndarray, bins: int = 10) -> np.ndarray:
    """Entropy (J,) in bits of each joint's angle histogram (``bins`` bins over its limits) of grasps (N, J).

    0 for an empty set; log2(bins) at most (uniform use of the range). DexGraspNet reports mean and std.
    """
    joints = np.asarray(joints, float)
    out = np.zeros(len(lower))
    if len(joints) == 0:
        return out
    for j in range(len(lower)):
        counts, _ = np.histogram(np.clip(joints[:, j], lower[j], upper[j]), bins=bins, range=(lower[j], upper[j]))
        p = counts[counts > 0] / counts.sum()
        out[j] = float(-(p * np.log2(p)).sum())
    return out


def wrist_rotation_spread(rotations: np.ndarray) -> float:
    """Mean geodesic angle in rad between wrist rotations (N, 3, 3) and their chordal mean rotation."""
    rots = Rotation.from_matrix(np.asarray(rotations, float))
    return float((rots.mean().inv() * rots).magnitude().mean())
