"""Bodies made of convex parts, written once as OBJ files that PyBullet loads without a convex decomposition.

A body is a list of convex parts, each given by its corner points (K, 3) in m (the part is their convex hull).
It is written under a cache folder keyed by a hash of its parts as ``visual.obj`` (all parts, drawn) and
``collision.obj`` (one ``o`` object per part, which PyBullet loads as a compound of hulls), so concave shapes (an
arch, an L, a torus) keep their exact shape and need no V-HACD. Helpers build the usual parts: extruded convex
polygons, boxes, circle arcs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh


@dataclass(frozen=True)
class PartFiles:
    """OBJ files of a body made of convex parts, and its bounding-box size (3,) in m."""

    visual_obj: Path
    collision_obj: Path
    size: np.ndarray


def prism(polygon_uv: np.ndarray, length: float, axes: str = "xyz") -> np.ndarray:
    """Corner points (2K, 3) of a convex polygon (K, 2) in m extruded by ``length`` m, centred.

    ``axes`` names the world axes of (u, v, extrusion), e.g. ``"xzy"``: polygon in x-z, extruded along y.
    """
    polygon_uv = np.asarray(polygon_uv, dtype=float)
    k = len(polygon_uv)
    points = np.zeros((2 * k, 3))
    index = {"x": 0, "y": 1, "z": 2}
    u, v, w = (index[a] for a in axes)
    for half, sign in ((slice(0, k), -0.5), (slice(k, 2 * k), 0.5)):
        points[half, u] = polygon_uv[:, 0]
        points[half, v] = polygon_uv[:, 1]
        points[half, w] = sign * length
    return points


def box(lo: Sequence[float], hi: Sequence[float]) -> np.ndarray:
    """Corner points (8, 3) of an axis-aligned box from its min and max corners in m."""
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def circle(radius: float, start: float, stop: float, num: int) -> np.ndarray:
    """Points (num, 2) on a circle arc of ``radius`` m from angle ``start`` to ``stop`` rad."""
    angles = np.linspace(start, stop, num)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _write_obj(path: Path, hulls: list[trimesh.Trimesh]) -> None:
    """Write hulls to an OBJ file, one ``o`` object each, atomically."""
    lines, offset = [], 1
    for i, hull in enumerate(hulls):
        lines.append(f"o part{i}")
        lines.extend(f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in hull.vertices)
        lines.extend(f"f {a + offset} {b + offset} {c + offset}" for a, b, c in hull.faces)
        offset += len(hull.vertices)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def part_files(parts: Sequence[np.ndarray], folder: str | os.PathLike, name: str,
               size: np.ndarray | None = None) -> PartFiles:
    """Write (once) the OBJ files of a body made of ``parts`` under ``folder/<name>-<hash of the parts>/``.

    ``size`` is the body's nominal bounding-box size (3,) in m (default: the parts' bounding box).
    """
    hulls = [trimesh.convex.convex_hull(np.asarray(p, dtype=float)) for p in parts]
    digest = hashlib.sha256(repr([np.round(p, 6).tolist() for p in parts]).encode()).hexdigest()[:16]
    entry = Path(folder) / f"{name}-{digest}"
    entry.mkdir(parents=True, exist_ok=True)
    visual, collision = entry / "visual.obj", entry / "collision.obj"
    if not visual.is_file():
        _write_obj(visual, [trimesh.util.concatenate(hulls)])
    if not collision.is_file():
        _write_obj(collision, hulls)
    if size is None:
        points = np.concatenate([np.asarray(p, dtype=float) for p in parts])
        size = points.max(0) - points.min(0)
    return PartFiles(visual, collision, np.asarray(size, dtype=float))
