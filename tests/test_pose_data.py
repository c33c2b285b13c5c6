"""Pose categories, scenes and the pose dataset: canonical frames, disjoint held-out instances, ground truth that
matches the image, deterministic and resumable data generation, readers that name the file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from manipstack.assets.pose_categories import CATEGORIES, instance_files, make_instance
from manipstack.envs.core.mesh_cache import default_cache_dir
from manipstack.envs.data.hdf5 import DatasetFileError
from manipstack.envs.data.pose_dataset import PoseDataset
from manipstack.envs.tasks.pose_scenes import DEPTH_NOISE, PoseSceneConfig, SceneRenderer
from manipstack.errors import InputError
from manipstack.grasp_models.pose.metrics import box_corners, transform
from manipstack.train.pose_data import PoseDataConfig, build_pose_dataset


@pytest.mark.parametrize("category", CATEGORIES)
def test_instances_are_canonical_and_held_out_set_is_disjoint(category, tmp_path):
    instance = make_instance(category, "train", 0)
    points = np.concatenate(instance.parts)
    assert np.allclose((points.min(0) + points.max(0)) / 2, 0, atol=1e-9)  # box centred
    assert np.allclose(points.max(0) - points.min(0), instance.extents)
    if category in ("bottle", "can", "mug"):
        assert instance.extents[1] > 0.8 * min(instance.extents[0], instance.extents[2])  # standing on y
    if category in ("bottle", "bowl", "can"):
        assert instance.extents[0] == pytest.approx(instance.extents[2], rel=1e-6)  # round about y
    if category == "mug":
        assert instance.handle_points[:, 0].min() > points[:, 0].min() + 0.5 * instance.extents[2]  # handle at +x
    train = {tuple(np.round(make_instance(category, "train", i).extents, 6)) for i in range(5)}
    test = {tuple(np.round(make_instance(category, "test", i).extents, 6)) for i in range(5)}
    assert not train & test
    files = instance_files(category, "test", 1, tmp_path)
    assert files.visual_obj.read_text().count("vt ") > 8 and files.collision_obj.read_text().count("o part") >= 2


def test_scene_ground_truth_matches_the_image(tmp_path):
    renderer = SceneRenderer(tmp_path)
    try:
        scene = renderer.render(3, PoseSceneConfig(domain="shifted", instances="test"), seed=5)
    finally:
        renderer.close()
    assert len(scene["class_ids"]) >= 1 and scene["mask"].max() == len(scene["class_ids"])
    K = scene["intrinsics"]
    for k, (sRT, scales) in enumerate(zip(scene["RTs"], scene["scales"])):
        rotation = sRT[:3, :3] / np.cbrt(np.linalg.det(sRT[:3, :3]))
        assert np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-9)
        assert np.linalg.norm(scales) == pytest.approx(1.0)
        # every pixel of the instance's mask lies inside the projection of its box
        corners = transform(sRT, box_corners(scales))
        uv = corners[:, :2] / corners[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]
        rows, cols = np.nonzero(scene["mask"] == k + 1)
        assert cols.min() >= uv[:, 0].min() - 2 and cols.max() <= uv[:, 0].max() + 2
        assert rows.min() >= uv[:, 1].min() - 2 and rows.max() <= uv[:, 1].max() + 2
        # and its depth is about as far as the box (within the box's own size)
        depth = scene["depth"][(scene["mask"] == k + 1) & (scene["depth"] > 0)]
        assert abs(np.median(depth) - sRT[2, 3]) < np.linalg.norm(scene["extents"][k])


def test_edge_dropout_removes_pixels_at_depth_steps():
    depth = np.full((20, 20), 1.0, dtype=np.float32)
    depth[:, 10:] = 0.5
    noisy = DEPTH_NOISE["shifted"].apply(depth, np.random.default_rng(0))
    assert (noisy[:, 9:11] == 0).mean() > 0.3 and (noisy[:, :5] == 0).mean() < 0.1


def test_data_generation_is_deterministic_resumable_and_chunk_independent(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    build_pose_dataset(PoseDataConfig(out=a, scenes=4, chunk=2, seed=3, domain="shifted", instances="test"))
    first = build_pose_dataset(PoseDataConfig(out=b, scenes=2, chunk=1, seed=3, domain="shifted", instances="test"))
    resumed = build_pose_dataset(PoseDataConfig(out=b, scenes=4, chunk=3, seed=3, domain="shifted",
                                                instances="test"))
    assert first["scenes_this_run"] == 2 and resumed["scenes_this_run"] == 2
    with PoseDataset(a) as da, PoseDataset(b) as db:
        assert da.scenes() == db.scenes() == [0, 1, 2, 3]
        for i in da.scenes():
            sa, sb = da.read(i), db.read(i)
            for key in ("rgb", "depth", "mask", "RTs", "scales", "class_ids", "handle_visibility"):
                assert np.array_equal(getattr(sa, key), getattr(sb, key)), key
    again = build_pose_dataset(PoseDataConfig(out=b, scenes=4, seed=3, domain="shifted", instances="test"))
    assert again["scenes_this_run"] == 0
    with pytest.raises(InputError, match="seed"):
        build_pose_dataset(PoseDataConfig(out=b, scenes=4, seed=4, domain="shifted", instances="test"))


def test_reader_names_file_and_missing_parts(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.attrs["what"] = "pose dataset"
    with pytest.raises(DatasetFileError) as err:
        PoseDataset(path)
    assert str(path) in str(err.value) and "scenes" in str(err.value)
    build_pose_dataset(PoseDataConfig(out=tmp_path / "ok.h5", scenes=1))
    with h5py.File(tmp_path / "ok.h5", "a") as f:
        del f["scenes/000000/RTs"]
    with PoseDataset(tmp_path / "ok.h5") as dataset, pytest.raises(DatasetFileError, match="RTs"):
        dataset.read(0)
    assert default_cache_dir() == tmp_path / "cache"  # tests never write to $HOME
