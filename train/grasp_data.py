"""``manipstack data grasps``: synthesise, validate and store dexterous grasps, one object per work unit.

Each object is a unit: DexGraspNet-style synthesis in batches of ``batch`` hands until ``grasps_per_object``
grasps pass physics validation (or ``max_batches`` batches were tried); every optimised grasp is kept with
its label. Units run in-process (``--workers 1``), as tasks on a local Ray instance (``--workers W``) or on a
cluster (``--ray-address ADDR``); failed tasks are retried, results are appended to the HDF5 file as they
finish, and a rerun skips finished objects (a crash loses at most the units in flight) and re-applies the
train/test split rule to them.

The file layout, its writer and reader live in ``manipstack.envs.data.grasp_dataset``; the work unit in
``manipstack.grasp_models.synthesis.work_unit``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro
from tqdm import tqdm

from manipstack.envs.core.parallel import parallel_map
from manipstack.envs.data.grasp_dataset import GraspWriter, dataset_stats
from manipstack.envs.data.provenance import run_metadata
from manipstack.grasp_models.objects import ObjectSource, parse_object_spec
from manipstack.grasp_models.synthesis.work_unit import SynthesisConfig, hand_model, synthesize_unit

log = logging.getLogger(__name__)


@dataclass
class GraspDataConfig:
    """Synthesise + validate grasps for a set of objects and write an HDF5 grasp dataset."""

    out: Path
    """Output HDF5 file; if it exists, finished objects are skipped (resume)."""
    objects: str = "procedural:80,random_urdfs:20"
    """Objects: comma-separated 'procedural:N', 'random_urdfs:N', 'dir:PATH' (see grasp_models.objects)."""
    top_up: bool = False
    """Also redo finished objects holding fewer valid grasps than --grasps-per-object, with this run's
    --max-batches (synthesis is seeded per object, so the first batches repeat exactly); their groups are replaced."""
    workers: int = 1
    """Parallel workers: 1 runs in-process; more start a local Ray instance with that many CPUs."""
    ray_address: str | None = None
    """Address of a running Ray cluster (e.g. 'auto' or 'ray://host:10001'); overrides the local instance."""
    retries: int = 2
    """Times a failed object task is retried by Ray."""
    held_out_every: int = 5
    """One object in k (a seeded random choice of round(n / k) objects) goes to the held-out 'test' split;
    0 puts all in 'train'."""
    seed: int = 0
    """Seed of object choice, sizes and synthesis."""
    synthesis: Annotated[SynthesisConfig, tyro.conf.arg(name="")] = field(default_factory=SynthesisConfig)
    """Per-object synthesis settings (their options appear without a prefix: --batch, --device, ...)."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.retries < 0 or self.held_out_every < 0:
            raise ValueError(f"retries and held_out_every must be >= 0, got {self.retries}, {self.held_out_every}")


def object_splits(sources: list[ObjectSource], every: int, seed: int) -> list[str]:
    """'train' or 'test' per object: round(n / every) objects drawn at random (seeded) are held out."""
    if not every:
        return ["train"] * len(sources)
    held_out = set(np.random.default_rng(seed).permutation(len(sources))[: round(len(sources) / every)].tolist())
    return ["test" if i in held_out else "train" for i in range(len(sources))]


def unit_results(pending: list[tuple[ObjectSource, str]], config: GraspDataConfig) -> Iterator[dict | Exception]:
    """Unit results (dicts), or exceptions for units that failed every retry, as they finish (in-process or Ray)."""
    units = parallel_map(synthesize_unit, [(source, split, config.synthesis) for source, split in pending],
                         config.workers, config.ray_address, config.retries,
                         describe=lambda unit: f"object {unit[0].name}")
    for _, result in units:
        yield result


def build_dataset(config: GraspDataConfig) -> dict[str, object]:
    """Run the synthesis over every unfinished object; returns a summary (also written beside the file)."""
    sources = parse_object_spec(config.objects, config.seed)
    splits = object_splits(sources, config.held_out_every, config.seed)
    hand = hand_model(str(config.synthesis.hand_spec))
    writer = GraspWriter(config.out, hand.spec["name"], hand.joint_names, dataclasses.asdict(config))
    start = time.time()
    grasps = valid = failed = 0
    try:
        writer.relabel_splits({s.name: sp for s, sp in zip(sources, splits)})
        done = writer.done
        pending = [(s, sp) for s, sp in zip(sources, splits) if s.name not in done
                   or (config.top_up and writer.valid_count(s.name) < config.synthesis.grasps_per_object)]
        print(f"[data grasps] {len(sources) - len(pending)} of {len(sources)} objects already done; "
              f"{len(pending)} to go with {config.workers} worker(s)", flush=True)
        bar = tqdm(total=len(pending), unit="obj", desc="grasps", dynamic_ncols=True)
        for unit in unit_results(pending, config):
            if isinstance(unit, Exception):
                failed += 1
                log.warning("%s", unit)
                bar.write(f"[data grasps] {unit}")
            else:
                writer.write(unit)
                grasps += len(unit["arrays"]["valid"])
                valid += int(unit["arrays"]["valid"].sum())
                bar.set_postfix(valid_rate=f"{valid / max(grasps, 1):.2f}", valid=valid)
            bar.update(1)
        bar.close()
        done = len(writer.done)
    finally:
        writer.close()
    wall = time.time() - start
    summary = {**run_metadata(config.seed), "out": str(config.out), "objects_done": done,
               "objects_total": len(sources), "objects_failed": failed, "grasps_this_run": grasps,
               "valid_this_run": valid, "valid_rate_this_run": valid / max(grasps, 1), "wall_s_this_run": wall,
               "workers": config.workers, "dataset": dataset_stats(config.out)}
    log_path = config.out.with_suffix(".runs.jsonl")
    with log_path.open("a") as f:
        f.write(json.dumps(summary) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    summary = build_dataset(tyro.cli(GraspDataConfig, args=argv))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
