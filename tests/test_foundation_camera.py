"""Cameras, depth linearisation, back-projection and VPG-style heightmaps."""

from __future__ import annotations

import numpy as np
import pytest

from manipstack.envs.core.camera import DepthNoise, Intrinsics, SimCamera, linearize_depth, look_at
from manipstack.envs.core.heightmap import Workspace, heightmap_from_frames, heightmap_from_points
from manipstack.envs.core.pointcloud import frame_to_points_world
from manipstack.envs.core.world import World

WORKSPACE = Workspace(np.array([[-0.224, 0.224], [-0.224, 0.224], [-0.01, 0.3]]), 0.002)


def _overhead(world: World, width: int = 640, height: int = 480) -> SimCamera:
    return SimCamera(world, Intrinsics.from_fov(width, height, 45), look_at([0.0, 0.0, 1.0], [0, 0, 0], [1, 0, 0]))


def test_linearize_depth_inverts_the_opengl_buffer():
    near, far = 0.1, 5.0
    depth = np.array([0.1, 0.5, 1.0, 4.9])
    z_ndc = ((far + near) - 2 * far * near / depth) / (far - near)
    np.testing.assert_allclose(linearize_depth((z_ndc + 1) / 2, near, far), depth, rtol=1e-5)


def test_back_projected_plane_recovers_its_height_within_1mm():
    with World() as world:
        world.add_primitive("slab", "box", [3.0, 3.0, 0.1], position=[0, 0, 0.05], mass=0)  # top at z = 0.1
        cam = SimCamera(
            world, Intrinsics(500.0, 520.0, 300.0, 250.0, 640, 480), look_at([0.2, -0.1, 0.8], [0, 0.05, 0.1])
        )
        points, colors = frame_to_points_world(cam.capture())
        assert len(points) > 0.9 * 640 * 480
        assert colors.shape == points.shape
        np.testing.assert_allclose(points[:, 2], 0.1, atol=1e-3)


def test_pixel_projection_matches_intrinsics():
    """A small sphere at a known world point is imaged at K @ p (within one pixel)."""
    with World() as world:
        world.add_primitive("dot", "sphere", [0.01] * 3, position=[0.05, 0.02, 0.0], mass=0)
        intr = Intrinsics(400.0, 400.0, 330.0, 230.0, 640, 480)
        world_from_cam = look_at([0.0, 0.0, 0.5], [0.0, 0.0, 0.0], [1, 0, 0])
        frame = SimCamera(world, intr, world_from_cam).capture()
        rows, cols = np.nonzero(frame["seg"] == world.body_id("dot"))
        p_cam = np.linalg.inv(world_from_cam) @ np.array([0.05, 0.02, 0.0, 1.0])
        uv = intr.matrix @ p_cam[:3] / p_cam[2]
        assert cols.mean() + 0.5 == pytest.approx(uv[0], abs=1.0)
        assert rows.mean() + 0.5 == pytest.approx(uv[1], abs=1.0)
        np.testing.assert_array_equal(frame["intrinsics"], intr.matrix)
        np.testing.assert_array_equal(frame["extrinsics"], world_from_cam)


def test_heightmap_of_a_known_box():
    """A 6 x 8 x 4 cm box: right footprint within one pixel and right height within 1 mm."""
    with World() as world:
        world.add_plane()
        world.add_primitive("box", "box", [0.06, 0.08, 0.04], position=[0.05, -0.03, 0.02], mass=0)
        color, height = heightmap_from_frames([_overhead(world).capture()], WORKSPACE)
    assert height.shape == WORKSPACE.shape == (224, 224)
    assert color.dtype == np.uint8 and height.dtype == np.float32
    rows, cols = np.nonzero(height > 0.03)
    x_lo = WORKSPACE.pixel_to_world(0, cols.min())[0] - 0.001
    x_hi = WORKSPACE.pixel_to_world(0, cols.max())[0] + 0.001
    y_lo = WORKSPACE.pixel_to_world(rows.min(), 0)[1] - 0.001
    y_hi = WORKSPACE.pixel_to_world(rows.max(), 0)[1] + 0.001
    np.testing.assert_allclose([x_lo, x_hi, y_lo, y_hi], [0.02, 0.08, -0.07, 0.01], atol=0.002)
    top = height[rows.min() + 2 : rows.max() - 1, cols.min() + 2 : cols.max() - 1]
    np.testing.assert_allclose(top, 0.04 + 0.01, atol=1e-3)  # floor at z0 = -0.01
    table = height[:, :20]
    np.testing.assert_allclose(table[table > 0], 0.01, atol=1e-3)


def test_heightmap_keeps_the_highest_point_and_drops_outside_points():
    ws = Workspace(np.array([[0.0, 0.1], [0.0, 0.1], [0.0, 0.5]]), 0.05)
    points = np.array([[0.01, 0.01, 0.1], [0.02, 0.02, 0.3], [0.01, 0.03, 0.2], [0.07, 0.02, 0.05], [0.2, 0, 0.1],
                       [0.01, 0.01, 0.6]])
    colors = np.arange(18, dtype=np.uint8).reshape(6, 3)
    color, height = heightmap_from_points(points, colors, ws)
    np.testing.assert_allclose(height, [[0.3, 0.05], [0.0, 0.0]], atol=1e-6)
    np.testing.assert_array_equal(color[0, 0], colors[1])
    np.testing.assert_array_equal(color[1, 1], [0, 0, 0])


def test_fusing_two_views_fills_occlusions():
    with World() as world:
        world.add_plane()
        world.add_primitive("tower", "box", [0.04, 0.04, 0.25], position=[0, 0, 0.125], mass=0)
        intr = Intrinsics.from_fov(320, 240, 60)
        left = SimCamera(world, intr, look_at([0.0, -0.6, 0.6], [0, 0, 0]))
        right = SimCamera(world, intr, look_at([0.0, 0.6, 0.6], [0, 0, 0]))
        _, h_left = heightmap_from_frames([left.capture()], WORKSPACE)
        _, h_both = heightmap_from_frames([left.capture(), right.capture()], WORKSPACE)
    assert (h_both > 0).sum() > (h_left > 0).sum()


def test_depth_noise_is_seeded_and_bad_settings_fail():
    with World() as world:
        world.add_plane()
        frames = [
            SimCamera(world, Intrinsics.from_fov(64, 48, 45), look_at([0, 0, 1], [0, 0, 0], [1, 0, 0]),
                      noise=DepthNoise(dropout=0.1), rng=np.random.default_rng(7)).capture()
            for _ in range(2)
        ]
        np.testing.assert_array_equal(frames[0]["depth"], frames[1]["depth"])
        assert 0.02 < np.mean(frames[0]["depth"] == 0) < 0.2
        with pytest.raises(ValueError, match="needs an rng"):
            SimCamera(world, Intrinsics.from_fov(64, 48, 45), np.eye(4), noise=DepthNoise())
        with pytest.raises(ValueError, match="near < far"):
            SimCamera(world, Intrinsics.from_fov(64, 48, 45), np.eye(4), near=1.0, far=0.5)
    with pytest.raises(ValueError, match="image size"):
        Intrinsics(1, 1, 0, 0, 0, 10)
    with pytest.raises(ValueError, match="bounds"):
        Workspace(np.array([[0, -1], [0, 1], [0, 1]]), 0.01)
