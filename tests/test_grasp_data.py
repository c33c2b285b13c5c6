"""Grasp dataset writer: a crashed run resumes without losing or duplicating objects; object spec parsing."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

import manipstack.train.grasp_data as grasp_data
from manipstack.grasp_models.objects import load_object_mesh, parse_object_spec


def _fake_unit(source, split, config):
    n = 3
    return {"name": source.name,
            "arrays": {"poses": np.zeros((n, 25), np.float32), "valid": np.array([True, False, True]),
                       "failure": np.array(["", "penetration", ""], dtype=object),
                       "vertices": np.zeros((4, 3), np.float32), "faces": np.zeros((2, 3), np.int32)},
            "attrs": {"kind": source.kind, "ref": source.ref, "scale": 1.0, "seed": source.seed, "split": split,
                      "synth_s": 0.0, "validate_s": 0.0}}


def test_writer_resumes_after_crash(tmp_path, monkeypatch):
    out = tmp_path / "grasps.h5"
    calls: list[str] = []

    def crashing_unit(source, split, config):
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash")
        calls.append(source.name)
        return _fake_unit(source, split, config)

    monkeypatch.setattr(grasp_data, "synthesize_object", crashing_unit)
    config = grasp_data.GraspDataConfig(out=out, objects="procedural:6", held_out_every=3)
    with pytest.raises(KeyboardInterrupt):
        grasp_data.build_dataset(config)
    # a unit in flight when the crash hit: a group without the 'complete' mark
    with h5py.File(out, "a") as f:
        assert len(f) == 3
        f.create_group("proc_box_0005").create_dataset("poses", data=np.zeros(2))
    calls.clear()

    def counting_unit(source, split, config):
        calls.append(source.name)
        return _fake_unit(source, split, config)

    monkeypatch.setattr(grasp_data, "synthesize_object", counting_unit)
    summary = grasp_data.build_dataset(config)
    assert len(calls) == 3  # only the unfinished objects ran again
    with h5py.File(out, "r") as f:
        names = sorted(f)
        assert names == sorted(s.name for s in parse_object_spec("procedural:6", 0))
        assert all(f[n].attrs["complete"] for n in names)
        assert [f[n].attrs["split"] for n in names].count("test") == 2
        assert list(f["proc_box_0000"]["failure"].asstr()[()]) == ["", "penetration", ""]
    assert summary["objects_done"] == 6


def test_top_up_redoes_only_objects_short_of_valid_grasps(tmp_path, monkeypatch):
    out = tmp_path / "grasps.h5"
    monkeypatch.setattr(grasp_data, "synthesize_object", _fake_unit)  # 2 valid grasps per object
    config = grasp_data.GraspDataConfig(out=out, objects="procedural:3", grasps_per_object=2)
    grasp_data.build_dataset(config)
    with h5py.File(out, "a") as f:
        f["proc_box_0000"]["valid"][...] = [True, False, False]  # now short of 2 valid grasps
    calls: list[str] = []

    def counting_unit(source, split, config):
        calls.append(source.name)
        return _fake_unit(source, split, config)

    monkeypatch.setattr(grasp_data, "synthesize_object", counting_unit)
    grasp_data.build_dataset(config)
    assert calls == []  # without --top-up a finished object stays as it is
    grasp_data.build_dataset(dataclasses.replace(config, top_up=True))
    assert calls == ["proc_box_0000"]
    with h5py.File(out, "r") as f:
        assert int(np.sum(f["proc_box_0000"]["valid"][()])) == 2 and len(f) == 3


def test_object_spec_parsing_and_normalisation(tmp_path):
    sources = parse_object_spec("procedural:5,random_urdfs:2", seed=3)
    assert len(sources) == 7 and sources == parse_object_spec("procedural:5,random_urdfs:2", seed=3)
    for source in sources:
        mesh, _ = load_object_mesh(source, (0.06, 0.08))
        assert 0.06 - 1e-9 <= mesh.extents.max() <= 0.08 + 1e-9
        np.testing.assert_allclose(mesh.bounds.mean(axis=0), 0.0, atol=1e-9)
    with pytest.raises(ValueError, match="procedural:N"):
        parse_object_spec("procedural:x", 0)
    with pytest.raises(ValueError, match="not a folder"):
        parse_object_spec(str(tmp_path / "missing"), 0)
