"""``manipstack train pose``: train the pose estimator (Diff9D-style diffusion, or the direct-regression baseline)
on a pose dataset made by ``manipstack data pose``.

Every ground-truth instance of every scene is one sample: its masked RGB crop and a pool of ``2 * num_points``
back-projected points are extracted once at start (``grasp_models.pose.features``); each step draws ``num_points``
of the pool, jitters them by 1 mm, jitters the crop's brightness and colour balance (and greys it now and then), and
takes one AdamW step (cosine learning rate after a warm-up). Rotation labels of objects symmetric about y (bottle,
bowl, can, mugs with a hidden handle) are replaced by their canonical representative. The last ``val_fraction`` of
the scenes are held out for the validation curves in TensorBoard (never the test set).

Writes TensorBoard scalars and checkpoints under ``--out`` (default ``runs/pose/<kind>-s<seed>``):
``checkpoints/last`` (weights + optimiser, RNG, step: ``--resume`` continues from it) and ``checkpoints/final``.
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

from manipstack.envs.data.pose_dataset import PoseDataset
from manipstack.envs.data.provenance import run_metadata
from manipstack.errors import InputError, MissingInputError
from manipstack.grasp_models.checkpoint import load_train_state, load_weights, save_checkpoint
from manipstack.grasp_models.device import check_device
from manipstack.grasp_models.pose.features import (
    canonical_rotation,
    instance_inputs,
    is_symmetric_id,
    rotation_from_sRT,
)
from manipstack.grasp_models.pose.model import POINT_SCALE, PoseBatch, PoseEstimator, PoseEstimatorConfig
from manipstack.grasp_models.training import optimizer_step, warmup_cosine_lr


@dataclass
class TrainPoseConfig:
    """Train the pose estimator on a pose dataset."""

    dataset: Path
    """Training pose dataset (HDF5 from ``manipstack data pose``, clean domain, train instances)."""
    kind: str = "diffusion"
    """'diffusion' (Diff9D: DDPM training, DDIM sampling) or 'regression' (same network, direct prediction)."""
    seed: int = 0
    """Seed of initialisation, batch order, point draws, augmentation and diffusion noise."""
    out: Path | None = None
    """Run folder (TensorBoard events + checkpoints); default runs/pose/<kind>-s<seed>."""
    steps: int = 2500
    """Optimiser steps in total (counting those before a resume)."""
    batch_size: int = 64
    """Instances per step."""
    learning_rate: float = 1e-3
    """Peak AdamW learning rate (linear warm-up, cosine decay to 5 % over --steps)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    warmup_steps: int = 200
    """Linear learning-rate warm-up steps."""
    noise_draws: int = 2
    """Diffusion noise levels per instance and step (the encoders run once for all of them)."""
    augment: bool = True
    """Colour jitter on crops and 1 mm noise on points."""
    val_fraction: float = 0.05
    """Fraction of the scenes (the last ones) held out for validation curves."""
    checkpoint_every: int = 500
    """Checkpoint (and validate) every this many steps."""
    time_limit_minutes: float | None = None
    """Stop with a checkpoint after this much wall-clock time in this process."""
    resume: bool = False
    """Continue from <out>/checkpoints/last."""
    device: str = "cpu"
    """Torch device, e.g. 'cpu' or 'cuda'."""
    threads: int | None = 1
    """Torch CPU threads (1 on a shared 2-core machine); None keeps torch's choice."""
    estimator: PoseEstimatorConfig = field(default_factory=PoseEstimatorConfig)
    """Estimator architecture and sampling; its kind is set by --kind, its statistics from the dataset."""

    def __post_init__(self) -> None:
        check_device(self.device)
        if self.steps < 1 or self.batch_size < 2 or self.checkpoint_every < 1:
            raise InputError("steps and checkpoint_every must be >= 1 and batch_size >= 2")
        if not 0.0 <= self.val_fraction < 0.5:
            raise InputError(f"val_fraction must be in [0, 0.5), got {self.val_fraction}")
        self.estimator = dataclasses.replace(self.estimator, kind=self.kind)
        if self.out is None:
            self.out = Path("runs/pose") / f"{self.kind}-s{self.seed}"


