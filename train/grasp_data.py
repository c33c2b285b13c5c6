"""``manipstack data grasps``: synthesise, validate and store dexterous grasps, one object per work unit.

Each object is a unit: DexGraspNet-style synthesis in batches of ``batch`` hands until ``grasps_per_object``
grasps pass physics validation (or ``max_batches`` batches were tried); every optimised grasp is kept with
its label. Units run in-process (``--workers 1``), as tasks on a local Ray instance (``--workers W``) or on a
cluster (``--ray-address ADDR``); failed tasks are retried, results are appended to the HDF5 file as they
finish, and a rerun skips finished objects (a crash loses at most the units in flight) and re-applies the
train/test split rule to them.

HDF5 layout (one group per object, written whole, marked ``complete`` last)::

    /<object name>/  attrs: kind, ref (mesh file or primitive kind), scale, seed, split ('train'|'test'),
                            complete, synth_s, validate_s
        vertices (V, 3) float32 m, faces (F, 3) int32     -- the normalised mesh (object frame)
        poses (N, 3 + 6 + J) float32                       -- wrist translation m, rot6d, joints rad
        energy (N,), e_fc, e_dis, e_pen, e_spen (N,)       -- final energy terms
        valid (N,) bool, penetration (N,) m, q1 (N,), failure (N,) str
    file attrs: hand (spec name), joint_names, pose_layout, config (JSON)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
import tyro
from tqdm import tqdm

from manipstack.envs.core.parallel import parallel_map
from manipstack.envs.data.provenance import run_metadata
from manipstack.envs.robots.sim.hand import DEFAULT_HAND_SPEC
from manipstack.eval.grasp_validation import GraspValidator, ValidationConfig, validate_grasps
from manipstack.grasp_models.hand.model import HandModel
from manipstack.grasp_models.metrics import grasp_q1
from manipstack.grasp_models.objects import ObjectModel, ObjectSource, load_object_mesh, parse_object_spec
from manipstack.grasp_models.synthesis import AnnealingConfig, EnergyWeights, synthesize

log = logging.getLogger(__name__)


@dataclass
class GraspDataConfig:
    """Synthesise + validate grasps for a set of objects and write an HDF5 grasp dataset."""

    out: Path
    """Output HDF5 file; if it exists, finished objects are skipped (resume)."""
    objects: str = "procedural:80,random_urdfs:20"
    """Objects: comma-separated 'procedural:N', 'random_urdfs:N', 'dir:PATH' (see grasp_models.objects)."""
    grasps_per_object: int = 40
    """Valid grasps wanted per object; batches are synthesised until reached or max_batches."""
    batch: int = 32
    """Hands optimised together in one batch."""
    max_batches: int = 6
    """Most batches tried per object."""
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
    size_range: tuple[float, float] = (0.06, 0.10)
    """Range in m of the normalised objects' longest extent."""
    seed: int = 0
    """Seed of object choice, sizes and synthesis."""
    hand_spec: Path = DEFAULT_HAND_SPEC
    """Hand spec JSON (its URDF beside it)."""
    annealing: AnnealingConfig = field(default_factory=AnnealingConfig)
    """Synthesis optimiser settings."""
    weights: EnergyWeights = field(default_factory=EnergyWeights)
    """Energy weights."""

    def __post_init__(self) -> None:
        if self.grasps_per_object < 1 or self.batch < 1 or self.max_batches < 1:
            raise ValueError("grasps_per_object, batch and max_batches must be >= 1")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if not 0 < self.size_range[0] <= self.size_range[1]:
            raise ValueError(f"size_range must be 0 < low <= high in m, got {self.size_range}")


@functools.lru_cache(maxsize=2)
def _hand(spec: str) -> HandModel:
    return HandModel(Path(spec))


def synthesize_object(source: ObjectSource, split: str, config: GraspDataConfig) -> dict:
    """One work unit: synthesise and validate grasps on one object; returns arrays and attributes to store."""
    torch.set_num_threads(1)
    hand = _hand(str(config.hand_spec))
    mesh, scale = load_object_mesh(source, config.size_range)
    obj = ObjectModel(mesh.vertices, mesh.faces, np.random.default_rng(source.seed))
    generator = torch.Generator().manual_seed(source.seed)
    validator = GraspValidator(mesh.vertices, mesh.faces, ValidationConfig(), hand_spec=config.hand_spec)
    parts: list[dict[str, np.ndarray]] = []
    synth_s = validate_s = 0.0
    try:
        for _ in range(config.max_batches):
            start = time.perf_counter()
            result = synthesize(hand, obj, config.batch, generator, config.annealing, config.weights)
            synth_s += time.perf_counter() - start
            start = time.perf_counter()
            poses = result.poses.numpy()
            checks = validate_grasps(hand, obj, validator, poses)
            validate_s += time.perf_counter() - start
            e = result.energy
            parts.append({
                "poses": poses.astype(np.float32),
                "energy": e.total.numpy(), "e_fc": e.fc.numpy(), "e_dis": e.dis.numpy(), "e_pen": e.pen.numpy(),
                "e_spen": e.spen.numpy(),
                "valid": np.array([c.valid for c in checks]),
                "penetration": np.array([c.penetration for c in checks], dtype=np.float32),
                "q1": grasp_q1(hand, obj, result.poses).astype(np.float32),
                "failure": np.array([c.failure for c in checks], dtype=object),
            })
            if sum(int(p["valid"].sum()) for p in parts) >= config.grasps_per_object:
                break
    finally:
        validator.close()
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arrays["vertices"] = np.asarray(mesh.vertices, np.float32)
    arrays["faces"] = np.asarray(mesh.faces, np.int32)
    attrs = {"kind": source.kind, "ref": source.ref, "scale": scale, "seed": source.seed, "split": split,
             "synth_s": synth_s, "validate_s": validate_s}
    return {"name": source.name, "arrays": arrays, "attrs": attrs}


