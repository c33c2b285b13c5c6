"""Scenes: object specs, scene JSON files, and adding, settling and removing objects in a world.

A scene is a list of :class:`ObjectSpec`. Positions are in m in a *scene frame* whose origin is a point on the
table chosen by the task (for VPG the workspace centre); z = 0 is the table top, z-up, quaternions (x, y, z, w).
An object's ``shape`` is a procedural toy block (:data:`manipstack.assets.blocks.BLOCK_SHAPES`), a PyBullet
primitive (``"primitive:box"``, ``"primitive:cylinder"`` or ``"primitive:sphere"``, sized by the spec), a
convex-parts folder (``visual.obj`` + ``collision.obj``, see :mod:`manipstack.assets.convex_parts`), a mesh file
(.obj, .stl, .ply, .off, .glb; scaled to the spec's ``size``) or a URDF (loaded at its own scale).

Scene files are JSON ``{"objects": [{"shape", "size", "color", "position", "orientation"?}, ...]}``; relative
file paths are resolved against the scene file's folder. Every problem in a file is reported with the file, the
object's index and the key, and keys the format does not know are refused (a typo such as ``"orientaton"`` is
not silently ignored).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manipstack.assets.blocks import BLOCK_SHAPES, block_files
from manipstack.envs.core.mesh_cache import load_trimesh
from manipstack.errors import InputError, MissingInputError

MESH_SUFFIXES = (".obj", ".stl", ".ply", ".off", ".glb")
"""Mesh file types an object can be made from."""

PRIMITIVE_SHAPES = ("primitive:box", "primitive:cylinder", "primitive:sphere")
"""Shapes built from PyBullet's own primitives (``size``: box extents; cylinder diameter, diameter, height along z;
sphere diameter, repeated)."""

OBJECT_KEYS = ("shape", "size", "color", "position", "orientation")
"""Keys of one object in a scene file (``orientation`` optional)."""


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a scene.

    ``shape`` is a block name from :data:`~manipstack.assets.blocks.BLOCK_SHAPES` or a mesh/URDF path; ``size`` the
    bounding-box extents (3,) in m (a mesh is scaled to fit; ignored for URDF); ``color`` RGB in [0, 1];
    ``position`` (3,) in m in the scene frame (z = 0 is the table top); ``orientation`` quaternion (x, y, z, w).
    """

    shape: str
    size: tuple[float, float, float]
    color: tuple[float, float, float]
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class ObjectPhysics:
    """Contact and mass properties given to every object a task adds (SI units)."""

    mass: float = 0.2
    """Mass in kg (URDF objects keep their own)."""
    friction: float = 0.5
    """Lateral friction coefficient (PyBullet multiplies it with the other body's)."""
    spinning_friction: float = 0.001
    """Torsional friction coefficient about the contact normal."""
    rolling_friction: float = 0.0005
    """Rolling friction coefficient."""


def _vector(entry: dict, key: str, length: int, where: str) -> tuple[float, ...]:
    value = entry.get(key)
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        array = np.zeros(0)
    if array.shape != (length,) or not np.all(np.isfinite(array)):
        raise InputError(f"{where}: {key!r} must be {length} finite numbers, got {value!r}")
    return tuple(float(v) for v in array)


