"""The object observation: fused depth views (table removed) or mesh samples, sampled to N, canonical frame."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from manipstack.envs.tasks.object_view import ViewConfig
from manipstack.errors import InputError
from manipstack.grasp_models.objects import signed_distance
from manipstack.grasp_models.observation import ObservationConfig, observe_mesh, observe_object, poses_to_canonical


@pytest.fixture
def box_file(tmp_path):
    mesh = trimesh.creation.box(extents=(0.08, 0.05, 0.06))  # centred on the origin, z up
    path = tmp_path / "box.obj"
    mesh.export(path)
    return mesh, path


@pytest.mark.parametrize("mode", ["depth", "mesh"])
def test_points_lie_on_the_surface_in_the_canonical_frame(box_file, mode):
    mesh, path = box_file
    obs = observe_object(path, ObservationConfig(mode=mode, num_points=200), seed=3)
    assert obs.points.shape == (200, 3) and obs.points.dtype == np.float32
    np.testing.assert_allclose(obs.points.mean(axis=0), 0.0, atol=1e-6)  # centroid at the origin
    object_frame = obs.points + obs.centroid
    distance = np.abs(signed_distance(mesh, object_frame))
    assert distance.max() < 0.003  # within 3 mm of the surface (depth quantisation is ~1 mm here)
    if mode == "depth":
        # the table is removed: nothing below the margin above the table (the box bottom is at z = -0.03)
        assert object_frame[:, 2].min() > -0.03 + 0.002
        assert obs.seen > 200
        # the cameras look from above: the top face is seen
        assert object_frame[:, 2].max() > 0.03 - 0.002
    else:
        assert object_frame[:, 2].min() < -0.03 + 0.005


@pytest.mark.parametrize("mode", ["depth", "mesh"])
def test_deterministic_under_a_seed(box_file, mode):
    _, path = box_file
    config = ObservationConfig(mode=mode, num_points=128)
    a, b = observe_object(path, config, seed=1), observe_object(path, config, seed=1)
    np.testing.assert_array_equal(a.points, b.points)
    c = observe_object(path, config, seed=2)
    assert not np.array_equal(a.points, c.points)


def test_dataset_mesh_and_pose_mapping(box_file):
    mesh, _ = box_file
    obs = observe_mesh(mesh.vertices, mesh.faces, ObservationConfig(num_points=64,
                                                                     view=ViewConfig(num_cameras=2, image_size=64)))
    assert obs.points.shape == (64, 3)
    poses = np.zeros((2, 25), np.float32)
    canonical = poses_to_canonical(poses, obs.centroid)
    np.testing.assert_allclose(canonical[:, :3], -obs.centroid[None].astype(np.float32).repeat(2, 0))
    np.testing.assert_array_equal(canonical[:, 3:], poses[:, 3:])


def test_bad_input_names_the_file(tmp_path):
    missing = tmp_path / "missing.obj"
    with pytest.raises(InputError, match="missing.obj"):
        observe_object(missing)
    empty = tmp_path / "empty.obj"
    empty.write_text("")
    for mode in ("depth", "mesh"):
        with pytest.raises(InputError, match="empty.obj"):
            observe_object(empty, ObservationConfig(mode=mode))
    with pytest.raises(InputError, match="mode"):
        ObservationConfig(mode="rgb")
    with pytest.raises(InputError, match="num_cameras"):
        ViewConfig(num_cameras=5)
