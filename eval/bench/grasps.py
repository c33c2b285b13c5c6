"""``manipstack bench grasps``: grasp-synthesis scaling (1 worker vs Ray workers) and batched hand FK speed.

Both numbers are measured in the same run on the same machine; the scaling part runs the same object units
once in-process and once on a local Ray instance (started and warmed up before timing), and prints the ratio.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import tyro

from manipstack.assets.hands import DEFAULT_HAND_SPEC
from manipstack.envs.core.parallel import parallel_map
from manipstack.envs.data.provenance import run_metadata
from manipstack.grasp_models.device import check_device
from manipstack.grasp_models.hand.model import HandModel, matrix_to_rot6d
from manipstack.grasp_models.objects import parse_object_spec
from manipstack.grasp_models.synthesis import AnnealingConfig
from manipstack.grasp_models.synthesis.work_unit import SynthesisConfig, synthesize_unit


def _bench_annealing() -> AnnealingConfig:
    return AnnealingConfig(iterations=150)


@dataclass
class BenchGraspsConfig:
    """Grasp-synthesis benchmark: 1 worker vs Ray workers, and batched FK."""

    out: Path = Path("runs/bench_grasps")
    """Folder for metrics.json."""
    objects: str = "procedural:6"
    """Object units timed in both modes."""
    workers: int = 2
    """Ray workers compared against 1 in-process worker."""
    batch: int = 16
    """Hands per synthesis batch (one batch per object)."""
    fk_batch: int = 1024
    """Hands in the batched forward-kinematics timing."""
    fk_repeats: int = 30
    """FK timing repeats (the median is reported)."""
    seed: int = 0
    """Seed."""
    annealing: AnnealingConfig = field(default_factory=_bench_annealing)
    """Synthesis settings of the timed units."""
    device: str = "cpu"
    """Torch device of the hand model (FK timing and synthesis); GPU times include a synchronisation."""

    def __post_init__(self) -> None:
        check_device(self.device)


def time_fk(batch: int, repeats: int, seed: int, device: str = "cpu") -> dict[str, float]:
    """Wall times in ms (median and min) of batched FK of ``batch`` random hands: link frames only, and link
    frames + world-frame contact candidates. Uses torch's default intra-op threads."""
    hand = HandModel(DEFAULT_HAND_SPEC, device=device)
    g = torch.Generator().manual_seed(seed)
    rot = torch.linalg.qr(torch.randn(batch, 3, 3, generator=g)).Q
    lower, upper = hand.lower.cpu(), hand.upper.cpu()
    joints = lower + (upper - lower) * torch.rand(batch, hand.num_joints, generator=g)
    poses = torch.cat([0.1 * torch.randn(batch, 3, generator=g), matrix_to_rot6d(rot), joints], dim=-1)
    poses = poses.to(device=hand.lower.device, dtype=hand.lower.dtype)
    synchronize = torch.cuda.synchronize if hand.lower.device.type == "cuda" else (lambda: None)
    fk, fk_contacts = [], []
    with torch.no_grad():
        for _ in range(repeats + 3):
            start = time.perf_counter()
            state = hand.forward(poses)
            synchronize()
            fk.append(1000 * (time.perf_counter() - start))
            hand.contact_candidates(state)
            synchronize()
            fk_contacts.append(1000 * (time.perf_counter() - start))
    fk, fk_contacts = fk[3:], fk_contacts[3:]
    return {"fk_batch": batch, "fk_ms_median": float(np.median(fk)), "fk_ms_min": float(np.min(fk)),
            "fk_contacts_ms_median": float(np.median(fk_contacts)), "torch_threads": torch.get_num_threads()}


def time_scaling(config: BenchGraspsConfig) -> dict[str, float]:
    """Wall time of the same units with 1 in-process worker and with ``config.workers`` Ray workers."""
    import ray

    sources = parse_object_spec(config.objects, config.seed)
    synthesis = SynthesisConfig(grasps_per_object=config.batch, batch=config.batch, max_batches=1,
                                annealing=config.annealing, device=config.device)
    units = [(source, "train", synthesis) for source in sources]

    def run_units(workers: int) -> list[dict | Exception]:
        return [result for _, result in parallel_map(synthesize_unit, units, workers,
                                                     describe=lambda unit: f"object {unit[0].name}")]

    start = time.perf_counter()
    serial = run_units(1)
    serial_s = time.perf_counter() - start
    start = time.perf_counter()
    ray.init(num_cpus=config.workers, include_dashboard=False, log_to_driver=False)
    try:
        # warm up: every worker process imports the synthesis stack once before timing
        warm = ray.remote(num_cpus=1)(lambda: __import__("manipstack.grasp_models.synthesis.work_unit").__name__)
        ray.get([warm.remote() for _ in range(config.workers)])
        startup_s = time.perf_counter() - start
        start = time.perf_counter()
        parallel = run_units(config.workers)
        parallel_s = time.perf_counter() - start
    finally:
        ray.shutdown()
    failures = [r for r in [*serial, *parallel] if isinstance(r, Exception)]
    if failures:
        raise RuntimeError(f"benchmark units failed: {failures}")
    grasps = sum(len(r["arrays"]["valid"]) for r in serial)
    return {"units": len(sources), "grasps_per_mode": grasps, "serial_s": serial_s,
            f"ray_{config.workers}_workers_s": parallel_s, "ray_startup_s": startup_s,
            "speedup": serial_s / parallel_s, "speedup_incl_startup": serial_s / (parallel_s + startup_s),
            "serial_grasps_per_s": grasps / serial_s}


def main(argv: list[str] | None = None) -> None:
    config = tyro.cli(BenchGraspsConfig, args=argv)
    fk = time_fk(config.fk_batch, config.fk_repeats, config.seed, config.device)
    print(f"[bench grasps] FK of {fk['fk_batch']} hands: median {fk['fk_ms_median']:.2f} ms (min {fk['fk_ms_min']:.2f} "
          f"ms; with contact candidates {fk['fk_contacts_ms_median']:.2f} ms; {fk['torch_threads']} torch threads)",
          flush=True)
    torch.set_num_threads(1)  # the scaling runs use one thread per worker, like the data command
    scaling = time_scaling(config)
    parallel_s = scaling[f"ray_{config.workers}_workers_s"]
    print(f"[bench grasps] {scaling['units']} units: 1 worker {scaling['serial_s']:.1f} s, {config.workers} Ray "
          f"workers {parallel_s:.1f} s -> speed-up {scaling['speedup']:.2f}x ({scaling['speedup_incl_startup']:.2f}x "
          f"counting Ray start-up {scaling['ray_startup_s']:.1f} s)", flush=True)
    config.out.mkdir(parents=True, exist_ok=True)
    metrics = {**run_metadata(config.seed), **fk, **scaling}
    (config.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