def _object_spec(entry: object, where: str, folder: Path) -> ObjectSpec:
    """One scene-file object entry as a spec; raises :class:`InputError` naming ``where`` and the key."""
    if not isinstance(entry, dict):
        raise InputError(f"{where}: an object must be a JSON object with keys {list(OBJECT_KEYS)}, got {entry!r}")
    unknown = sorted(set(entry) - set(OBJECT_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known keys: {list(OBJECT_KEYS)})")
    shape = entry.get("shape")
    if not isinstance(shape, str):
        raise InputError(f"{where}: needs a 'shape' (block name or mesh/URDF path)")
    if shape not in BLOCK_SHAPES and shape not in PRIMITIVE_SHAPES:
        path = Path(shape) if Path(shape).is_absolute() else folder / shape
        if not (path.is_file() or is_parts_folder(path)):
            raise InputError(f"{where}: shape {shape!r} is neither a block {BLOCK_SHAPES}, a primitive "
                             f"{PRIMITIVE_SHAPES} nor a file")
        shape = str(path)
    size = _vector(entry, "size", 3, where)
    if min(size) <= 0:
        raise InputError(f"{where}: 'size' must be positive extents in m, got {size}")
    orientation = _vector(entry, "orientation", 4, where) if "orientation" in entry else (0.0, 0.0, 0.0, 1.0)
    norm = float(np.linalg.norm(orientation))
    if not 0.5 < norm < 1.5:
        raise InputError(f"{where}: 'orientation' must be a unit quaternion (x, y, z, w), got {orientation}")
    return ObjectSpec(shape, size, _vector(entry, "color", 3, where), _vector(entry, "position", 3, where),
                      tuple(float(q) / norm for q in orientation))


def load_scene(path: str | os.PathLike) -> list[ObjectSpec]:
    """Read a scene file (see module docstring); raises :class:`InputError` naming file, object index and key."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"scene file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list) or not data["objects"]:
        raise InputError(f"{path}: expected {{'objects': [...]}} with at least one object")
    unknown = sorted(set(data) - {"objects"})
    if unknown:
        raise InputError(f"{path}: unknown top-level key {unknown[0]!r} (a scene file holds only 'objects')")
    return [_object_spec(entry, f"{path} object {i}", path.parent) for i, entry in enumerate(data["objects"])]


def save_scene(path: str | os.PathLike, objects: Sequence[ObjectSpec]) -> None:
    """Write objects as a scene file (the inverse of :func:`load_scene`)."""
    entries = [{"shape": o.shape, "size": list(o.size), "color": list(o.color), "position": list(o.position),
                "orientation": list(o.orientation)} for o in objects]
    Path(path).write_text(json.dumps({"objects": entries}, indent=1) + "\n")


def is_parts_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a convex-parts body: a folder holding ``visual.obj`` and ``collision.obj``."""
    path = Path(path)
    return path.is_dir() and (path / "visual.obj").is_file() and (path / "collision.obj").is_file()


def object_files(folder: str | os.PathLike) -> list[Path]:
    """The mesh and URDF files in a folder (sorted), for scenes of novel objects; raises if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"objects folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (*MESH_SUFFIXES, ".urdf"))
    if not files:
        raise InputError(f"objects folder {folder} holds no mesh or URDF files ({', '.join(MESH_SUFFIXES)}, .urdf)")
    return files


def mesh_size(path: str | os.PathLike, max_extent: float) -> tuple[float, float, float]:
    """Extents (3,) in m of a mesh file scaled so that its largest extent is ``max_extent`` m (URDFs: 5 cm cube)."""
    if str(path).endswith(".urdf"):
        return (0.05, 0.05, 0.05)
    extents = load_trimesh(Path(path)).extents
    scale = max_extent / float(np.max(extents))
    return tuple(float(e * scale) for e in extents)


def block_size(shape: str, cache_dir: Path) -> tuple[float, float, float]:
    """Nominal extents (3,) in m of a procedural toy block."""
    return tuple(float(s) for s in block_files(shape, cache_dir).size)


def add_object(world, name: str, spec: ObjectSpec, origin: Sequence[float], physics: ObjectPhysics) -> None:
    """Add ``spec`` to ``world`` as body ``name``, its position taken relative to ``origin`` (3,) m, world frame.

    The body is allowed to fall asleep once at rest (it then costs almost nothing to simulate until touched).
    ``world`` is a :class:`~manipstack.envs.core.world.World` or a digital twin's remote world.
    """
    position = tuple(float(p + o) for p, o in zip(spec.position, origin))
    rgba = (*spec.color, 1.0)
    if spec.shape in BLOCK_SHAPES:
        files = block_files(spec.shape, world.cache_dir)
        scale = np.asarray(spec.size) / files.size
        world.add_mesh(name, files.visual_obj, position, spec.orientation, scale=scale.tolist(), mass=physics.mass,
                       friction=physics.friction, color=rgba, collision_path=files.collision_obj)
    elif is_parts_folder(spec.shape):
        visual, collision = Path(spec.shape) / "visual.obj", Path(spec.shape) / "collision.obj"
        scale = np.asarray(spec.size) / np.maximum(load_trimesh(visual).extents, 1e-9)
        world.add_mesh(name, visual, position, spec.orientation, scale=scale.tolist(), mass=physics.mass,
                       friction=physics.friction, color=rgba, collision_path=collision)
    elif spec.shape in PRIMITIVE_SHAPES:
        world.add_primitive(name, spec.shape.split(":")[1], spec.size, position, spec.orientation, mass=physics.mass,
                            friction=physics.friction, color=rgba)
    elif spec.shape.endswith(".urdf"):
        world.add_urdf(name, spec.shape, position, spec.orientation)
    else:
        mesh = load_trimesh(Path(spec.shape))
        scale = np.asarray(spec.size) / np.maximum(mesh.extents, 1e-9)
        world.add_mesh(name, spec.shape, position, spec.orientation, scale=scale.tolist(), mass=physics.mass,
                       friction=physics.friction, color=rgba)
    world.set_dynamics(name, spinningFriction=physics.spinning_friction, rollingFriction=physics.rolling_friction)
    world.enable_sleeping(name)


def add_objects(world, specs: Sequence[ObjectSpec], origin: Sequence[float], physics: ObjectPhysics,
                prefix: str = "object") -> list[str]:
    """Add every spec as body ``<prefix>_<i>`` (see :func:`add_object`); returns the names in order."""
    names = [f"{prefix}_{i}" for i in range(len(specs))]
    for name, spec in zip(names, specs):
        add_object(world, name, spec, origin, physics)
    return names


def remove_outside(world, names: list[str], bounds_xy: np.ndarray, margin: float = 0.0, min_z: float = -0.05
                   ) -> list[str]:
    """Remove the bodies among ``names`` whose base lies outside the box ``bounds_xy`` ``[[x0, x1], [y0, y1]]`` (m,
    world frame) shrunk by ``margin`` m, or below ``min_z`` m (fallen off the table); returns the removed names
    (and removes them from ``names``)."""
    (x0, x1), (y0, y1) = np.asarray(bounds_xy, dtype=float)[:2]
    removed = []
    for name in list(names):
        x, y, z = world.body_pose(name)[0]
        if not (x0 + margin <= x <= x1 - margin and y0 + margin <= y <= y1 - margin) or z < min_z:
            world.remove_body(name)
            names.remove(name)
            removed.append(name)
    return removed
