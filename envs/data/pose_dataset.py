"""The pose-scene dataset file (HDF5): the one writer and the one reader (no torch).

Layout (one group per scene, written whole, marked ``complete`` last)::

    /scenes/<index:06d>/  attrs: index, complete
        rgb (H, W, 3) uint8            depth_mm (H, W) uint16, depth in units of DEPTH_UNIT_M (0 = no reading)
        mask (H, W) uint8              0 = no ground-truth instance, k = instance k - 1 (from the segmentation)
        intrinsics (3, 3) float64      K in pixels          world_from_cam (4, 4) float64 (OpenCV camera frame)
        class_ids (N,) int64           NOCS class ids 1..6 (bottle, bowl, camera, can, laptop, mug)
        RTs (N, 4, 4) float64          NOCS sRT, camera frame: [[s R, t], [0, 1]], s = box diagonal in m
        scales (N, 3) float64          NOCS-space box extents (metric extents / s)
        extents (N, 3) float64         metric box extents in m (object x, y, z)
        handle_visibility (N,) int64   1 unless a mug's handle is hidden
        names (N,) str                 instance names, e.g. 'mug-test-0003'
    file attrs: what, domain, instances, seed, generator_version, config (JSON)

Crash safety as for grasp datasets: a scene counts only once its ``complete`` attribute is set, the file is flushed
after each scene, and opening an existing file deletes incomplete scenes. A writer refuses a file made with other
settings (domain, instance split, seed or scene config), so a resumed run never mixes two datasets.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from manipstack.envs.data.hdf5 import DatasetFileError, open_for_reading, require

log = logging.getLogger(__name__)

WHAT = "pose dataset"
DEPTH_UNIT_M = 1e-4
"""Depth is stored as uint16 in units of 0.1 mm (up to 6.5 m)."""
IMAGE_DATASETS = ("rgb", "depth_mm", "mask", "intrinsics", "world_from_cam")
INSTANCE_DATASETS = ("class_ids", "RTs", "scales", "extents", "handle_visibility", "names")
FILE_ATTRS = ("what", "domain", "instances", "seed", "generator_version", "config")
IDENTITY_ATTRS = ("domain", "instances", "seed", "generator_version", "config")
"""File attributes a resumed run must match."""


@dataclass
class PoseScene:
    """One scene: images, instance mask and per-instance ground truth (see the module docstring for units)."""

    index: int
    rgb: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    intrinsics: np.ndarray
    world_from_cam: np.ndarray
    class_ids: np.ndarray
    RTs: np.ndarray
    scales: np.ndarray
    extents: np.ndarray
    handle_visibility: np.ndarray
    names: np.ndarray

    def __len__(self) -> int:
        return len(self.class_ids)


class PoseDataset:
    """Read-only view of a pose dataset; use as a context manager or call :meth:`close`.

    Raises:
        FileNotFoundError: no file at ``path``.
        DatasetFileError: not HDF5 or not a pose dataset (the message names the file and what is missing).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.file = open_for_reading(self.path, WHAT)
        try:
            require(self.file, self.path, WHAT, attrs=FILE_ATTRS, groups=("scenes",))
            if self.file.attrs["what"] != WHAT:
                raise DatasetFileError(f"{self.path} is a {self.file.attrs['what']!r} file, not a {WHAT}")
        except BaseException:
            self.file.close()
            raise

    @property
    def attrs(self) -> dict[str, object]:
        """File attributes: domain, instances, seed, generator_version, config (JSON)."""
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.file.attrs.items()}

    def scenes(self) -> list[int]:
        """Indices of the finished scenes, sorted."""
        group = self.file["scenes"]
        return sorted(int(n) for n in group if group[n].attrs.get("complete", False))

    def read(self, index: int) -> PoseScene:
        """One finished scene.

        Raises:
            KeyError: no finished scene ``index``.
            DatasetFileError: the group lacks a dataset of the layout or its per-instance arrays disagree in length.
        """
        group = self.file["scenes"].get(f"{index:06d}")
        if not isinstance(group, h5py.Group) or not group.attrs.get("complete", False):
            raise KeyError(f"{self.path}: no finished scene {index}")
        require(group, self.path, WHAT, datasets=IMAGE_DATASETS + INSTANCE_DATASETS)
        arrays = {k: group[k][()] for k in IMAGE_DATASETS + INSTANCE_DATASETS if k != "names"}
        names = group["names"].asstr()[()] if len(group["names"]) else np.zeros(0, dtype=object)
        lengths = {k: len(arrays[k]) for k in INSTANCE_DATASETS if k != "names"} | {"names": len(names)}
        if len(set(lengths.values())) > 1:
            raise DatasetFileError(f"{self.path}: per-instance datasets of scene {index} differ in length: {lengths}")
        depth = arrays.pop("depth_mm").astype(np.float32) * DEPTH_UNIT_M
        return PoseScene(index=index, depth=depth, names=np.asarray(names, dtype=object), **arrays)

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        if self.file.id.valid:
            self.file.close()

    def __enter__(self) -> PoseDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PoseWriter:
    """Append-only pose dataset that survives crashes (see module docstring).

    Args:
        path: the HDF5 file (created with its folder if missing, appended to if it exists).
        identity: ``domain``, ``instances``, ``seed``, ``generator_version`` and ``config`` (JSON str); an
            existing file must have been made with the same.
    """

    def __init__(self, path: str | os.PathLike, identity: dict[str, object]) -> None:
        self.path = Path(path)
        missing = [k for k in IDENTITY_ATTRS if k not in identity]
        if missing:
            raise ValueError(f"identity lacks {missing}")
        if self.path.exists() and not h5py.is_hdf5(self.path):
            raise DatasetFileError(f"{self.path} exists and is not an HDF5 file; choose another output file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(self.path, "a")
        try:
            if "what" in self.file.attrs:
                if self.file.attrs["what"] != WHAT:
                    raise DatasetFileError(f"{self.path} is a {self.file.attrs['what']!r} file; choose another output")
                for key in IDENTITY_ATTRS:
                    old, new = self.file.attrs.get(key), identity[key]
                    if old is None or str(old) != str(new):
                        raise DatasetFileError(f"{self.path} was made with {key}={old!r}, this run has {new!r}; "
                                               "choose another output file (or the same settings to resume)")
            scenes = self.file.require_group("scenes")
            for name in [n for n in scenes if not scenes[n].attrs.get("complete", False)]:
                log.info("removing incomplete scene %s left by an interrupted run", name)
                del scenes[name]
            self.file.attrs.update({"what": WHAT, **{k: identity[k] for k in IDENTITY_ATTRS}})
            self.file.flush()
        except BaseException:
            self.file.close()
            raise

    @property
    def done(self) -> set[int]:
        """Indices of the finished scenes."""
        return {int(n) for n in self.file["scenes"]}

    def write(self, index: int, scene: dict[str, object]) -> None:
        """Write one scene (a dict as :meth:`~manipstack.envs.tasks.pose_scenes.SceneRenderer.render` returns),
        mark it complete and flush; replaces a scene of the same index."""
        missing = [k for k in ("rgb", "depth", *IMAGE_DATASETS[2:], *INSTANCE_DATASETS) if k not in scene]
        if missing:
            raise ValueError(f"scene {index} lacks {missing} of the pose dataset layout")
        scenes = self.file["scenes"]
        name = f"{index:06d}"
        if name in scenes:
            del scenes[name]
        group = scenes.create_group(name)
        depth = np.round(np.asarray(scene["depth"], dtype=np.float64) / DEPTH_UNIT_M)
        arrays = {"rgb": scene["rgb"], "depth_mm": np.clip(depth, 0, 65535).astype(np.uint16),
                  **{k: scene[k] for k in IMAGE_DATASETS[2:]},
                  **{k: scene[k] for k in INSTANCE_DATASETS if k != "names"}}
        for key, value in arrays.items():
            value = np.asarray(value)
            big = value.ndim >= 2 and value.size > 64
            group.create_dataset(key, data=value, **({"compression": "gzip", "compression_opts": 1, "shuffle": True}
                                                     if big else {}))
        group.create_dataset("names", data=[str(n) for n in scene["names"]], dtype=h5py.string_dtype())
        group.attrs["index"] = index
        group.attrs["complete"] = True
        self.file.flush()

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        if self.file.id.valid:
            self.file.close()

    def __enter__(self) -> PoseWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pose_dataset_stats(path: str | os.PathLike) -> dict[str, object]:
    """Totals of a pose dataset: scenes, instances per class, hidden mug handles, file size."""
    with PoseDataset(path) as dataset:
        counts = np.zeros(7, dtype=int)
        hidden = 0
        for index in dataset.scenes():
            group = dataset.file["scenes"][f"{index:06d}"]
            ids = group["class_ids"][()]
            counts += np.bincount(ids, minlength=7)[:7]
            hidden += int(((ids == 6) & (group["handle_visibility"][()] == 0)).sum())
        return {"scenes": len(dataset.scenes()), "instances": int(counts.sum()),
                "instances_per_class": counts[1:].tolist(), "mugs_handle_hidden": hidden,
                "domain": dataset.attrs["domain"], "instance_split": dataset.attrs["instances"],
                "file_mb": round(Path(path).stat().st_size / 2**20, 2)}
