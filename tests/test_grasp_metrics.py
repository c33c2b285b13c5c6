"""Grasp metric math on hand-computed cases: Q1, force-closure energy, joint entropy, wrist spread."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from manipstack.grasp_models.metrics import joint_entropy, q1_metric, wrist_rotation_spread
from manipstack.grasp_models.synthesis.dexgraspnet import force_closure_energy

CUBE_POINTS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)


def test_q1_zero_without_closure():
    # all contacts push the same way: the origin is outside the wrench hull
    points = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [0.0, 0.1, 1.0]])
    normals = np.tile([0.0, 0.0, 1.0], (3, 1))
    assert q1_metric(points, normals) == 0.0
    assert q1_metric(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0


def test_q1_positive_for_six_face_grasp_and_grows_with_friction():
    low = q1_metric(CUBE_POINTS, CUBE_POINTS, friction=0.3)
    high = q1_metric(CUBE_POINTS, CUBE_POINTS, friction=0.8)
    assert 0.0 < low < high
    # order of the contacts does not matter
    assert np.isclose(q1_metric(CUBE_POINTS[::-1], CUBE_POINTS[::-1], friction=0.3), low)


def test_q1_frictionless_opposed_pair_hand_computed():
    # two frictionless antipodal contacts span only a 1-D wrench set: no closure
    points = np.array([[1.0, 0, 0], [-1.0, 0, 0]])
    assert q1_metric(points, points, friction=0.0) == 0.0


def test_force_closure_energy_hand_computed():
    points = torch.tensor([[[1.0, 0, 0], [-1.0, 0, 0]]])
    normals = torch.tensor([[[1.0, 0, 0], [-1.0, 0, 0]]])
    assert float(force_closure_energy(points, normals)) == 0.0
    # same side: net force (2, 0, 0) -> 4; torque of y-normals at x = +-1: z-torques 1 and 1 -> 4
    same = torch.tensor([[[1.0, 0, 0], [1.0, 0, 0]]])
    assert float(force_closure_energy(points, same)) == 4.0
    twist = torch.tensor([[[0.0, 1, 0], [0.0, -1, 0]]])
    assert float(force_closure_energy(points, twist)) == 4.0


def test_joint_entropy_hand_computed():
    lower, upper = np.zeros(2), np.ones(2)
    joints = np.array([[0.1, 0.5], [0.35, 0.5], [0.6, 0.5], [0.85, 0.5]])
    entropy = joint_entropy(joints, lower, upper, bins=4)
    np.testing.assert_allclose(entropy, [2.0, 0.0])
    np.testing.assert_allclose(joint_entropy(np.zeros((0, 2)), lower, upper), [0.0, 0.0])


def test_wrist_rotation_spread_hand_computed():
    rots = Rotation.from_rotvec([[0, 0, 0.3], [0, 0, -0.3]]).as_matrix()
    assert np.isclose(wrist_rotation_spread(rots), 0.3, atol=1e-6)
