"""``manipstack bench pose``: speed of the pose estimator on this machine, diffusion (DDIM) vs direct regression.

Measured in one run, for each estimator (a checkpoint, or a randomly initialised one of the default architecture,
which costs the same):

1. batched throughput: estimates per second for ``--batch`` instances at once (median over ``--repeats`` calls);
2. one-object latency: one instance per call (median), with ``--steps`` DDIM steps for the diffusion model;
3. the input extraction (masked crop + back-projected points from a 320x240 RGB-D frame) per instance, so the
   end-to-end latency is (2) + (3).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from manipstack.envs.data.provenance import run_metadata
from manipstack.grasp_models.checkpoint import load_checkpoint
from manipstack.grasp_models.device import check_device
from manipstack.grasp_models.pose.features import instance_inputs
from manipstack.grasp_models.pose.model import PoseEstimator, PoseEstimatorConfig

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "checkpoints" / "pose"


@dataclass
class BenchPoseConfig:
    """Time pose estimates: batched throughput and one-object latency, diffusion vs regression."""

    diffusion: Path | None = SHIPPED / "diffusion"
    """Diffusion checkpoint (None or a missing folder: a random-init model of the default architecture)."""
    regression: Path | None = SHIPPED / "regression"
    """Regression checkpoint (as above)."""
    batch: int = 64
    """Instances per batched call."""
    repeats: int = 20
    """Timed calls per measurement (median reported)."""
    steps: int = 3
    """DDIM steps of the diffusion model."""
    seed: int = 0
    """Seed of the synthetic inputs and the noise."""
    threads: int | None = 1
    """Torch CPU threads (1 on a shared 2-core machine)."""
    device: str = "cpu"
    """Torch device (GPU times include a synchronisation)."""
    out: Path = Path("reports/bench_pose")
    """Folder for metrics.json."""

    def __post_init__(self) -> None:
        check_device(self.device)


def _estimator(path: Path | None, kind: str, device: str) -> tuple[PoseEstimator, str]:
    if path is not None and Path(path).is_dir():
        return load_checkpoint(path, device, kind="pose").model, str(path)
    return PoseEstimator(PoseEstimatorConfig(kind=kind), device), "random init"


def _median_s(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _measure(estimator: PoseEstimator, source: str, kind: str, config: BenchPoseConfig, rgb: np.ndarray,
             depth: np.ndarray, mask: np.ndarray, intrinsics: np.ndarray, rng: np.random.Generator
             ) -> dict[str, object]:
    cfg = estimator.config
    generator = torch.Generator(device=estimator.device).manual_seed(config.seed)
    inputs = instance_inputs(rgb, depth, mask, intrinsics, rng, cfg.crop_size, cfg.num_points)
    crops = np.repeat(inputs.crop[None], config.batch, axis=0)
    points = np.repeat(inputs.points[None], config.batch, axis=0)
    ids = rng.integers(1, 7, config.batch)
    steps = config.steps if kind == "diffusion" else None
    batched = _median_s(lambda: estimator.estimate(crops, points, ids, generator, steps), config.repeats,
                        estimator.device)
    single = _median_s(lambda: estimator.estimate(crops[:1], points[:1], ids[:1], generator, steps),
                       config.repeats, estimator.device)
    extract = _median_s(lambda: instance_inputs(rgb, depth, mask, intrinsics, rng, cfg.crop_size, cfg.num_points),
                        config.repeats, torch.device("cpu"))
    return {"checkpoint": source, "inference_steps": steps, "batch": config.batch,
            "estimates_per_s_batched": round(config.batch / batched, 1), "one_object_ms": round(1000 * single, 2),
            "input_extraction_ms": round(1000 * extract, 2),
            "one_object_end_to_end_ms": round(1000 * (single + extract), 2),
            "parameters": sum(p.numel() for p in estimator.net.parameters())}


def run(config: BenchPoseConfig) -> dict[str, object]:
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    results: dict[str, object] = {}
    # a synthetic 320x240 frame with one 60x50 px object 0.7 m away, for the input extraction
    rgb = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    depth = np.full((240, 320), 0.7, dtype=np.float32)
    mask = np.zeros((240, 320), dtype=bool)
    mask[100:160, 140:190] = True
    intrinsics = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    for kind, path in (("diffusion", config.diffusion), ("regression", config.regression)):
        results[kind] = _measure(*_estimator(path, kind, config.device), kind, config, rgb, depth, mask, intrinsics,
                                 rng)
    results["targets"] = {"estimates_per_s_batched": ">= 100", "one_object_ms (3 steps)": "<= 30"}
    metrics = {**run_metadata(config.seed), "device": config.device, "threads": config.threads, **results}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(results, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> None:
    run(tyro.cli(BenchPoseConfig, args=argv))


if __name__ == "__main__":
    main()
