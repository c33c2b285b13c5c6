"""``manipstack bench sim``: physics and render throughput, and the World wrapper's overhead.

Runs, in one process: raw ``pybullet.stepSimulation`` on a bare client with a Panda and 10 objects,
the same scene stepped through :class:`envs.core.world.World` one call per step, and RGB-D captures
at 224x224 and 640x480. Raw and wrapped runs are interleaved and the median of the repeats is kept,
so a busy machine slows both alike.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet
import pybullet_data
import tyro

from manipstack.envs.core.camera import Intrinsics, SimCamera, look_at
from manipstack.envs.core.world import World
from manipstack.envs.data.provenance import run_metadata


@dataclass
class SimBenchConfig:
    """Physics step and render rates."""

    steps: int = 2000
    """Physics steps per timed repeat."""
    repeats: int = 5
    """Interleaved repeats of raw and wrapped stepping; the median is reported."""
    renders: int = 10
    """Captures per resolution."""
    out: Path | None = None
    """Optional JSON file for the numbers (with provenance)."""


def _object_poses(n: int) -> list[tuple[list[float], list[float]]]:
    rng = np.random.default_rng(0)
    return [([rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15), 0.03 + 0.05 * i], [0, 0, 0, 1]) for i in range(n)]


def _raw_client() -> int:
    cid = pybullet.connect(pybullet.DIRECT)
    pybullet.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=cid)
    pybullet.setGravity(0, 0, -9.81, physicsClientId=cid)
    pybullet.setPhysicsEngineParameter(fixedTimeStep=1 / 240, numSolverIterations=50,
                                       deterministicOverlappingPairs=1, physicsClientId=cid)
    pybullet.loadURDF("plane.urdf", physicsClientId=cid)
    pybullet.loadURDF("franka_panda/panda.urdf", [-0.55, 0, 0], useFixedBase=True,
                      flags=pybullet.URDF_USE_INERTIA_FROM_FILE, physicsClientId=cid)
    for position, quat in _object_poses(10):
        shape = pybullet.createCollisionShape(pybullet.GEOM_BOX, halfExtents=[0.02] * 3, physicsClientId=cid)
        body = pybullet.createMultiBody(0.1, shape, -1, position, quat, physicsClientId=cid)
        pybullet.changeDynamics(body, -1, lateralFriction=0.8, physicsClientId=cid)
    return cid


def _world() -> World:
    world = World(time_step=1 / 240, solver_iterations=50)
    world.add_plane()
    world.add_urdf("panda", "franka_panda/panda.urdf", [-0.55, 0, 0], fixed=True)
    for i, (position, quat) in enumerate(_object_poses(10)):
        world.add_primitive(f"obj{i}", "box", [0.04] * 3, position, quat)
    return world


def run(config: SimBenchConfig) -> dict[str, float]:
    cid, world = _raw_client(), _world()
    raw_times, wrapped_times = [], []
    for _ in range(config.repeats):
        start = time.perf_counter()
        for _ in range(config.steps):
            pybullet.stepSimulation(physicsClientId=cid)
        raw_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(config.steps):
            world.step()
        wrapped_times.append(time.perf_counter() - start)
    pybullet.disconnect(cid)
    raw_rate = config.steps / float(np.median(raw_times))
    wrapped_rate = config.steps / float(np.median(wrapped_times))
    results = {
        "raw_steps_per_s": raw_rate,
        "world_steps_per_s": wrapped_rate,
        "wrapper_overhead_pct": 100.0 * (raw_rate / wrapped_rate - 1.0),
    }
    for width, height in ((224, 224), (640, 480)):
        camera = SimCamera(world, Intrinsics.from_fov(width, height, 45), look_at([0, 0, 0.8], [0, 0, 0], [1, 0, 0]))
        camera.capture()
        start = time.perf_counter()
        for _ in range(config.renders):
            camera.capture()
        results[f"rgbd_{width}x{height}_fps"] = config.renders / (time.perf_counter() - start)
    world.close()
    return results


def main(argv: list[str] | None = None) -> None:
    config = tyro.cli(SimBenchConfig, args=argv)
    results = run(config)
    print(f"raw stepSimulation (Panda + 10 objects): {results['raw_steps_per_s']:10.0f} steps/s")
    print(f"World.step, one call per step          : {results['world_steps_per_s']:10.0f} steps/s")
    print(f"wrapper overhead (goal <= 5 %)          : {results['wrapper_overhead_pct']:10.2f} %")
    print(f"RGB-D capture 224x224                   : {results['rgbd_224x224_fps']:10.1f} frames/s")
    print(f"RGB-D capture 640x480                   : {results['rgbd_640x480_fps']:10.1f} frames/s")
    if config.out is not None:
        config.out.parent.mkdir(parents=True, exist_ok=True)
        config.out.write_text(json.dumps({**run_metadata(0), "results": results}, indent=2))


if __name__ == "__main__":
    main()
