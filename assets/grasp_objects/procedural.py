"""Procedural primitive meshes for grasp synthesis: boxes, cylinders, spheres, capsules, ellipsoids.

Every shape is a watertight triangle mesh in its own frame, centred at the origin, sizes in m, drawn
from the ``numpy.random.Generator`` passed in (so the same seed gives the same object).
"""

from __future__ import annotations

import numpy as np
import trimesh

KINDS = ("box", "cylinder", "sphere", "capsule", "ellipsoid")


def make_primitive(kind: str, rng: np.random.Generator) -> tuple[trimesh.Trimesh, dict[str, float]]:
    """A random primitive of ``kind`` (one of :data:`KINDS`) and its parameters (m).

    Sizes are drawn at roughly hand scale; callers normalise the result afterwards.
    """
    if kind == "box":
        extents = rng.uniform(0.03, 0.09, size=3)
        return trimesh.creation.box(extents=extents), {"x": extents[0], "y": extents[1], "z": extents[2]}
    if kind == "cylinder":
        radius, height = rng.uniform(0.02, 0.04), rng.uniform(0.04, 0.10)
        mesh = trimesh.creation.cylinder(radius=radius, height=height, sections=32)
        return mesh, {"radius": radius, "height": height}
    if kind == "sphere":
        radius = rng.uniform(0.025, 0.045)
        return trimesh.creation.icosphere(subdivisions=3, radius=radius), {"radius": radius}
    if kind == "capsule":
        radius, height = rng.uniform(0.015, 0.03), rng.uniform(0.03, 0.07)
        return trimesh.creation.capsule(height=height, radius=radius, count=[16, 16]), {"radius": radius,
                                                                                       "height": height}
    if kind == "ellipsoid":
        axes = rng.uniform(0.02, 0.05, size=3)
        mesh = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
        mesh.apply_scale(axes)
        return mesh, {"a": axes[0], "b": axes[1], "c": axes[2]}
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
