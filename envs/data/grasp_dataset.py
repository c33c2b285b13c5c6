"""The grasp dataset file (HDF5): the one writer and the one reader, and the dataset's totals (no torch).

Layout (one group per object, written whole, marked ``complete`` last)::

    /<object name>/  attrs: kind, ref (mesh file or primitive kind), scale, seed, split ('train'|'test'),
                            complete, synth_s, validate_s
        vertices (V, 3) float32 m, faces (F, 3) int32     -- the normalised mesh (object frame)
        poses (N, 3 + 6 + J) float32                       -- wrist translation m, rot6d, joints rad
        energy (N,), e_fc, e_dis, e_pen, e_spen (N,)       -- final energy terms
        valid (N,) bool, penetration (N,) m, q1 (N,), failure (N,) str
    file attrs: hand (spec name), joint_names (JSON list), pose_layout, config (JSON)

The writer survives crashes: a group counts only once its ``complete`` attribute is set (after every dataset
is written), the file is flushed after each group, and opening an existing file deletes incomplete groups
(units in flight at a crash). Writing a group of an existing name replaces it (a top-up).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from manipstack.envs.data.hdf5 import DatasetFileError, open_for_reading, require

log = logging.getLogger(__name__)

WHAT = "grasp dataset"
POSE_LAYOUT = "translation(3) m, rot6d(6) = rotation columns 0 and 1, joints(J) rad; object frame"
MESH_DATASETS = ("vertices", "faces")
"""Per-object mesh datasets: vertices (V, 3) float32 m, faces (F, 3) int32."""
GRASP_DATASETS = ("poses", "energy", "e_fc", "e_dis", "e_pen", "e_spen", "valid", "penetration", "q1", "failure")
"""Per-grasp datasets, each N long (``poses`` is (N, 3 + 6 + J))."""
OBJECT_ATTRS = ("kind", "ref", "scale", "seed", "split", "synth_s", "validate_s")
"""Attributes of every object group (besides ``complete``)."""
FILE_ATTRS = ("hand", "joint_names")
"""File attributes a reader needs."""
SPLITS = ("train", "test")


@dataclass
class GraspObject:
    """One object of a grasp dataset.

    Attributes:
        name: the group name (object id).
        arrays: dataset name -> array (``failure`` as str); the keys that were read.
        attrs: the group's attributes (``kind``, ``ref``, ``scale``, ``seed``, ``split``, ``synth_s``, ...).
    """

    name: str
    arrays: dict[str, np.ndarray]
    attrs: dict[str, object]

    @property
    def vertices(self) -> np.ndarray:
        """(V, 3) float32 mesh vertices in m, object frame."""
        return self.arrays["vertices"]

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int32 triangles."""
        return self.arrays["faces"]

    @property
    def poses(self) -> np.ndarray:
        """(N, 3 + 6 + J) float32 hand poses: wrist translation m, rot6d, joints rad (object frame)."""
        return self.arrays["poses"]

    @property
    def valid(self) -> np.ndarray:
        """(N,) bool physics-validation labels."""
        return self.arrays["valid"]

    @property
    def split(self) -> str:
        """'train' or 'test'."""
        return str(self.attrs["split"])


