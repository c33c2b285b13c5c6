"""Procedural object families for push-grasp scenes beyond VPG's toy blocks: random 2-10 cm shapes.

Every family draws a new random shape per call from the generator passed in (same seed, same shapes):

- ``blocks``: VPG's eight toy blocks (:mod:`manipstack.assets.blocks`) at their nominal sizes;
- ``polygons``: extruded random polygons, half of them convex, half the union of two overlapping convex ones;
- ``lshapes``: L-shaped prisms (two boxes);
- ``tori``: rings with an octagonal cross-section (tube segments);
- ``random_urdfs``: meshes of pybullet_data's ``random_urdfs`` blobs (concave; decomposed once with V-HACD),
  scaled to 2-10 cm;
- ``stars``: star prisms with 5-8 points (the *held-out* family: never used in training by default).

Part-based shapes are written as a folder holding ``visual.obj`` and ``collision.obj`` (a compound of convex
hulls, :mod:`manipstack.assets.convex_parts`), which scenes load as they are (no decomposition). Sizes in m, z-up,
centred on the bounding box; the largest extent is drawn uniformly from ``EXTENT_RANGE``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.spatial import ConvexHull

from manipstack.assets.blocks import BLOCK_SHAPES, block_files
from manipstack.assets.convex_parts import box, part_files, prism
from manipstack.errors import InputError

EXTENT_RANGE = (0.02, 0.10)
"""Range in m of a drawn shape's largest extent."""

TRAIN_FAMILIES = ("blocks", "polygons", "lshapes", "tori", "random_urdfs")
"""The families a diverse training set draws from."""

HELD_OUT_FAMILIES = ("stars",)
"""Families kept out of training, for testing generalisation to new shapes."""

RANDOM_URDF_POOL = 24
"""How many of pybullet_data's 1000 random_urdfs blobs the family uses (a fixed, seeded choice), so their convex
decompositions are computed once and cached."""

Shape = tuple[str, tuple[float, float, float]]
"""A scene shape (a block name, a convex-parts folder or a mesh path) and its size (3,) in m."""


def _height(rng: np.random.Generator, extent: float) -> float:
    return float(rng.uniform(0.015, min(0.05, max(0.016, extent))))


def _convex_polygon(rng: np.random.Generator, radius: float, center: np.ndarray) -> np.ndarray:
    """A random convex polygon (K, 2): the hull of 6-10 points in a disc of ``radius`` m around ``center``."""
    angles = rng.uniform(0, 2 * np.pi, size=int(rng.integers(6, 11)))
    radii = radius * np.sqrt(rng.uniform(0.3, 1.0, size=len(angles)))
    points = center + np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    return points[ConvexHull(points).vertices]


def _polygon_parts(rng: np.random.Generator, extent: float) -> list[np.ndarray]:
    height = _height(rng, extent)
    if rng.random() < 0.5:
        return [prism(_convex_polygon(rng, extent / 2, np.zeros(2)), height)]
    offset = rng.uniform(0.25, 0.45) * extent * np.array([np.cos(a := rng.uniform(0, np.pi)), np.sin(a)])
    return [prism(_convex_polygon(rng, extent / 3, offset), height),
            prism(_convex_polygon(rng, extent / 3, -offset), height)]


def _lshape_parts(rng: np.random.Generator, extent: float) -> list[np.ndarray]:
    width = float(rng.uniform(0.012, max(0.013, 0.3 * extent)))
    other = float(rng.uniform(max(1.5 * width, 0.4 * extent), extent))
    height = _height(rng, extent)
    return [box((0.0, 0.0, 0.0), (extent, width, height)), box((0.0, width, 0.0), (width, other, height))]


def _torus_parts(rng: np.random.Generator, extent: float, segments: int = 12) -> list[np.ndarray]:
    tube = float(rng.uniform(0.12, 0.25)) * extent  # tube radius, m
    major = extent / 2 - tube
    section = np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], axis=1) * tube
    parts = []
    for k in range(segments):
        points = []
        for angle in (2 * np.pi * k / segments, 2 * np.pi * (k + 1) / segments):
            direction = np.array([np.cos(angle), np.sin(angle)])
            for radial, z in section:
                points.append([*((major + radial) * direction), z])
        parts.append(np.array(points))
    return parts


def _star_parts(rng: np.random.Generator, extent: float) -> list[np.ndarray]:
    points = int(rng.integers(5, 9))
    outer, inner = extent / 2, float(rng.uniform(0.35, 0.55)) * extent / 2
    height = _height(rng, extent)
    angles = np.arange(points) * 2 * np.pi / points
    core = np.stack([inner * np.cos(angles + np.pi / points), inner * np.sin(angles + np.pi / points)], axis=1)
    parts = [prism(core, height)]
    for k, angle in enumerate(angles):
        tip = outer * np.array([np.cos(angle), np.sin(angle)])
        parts.append(prism(np.array([core[k - 1], tip, core[k]]), height))
    return parts


_PART_FAMILIES: dict[str, Callable[[np.random.Generator, float], list[np.ndarray]]] = {
    "polygons": _polygon_parts, "lshapes": _lshape_parts, "tori": _torus_parts, "stars": _star_parts,
}


def _centred(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Parts moved so that their common bounding box is centred on the origin (the body's base frame)."""
    points = np.concatenate(parts)
    center = (points.min(0) + points.max(0)) / 2
    return [part - center for part in parts]


def random_urdf_pool(data_path: str | os.PathLike, seed: int = 0) -> list[Path]:
    """The fixed choice of :data:`RANDOM_URDF_POOL` random_urdfs meshes (``<data_path>/random_urdfs/NNN/NNN.obj``)."""
    indices = sorted(np.random.default_rng(seed).choice(1000, size=RANDOM_URDF_POOL, replace=False).tolist())
    return [Path(data_path) / "random_urdfs" / f"{i:03d}" / f"{i:03d}.obj" for i in indices]


def random_shape(family: str, rng: np.random.Generator, cache_dir: str | os.PathLike,
                 mesh_extents: Callable[[Path], np.ndarray], urdf_pool: list[Path]) -> Shape:
    """Draw one shape of ``family`` from ``rng``.

    Args:
        family: one of :data:`TRAIN_FAMILIES` or :data:`HELD_OUT_FAMILIES`.
        rng: random generator.
        cache_dir: where part-based shapes are written.
        mesh_extents: extents (3,) in m of a mesh file (for scaling ``random_urdfs`` meshes).
        urdf_pool: the ``random_urdfs`` meshes to draw from (:func:`random_urdf_pool`).
    """
    if family == "blocks":
        name = BLOCK_SHAPES[int(rng.integers(len(BLOCK_SHAPES)))]
        return name, tuple(float(s) for s in block_files(name, cache_dir).size)
    extent = float(rng.uniform(*EXTENT_RANGE))
    if family == "random_urdfs":
        mesh = urdf_pool[int(rng.integers(len(urdf_pool)))]
        extents = np.asarray(mesh_extents(mesh), dtype=float)
        return str(mesh), tuple(float(e) for e in extents * extent / extents.max())
    if family not in _PART_FAMILIES:
        raise InputError(f"unknown object family {family!r}; choose from {(*TRAIN_FAMILIES, *HELD_OUT_FAMILIES)}")
    files = part_files(_centred(_PART_FAMILIES[family](rng, extent)), Path(cache_dir) / "vpg_objects", family)
    return str(files.visual_obj.parent), tuple(float(s) for s in files.size)
