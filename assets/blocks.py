"""Procedural toy blocks for push-grasp scenes (VPG's wooden-block set, rebuilt from convex parts).

Each block is a union of convex parts, each a convex polygon extruded along one axis. A block is
written once as two OBJ files under a cache folder: ``visual.obj`` (all parts, drawn) and
``collision.obj`` (one ``o`` object per convex part, which PyBullet loads as a compound of hulls,
so concave shapes such as the arch need no convex decomposition). Meshes are centred on their
bounding box, z-up, in m; a block of another ``size`` is the nominal one scaled per axis.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from manipstack.errors import InputError

# VPG's block colours (RGB in [0, 1]): blue, green, brown, orange, yellow, gray, red, purple, cyan, pink.
PALETTE: tuple[tuple[float, float, float], ...] = (
    (78 / 255, 121 / 255, 167 / 255), (89 / 255, 161 / 255, 79 / 255), (156 / 255, 117 / 255, 95 / 255),
    (242 / 255, 142 / 255, 43 / 255), (237 / 255, 201 / 255, 72 / 255), (186 / 255, 176 / 255, 172 / 255),
    (255 / 255, 87 / 255, 87 / 255), (176 / 255, 122 / 255, 161 / 255), (118 / 255, 183 / 255, 178 / 255),
    (255 / 255, 157 / 255, 167 / 255),
)


def _prism(polygon_uv: np.ndarray, length: float, axes: str) -> np.ndarray:
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


def _box(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> np.ndarray:
    """Corner points (8, 3) of an axis-aligned box from its min and max corners in m."""
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def _circle(radius: float, start: float, stop: float, num: int) -> np.ndarray:
    """Points (num, 2) on a circle arc of ``radius`` m from angle ``start`` to ``stop`` rad."""
    angles = np.linspace(start, stop, num)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _arch_parts(size: np.ndarray, radius: float, slices: int = 6) -> list[np.ndarray]:
    """A block (x, y, z extents) with a half-disc tunnel of ``radius`` m along y in its bottom face."""
    sx, sy, sz = size
    parts = [_box((-sx / 2, -sy / 2, -sz / 2), (-radius, sy / 2, sz / 2)),
             _box((radius, -sy / 2, -sz / 2), (sx / 2, sy / 2, sz / 2))]
    xs = np.linspace(-radius, radius, slices + 1)
    for x_lo, x_hi in zip(xs[:-1], xs[1:]):
        z_lo = [-sz / 2 + np.sqrt(max(radius**2 - x**2, 0.0)) for x in (x_lo, x_hi)]
        quad = np.array([[x_lo, z_lo[0]], [x_hi, z_lo[1]], [x_hi, sz / 2], [x_lo, sz / 2]])
        parts.append(_prism(quad, sy, "xzy"))
    return parts


def _block_parts(shape: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Nominal size (3,) in m and convex parts (each (K, 3) points in m) of a catalogue block."""
    if shape == "cube":
        size = np.array([0.04, 0.04, 0.04])
        return size, [_box(-size / 2, size / 2)]
    if shape == "rect_prism":
        size = np.array([0.08, 0.03, 0.03])
        return size, [_box(-size / 2, size / 2)]
    if shape == "slab":
        size = np.array([0.06, 0.04, 0.02])
        return size, [_box(-size / 2, size / 2)]
    if shape == "cylinder":
        size = np.array([0.04, 0.04, 0.04])
        return size, [_prism(_circle(0.02, 0, 2 * np.pi, 24)[:-1], 0.04, "xyz")]
    if shape == "half_cylinder":
        size = np.array([0.04, 0.06, 0.02])  # flat face down, axis along y
        arc = _circle(0.02, 0, np.pi, 13) - [0.0, 0.01]
        return size, [_prism(arc, 0.06, "xzy")]
    if shape == "triangle_prism":
        size = np.array([0.04, 0.05, 0.035])
        tri = np.array([[-0.02, -0.0175], [0.02, -0.0175], [0.0, 0.0175]])
        return size, [_prism(tri, 0.05, "xzy")]
    if shape == "arch":
        size = np.array([0.07, 0.03, 0.04])
        return size, _arch_parts(size, 0.018)
    if shape == "bridge":
        size = np.array([0.07, 0.03, 0.035])
        sx, sy, sz = size
        return size, [_box((-sx / 2, -sy / 2, -sz / 2), (-0.015, sy / 2, sz / 2)),
                      _box((0.015, -sy / 2, -sz / 2), (sx / 2, sy / 2, sz / 2)),
                      _box((-0.015, -sy / 2, sz / 2 - 0.013), (0.015, sy / 2, sz / 2))]
    raise InputError(f"unknown block shape {shape!r}; choose one of {BLOCK_SHAPES}")


BLOCK_SHAPES: tuple[str, ...] = (
    "cube", "rect_prism", "slab", "cylinder", "half_cylinder", "triangle_prism", "arch", "bridge",
)


@dataclass(frozen=True)
class BlockFiles:
    """OBJ files of one catalogue block and its nominal bounding-box size (3,) in m."""

    visual_obj: Path
    collision_obj: Path
    size: np.ndarray


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


def block_files(shape: str, cache_dir: str | os.PathLike) -> BlockFiles:
    """Build (once) and return the OBJ files of a catalogue block under ``cache_dir/blocks/``."""
    size, parts = _block_parts(shape)
    hulls = [trimesh.convex.convex_hull(p) for p in parts]
    digest = hashlib.sha256(repr([np.round(p, 6).tolist() for p in parts]).encode()).hexdigest()[:16]
    folder = Path(cache_dir) / "blocks" / f"{shape}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    visual, collision = folder / "visual.obj", folder / "collision.obj"
    if not visual.is_file():
        _write_obj(visual, [trimesh.util.concatenate(hulls)])
    if not collision.is_file():
        _write_obj(collision, hulls)
    return BlockFiles(visual, collision, size)
