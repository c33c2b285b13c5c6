"""``manipstack eval grasps``: re-validate every grasp of a grasp dataset in PyBullet and write metrics.json.

``manipstack eval grasps --dataset FILE.h5 --out DIR`` re-validates every grasp of a dataset (the physics test
is described in ``manipstack.envs.tasks.grasp_validation``) and writes ``DIR/metrics.json``; ``--perturb MM,DEG``
re-tests each valid grasp under a random wrist perturbation of that size (translation MM mm along a random
direction, rotation DEG deg about a random axis): ``robust_rate``. The hand model computing squeeze targets runs
on ``--device``; the physics on the CPU.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro
from tqdm import tqdm

from manipstack.assets.hands import DEFAULT_HAND_SPEC
from manipstack.envs.data.grasp_dataset import GraspDataset
from manipstack.envs.data.provenance import run_metadata
from manipstack.envs.tasks.grasp_validation import GraspValidator
from manipstack.grasp_models.device import check_device
from manipstack.grasp_models.hand.model import HandModel, rot6d_to_matrix
from manipstack.grasp_models.metrics import joint_entropy, wrist_rotation_spread
from manipstack.grasp_models.objects import ObjectModel
from manipstack.grasp_models.validation import perturb_poses, validate_grasps


@dataclass
class EvalGraspsConfig:
    """Re-validate a grasp dataset in PyBullet and write metrics.json."""

    dataset: Path
    """Grasp dataset (HDF5 written by ``manipstack data grasps``)."""
    out: Path = Path("runs/eval_grasps")
    """Output folder for metrics.json."""
    perturb: str | None = None
    """'MM,DEG': also re-test each valid grasp with the wrist moved MM mm and turned DEG deg (robust_rate)."""
    split: str | None = None
    """Only objects of this split ('train' or 'test'); all if unset."""
    max_objects: int | None = None
    """Validate at most this many objects, evenly spaced over the (sorted) selection."""
    seed: int = 0
    """Seed of the perturbations."""
    hand_spec: Path = DEFAULT_HAND_SPEC
    """Hand spec JSON the dataset was made with."""
    device: str = "cpu"
    """Torch device of the differentiable hand model ('cpu', 'cuda', 'cuda:1'); PyBullet runs on the CPU."""

    def __post_init__(self) -> None:
        with GraspDataset(self.dataset):  # missing, not HDF5 or not a grasp dataset: one clear error now
            pass
        if self.perturb is not None:
            parts = self.perturb.split(",")
            if len(parts) != 2 or not all(p.replace(".", "", 1).isdigit() for p in parts):
                raise ValueError(f"--perturb must be 'MM,DEG' (two non-negative numbers), got {self.perturb!r}")
        if self.split is not None and self.split not in ("train", "test"):
            raise ValueError(f"--split must be 'train' or 'test', got {self.split!r}")
        if self.max_objects is not None and self.max_objects < 1:
            raise ValueError(f"--max-objects must be >= 1, got {self.max_objects}")
        check_device(self.device)


def evaluate(config: EvalGraspsConfig) -> dict[str, object]:
    """Re-validate the dataset; returns the metrics written to ``config.out/metrics.json``."""
    hand = HandModel(config.hand_spec, device=config.device)
    rng = np.random.default_rng(config.seed)
    perturb = tuple(float(p) for p in config.perturb.split(",")) if config.perturb else None
    valid, depth, q1, joints_valid, spreads, robust = [], [], [], [], [], []
    objects = 0
    with GraspDataset(config.dataset) as dataset:
        names = dataset.objects(config.split)
        if config.max_objects is not None and config.max_objects < len(names):
            names = [names[i] for i in np.linspace(0, len(names) - 1, config.max_objects).round().astype(int)]
        for name in tqdm(names, desc="eval grasps", unit="obj"):
            item = dataset.read(name, keys=("vertices", "faces", "poses", "q1"))
            poses = item.poses
            obj = ObjectModel(item.vertices, item.faces, np.random.default_rng(0), device=config.device)
            with GraspValidator(item.vertices, item.faces, hand_spec=config.hand_spec) as validator:
                checks = validate_grasps(hand, obj, validator, poses)
                ok = np.array([c.valid for c in checks])
                if perturb is not None and ok.any():
                    moved = perturb_poses(poses[ok], perturb[0] / 1000, np.deg2rad(perturb[1]), rng)
                    robust.extend(c.valid for c in validate_grasps(hand, obj, validator, moved))
            objects += 1
            valid.extend(ok.tolist())
            depth.extend(c.penetration for c in checks)
            q1.extend(item.arrays["q1"][ok].tolist())
            joints_valid.append(poses[ok, 9:])
            if ok.sum() >= 2:
                spreads.append(wrist_rotation_spread(rot6d_to_matrix(torch.as_tensor(poses[ok, 3:9])).numpy()))
    all_joints = np.concatenate(joints_valid) if joints_valid else np.zeros((0, hand.num_joints))
    entropy = joint_entropy(all_joints, hand.lower.cpu().numpy(), hand.upper.cpu().numpy())
    metrics: dict[str, object] = {
        **run_metadata(config.seed),
        "dataset": str(config.dataset),
        "device": config.device,
        "objects": objects,
        "grasps": len(valid),
        "valid_rate": float(np.mean(valid)) if valid else 0.0,
        "penetration_mm_mean": 1000 * float(np.mean(depth)) if depth else 0.0,
        "penetration_mm_max": 1000 * float(np.max(depth)) if depth else 0.0,
        "q1_mean": float(np.mean(q1)) if q1 else 0.0,
        "h_mean": float(entropy.mean()),
        "h_std": float(entropy.std()),
        "wrist_rotation_spread_rad": float(np.mean(spreads)) if spreads else 0.0,
    }
    if perturb is not None:
        metrics["perturb_mm_deg"] = list(perturb)
        metrics["robust_rate"] = float(np.mean(robust)) if robust else 0.0
    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> None:
    metrics = evaluate(tyro.cli(EvalGraspsConfig, args=argv))
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, str)}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