class GraspWriter:
    """Append-only HDF5 grasp dataset that survives crashes: a group counts only once marked ``complete``.

    Opening an existing file deletes incomplete groups (units in flight at a crash) and lists the finished ones.
    """

    def __init__(self, path: Path, file_attrs: dict[str, object]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(path, "a")
        for name in [n for n in self.file if not self.file[n].attrs.get("complete", False)]:
            log.info("removing incomplete object %s left by an interrupted run", name)
            del self.file[name]
        for key, value in file_attrs.items():
            self.file.attrs[key] = value
        self.file.flush()

    @property
    def done(self) -> set[str]:
        """Names of the finished objects."""
        return set(self.file)

    def valid_count(self, name: str) -> int:
        """Valid grasps stored for a finished object."""
        return int(np.asarray(self.file[name]["valid"]).sum())

    def relabel_splits(self, splits: dict[str, str]) -> None:
        """Set the ``split`` attribute of finished objects (the split is a function of the spec and seed)."""
        for name in self.done & set(splits):
            self.file[name].attrs["split"] = splits[name]
        self.file.flush()

    def write(self, unit: dict) -> None:
        """Write one unit's group (arrays and attributes), mark it complete, flush to disk; replaces a group
        of the same name (a top-up)."""
        if unit["name"] in self.file:
            del self.file[unit["name"]]
        group = self.file.create_group(unit["name"])
        for key, value in unit["arrays"].items():
            if value.dtype == object:
                group.create_dataset(key, data=value.astype(str).tolist(), dtype=h5py.string_dtype())
            else:
                group.create_dataset(key, data=value, compression="gzip", compression_opts=4, shuffle=True)
        for key, value in unit["attrs"].items():
            group.attrs[key] = value
        group.attrs["complete"] = True
        self.file.flush()

    def close(self) -> None:
        if self.file.id.valid:
            self.file.close()


def dataset_stats(path: Path) -> dict[str, object]:
    """Totals of a grasp dataset: objects per split and kind, grasps, valid rate, min valid per object, and
    throughput in valid grasps per CPU-minute (each unit runs on one core; its synth + validate seconds)."""
    with h5py.File(path, "r") as f:
        groups = [f[n] for n in f if f[n].attrs.get("complete", False)]
        valid = np.array([int(g["valid"][()].sum()) for g in groups])
        grasps = np.array([len(g["valid"]) for g in groups])
        cpu_s = np.array([g.attrs["synth_s"] + g.attrs["validate_s"] for g in groups])
        kinds = [str(g.attrs["kind"]) for g in groups]
        splits = [str(g.attrs["split"]) for g in groups]
    procedural = np.array([k.startswith("procedural/") for k in kinds])
    return {
        "objects": len(groups), "objects_train": splits.count("train"), "objects_test": splits.count("test"),
        "objects_per_kind": {k: kinds.count(k) for k in sorted(set(kinds))},
        "grasps": int(grasps.sum()), "valid": int(valid.sum()),
        "valid_rate": float(valid.sum() / max(grasps.sum(), 1)),
        "min_valid_per_object": int(valid.min()) if len(valid) else 0,
        "valid_per_cpu_minute": float(valid.sum() / max(cpu_s.sum() / 60, 1e-9)),
        "valid_per_cpu_minute_procedural": float(valid[procedural].sum() / max(cpu_s[procedural].sum() / 60, 1e-9)),
        "file_mb": path.stat().st_size / 2**20,
    }


def object_splits(sources: list[ObjectSource], every: int, seed: int) -> list[str]:
    """'train' or 'test' per object: round(n / every) objects drawn at random (seeded) are held out."""
    if not every:
        return ["train"] * len(sources)
    held_out = set(np.random.default_rng(seed).permutation(len(sources))[: round(len(sources) / every)].tolist())
    return ["test" if i in held_out else "train" for i in range(len(sources))]


def unit_results(pending: list[tuple[ObjectSource, str]], config: GraspDataConfig) -> Iterator[dict | Exception]:
    """Unit results (dicts), or exceptions for units that failed every retry, as they finish (in-process or Ray)."""
    units = parallel_map(functools.partial(_synthesize_pending, config=config), pending, config.workers,
                         config.ray_address, config.retries, describe=lambda unit: f"object {unit[0].name}")
    for _, result in units:
        yield result


def _synthesize_pending(unit: tuple[ObjectSource, str], config: GraspDataConfig) -> dict:
    return synthesize_object(*unit, config)


def build_dataset(config: GraspDataConfig) -> dict[str, object]:
    """Run the synthesis over every unfinished object; returns a summary (also written beside the file)."""
    sources = parse_object_spec(config.objects, config.seed)
    splits = object_splits(sources, config.held_out_every, config.seed)
    hand = _hand(str(config.hand_spec))
    writer = GraspWriter(config.out, {
        "hand": hand.spec["name"], "joint_names": json.dumps(hand.joint_names),
        "pose_layout": "translation(3) m, rot6d(6) = rotation columns 0 and 1, joints(J) rad; object frame",
        "config": json.dumps(dataclasses.asdict(config), default=str),
    })
    start = time.time()
    grasps = valid = failed = 0
    try:
        writer.relabel_splits({s.name: sp for s, sp in zip(sources, splits)})
        done = writer.done
        pending = [(s, sp) for s, sp in zip(sources, splits) if s.name not in done
                   or (config.top_up and writer.valid_count(s.name) < config.grasps_per_object)]
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
