"""``manipstack train ugg``: train the UGG grasp diffusion model on a grasp dataset made by ``manipstack data grasps``.

The ``train`` split's objects are observed ``--views`` times each (``grasp_models.ugg.data``; depth views of the
object on a table by default, ``--observation.mode mesh`` for mesh samples), once at start. Each step draws
``--batch-size`` valid grasps uniformly, pairs each with a random view of its object (the grasp mapped to that view's
canonical frame) and takes one AdamW step on the DDPM loss (cosine learning rate after a warm-up). The pose
statistics of the generator come from the training grasps.

Writes TensorBoard scalars and checkpoints under ``--out`` (default ``runs/ugg/s<seed>``): ``checkpoints/last``
(weights + optimiser, RNG, step: ``--resume`` continues from it, bit-identical to an uninterrupted run) and
``checkpoints/final``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from manipstack.envs.data.provenance import run_metadata
from manipstack.errors import InputError, MissingInputError
from manipstack.grasp_models.checkpoint import load_config, load_train_state, load_weights, save_checkpoint
from manipstack.grasp_models.device import check_device
from manipstack.grasp_models.hand.model import HandModel
from manipstack.grasp_models.observation import ObservationConfig
from manipstack.grasp_models.training import optimizer_step, warmup_cosine_lr
from manipstack.grasp_models.ugg.data import load_grasp_samples
from manipstack.grasp_models.ugg.model import UGGConfig, UGGGenerator, pose_statistics


@dataclass
class TrainUGGConfig:
    """Train the UGG grasp diffusion model on a grasp dataset."""

    dataset: Path
    """Grasp dataset (HDF5 from ``manipstack data grasps``); its ``train`` split is used."""
    seed: int = 0
    """Seed of initialisation, observations, batch draws and diffusion noise."""
    out: Path | None = None
    """Run folder (TensorBoard events + checkpoints); default runs/ugg/s<seed>."""
    steps: int = 4000
    """Optimiser steps in total (counting those before a resume)."""
    batch_size: int = 64
    """Grasps per step."""
    learning_rate: float = 5e-4
    """Peak AdamW learning rate (linear warm-up, cosine decay to 5 % over --steps)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    warmup_steps: int = 200
    """Linear learning-rate warm-up steps."""
    views: int = 4
    """Observations per training object (different seeds and camera azimuths)."""
    max_objects: int | None = None
    """Use only the first this many training objects (toy runs)."""
    checkpoint_every: int = 500
    """Checkpoint every this many steps."""
    time_limit_minutes: float | None = None
    """Stop with a checkpoint after this much wall-clock time in this process."""
    resume: bool = False
    """Continue from <out>/checkpoints/last."""
    device: str = "cpu"
    """Torch device, e.g. 'cpu' or 'cuda'."""
    threads: int | None = 1
    """Torch CPU threads (1 on a shared 2-core machine); None keeps torch's choice."""
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    """How objects are seen (depth views or mesh samples, N points)."""
    generator: UGGConfig = field(default_factory=UGGConfig)
    """Generator architecture and sampling; joint limits come from the hand, statistics from the dataset."""

    def __post_init__(self) -> None:
        check_device(self.device)
        if self.steps < 1 or self.batch_size < 2 or self.checkpoint_every < 1 or self.warmup_steps < 0:
            raise InputError("steps and checkpoint_every must be >= 1, batch_size >= 2, warmup_steps >= 0")
        if self.max_objects is not None and self.max_objects < 1:
            raise InputError(f"max_objects must be >= 1, got {self.max_objects}")
        if self.out is None:
            self.out = Path("runs/ugg") / f"s{self.seed}"


def checkpoint_config(config: TrainUGGConfig) -> dict[str, Any]:
    """The ``config.json`` of a UGG checkpoint: the generator, the observation and how it was trained."""
    train = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()
             if k not in ("generator", "observation")}
    return {"kind": "ugg", "generator": dataclasses.asdict(config.generator),
            "observation": dataclasses.asdict(config.observation), "train": train}


