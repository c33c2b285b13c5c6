"""Procedural instances of the six NOCS categories (bottle, bowl, camera, can, laptop, mug) and their textures.

Every instance is built in NOCS's canonical object frame: **y up**, the tight bounding box centred at the origin,
metres. Bottle, bowl and can are surfaces of revolution about y (symmetric about y); the mug's handle points toward
**+x**; the camera's lens points toward +z; the laptop's hinge lies at -z with the screen rising behind the base,
the keyboard facing +y. Shapes are unions of convex parts (frusta, boxes, wall segments), so each instance is
written as two OBJ files like the toy blocks: ``visual.obj`` (all parts, with texture coordinates) and
``collision.obj`` (one ``o`` object per convex part, which PyBullet loads as a compound of hulls: the inside of a
bowl or a mug stays empty without a convex decomposition).

Instances are drawn from a seeded generator: instance ``index`` of ``split`` ('train' or 'test') of a category is
always the same shape, and the train and test sets never share a seed (the held-out set is disjoint). Proportions,
sizes and part layouts are random within the ranges below; colours and textures are chosen per scene by the scene
generator (:func:`texture_image`), not here. No torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from manipstack.errors import InputError

CATEGORIES: tuple[str, ...] = ("bottle", "bowl", "camera", "can", "laptop", "mug")
"""NOCS's six categories in NOCS's order; the class id of ``CATEGORIES[i]`` is ``i + 1`` (0 is background)."""
SYMMETRIC: tuple[str, ...] = ("bottle", "bowl", "can")
"""Categories symmetric about their y axis (the mug too when its handle is not visible)."""
SPLITS: tuple[str, ...] = ("train", "test")
GENERATOR_VERSION = 1
"""Bumped whenever a shape rule changes (it is part of every cache key and dataset's attributes)."""
TEXTURE_STYLES: tuple[str, ...] = ("plain", "band", "stripes", "checker", "speckle", "gradient", "dots", "diagonal")
"""Texture patterns :func:`texture_image` draws; scene domains choose among them."""

_SIDES = 24  # polygon sides of a surface of revolution


def class_id(category: str) -> int:
    """NOCS class id (1..6) of a category name."""
    if category not in CATEGORIES:
        raise InputError(f"unknown category {category!r}; choose one of {CATEGORIES}")
    return CATEGORIES.index(category) + 1


@dataclass
class CategoryInstance:
    """One procedural instance in its canonical frame (y up, bounding box centred at the origin, m).

    Attributes:
        category: one of :data:`CATEGORIES`.
        split: 'train' or 'test'.
        index: instance number within its category and split.
        parts: convex parts, each a point set (K, 3) in m whose hull is the part.
        extents: tight bounding-box extents (3,) in m along x, y, z.
        handle_points: mugs only: points (H, 3) in m on the handle's surface (to test its visibility), else None.
        params: the drawn shape parameters (m, rad), for provenance.
    """

    category: str
    split: str
    index: int
    parts: list[np.ndarray]
    extents: np.ndarray
    handle_points: np.ndarray | None
    params: dict[str, float]


# ---------------------------------------------------------------------------------------------------- part helpers
def _ring(radius: float, y: float, sides: int = _SIDES, start: float = 0.0, stop: float = 2 * np.pi) -> np.ndarray:
    """Points (sides, 3) on a horizontal circle (x-z plane) of ``radius`` m at height ``y`` m."""
    angles = np.linspace(start, stop, sides, endpoint=stop - start < 2 * np.pi - 1e-9)
    return np.stack([radius * np.cos(angles), np.full(sides, y), radius * np.sin(angles)], axis=1)


def _frusta(profile: np.ndarray) -> list[np.ndarray]:
    """Solid surface of revolution about y from a profile (P, 2) of (radius, height) in m: one frustum per segment."""
    return [np.concatenate([_ring(max(r0, 1e-4), y0), _ring(max(r1, 1e-4), y1)])
            for (r0, y0), (r1, y1) in zip(profile[:-1], profile[1:])]


def _shell(inner: np.ndarray, thickness: float, sectors: int) -> list[np.ndarray]:
    """Thin wall of revolution about y: for each segment of the inner profile (P, 2) (radius, height) and each of
    ``sectors`` angular sectors, the hull of the inner surface patch and the patch offset outward by ``thickness``."""
    parts = []
    angles = np.linspace(0.0, 2 * np.pi, sectors + 1)
    for (r0, y0), (r1, y1) in zip(inner[:-1], inner[1:]):
        for a0, a1 in zip(angles[:-1], angles[1:]):
            points = []
            for r, y in ((r0, y0), (r1, y1)):
                for a in (a0, a1):
                    for rr in (r, r + thickness):
                        points.append([rr * np.cos(a), y, rr * np.sin(a)])
            parts.append(np.array(points))
    return parts


def _box(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Corner points (8, 3) of an axis-aligned box between its min and max corners in m."""
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def _cylinder_z(radius: float, z0: float, z1: float, x: float, y: float) -> np.ndarray:
    """Points of a cylinder of ``radius`` m along z from ``z0`` to ``z1`` m, axis through (x, y)."""
    angles = np.linspace(0.0, 2 * np.pi, _SIDES, endpoint=False)
    circle = np.stack([x + radius * np.cos(angles), y + radius * np.sin(angles)], axis=1)
    return np.concatenate([np.c_[circle, np.full(_SIDES, z0)], np.c_[circle, np.full(_SIDES, z1)]])


# ---------------------------------------------------------------------------------------------------- categories
def _bottle(rng: np.random.Generator) -> tuple[list[np.ndarray], None, dict[str, float]]:
    h = rng.uniform(0.16, 0.26)
    r = rng.uniform(0.026, 0.04)
    shoulder = rng.uniform(0.5, 0.72) * h
    neck_r = rng.uniform(0.34, 0.5) * r
    neck_y = shoulder + rng.uniform(0.12, 0.2) * h
    cap_h = rng.uniform(0.02, 0.035)
    cap_r = neck_r * rng.uniform(1.0, 1.2)
    profile = np.array([[0.9 * r, 0.0], [r, 0.006], [r, shoulder], [0.55 * (r + neck_r), 0.5 * (shoulder + neck_y)],
                        [neck_r, neck_y], [neck_r, h - cap_h], [cap_r, h - cap_h], [cap_r, h]])
    return _frusta(profile), None, {"height": h, "radius": r, "shoulder": shoulder, "neck_radius": neck_r}


def _can(rng: np.random.Generator) -> tuple[list[np.ndarray], None, dict[str, float]]:
    h = rng.uniform(0.09, 0.15)
    r = rng.uniform(0.026, 0.036)
    rim = rng.uniform(0.004, 0.01)
    profile = np.array([[0.9 * r, 0.0], [r, rim], [r, h - rim], [0.9 * r, h]])
    return _frusta(profile), None, {"height": h, "radius": r}


def _bowl(rng: np.random.Generator) -> tuple[list[np.ndarray], None, dict[str, float]]:
    rim_r = rng.uniform(0.055, 0.085)
    h = rng.uniform(0.04, 0.075)
    base_r = rng.uniform(0.35, 0.55) * rim_r
    wall = rng.uniform(0.004, 0.007)
    power = rng.uniform(0.45, 0.8)  # < 1: the wall rises steeply near the base and flares toward the rim
    base_t = 0.006
    s = np.linspace(0.0, 1.0, 6)
    inner = np.stack([base_r + (rim_r - wall - base_r) * s**power, base_t + (h - base_t) * s], axis=1)
    parts = _shell(inner, wall, 20)
    parts += _frusta(np.array([[base_r * 0.9, 0.0], [base_r + wall, base_t]]))
    return parts, None, {"rim_radius": rim_r, "height": h, "base_radius": base_r, "wall": wall}


def _mug(rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray, dict[str, float]]:
    r = rng.uniform(0.033, 0.046)
    h = rng.uniform(0.08, 0.115)
    wall = rng.uniform(0.004, 0.006)
    bottom = 0.008
    taper = rng.uniform(0.9, 1.0)  # bottom radius / top radius
    inner = np.array([[taper * r - wall, bottom], [r - wall, h]])
    parts = _shell(inner, wall, 20)
    parts += _frusta(np.array([[taper * r, 0.0], [taper * r, bottom]]))
    span = rng.uniform(0.55, 0.8) * h  # vertical span of the handle
    reach = rng.uniform(0.022, 0.032)  # how far it sticks out
    grip = rng.uniform(0.005, 0.008)  # radius of the handle's cross-section
    centre_y = rng.uniform(0.45, 0.55) * h
    arc = np.linspace(-np.pi / 2, np.pi / 2, 9)
    # elliptic arc in the x-y plane from the wall, out to +x, back to the wall
    path = np.stack([r - grip + reach * np.cos(arc), centre_y + 0.5 * span * np.sin(arc), np.zeros_like(arc)], axis=1)
    ring = np.linspace(0.0, 2 * np.pi, 8, endpoint=False)
    handle_points = []
    for p0, p1 in zip(path[:-1], path[1:]):
        tangent = (p1 - p0) / np.linalg.norm(p1 - p0)
        normal = np.array([-tangent[1], tangent[0], 0.0])  # in the x-y plane, across the path
        section = grip * (np.cos(ring)[:, None] * normal + np.sin(ring)[:, None] * np.array([0.0, 0.0, 1.0]))
        piece = np.concatenate([p0 + section, p1 + section])
        parts.append(piece)
        handle_points.append(piece)
    return parts, np.concatenate(handle_points), {"radius": r, "height": h, "handle_reach": reach, "handle_span": span}


def _camera(rng: np.random.Generator) -> tuple[list[np.ndarray], None, dict[str, float]]:
    w, h, d = rng.uniform(0.09, 0.14), rng.uniform(0.055, 0.085), rng.uniform(0.03, 0.05)
    body = _box(np.array([-w / 2, 0.0, -d / 2]), np.array([w / 2, h, d / 2]))
    lens_r = rng.uniform(0.35, 0.45) * h
    lens_len = rng.uniform(0.02, 0.05)
    lens_x = rng.uniform(-0.2, 0.2) * w
    lens = _cylinder_z(lens_r, d / 2 - 0.002, d / 2 + lens_len, lens_x, h * rng.uniform(0.42, 0.5))
    grip_w = rng.uniform(0.15, 0.25) * w
    grip = _box(np.array([w / 2 - grip_w, 0.0, d / 2 - 0.002]), np.array([w / 2, 0.85 * h, d / 2 + 0.012]))
    bump_w = rng.uniform(0.2, 0.35) * w
    bump_x = rng.uniform(-0.25, 0.1) * w
    bump = _box(np.array([bump_x - bump_w / 2, h - 0.002, -d / 3]), np.array([bump_x + bump_w / 2,
                                                                             h + rng.uniform(0.01, 0.02), d / 3]))
    return [body, lens, grip, bump], None, {"width": w, "height": h, "depth": d, "lens_length": lens_len}


def _laptop(rng: np.random.Generator) -> tuple[list[np.ndarray], None, dict[str, float]]:
    w, d = rng.uniform(0.27, 0.36), rng.uniform(0.19, 0.25)
    base_t, screen_t = rng.uniform(0.012, 0.02), rng.uniform(0.006, 0.01)
    screen_h = d * rng.uniform(0.85, 1.0)
    opening = np.deg2rad(rng.uniform(95.0, 125.0))  # angle between base and screen
    base = _box(np.array([-w / 2, 0.0, -d / 2]), np.array([w / 2, base_t, d / 2]))
    # screen: a slab hinged at the back edge (z = -d/2, y = base_t), tilted back by (opening - 90 deg)
    tilt = opening - np.pi / 2
    up = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    normal = np.array([0.0, np.sin(tilt), np.cos(tilt)])  # toward the user
    hinge = np.array([0.0, base_t, -d / 2])
    corners = [hinge + sx * np.array([w / 2, 0, 0]) + a * screen_h * up + b * screen_t * normal
               for sx in (-1, 1) for a in (0, 1) for b in (0, 1)]
    return [base, np.array(corners)], None, {"width": w, "depth": d, "screen_height": screen_h,
                                             "opening_rad": opening}


_BUILDERS = {"bottle": _bottle, "bowl": _bowl, "camera": _camera, "can": _can, "laptop": _laptop, "mug": _mug}


def instance_seed(category: str, split: str, index: int) -> int:
    """Seed of one instance; train and test seeds come from different streams, so the sets are disjoint."""
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, got {split!r}")
    if index < 0:
        raise InputError(f"instance index must be >= 0, got {index}")
    digest = hashlib.sha256(f"pose-instance/{GENERATOR_VERSION}/{category}/{split}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def make_instance(category: str, split: str, index: int) -> CategoryInstance:
    """Instance ``index`` of ``split`` of ``category``, in the canonical frame (see module docstring)."""
    class_id(category)
    rng = np.random.default_rng(instance_seed(category, split, index))
    parts, handle, params = _BUILDERS[category](rng)
    points = np.concatenate(parts)
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2
    parts = [p - centre for p in parts]
    handle = handle - centre if handle is not None else None
    return CategoryInstance(category, split, index, parts, hi - lo, handle,
                            {k: float(v) for k, v in params.items()})


# ---------------------------------------------------------------------------------------------------- files
@dataclass(frozen=True)
class InstanceFiles:
    """OBJ files of one instance (object frame, m) and its extents (3,) in m."""

    visual_obj: Path
    collision_obj: Path
    extents: np.ndarray
    handle_points: np.ndarray | None


def _uv(vertices: np.ndarray, extents: np.ndarray, category: str) -> np.ndarray:
    """Texture coordinates (V, 2): cylindrical about y for round categories, planar (x, y) for the others."""
    v = (vertices[:, 1] + extents[1] / 2) / extents[1]
    if category in ("camera", "laptop"):
        u = (vertices[:, 0] + extents[0] / 2) / extents[0] + 0.5 * (vertices[:, 2] > 0)
    else:
        u = (np.arctan2(vertices[:, 2], vertices[:, 0]) / (2 * np.pi)) % 1.0
        if u.max() - u.min() > 0.5:  # a part across the seam: keep its coordinates contiguous (textures repeat)
            u = np.where(u < 0.5, u + 1.0, u)
    return np.stack([u, v], axis=1)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_instance(instance: CategoryInstance, folder: Path) -> InstanceFiles:
    """Write ``visual.obj`` (with texture coordinates), ``collision.obj`` (one object per convex part) and
    ``meta.json`` into ``folder`` (atomically, once)."""
    folder.mkdir(parents=True, exist_ok=True)
    visual, collision, meta = folder / "visual.obj", folder / "collision.obj", folder / "meta.json"
    if not (visual.is_file() and collision.is_file()):
        with np.errstate(divide="ignore", invalid="ignore"):  # trimesh's mass properties of flat caps
            hulls = [trimesh.convex.convex_hull(p) for p in instance.parts]
    if not visual.is_file():
        lines, offset = ["o visual"], 1
        for hull in hulls:
            uv = _uv(hull.vertices, instance.extents, instance.category)
            lines.extend(f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in hull.vertices)
            lines.extend(f"vt {u:.5f} {t:.5f}" for u, t in uv)
            lines.extend(f"f {a + offset}/{a + offset} {b + offset}/{b + offset} {c + offset}/{c + offset}"
                         for a, b, c in hull.faces)
            offset += len(hull.vertices)
        _write_atomic(visual, "\n".join(lines) + "\n")
    if not collision.is_file():
        lines, offset = [], 1
        for i, hull in enumerate(hulls):
            lines.append(f"o part{i}")
            lines.extend(f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in hull.vertices)
            lines.extend(f"f {a + offset} {b + offset} {c + offset}" for a, b, c in hull.faces)
            offset += len(hull.vertices)
        _write_atomic(collision, "\n".join(lines) + "\n")
    if not meta.is_file():
        _write_atomic(meta, json.dumps({"category": instance.category, "split": instance.split,
                                        "index": instance.index, "extents": instance.extents.tolist(),
                                        "params": instance.params, "version": GENERATOR_VERSION}))
    return InstanceFiles(visual, collision, instance.extents.copy(), instance.handle_points)


def instance_files(category: str, split: str, index: int, cache_dir: str | os.PathLike) -> InstanceFiles:
    """Build (once) and return the OBJ files of an instance under ``cache_dir/pose_instances/``."""
    instance = make_instance(category, split, index)
    folder = Path(cache_dir) / "pose_instances" / f"v{GENERATOR_VERSION}" / f"{category}-{split}-{index:04d}"
    return write_instance(instance, folder)


# ---------------------------------------------------------------------------------------------------- textures
def texture_image(rng: np.random.Generator, style: str, colors: np.ndarray, size: int = 64) -> np.ndarray:
    """A procedural texture (size, size, 3) uint8 of ``style`` (:data:`TEXTURE_STYLES`) in two RGB ``colors``
    (2, 3) in [0, 1] (base, pattern); rows run along the object's height (v), columns around it (u)."""
    base, accent = (np.asarray(c, dtype=float) for c in colors)
    v, u = np.meshgrid(np.linspace(0, 1, size, endpoint=False), np.linspace(0, 1, size, endpoint=False),
                       indexing="ij")
    if style == "plain":
        weight = np.zeros_like(u)
    elif style == "band":
        lo = rng.uniform(0.2, 0.5)
        weight = ((v > lo) & (v < lo + rng.uniform(0.15, 0.4))).astype(float)
    elif style == "stripes":
        weight = (np.sin(2 * np.pi * v * rng.integers(3, 9)) > 0).astype(float)
    elif style == "checker":
        n = rng.integers(2, 7)
        weight = ((np.floor(u * n) + np.floor(v * n)) % 2).astype(float)
    elif style == "speckle":
        weight = (rng.random(u.shape) < rng.uniform(0.1, 0.4)).astype(float)
    elif style == "gradient":
        weight = v if rng.random() < 0.5 else u
    elif style == "dots":
        n = rng.integers(3, 8)
        weight = (((u * n) % 1 - 0.5) ** 2 + ((v * n) % 1 - 0.5) ** 2 < 0.08).astype(float)
    elif style == "diagonal":
        weight = (np.sin(2 * np.pi * (u + v) * rng.integers(2, 6)) > 0).astype(float)
    else:
        raise InputError(f"unknown texture style {style!r}; choose one of {TEXTURE_STYLES}")
    image = base * (1 - weight[..., None]) + accent * weight[..., None]
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
