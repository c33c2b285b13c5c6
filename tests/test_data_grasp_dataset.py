"""Grasp dataset file: the writer survives crashes and top-ups, the reader lists and reads objects, and every
way a file can be wrong fails with an error naming the file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from manipstack.envs.data.grasp_dataset import (
    GRASP_DATASETS,
    MESH_DATASETS,
    DatasetFileError,
    GraspDataset,
    GraspWriter,
    dataset_stats,
)

JOINTS = [f"j{i}" for i in range(16)]


def fake_unit(name: str, split: str = "train", valid=(True, False, True), kind: str = "procedural/box") -> dict:
    """An object group with every dataset and attribute of the layout (N grasps, 16 joints)."""
    n = len(valid)
    arrays = {k: np.full(n, 0.5, np.float32) for k in GRASP_DATASETS}
    arrays.update({"poses": np.zeros((n, 25), np.float32), "valid": np.array(valid),
                   "failure": np.array(["" if v else "penetration" for v in valid], dtype=object),
                   "vertices": np.zeros((4, 3), np.float32), "faces": np.zeros((2, 3), np.int32)})
    attrs = {"kind": kind, "ref": "box", "scale": 1.0, "seed": 7, "split": split, "synth_s": 30.0, "validate_s": 30.0}
    return {"name": name, "arrays": arrays, "attrs": attrs}


def write(path, *units) -> None:
    with GraspWriter(path, "allegro_like", JOINTS, {"seed": 0}) as writer:
        for unit in units:
            writer.write(unit)


def test_round_trip_lists_by_split_and_reads_arrays_and_attrs(tmp_path):
    path = tmp_path / "grasps.h5"
    write(path, fake_unit("b", "test"), fake_unit("a"), fake_unit("c", valid=(True,)))
    with GraspDataset(path) as dataset:
        assert dataset.hand == "allegro_like" and dataset.joint_names == JOINTS
        assert "pose_layout" in dataset.attrs and "config" in dataset.attrs
        assert dataset.objects() == ["a", "b", "c"]
        assert dataset.objects("train") == ["a", "c"] and dataset.objects("test") == ["b"]
        item = dataset.read("a")
        assert set(item.arrays) == set(MESH_DATASETS) | set(GRASP_DATASETS)
        assert item.poses.shape == (3, 25) and item.poses.dtype == np.float32
        assert item.valid.tolist() == [True, False, True] and item.faces.dtype == np.int32
        assert list(item.arrays["failure"]) == ["", "penetration", ""]
        assert item.attrs["seed"] == 7 and item.split == "train" and item.attrs["complete"]
        assert set(dataset.read("b", keys=("valid",)).arrays) == {"valid"}
        with pytest.raises(KeyError, match="no finished object 'zzz'"):
            dataset.read("zzz")
        with pytest.raises(ValueError, match="split must be one of"):
            dataset.objects("val")


def test_writer_drops_incomplete_groups_on_open_and_top_up_replaces(tmp_path):
    path = tmp_path / "grasps.h5"
    write(path, fake_unit("a"), fake_unit("b"))
    with h5py.File(path, "a") as f:  # a unit in flight when a crash hit: a group without the 'complete' mark
        f.create_group("c").create_dataset("poses", data=np.zeros(2))
    with GraspDataset(path) as dataset:
        assert dataset.objects() == ["a", "b"]  # readers never see it
    with GraspWriter(path, "allegro_like", JOINTS) as writer:
        assert writer.done == {"a", "b"}
        assert writer.valid_count("a") == 2
        writer.write(fake_unit("a", valid=(True, True, True, True)))
        writer.relabel_splits({"b": "test"})
    with GraspDataset(path) as dataset:
        assert len(dataset.read("a").valid) == 4 and dataset.objects("test") == ["b"]


def test_writer_rejects_incomplete_units_and_another_hand(tmp_path):
    path = tmp_path / "grasps.h5"
    write(path, fake_unit("a"))
    unit = fake_unit("b")
    del unit["arrays"]["q1"]
    with GraspWriter(path, "allegro_like", JOINTS) as writer, pytest.raises(ValueError, match=r"lacks \['q1'\]"):
        writer.write(unit)
    with pytest.raises(ValueError, match="holds grasps of hand 'allegro_like', this run uses 'other'"):
        GraspWriter(path, "other", JOINTS)
    (tmp_path / "notes.h5").write_text("not hdf5")
    with pytest.raises(DatasetFileError, match="notes.h5 exists and is not an HDF5 file"):
        GraspWriter(tmp_path / "notes.h5", "allegro_like", JOINTS)


def test_reader_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.h5"
    with pytest.raises(FileNotFoundError, match=f"grasp dataset not found: {missing}"):
        GraspDataset(missing)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(DatasetFileError, match=f"{text} is not an HDF5 file"):
        GraspDataset(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_group("data")
    with pytest.raises(DatasetFileError, match=f"{other}: the file root lacks attribute 'hand', attribute "
                       "'joint_names' -- not a grasp dataset"):
        GraspDataset(other)
    broken = tmp_path / "broken.h5"
    write(broken, fake_unit("a"))
    with h5py.File(broken, "a") as f:
        del f["a/vertices"]
        del f["a"].attrs["split"]
    with GraspDataset(broken) as dataset, pytest.raises(
            DatasetFileError, match=f"{broken}: '/a' lacks dataset 'vertices', attribute 'split'"):
        dataset.read("a")
    with h5py.File(broken, "a") as f:
        f["a"].create_dataset("vertices", data=np.zeros((4, 3)))
        f["a"].attrs["split"] = "train"
        del f["a/q1"]
        f["a"].create_dataset("q1", data=np.zeros(5))
    with GraspDataset(broken) as dataset, pytest.raises(DatasetFileError, match="differ in length"):
        dataset.read("a")


def test_dataset_stats_counts_objects_and_throughput(tmp_path):
    path = tmp_path / "grasps.h5"
    write(path, fake_unit("a"), fake_unit("b", "test", valid=(False,)), fake_unit("c", kind="random_urdfs"))
    stats = dataset_stats(path)
    assert stats["objects"] == 3 and stats["objects_train"] == 2 and stats["objects_test"] == 1
    assert stats["objects_per_kind"] == {"procedural/box": 2, "random_urdfs": 1}
    assert stats["grasps"] == 7 and stats["valid"] == 4 and stats["min_valid_per_object"] == 0
    assert stats["valid_per_cpu_minute"] == pytest.approx(4 / 3)  # 3 units of 60 CPU-s
    assert stats["valid_per_cpu_minute_procedural"] == pytest.approx(2 / 2)