def train(config: TrainUGGConfig) -> Path:
    """Run (or resume) training; returns the folder of the final checkpoint."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    last = out / "checkpoints" / "last"
    if config.resume and not last.is_dir():
        raise MissingInputError(f"--resume: no checkpoint at {last}; train without --resume first")
    torch.manual_seed(config.seed)
    samples = load_grasp_samples(config.dataset, "train", config.observation, config.views, config.seed,
                                 config.max_objects)
    hand = HandModel()
    if config.resume:
        generator_cfg = UGGConfig(**load_config(last)["generator"])
    else:
        # statistics of the grasps in the canonical frames they are trained in (every view once)
        every_view = np.concatenate([samples.pairs(np.arange(len(samples.poses)), np.full(len(samples.poses), v))[1]
                                     for v in range(config.views)])
        mean, std = pose_statistics(every_view)
        generator_cfg = dataclasses.replace(config.generator, num_joints=hand.num_joints,
                                            joint_lower=hand.lower.tolist(), joint_upper=hand.upper.tolist(),
                                            pose_mean=mean, pose_std=std)
    if len(generator_cfg.pose_mean) != samples.poses.shape[1]:
        raise InputError(f"{config.dataset}: poses have {samples.poses.shape[1]} values, the generator expects "
                         f"{len(generator_cfg.pose_mean)}")
    config = dataclasses.replace(config, generator=generator_cfg)
    model = UGGGenerator(generator_cfg, config.device)
    optimizer = torch.optim.AdamW(model.net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    noise = torch.Generator(device=model.device).manual_seed(config.seed)
    draw = np.random.default_rng([config.seed, 5])
    state = {"step": 0, "wall_time_s": 0.0}
    if config.resume:
        load_weights(last, model.net, config.device)
        saved = load_train_state(last)
        optimizer.load_state_dict(saved["optimizer"])
        noise.set_state(saved["noise"])
        draw.bit_generator.state = saved["draw"]
        state.update(saved["state"])
        print(f"resumed from {last} at step {state['step']}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps({**checkpoint_config(config), **run_metadata(config.seed),
                                                       "train_objects": len(samples.names),
                                                       "train_grasps": len(samples.poses)}, indent=2))
    writer = SummaryWriter(str(out))
    start, wall_before = time.time(), state["wall_time_s"]

    def save(folder: Path, with_state: bool) -> Path:
        state["wall_time_s"] = wall_before + time.time() - start
        train_state = {"optimizer": optimizer.state_dict(), "noise": noise.get_state(),
                       "draw": draw.bit_generator.state, "state": dict(state)} if with_state else None
        return save_checkpoint(folder, model.net, checkpoint_config(config), train_state)

    model.net.train()
    bar = tqdm(total=config.steps, initial=state["step"], desc="train ugg", unit="step")
    timed_out, loss_value = False, float("nan")
    try:
        while state["step"] < config.steps:
            grasps = draw.integers(0, len(samples.poses), config.batch_size)
            points, poses = samples.pairs(grasps, draw.integers(0, config.views, config.batch_size))
            loss = model.loss(points, poses, noise)
            optimizer_step(optimizer, model.net.parameters(), loss,
                           warmup_cosine_lr(config.learning_rate, state["step"], config.warmup_steps, config.steps))
            state["step"] += 1
            loss_value = loss.item()
            writer.add_scalar("train/loss", loss_value, state["step"])
            writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], state["step"])
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}")
            timed_out = (config.time_limit_minutes is not None
                         and time.time() - start > 60 * config.time_limit_minutes)
            if state["step"] % config.checkpoint_every == 0 or state["step"] == config.steps or timed_out:
                save(last, with_state=True)
            if timed_out:
                print(f"time limit of {config.time_limit_minutes} min reached at step {state['step']}")
                break
        bar.close()
        final = save(out / "checkpoints" / "final", with_state=False)
    finally:
        writer.close()
    summary = {"steps": state["step"], "wall_time_s": round(wall_before + time.time() - start, 1),
               "last_loss": loss_value, "train_objects": len(samples.names), "train_grasps": len(samples.poses),
               "timed_out": timed_out}
    (out / "train_summary.json").write_text(json.dumps({**run_metadata(config.seed), **summary}, indent=2))
    print(json.dumps(summary, indent=2))
    return final


def main(argv: list[str] | None = None) -> None:
    train(tyro.cli(TrainUGGConfig, args=argv))


if __name__ == "__main__":
    main()
