"""Hand model: FK against PyBullet, rot6d, signed distances of objects and of the hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from manipstack.envs.core.poses import matrix_to_quat
from manipstack.envs.core.world import World
from manipstack.envs.robots.sim.hand import SimHand
from manipstack.grasp_models.hand.model import HandModel, matrix_to_rot6d, rot6d_to_matrix
from manipstack.grasp_models.objects import ObjectModel


@pytest.fixture(scope="module")
def hand() -> HandModel:
    return HandModel()


def test_rot6d_round_trip():
    rot = torch.as_tensor(Rotation.random(5, random_state=0).as_matrix(), dtype=torch.float64)
    assert torch.allclose(rot6d_to_matrix(matrix_to_rot6d(rot)), rot, atol=1e-12)


def test_fk_matches_pybullet_link_poses(hand):
    rng = np.random.default_rng(0)
    lower, upper = hand.lower.numpy(), hand.upper.numpy()
    with World(gravity=0.0) as world:
        sim = SimHand(world)
        link_index = {info.link_name: info.index for info in world.joint_infos(sim.name)}
        for _ in range(5):
            joints = rng.uniform(lower, upper)
            rot = Rotation.random(random_state=rng).as_matrix()
            position = rng.uniform(-0.2, 0.2, size=3)
            sim.reset(position, matrix_to_quat(rot), joints)
            pose = torch.tensor(np.concatenate([position, rot[:, 0], rot[:, 1], joints]), dtype=torch.float64)
            model = HandModel(hand.spec_path, dtype=torch.float64)
            state = model.forward(pose[None])
            for i, name in enumerate(model.link_names):
                if name == model.root_link:
                    continue
                pos, quat = world.link_pose(sim.name, link_index[name])
                np.testing.assert_allclose(state.link_tf[0, i, :3, 3].numpy(), pos, atol=1e-4)
                np.testing.assert_allclose(state.link_tf[0, i, :3, :3].numpy(),
                                           Rotation.from_quat(quat).as_matrix(), atol=1e-5)


def test_hand_spec_joint_count_is_not_assumed(hand):
    assert hand.num_joints == len(hand.spec["joints"]) == 16
    assert hand.pose_dim == 9 + hand.num_joints
    with pytest.raises(ValueError, match="hand pose needs"):
        hand.forward(torch.zeros(2, 20))


def test_sdf_sphere_sign_and_distance():
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.04)
    obj = ObjectModel(mesh.vertices, mesh.faces, np.random.default_rng(0))
    points = torch.tensor([[0.0, 0.0, 0.01], [0.06, 0.0, 0.0], [0.0, -0.02, 0.0], [0.0, 0.0, 0.2]])
    dist, normals = obj.query(points)
    np.testing.assert_allclose(dist.numpy(), [-0.03, 0.02, -0.02, 0.16], atol=1e-3)
    np.testing.assert_allclose(normals[1].numpy(), [1.0, 0.0, 0.0], atol=0.05)
    np.testing.assert_allclose(normals[2].numpy(), [0.0, -1.0, 0.0], atol=0.05)


def test_sdf_box_sign_and_distance():
    mesh = trimesh.creation.box(extents=[0.08, 0.06, 0.04])
    obj = ObjectModel(mesh.vertices, mesh.faces, np.random.default_rng(0))
    points = torch.tensor([[0.0, 0.0, -0.01], [0.05, 0.0, 0.0], [0.0, 0.0, 0.03], [0.035, 0.0, 0.0], [0.05, 0.04, 0.0]])
    dist, _ = obj.query(points)
    np.testing.assert_allclose(dist.numpy(), [-0.01, 0.01, 0.01, -0.005, np.hypot(0.01, 0.01)], atol=1e-3)


def test_hand_signed_distance_of_palm_and_finger(hand):
    identity = torch.tensor([0.0, 0, 0, 1, 0, 0, 0, 1, 0])
    pose = torch.cat([identity, torch.zeros(hand.num_joints)])[None]
    state = hand.forward(pose)
    # palm box spans x in [-0.025, 0]: 1 cm in front of it is +1 cm; its centre plane is 12.5 mm deep
    points = torch.tensor([[0.01, 0.0, 0.05], [-0.0125, 0.0, 0.05]])
    np.testing.assert_allclose(hand.signed_distance(state, points)[0].numpy(), [0.01, -0.0125], atol=1e-6)


def test_sim_hand_rejects_wrong_joint_count():
    with World(gravity=0.0) as world:
        sim = SimHand(world)
        with pytest.raises(ValueError, match=f"need {sim.num_joints} finite joint angles"):
            sim.set_joint_targets(np.zeros(sim.num_joints + 1))
        with pytest.raises(ValueError, match="finite"):
            sim.reset((0, 0, 0), (0, 0, 0, 1), np.full(sim.num_joints, np.nan))
