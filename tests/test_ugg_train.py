"""``manipstack train ugg`` at toy size: a checkpoint that loads and samples, determinism and resume, bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import trimesh

from manipstack import cli
from manipstack.errors import InputError
from manipstack.grasp_models.checkpoint import load_checkpoint
from manipstack.grasp_models.observation import ObservationConfig, observe_mesh
from manipstack.grasp_models.ugg.model import UGGConfig
from manipstack.train.ugg import TrainUGGConfig, train

torch.set_num_threads(1)

DATASET = "assets/datasets/dexgrasp_allegro_like.h5"
TINY = {"num_tokens": 8, "group_size": 8, "width": 32, "layers": 1, "heads": 2, "inference_steps": 5}


def _config(out, **overrides) -> TrainUGGConfig:
    fields = {"dataset": DATASET, "out": out, "steps": 6, "batch_size": 8, "warmup_steps": 2, "views": 2,
              "max_objects": 2, "checkpoint_every": 3, "observation": ObservationConfig(num_points=64),
              "generator": UGGConfig(**TINY)}
    return TrainUGGConfig(**{**fields, **overrides})


def test_toy_training_writes_a_checkpoint_that_samples_and_resumes(tmp_path):
    final = train(_config(tmp_path / "a"))
    train(_config(tmp_path / "b", steps=3))
    train(_config(tmp_path / "b", resume=True))
    a, b = (load_checkpoint(tmp_path / run / "checkpoints" / "final", kind="ugg") for run in "ab")
    for key, value in a.model.net.state_dict().items():
        assert torch.equal(value, b.model.net.state_dict()[key]), key
    summary = json.loads((tmp_path / "a" / "train_summary.json").read_text())
    assert summary["steps"] == 6 and summary["train_objects"] == 2 and np.isfinite(summary["last_loss"])
    # the checkpoint records its observation; the same function makes the points at evaluation
    assert load_checkpoint(final).config.observation["mode"] == "depth"
    generator = a.model
    lower, upper = torch.tensor(generator.config.joint_lower), torch.tensor(generator.config.joint_upper)
    box = trimesh.creation.box(extents=(0.07, 0.05, 0.06))
    points = observe_mesh(box.vertices, box.faces, ObservationConfig(num_points=64), seed=0).points
    samples = generator.sample(points[None], 6, torch.Generator().manual_seed(0))
    assert samples.shape == (6, 25) and torch.all(samples[:, 9:] >= lower) and torch.all(samples[:, 9:] <= upper)


def test_bad_input(tmp_path, capsys):
    with pytest.raises(InputError, match="resume"):
        train(_config(tmp_path / "none", resume=True))
    with pytest.raises(InputError, match="batch_size"):
        dataclasses.replace(_config(tmp_path), batch_size=1)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "ugg", "--dataset", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2 and "missing.h5" in capsys.readouterr().err
    not_hdf5 = tmp_path / "not.h5"
    not_hdf5.write_text("hello")
    with pytest.raises(InputError, match="not.h5"):
        train(_config(tmp_path / "y", dataset=not_hdf5))
