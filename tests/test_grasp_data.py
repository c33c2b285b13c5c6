"""``manipstack data grasps``: a crashed run resumes without losing or duplicating objects; top-ups; the CLI
keeps its flat options; object spec parsing. (The file's own crash-safety: tests/test_data_grasp_dataset.py.)"""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch
import tyro
from test_data_grasp_dataset import fake_unit  # tests/ is on sys.path (pytest rootdir conftest)

import manipstack.train.grasp_data as grasp_data
from manipstack.envs.data.grasp_dataset import GraspDataset, GraspWriter
from manipstack.eval.grasp_validation import EvalGraspsConfig
from manipstack.grasp_models.objects import load_object_mesh, parse_object_spec
from manipstack.grasp_models.synthesis import work_unit
from manipstack.grasp_models.synthesis.work_unit import SynthesisConfig


def _fake_unit(source, split, config):
    return fake_unit(source.name, split)  # 2 valid grasps of 3


def test_build_dataset_resumes_after_crash(tmp_path, monkeypatch):
    out = tmp_path / "grasps.h5"
    calls: list[str] = []

    def crashing_unit(source, split, config):
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash")
        calls.append(source.name)
        return _fake_unit(source, split, config)

    monkeypatch.setattr(work_unit, "synthesize_object", crashing_unit)
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

    monkeypatch.setattr(work_unit, "synthesize_object", counting_unit)
    summary = grasp_data.build_dataset(config)
    assert len(calls) == 3  # only the unfinished objects ran again
    with GraspDataset(out) as dataset:
        names = dataset.objects()
        assert names == sorted(s.name for s in parse_object_spec("procedural:6", 0))
        assert len(dataset.objects("test")) == 2
        assert list(dataset.read("proc_box_0000").arrays["failure"]) == ["", "penetration", ""]
    assert summary["objects_done"] == 6 and summary["dataset"]["objects"] == 6


def test_top_up_redoes_only_objects_short_of_valid_grasps(tmp_path, monkeypatch):
    out = tmp_path / "grasps.h5"
    monkeypatch.setattr(work_unit, "synthesize_object", _fake_unit)  # 2 valid grasps per object
    config = grasp_data.GraspDataConfig(out=out, objects="procedural:3", synthesis=SynthesisConfig(grasps_per_object=2))
    grasp_data.build_dataset(config)
    with h5py.File(out, "a") as f:  # damage one object: now short of 2 valid grasps
        f["proc_box_0000"]["valid"][...] = [True, False, False]
    calls: list[str] = []

    def counting_unit(source, split, config):
        calls.append(source.name)
        return _fake_unit(source, split, config)

    monkeypatch.setattr(work_unit, "synthesize_object", counting_unit)
    grasp_data.build_dataset(config)
    assert calls == []  # without --top-up a finished object stays as it is
    grasp_data.build_dataset(dataclasses.replace(config, top_up=True))
    assert calls == ["proc_box_0000"]
    with GraspDataset(out) as dataset:
        assert int(dataset.read("proc_box_0000").valid.sum()) == 2 and len(dataset.objects()) == 3


def test_cli_options_stay_flat_and_device_is_checked(tmp_path):
    config = tyro.cli(grasp_data.GraspDataConfig, args=[
        "--out", str(tmp_path / "g.h5"), "--grasps-per-object", "2", "--batch", "4", "--max-batches", "1",
        "--annealing.iterations", "5", "--device", "cpu"])
    assert (config.synthesis.grasps_per_object, config.synthesis.batch, config.synthesis.max_batches) == (2, 4, 1)
    assert config.synthesis.annealing.iterations == 5 and config.synthesis.device == "cpu"
    with pytest.raises(ValueError, match="grasps_per_object, batch and max_batches must be >= 1"):
        SynthesisConfig(batch=0)
    with pytest.raises(ValueError, match="--device must be a torch device"):
        SynthesisConfig(device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available on this machine; use --device cpu"):
            SynthesisConfig(device="cuda")


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


def test_eval_grasps_config_checks_dataset_and_device(tmp_path):
    missing = tmp_path / "missing.h5"
    with pytest.raises(FileNotFoundError, match=f"grasp dataset not found: {missing}"):
        EvalGraspsConfig(dataset=missing)
    path = tmp_path / "grasps.h5"
    with GraspWriter(path, "allegro_like", [f"j{i}" for i in range(16)]) as writer:
        writer.write(fake_unit("a"))
    assert EvalGraspsConfig(dataset=path, device="cpu").device == "cpu"
    with pytest.raises(ValueError, match="--device must be a torch device"):
        EvalGraspsConfig(dataset=path, device="gpu")
    with pytest.raises(ValueError, match="--split must be 'train' or 'test'"):
        EvalGraspsConfig(dataset=path, split="val")
