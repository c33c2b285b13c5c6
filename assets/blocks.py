"""Procedural toy blocks for push-grasp scenes (VPG's wooden-block set, rebuilt from convex parts).

Each block is a union of convex parts, each a convex polygon extruded along one axis, written once as OBJ files
(:mod:`manipstack.assets.convex_parts`: a compound of hulls, so concave shapes such as the arch need no convex
decomposition). Meshes are centred on their bounding box, z-up, in m; a block of another ``size`` is the nominal
one scaled per axis.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from manipstack.assets.convex_parts import PartFiles, box, circle, part_files, prism
from manipstack.errors import InputError

# VPG's block colours (RGB in [0, 1]): blue, green, brown, orange, yellow, gray, red, purple, cyan, pink.
PALETTE: tuple[tuple[float, float, float], ...] = (
    (78 / 255, 121 / 255, 167 / 255), (89 / 255, 161 / 255, 79 / 255), (156 / 255, 117 / 255, 95 / 255),
    (242 / 255, 142 / 255, 43 / 255), (237 / 255, 201 / 255, 72 / 255), (186 / 255, 176 / 255, 172 / 255),
    (255 / 255, 87 / 255, 87 / 255), (176 / 255, 122 / 255, 161 / 255), (118 / 255, 183 / 255, 178 / 255),
    (255 / 255, 157 / 255, 167 / 255),
)


def _arch_parts(size: np.ndarray, radius: float, slices: int = 6) -> list[np.ndarray]:
    """A block (x, y, z extents) with a half-disc tunnel of ``radius`` m along y in its bottom face."""
    sx, sy, sz = size
    parts = [box((-sx / 2, -sy / 2, -sz / 2), (-radius, sy / 2, sz / 2)),
             box((radius, -sy / 2, -sz / 2), (sx / 2, sy / 2, sz / 2))]
    xs = np.linspace(-radius, radius, slices + 1)
    for x_lo, x_hi in zip(xs[:-1], xs[1:]):
        z_lo = [-sz / 2 + np.sqrt(max(radius**2 - x**2, 0.0)) for x in (x_lo, x_hi)]
        quad = np.array([[x_lo, z_lo[0]], [x_hi, z_lo[1]], [x_hi, sz / 2], [x_lo, sz / 2]])
        parts.append(prism(quad, sy, "xzy"))
    return parts


def _block_parts(shape: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Nominal size (3,) in m and convex parts (each (K, 3) points in m) of a catalogue block."""
    if shape == "cube":
        size = np.array([0.04, 0.04, 0.04])
        return size, [box(-size / 2, size / 2)]
    if shape == "rect_prism":
        size = np.array([0.08, 0.03, 0.03])
        return size, [box(-size / 2, size / 2)]
    if shape == "slab":
        size = np.array([0.06, 0.04, 0.02])
        return size, [box(-size / 2, size / 2)]
    if shape == "cylinder":
        size = np.array([0.04, 0.04, 0.04])
        return size, [prism(circle(0.02, 0, 2 * np.pi, 24)[:-1], 0.04, "xyz")]
    if shape == "half_cylinder":
        size = np.array([0.04, 0.06, 0.02])  # flat face down, axis along y
        arc = circle(0.02, 0, np.pi, 13) - [0.0, 0.01]
        return size, [prism(arc, 0.06, "xzy")]
    if shape == "triangle_prism":
        size = np.array([0.04, 0.05, 0.035])
        tri = np.array([[-0.02, -0.0175], [0.02, -0.0175], [0.0, 0.0175]])
        return size, [prism(tri, 0.05, "xzy")]
    if shape == "arch":
        size = np.array([0.07, 0.03, 0.04])
        return size, _arch_parts(size, 0.018)
    if shape == "bridge":
        size = np.array([0.07, 0.03, 0.035])
        sx, sy, sz = size
        return size, [box((-sx / 2, -sy / 2, -sz / 2), (-0.015, sy / 2, sz / 2)),
                      box((0.015, -sy / 2, -sz / 2), (sx / 2, sy / 2, sz / 2)),
                      box((-0.015, -sy / 2, sz / 2 - 0.013), (0.015, sy / 2, sz / 2))]
    raise InputError(f"unknown block shape {shape!r}; choose one of {BLOCK_SHAPES}")


BLOCK_SHAPES: tuple[str, ...] = (
    "cube", "rect_prism", "slab", "cylinder", "half_cylinder", "triangle_prism", "arch", "bridge",
)


def block_files(shape: str, cache_dir: str | os.PathLike) -> PartFiles:
    """Build (once) and return the OBJ files of a catalogue block under ``cache_dir/blocks/``."""
    size, parts = _block_parts(shape)
    return part_files(parts, Path(cache_dir) / "blocks", shape, size)
