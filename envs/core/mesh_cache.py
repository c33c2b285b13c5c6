"""Mesh files ready for PyBullet: converted to OBJ and convex-decomposed once, cached on disk.

Cache entries are keyed by the SHA-256 of the source file's bytes, so an edited mesh gets a new
entry and a renamed one reuses the old. Files are written to a temporary name and renamed, so a
crash never leaves a half-written cache entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import trimesh

from manipstack.envs.core.native_output import silenced
from manipstack.errors import InputError, MissingInputError


@dataclass(frozen=True)
class MeshFiles:
    """OBJ files for one mesh: what is drawn and what collides."""

    visual_obj: Path
    collision_obj: Path
    is_convex: bool


def default_cache_dir() -> Path:
    """``$MANIPSTACK_CACHE`` or ``~/.cache/manipstack``: where converted meshes and decompositions live."""
    return Path(os.environ.get("MANIPSTACK_CACHE", Path.home() / ".cache" / "manipstack"))


def load_trimesh(path: Path) -> trimesh.Trimesh:
    """Load a mesh file as one triangle mesh; raises an error naming the file if it is missing or broken."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"mesh file not found: {path}")
    try:
        loaded = trimesh.load(path, force="mesh")
    except Exception as err:  # trimesh raises many types for bad files
        raise InputError(f"could not read mesh file {path}: {err}") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InputError(f"mesh file {path} holds no triangles")
    return loaded


def _atomic_write(target: Path, write) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp{target.suffix}")
    write(tmp)
    os.replace(tmp, target)


def cache_trimesh(mesh: trimesh.Trimesh, folder: Path) -> Path:
    """Write a mesh made in code as ``folder/<content hash>.obj`` (once, atomically); returns the path."""
    data = mesh.export(file_type="obj")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data.encode()).hexdigest()[:20]}.obj"
    if not path.is_file():
        _atomic_write(path, lambda tmp: tmp.write_text(data))
    return path


def prepare_mesh(path: Path, cache_dir: Path, decompose: bool, client) -> MeshFiles:
    """Convert ``path`` to cached OBJ files, running V-HACD for concave meshes when ``decompose``; a mesh converted
    before is not loaded again (its convexity is cached beside it).

    Args:
        path: source mesh (.obj, .stl, .ply, .off, .glb ...).
        cache_dir: cache root folder; created if needed.
        decompose: run convex decomposition on a concave mesh (else the collision shape is its hull).
        client: a BulletClient, whose ``vhacd`` does the decomposition.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"mesh file not found: {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:20]
    entry = Path(cache_dir) / "meshes" / digest
    entry.mkdir(parents=True, exist_ok=True)
    visual, properties = entry / "visual.obj", entry / "properties.json"
    if visual.is_file() and properties.is_file():  # converted before: no need to load the mesh again
        convex = bool(json.loads(properties.read_text())["is_convex"])
    else:
        mesh = load_trimesh(path)
        convex = bool(mesh.is_convex)
        if not visual.is_file():
            _atomic_write(visual, lambda tmp: mesh.export(tmp, file_type="obj"))
        _atomic_write(properties, lambda tmp: tmp.write_text(json.dumps({"is_convex": convex})))
    if convex or not decompose:
        return MeshFiles(visual, visual, convex)
    collision = entry / "vhacd.obj"
    if not collision.is_file():
        log_file = entry / "vhacd.log"
        with silenced():  # V-HACD prints its parameters and progress; the log file keeps them
            _atomic_write(collision, lambda tmp: client.vhacd(str(visual), str(tmp), str(log_file), resolution=100000))
    return MeshFiles(visual, collision, convex)