@dataclass
class Samples:
    """Training instances in memory: crops (M, S, S, 3) uint8, point pools (M, P, 3) float32 m, class ids (M,),
    rotations (M, 3, 3), translations (M, 3) m, extents (M, 3) m, scene indices (M,), symmetric flags (M,)."""

    crops: np.ndarray
    points: np.ndarray
    class_ids: np.ndarray
    rotations: np.ndarray
    translations: np.ndarray
    extents: np.ndarray
    scenes: np.ndarray
    symmetric: np.ndarray

    def subset(self, keep: np.ndarray) -> Samples:
        return Samples(**{f.name: getattr(self, f.name)[keep] for f in dataclasses.fields(self)})

    def __len__(self) -> int:
        return len(self.class_ids)


def extract_samples(dataset_path: Path, crop_size: int, pool: int, seed: int, desc: str = "extract") -> Samples:
    """Every ground-truth instance of a pose dataset as a training sample (see module docstring)."""
    rng = np.random.default_rng([seed, 17])
    rows: dict[str, list] = {f.name: [] for f in dataclasses.fields(Samples)}
    with PoseDataset(dataset_path) as dataset:
        for index in tqdm(dataset.scenes(), desc=desc, unit="scene", leave=False):
            scene = dataset.read(index)
            for k in range(len(scene)):
                inputs = instance_inputs(scene.rgb, scene.depth, scene.mask == k + 1, scene.intrinsics, rng,
                                         crop_size, pool)
                if inputs is None:
                    continue
                rotation, translation, _ = rotation_from_sRT(scene.RTs[k])
                symmetric = is_symmetric_id(int(scene.class_ids[k]), bool(scene.handle_visibility[k]))
                rows["crops"].append(inputs.crop)
                rows["points"].append(inputs.points)
                rows["class_ids"].append(int(scene.class_ids[k]))
                rows["rotations"].append(canonical_rotation(rotation) if symmetric else rotation)
                rows["translations"].append(translation)
                rows["extents"].append(scene.extents[k])
                rows["scenes"].append(index)
                rows["symmetric"].append(symmetric)
    if not rows["class_ids"]:
        raise InputError(f"{dataset_path}: the dataset holds no ground-truth instance to train on")
    return Samples(**{k: np.asarray(v) for k, v in rows.items()})


def dataset_statistics(samples: Samples, num_points: int) -> dict[str, list]:
    """Class mean extents and the mean / std of (t - centroid, extents - class mean) over the samples."""
    means = [samples.extents[samples.class_ids == c].mean(axis=0).tolist() if np.any(samples.class_ids == c)
             else [0.1, 0.1, 0.1] for c in range(1, 7)]
    centroid = samples.points[:, :num_points].mean(axis=1)
    residual = np.concatenate([samples.translations - centroid,
                               samples.extents - np.asarray(means)[samples.class_ids - 1]], axis=1)
    return {"class_mean_extents": means, "residual_mean": residual.mean(axis=0).tolist(),
            "residual_std": np.maximum(residual.std(axis=0), 1e-3).tolist()}


def make_batch(estimator: PoseEstimator, samples: Samples, index: np.ndarray, generator: torch.Generator,
               augment: bool) -> tuple[PoseBatch, torch.Tensor]:
    """Model inputs and target pose vectors (B, D) for samples ``index``, points drawn (and jittered) afresh."""
    device = estimator.device
    num_points = estimator.config.num_points
    pool = torch.as_tensor(samples.points[index], device=device)  # (B, P, 3)
    B, P = pool.shape[:2]
    pick = torch.randint(0, P, (B, num_points), generator=generator, device=device)
    points = torch.gather(pool, 1, pick[..., None].expand(B, num_points, 3))  # (B, N, 3)
    crop = torch.as_tensor(samples.crops[index], device=device).permute(0, 3, 1, 2).float() / 255.0
    if augment:
        points = points + 0.001 * torch.randn(points.shape, generator=generator, device=device)
        gain = 1 + 0.4 * (torch.rand((B, 1, 1, 1), generator=generator, device=device) * 2 - 1)
        tint = 1 + 0.15 * (torch.rand((B, 3, 1, 1), generator=generator, device=device) * 2 - 1)
        grey = (torch.rand((B, 1, 1, 1), generator=generator, device=device) < 0.2).float()
        crop = (crop * gain * tint).clamp(0, 1)
        crop = grey * crop.mean(dim=1, keepdim=True).expand_as(crop) + (1 - grey) * crop
    centroid = points.mean(dim=1)
    batch = PoseBatch(crop, (points - centroid[:, None]) / POINT_SCALE,
                      torch.as_tensor(samples.class_ids[index], dtype=torch.long, device=device), centroid)
    target = estimator.to_vector(torch.as_tensor(samples.rotations[index], dtype=torch.float32, device=device),
                                 torch.as_tensor(samples.translations[index], dtype=torch.float32, device=device),
                                 torch.as_tensor(samples.extents[index], dtype=torch.float32, device=device), batch)
    return batch, target


