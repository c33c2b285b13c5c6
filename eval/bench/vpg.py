"""``manipstack bench vpg``: speed of VPG's Q-map forward pass and of one push-grasp env step.

Measured in one run, on this machine:

1. Q maps of both primitives at all R rotations for one heightmap (one batched forward pass of the
   small from-scratch net, as used for every action) — median over ``--repeats`` calls;
2. one ``PushGraspEnv.step`` (primitive motion + render + heightmap) with random pushes and grasps on
   object pixels — median over ``--steps`` steps;
3. the forward pass of the paper's architecture on the same rotated inputs: per primitive two
   DenseNet-121 feature towers (colour, depth; torchvision, random init) + VPG's 1x1 head, for all R
   rotations of both primitives, printed as a ratio to (1).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import tyro
from torch import nn

from manipstack.envs.data.provenance import run_metadata
from manipstack.envs.tasks.push_grasp import PushGraspConfig, PushGraspEnv
from manipstack.policies.vpg.agent import VPGAgent, VPGConfig
from manipstack.policies.vpg.net import padded_size, rotation_grids


@dataclass
class BenchVPGConfig:
    """Time VPG's Q maps and env step, and compare with the paper's DenseNet-121 Q-network."""

    repeats: int = 10
    """Q-map forward passes timed (median reported)."""
    steps: int = 20
    """Env steps timed (median reported)."""
    densenet_repeats: int = 2
    """Forward passes of the DenseNet-121 reference timed (it is slow on a CPU)."""
    seed: int = 0
    """Seed of the env and of the random actions."""
    threads: int | None = 1
    """Torch CPU threads; 1 is fastest for this small net on a busy 2-core CPU (OpenMP threads spin-wait for
    cores), None keeps torch's choice."""
    out: Path = Path("reports/bench_vpg")
    """Folder for metrics.json."""
    device: str = "cpu"
    """Torch device of both networks (e.g. 'cpu' or 'cuda'); GPU times include a synchronisation."""


class DenseNetQ(nn.Module):
    """VPG's Q-network for one primitive: DenseNet-121 colour and depth towers + 1x1 head (random init)."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import densenet121

        self.color_tower = densenet121(weights=None).features
        self.depth_tower = densenet121(weights=None).features
        self.head = nn.Sequential(nn.BatchNorm2d(2048), nn.ReLU(), nn.Conv2d(2048, 64, 1), nn.BatchNorm2d(64),
                                  nn.ReLU(), nn.Conv2d(64, 1, 1))

    def forward(self, color: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.color_tower(color), self.depth_tower(depth)], dim=1)  # (N, 2048, P/32, P/32)
        return F.interpolate(self.head(features), scale_factor=16, mode="bilinear", align_corners=False)


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(config: BenchVPGConfig) -> dict[str, object]:
    """Run the three measurements; prints them and writes ``<out>/metrics.json``."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    env_config = PushGraspConfig()
    env = PushGraspEnv(env_config)
    agent = VPGAgent(VPGConfig(num_rotations=env_config.num_rotations, heightmap_size=env_config.heightmap_size,
                               pixel_size=env_config.pixel_size), device=config.device)
    rng = np.random.default_rng(config.seed)
    try:
        obs, _ = env.reset(seed=config.seed)
        qmap_s = _median_time(lambda: agent.predict(obs), config.repeats)
        step_times = []
        for _ in range(config.steps):
            rows, cols = np.nonzero(obs["height"] > 0.01)
            if len(rows) == 0:
                obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
                continue
            pick = int(rng.integers(len(rows)))
            action = [int(rng.integers(2)), int(rng.integers(env_config.num_rotations)), rows[pick], cols[pick]]
            start = time.perf_counter()
            obs, _, terminated, truncated, _ = env.step(action)
            step_times.append(time.perf_counter() - start)
            if terminated or truncated:
                obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
        step_s = statistics.median(step_times)
    finally:
        env.close()

    # The paper's architecture on the same rotated inputs: R rotations x 2 primitives, 4 DenseNet-121 towers.
    R, H = env_config.num_rotations, env_config.heightmap_size
    P = padded_size(H, H)
    angles = torch.arange(R, dtype=torch.float32) * (2 * math.pi / R)
    grids = rotation_grids(angles, P)
    device = torch.device(config.device)
    color = F.grid_sample(torch.rand(R, 3, P, P), grids, align_corners=False).to(device)  # (R, 3, P, P)
    depth = F.grid_sample(torch.rand(R, 1, P, P), grids, align_corners=False).expand(R, 3, P, P).to(device)
    nets = [DenseNetQ().eval().to(device) for _ in range(2)]

    @torch.no_grad()
    def densenet_forward() -> None:
        for net in nets:
            net(color, depth)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    densenet_s = _median_time(densenet_forward, config.densenet_repeats)
    result = {
        **run_metadata(config.seed),
        "heightmap_size": H,
        "num_rotations": R,
        "torch_threads": torch.get_num_threads(),
        "device": config.device,
        "qmaps_median_s": round(qmap_s, 4),
        "env_step_median_s": round(step_s, 4),
        "env_steps_timed": len(step_times),
        "densenet121_qmaps_median_s": round(densenet_s, 4),
        "densenet121_over_ours": round(densenet_s / qmap_s, 1),
        "targets": {"qmaps_s": 0.3, "env_step_s": 0.2},
    }
    print(f"Q maps, {R} rotations x 2 primitives, {H}x{H}: {qmap_s:.3f} s median (target <= 0.3 s)")
    print(f"env step (primitive + render + heightmap): {step_s:.3f} s median over {len(step_times)} (target <= 0.2 s)")
    print(f"paper's DenseNet-121 towers on the same input: {densenet_s:.2f} s median = "
          f"{densenet_s / qmap_s:.1f}x ours")
    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> None:
    bench(tyro.cli(BenchVPGConfig, args=argv))


if __name__ == "__main__":
    main()
