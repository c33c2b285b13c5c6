"""``manipstack data pose``: render pose scenes (RGB, depth, instance masks, NOCS ground truth) into HDF5.

Scenes are split into chunks of ``--chunk`` consecutive indices; each chunk is one work unit that renders its
scenes in one PyBullet world (``manipstack.envs.tasks.pose_scenes.render_chunk``). Units run in-process
(``--workers 1``), as tasks on a local Ray instance (``--workers W``) or on a cluster (``--ray-address``); results
are written as they finish, a rerun with the same settings skips finished scenes (a crash loses at most the units in
flight), and scene ``i`` is the same whichever worker renders it, so the file's contents do not depend on
``--workers`` or ``--chunk``. The layout, its writer and reader live in ``manipstack.envs.data.pose_dataset``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro
from tqdm import tqdm

from manipstack.assets.pose_categories import GENERATOR_VERSION
from manipstack.envs.core.mesh_cache import default_cache_dir
from manipstack.envs.core.parallel import parallel_map
from manipstack.envs.data.pose_dataset import PoseWriter, pose_dataset_stats
from manipstack.envs.data.provenance import run_metadata
from manipstack.envs.tasks.pose_scenes import PoseSceneConfig, render_chunk
from manipstack.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class PoseDataConfig:
    """Render pose scenes of one domain and instance split into an HDF5 pose dataset."""

    out: Path
    """Output HDF5 file; if it exists (made with the same settings), finished scenes are skipped (resume)."""
    scenes: int = 1000
    """Scenes in the dataset (indices 0 .. scenes - 1)."""
    domain: str = "clean"
    """Render domain: 'clean' (training) or 'shifted' (test)."""
    instances: str = "train"
    """Instance split: 'train' or the held-out 'test'."""
    seed: int = 0
    """Seed of every scene (scene i draws from (seed, i, domain, instances))."""
    workers: int = 1
    """Parallel workers: 1 renders in-process; more start a local Ray instance with that many CPUs."""
    ray_address: str | None = None
    """Address of a running Ray cluster (e.g. 'auto' or 'ray://host:10001'); overrides the local instance."""
    retries: int = 2
    """Times a failed chunk is retried by Ray."""
    chunk: int = 25
    """Scenes per work unit (one PyBullet world each)."""
    scene: Annotated[PoseSceneConfig, tyro.conf.arg(name="scene")] = field(default_factory=PoseSceneConfig)
    """Scene settings (objects per scene, image size, instances per category); --domain and --instances override
    its domain and instances."""

    def __post_init__(self) -> None:
        if self.scenes < 1:
            raise InputError(f"scenes must be >= 1, got {self.scenes}")
        if self.workers < 1 or self.chunk < 1 or self.retries < 0:
            raise InputError("workers and chunk must be >= 1 and retries >= 0")
        self.scene = dataclasses.replace(self.scene, domain=self.domain, instances=self.instances)


def build_pose_dataset(config: PoseDataConfig) -> dict[str, object]:
    """Render every unfinished scene; returns a summary (also appended to ``<out>.runs.jsonl``)."""
    identity = {"domain": config.domain, "instances": config.instances, "seed": config.seed,
                "generator_version": GENERATOR_VERSION,
                "config": json.dumps(dataclasses.asdict(config.scene), sort_keys=True)}
    writer = PoseWriter(config.out, identity)
    cache_dir = str(default_cache_dir())
    start = time.time()
    written = failed = instances = 0
    first_result = None
    try:
        done = writer.done
        pending = [i for i in range(config.scenes) if i not in done]
        chunks = [pending[i:i + config.chunk] for i in range(0, len(pending), config.chunk)]
        print(f"[data pose] {config.scenes - len(pending)} of {config.scenes} scenes already done; {len(pending)} "
              f"to go in {len(chunks)} chunks with {config.workers} worker(s)", flush=True)
        units = [(chunk, config.scene, config.seed, cache_dir) for chunk in chunks]
        bar = tqdm(total=len(pending), unit="scene", desc=f"pose {config.domain}/{config.instances}",
                   dynamic_ncols=True)
        for k, result in parallel_map(render_chunk, units, config.workers, config.ray_address, config.retries,
                                      describe=lambda unit: f"scenes {unit[0][0]}..{unit[0][-1]}"):
            if isinstance(result, Exception):
                failed += len(units[k][0])
                log.warning("%s", result)
                bar.write(f"[data pose] {result}")
                bar.update(len(units[k][0]))
                continue
            first_result = first_result or time.time()
            for index, scene in result:
                writer.write(index, scene)
                written += 1
                instances += len(scene["class_ids"])
            bar.update(len(result))
        bar.close()
    finally:
        writer.close()
    wall = time.time() - start
    summary = {**run_metadata(config.seed), "out": str(config.out), "scenes_this_run": written,
               "scenes_failed": failed, "instances_this_run": instances, "wall_s_this_run": round(wall, 2),
               "scenes_per_s": round(written / max(wall, 1e-9), 2), "workers": config.workers,
               "dataset": pose_dataset_stats(config.out)}
    with config.out.with_suffix(".runs.jsonl").open("a") as f:
        f.write(json.dumps(summary) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(build_pose_dataset(tyro.cli(PoseDataConfig, args=argv)), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