def validate(estimator: PoseEstimator, samples: Samples, seed: int, limit: int = 512) -> dict[str, float]:
    """Median rotation error (degrees; y-axis angle for symmetric samples), translation error (cm), extent error
    (cm) and the fraction within 5 degrees 2 cm / 10 degrees 5 cm on (up to ``limit``) validation samples."""
    generator = torch.Generator(device=estimator.device).manual_seed(seed)
    index = np.arange(min(limit, len(samples)))
    errors = []
    estimator.net.eval()
    with torch.no_grad():
        for chunk in np.array_split(index, max(1, len(index) // 128)):
            batch, _ = make_batch(estimator, samples, chunk, generator, augment=False)
            rotation, translation, extents = estimator.from_vector(estimator.sample(batch, generator), batch)
            true_r = torch.as_tensor(samples.rotations[chunk], dtype=torch.float32, device=estimator.device)
            cos_full = ((rotation * true_r).sum(dim=(1, 2)) - 1) / 2
            cos_y = (rotation[:, :, 1] * true_r[:, :, 1]).sum(dim=1)
            symmetric = torch.as_tensor(samples.symmetric[chunk], device=estimator.device)
            degrees = torch.rad2deg(torch.arccos(torch.where(symmetric, cos_y, cos_full).clamp(-1, 1)))
            cm = 100 * (translation - torch.as_tensor(samples.translations[chunk], dtype=torch.float32,
                                                      device=estimator.device)).norm(dim=1)
            size_cm = 100 * (extents - torch.as_tensor(samples.extents[chunk], dtype=torch.float32,
                                                       device=estimator.device)).abs().mean(dim=1)
            errors.append(torch.stack([degrees, cm, size_cm], dim=1).cpu().numpy())
    estimator.net.train()
    e = np.concatenate(errors)
    return {"rot_deg_median": float(np.median(e[:, 0])), "trans_cm_median": float(np.median(e[:, 1])),
            "size_cm_median": float(np.median(e[:, 2])),
            "within_5deg_2cm": float(np.mean((e[:, 0] <= 5) & (e[:, 1] <= 2))),
            "within_10deg_5cm": float(np.mean((e[:, 0] <= 10) & (e[:, 1] <= 5)))}


def checkpoint_config(config: TrainPoseConfig) -> dict[str, Any]:
    """The ``config.json`` of a pose checkpoint: how to rebuild the estimator and how it was trained."""
    train = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()
             if k != "estimator"}
    return {"kind": "pose", "estimator": dataclasses.asdict(config.estimator), "train": train}


def train(config: TrainPoseConfig) -> Path:
    """Run (or resume) training; returns the folder of the final checkpoint."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if not Path(config.dataset).is_file():
        raise MissingInputError(f"training dataset not found: {config.dataset} (make one with manipstack data pose)")
    out = Path(config.out)
    last = out / "checkpoints" / "last"
    torch.manual_seed(config.seed)
    estimator_cfg = config.estimator
    pool = 2 * estimator_cfg.num_points
    samples = extract_samples(config.dataset, estimator_cfg.crop_size, pool, config.seed)
    scenes = np.unique(samples.scenes)
    val_scenes = scenes[len(scenes) - int(round(config.val_fraction * len(scenes))):] if config.val_fraction else []
    is_val = np.isin(samples.scenes, val_scenes)
    train_set, val_set = samples.subset(~is_val), samples.subset(is_val)
    if config.resume:
        if not last.is_dir():
            raise MissingInputError(f"--resume: no checkpoint at {last}; train without --resume first")
        stats = json.loads((last / "config.json").read_text())["estimator"]
        estimator_cfg = dataclasses.replace(estimator_cfg, **{k: stats[k] for k in
                                                              ("class_mean_extents", "residual_mean", "residual_std")})
    else:
        estimator_cfg = dataclasses.replace(estimator_cfg, **dataset_statistics(train_set, estimator_cfg.num_points))
    config = dataclasses.replace(config, estimator=estimator_cfg)
    estimator = PoseEstimator(estimator_cfg, config.device)
    optimizer = torch.optim.AdamW(estimator.net.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    generator = torch.Generator(device=estimator.device).manual_seed(config.seed)
    order_rng = np.random.default_rng([config.seed, 3])
    state = {"step": 0, "wall_time_s": 0.0, "epoch": 0, "cursor": 0}
    order = order_rng.permutation(len(train_set))
    if config.resume:
        load_weights(last, estimator.net, config.device)
        saved = load_train_state(last)
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        order_rng.bit_generator.state = saved["order_rng"]
        order = saved["order"]
        state.update(saved["state"])
        print(f"resumed from {last} at step {state['step']}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps({**checkpoint_config(config), **run_metadata(config.seed),
                                                       "train_instances": len(train_set),
                                                       "val_instances": len(val_set)}, indent=2))
    writer = SummaryWriter(str(out))
    start, wall_before = time.time(), state["wall_time_s"]

    def save(folder: Path, with_state: bool) -> Path:
        state["wall_time_s"] = wall_before + time.time() - start
        train_state = {"optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                       "order_rng": order_rng.bit_generator.state, "order": order, "state": dict(state)} \
            if with_state else None
        return save_checkpoint(folder, estimator.net, checkpoint_config(config), train_state)

    estimator.net.train()
    bar = tqdm(total=config.steps, initial=state["step"], desc=f"train pose {config.kind}", unit="step")
    timed_out = False
    try:
        while state["step"] < config.steps:
            if state["cursor"] + config.batch_size > len(order):
                order = order_rng.permutation(len(train_set))
                state.update(cursor=0, epoch=state["epoch"] + 1)
            index = order[state["cursor"]:state["cursor"] + config.batch_size]
            state["cursor"] += config.batch_size
            batch, target = make_batch(estimator, train_set, index, generator, config.augment)
            loss = estimator.loss(batch, target, generator, config.noise_draws)
            optimizer_step(optimizer, estimator.net.parameters(), loss,
                           warmup_cosine_lr(config.learning_rate, state["step"], config.warmup_steps, config.steps))
            state["step"] += 1
            writer.add_scalar("train/loss", loss.item(), state["step"])
            writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], state["step"])
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", epoch=state["epoch"])
            timed_out = (config.time_limit_minutes is not None
                         and time.time() - start > 60 * config.time_limit_minutes)
            if state["step"] % config.checkpoint_every == 0 or state["step"] == config.steps or timed_out:
                if len(val_set):
                    for key, value in validate(estimator, val_set, config.seed).items():
                        writer.add_scalar(f"val/{key}", value, state["step"])
                save(last, with_state=True)
            if timed_out:
                print(f"time limit of {config.time_limit_minutes} min reached at step {state['step']}")
                break
        bar.close()
        final = save(out / "checkpoints" / "final", with_state=False)
    finally:
        writer.close()
    summary = {"steps": state["step"], "epochs": state["epoch"], "wall_time_s": round(wall_before + time.time()
                                                                                      - start, 1),
               "train_instances": len(train_set), "val_instances": len(val_set), "timed_out": timed_out}
    if len(val_set):
        summary["val"] = validate(estimator, val_set, config.seed)
    (out / "train_summary.json").write_text(json.dumps({**run_metadata(config.seed), **summary}, indent=2))
    print(json.dumps(summary, indent=2))
    return final


def main(argv: list[str] | None = None) -> None:
    train(tyro.cli(TrainPoseConfig, args=argv))


if __name__ == "__main__":
    main()