class GraspDataset:
    """Read-only view of a grasp dataset file; use as a context manager or call :meth:`close`.

    Args:
        path: the HDF5 file written by ``manipstack data grasps``.

    Raises:
        FileNotFoundError: no file at ``path``.
        DatasetFileError: not HDF5, or without the file attributes of a grasp dataset (the message names the file).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.file = open_for_reading(self.path, WHAT)
        try:
            require(self.file, self.path, WHAT, attrs=FILE_ATTRS)
            self.joint_names: list[str] = _json_list(self.file.attrs["joint_names"], self.path)
        except BaseException:
            self.file.close()
            raise

    @property
    def hand(self) -> str:
        """Name of the hand spec the grasps were made with."""
        return str(self.file.attrs["hand"])

    @property
    def attrs(self) -> dict[str, object]:
        """All file attributes (``hand``, ``joint_names``, ``pose_layout``, ``config``)."""
        return dict(self.file.attrs)

    def objects(self, split: str | None = None) -> list[str]:
        """Names of the finished objects (sorted), all or those of ``split`` ('train' or 'test')."""
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        names = [n for n in sorted(self.file) if isinstance(self.file[n], h5py.Group)
                 and self.file[n].attrs.get("complete", False)]
        if split is None:
            return names
        for name in names:
            require(self.file[name], self.path, WHAT, attrs=("split",))
        return [n for n in names if self.file[n].attrs["split"] == split]

    def read(self, name: str, keys: Sequence[str] | None = None) -> GraspObject:
        """One finished object's arrays (all datasets of the layout, or only ``keys``) and attributes.

        Raises:
            KeyError: no finished object ``name`` in the file.
            DatasetFileError: the group lacks a dataset or attribute of the layout, or its per-grasp arrays
                disagree in length (the message names the file and the group).
        """
        group = self.file.get(name)
        if not isinstance(group, h5py.Group) or not group.attrs.get("complete", False):
            raise KeyError(f"{self.path}: no finished object {name!r}")
        keys = tuple(keys) if keys is not None else (*MESH_DATASETS, *GRASP_DATASETS)
        unknown = sorted(set(keys) - set(MESH_DATASETS) - set(GRASP_DATASETS))
        if unknown:
            raise ValueError(f"unknown grasp dataset keys {unknown}; the layout has {MESH_DATASETS + GRASP_DATASETS}")
        require(group, self.path, WHAT, datasets=keys, attrs=OBJECT_ATTRS)
        arrays = {k: group[k].asstr()[()] if k == "failure" else group[k][()] for k in keys}
        lengths = {k: len(v) for k, v in arrays.items() if k in GRASP_DATASETS}
        if len(set(lengths.values())) > 1:
            raise DatasetFileError(f"{self.path}: per-grasp datasets of '{name}' differ in length: {lengths}")
        pose_dim = 9 + len(self.joint_names)
        if "poses" in arrays and (arrays["poses"].ndim != 2 or arrays["poses"].shape[1] != pose_dim):
            raise DatasetFileError(f"{self.path}: '{name}/poses' has shape {arrays['poses'].shape}, expected "
                                   f"(N, {pose_dim}) for {len(self.joint_names)} joints")
        attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in group.attrs.items()}
        return GraspObject(name, arrays, attrs)

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        if self.file.id.valid:
            self.file.close()

    def __enter__(self) -> GraspDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_list(text: object, path: Path) -> list[str]:
    try:
        value = json.loads(str(text))
    except json.JSONDecodeError as err:
        raise DatasetFileError(f"{path}: file attribute 'joint_names' is not JSON ({err})") from err
    if not isinstance(value, list):
        raise DatasetFileError(f"{path}: file attribute 'joint_names' is not a JSON list: {text!r}")
    return [str(v) for v in value]


class GraspWriter:
    """Append-only grasp dataset that survives crashes: a group counts only once marked ``complete``.

    Opening an existing file deletes incomplete groups (units in flight at a crash) and lists the finished ones.

    Args:
        path: the HDF5 file (created with its folder if missing, appended to if it exists).
        hand: name of the hand spec; an existing file must have been made with the same hand.
        joint_names: the hand's J joint names, in pose order.
        config: the producing run's configuration (stored as JSON, for provenance).
    """

    def __init__(self, path: str | os.PathLike, hand: str, joint_names: Sequence[str],
                 config: dict[str, object] | None = None) -> None:
        self.path = Path(path)
        if self.path.exists() and not h5py.is_hdf5(self.path):
            raise DatasetFileError(f"{self.path} exists and is not an HDF5 file; choose another output file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(self.path, "a")
        self.pose_dim = 9 + len(joint_names)
        try:
            made_with = self.file.attrs.get("hand")
            if made_with is not None and str(made_with) != hand:
                raise ValueError(f"{self.path} holds grasps of hand {made_with!r}, this run uses {hand!r}; "
                                 "choose another output file")
            for name in [n for n in self.file if not self.file[n].attrs.get("complete", False)]:
                log.info("removing incomplete object %s left by an interrupted run", name)
                del self.file[name]
            self.file.attrs.update({"hand": hand, "joint_names": json.dumps(list(joint_names)),
                                    "pose_layout": POSE_LAYOUT,
                                    "config": json.dumps(config or {}, default=str)})
            self.file.flush()
        except BaseException:
            self.file.close()
            raise

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
        """Write one object's group, mark it complete, flush to disk; replaces a group of the same name (a top-up).

        Args:
            unit: ``{"name": str, "arrays": {dataset: array}, "attrs": {attribute: value}}`` holding every
                dataset and attribute of the layout (``failure`` as an object array of str).
        """
        arrays, attrs = unit["arrays"], unit["attrs"]
        missing = [k for k in (*MESH_DATASETS, *GRASP_DATASETS) if k not in arrays]
        missing += [k for k in OBJECT_ATTRS if k not in attrs]
        if missing:
            raise ValueError(f"object {unit['name']!r} lacks {missing} of the grasp dataset layout")
        if arrays["poses"].ndim != 2 or arrays["poses"].shape[1] != self.pose_dim:
            raise ValueError(f"object {unit['name']!r}: poses have shape {arrays['poses'].shape}, expected "
                             f"(N, {self.pose_dim})")
        if attrs["split"] not in SPLITS:
            raise ValueError(f"object {unit['name']!r}: split must be one of {SPLITS}, got {attrs['split']!r}")
        if unit["name"] in self.file:
            del self.file[unit["name"]]
        group = self.file.create_group(unit["name"])
        for key, value in arrays.items():
            if value.dtype == object:
                group.create_dataset(key, data=value.astype(str).tolist(), dtype=h5py.string_dtype())
            else:
                group.create_dataset(key, data=value, compression="gzip", compression_opts=4, shuffle=True)
        for key, value in attrs.items():
            group.attrs[key] = value
        group.attrs["complete"] = True
        self.file.flush()

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        if self.file.id.valid:
            self.file.close()

    def __enter__(self) -> GraspWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dataset_stats(path: str | os.PathLike) -> dict[str, object]:
    """Totals of a grasp dataset: objects per split and kind, grasps, valid rate, min valid per object, and
    throughput in valid grasps per CPU-minute (each unit runs on one core; its synth + validate seconds)."""
    with GraspDataset(path) as dataset:
        objects = [dataset.read(name, keys=("valid",)) for name in dataset.objects()]
    valid = np.array([int(o.valid.sum()) for o in objects])
    grasps = np.array([len(o.valid) for o in objects])
    cpu_s = np.array([o.attrs["synth_s"] + o.attrs["validate_s"] for o in objects])
    kinds = [str(o.attrs["kind"]) for o in objects]
    splits = [o.split for o in objects]
    procedural = np.array([k.startswith("procedural/") for k in kinds], dtype=bool)
    return {
        "objects": len(objects), "objects_train": splits.count("train"), "objects_test": splits.count("test"),
        "objects_per_kind": {k: kinds.count(k) for k in sorted(set(kinds))},
        "grasps": int(grasps.sum()), "valid": int(valid.sum()),
        "valid_rate": float(valid.sum() / max(grasps.sum(), 1)),
        "min_valid_per_object": int(valid.min()) if len(valid) else 0,
        "valid_per_cpu_minute": float(valid.sum() / max(cpu_s.sum() / 60, 1e-9)),
        "valid_per_cpu_minute_procedural": float(valid[procedural].sum() / max(cpu_s[procedural].sum() / 60, 1e-9)),
        "file_mb": Path(path).stat().st_size / 2**20,
    }
