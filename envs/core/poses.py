"""The one place where poses are converted.

Conventions (DESIGN.md): positions in metres, quaternions ``(x, y, z, w)``, world frame z-up.
A pose is either ``(position (3,), quat_xyzw (4,))`` or a 4x4 homogeneous matrix ``T`` such that
``p_parent = T @ p_child``. Names read ``parent_to_child``-free: ``world_to_cam`` maps camera-frame
points into the world frame.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from manipstack.errors import InputError

Pose = tuple[np.ndarray, np.ndarray]


def quat_to_matrix(quat_xyzw: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) from a quaternion (x, y, z, w)."""
    return Rotation.from_quat(np.asarray(quat_xyzw, dtype=float)).as_matrix()


def matrix_to_quat(rot: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w), w >= 0, from a rotation matrix (3, 3)."""
    quat = Rotation.from_matrix(np.asarray(rot, dtype=float)).as_quat()
    return quat if quat[3] >= 0 else -quat


def pose_to_matrix(position: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    """4x4 homogeneous transform from position (3,) in m and quaternion (x, y, z, w)."""
    transform = np.eye(4)
    transform[:3, :3] = quat_to_matrix(quat_xyzw)
    transform[:3, 3] = position
    return transform


def pose_to_pose7(position: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    """Flat pose ``[x, y, z, qx, qy, qz, qw]`` (7,) from position and quaternion."""
    return np.concatenate([np.asarray(position, dtype=float), np.asarray(quat_xyzw, dtype=float)])


def euler_to_quat(roll_pitch_yaw: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w) from extrinsic xyz Euler angles in rad (PyBullet's convention)."""
    return Rotation.from_euler("xyz", roll_pitch_yaw).as_quat()


def quat_multiply(q1_xyzw: np.ndarray, q2_xyzw: np.ndarray) -> np.ndarray:
    """Hamilton product ``q1 * q2`` (apply q2 first, then q1), quaternions (x, y, z, w)."""
    return (Rotation.from_quat(q1_xyzw) * Rotation.from_quat(q2_xyzw)).as_quat()


def rotation_angle_between(q1_xyzw: np.ndarray, q2_xyzw: np.ndarray) -> float:
    """Geodesic angle in rad between two orientations given as quaternions (x, y, z, w)."""
    relative = Rotation.from_quat(q1_xyzw).inv() * Rotation.from_quat(q2_xyzw)
    return float(relative.magnitude())


def interpolate_poses(start: Pose, goal: Pose, num: int) -> list[Pose]:
    """``num`` poses on the straight line from ``start`` to ``goal`` (excluded start, included goal).

    Positions are interpolated linearly (m, world frame) and orientations by slerp.
    """
    if num < 1:
        raise InputError(f"num must be >= 1, got {num}")
    fractions = np.linspace(0.0, 1.0, num + 1)[1:]
    slerp = Slerp([0.0, 1.0], Rotation.from_quat(np.stack([start[1], goal[1]])))
    quats = slerp(fractions).as_quat()
    start_pos, goal_pos = np.asarray(start[0], float), np.asarray(goal[0], float)
    return [(start_pos + f * (goal_pos - start_pos), q) for f, q in zip(fractions, quats)]


def unit_quaternion_pose(pose7: np.ndarray) -> np.ndarray:
    """A copy of a pose (x, y, z, qx, qy, qz, qw) with its quaternion scaled to unit length."""
    pose7 = np.array(pose7, dtype=float)
    pose7[3:] /= np.linalg.norm(pose7[3:])
    return pose7


def matrix_to_rot6d(rotation: np.ndarray) -> np.ndarray:
    """rot6d (6,) = columns 0 and 1 of a rotation (3, 3) (the grasp dataset's layout; numpy twin of
    ``grasp_models.hand.model.matrix_to_rot6d``)."""
    return np.concatenate([rotation[:, 0], rotation[:, 1]])


def rot6d_to_matrix(r6: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) from rot6d (6,) = [column 0, column 1] by Gram-Schmidt from column 0."""
    x = r6[:3] / np.linalg.norm(r6[:3])
    y = r6[3:6] - (r6[3:6] @ x) * x
    y /= np.linalg.norm(y)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def yaw_rotation(yaw: float) -> np.ndarray:
    """Rotation (3, 3) about world z by ``yaw`` rad."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
