"""FMB's pegs, boards and reorientation fixture, built procedurally from peg cross-sections (Luo et al. 2024).

A peg is a prism: a simple polygon (its cross-section, m, counter-clockwise) extruded by its length. Peg spec files
are JSON ``{"pegs": [{"name", "polygon": [[x, y], ...], "length", "color": [r, g, b], "hole"?: [[x, y], ...]}]}``
(``hole``: an explicit hole outline, which must contain the peg's cross-section; by default a board's hole is the
cross-section offset outward by the clearance). The nine FMB cross-sections ship as ``fmb_data/pegs.json``; any
other cross-section works without code.

Frames: a peg's frame has its origin at the cross-section's centroid halfway along its length, the cross-section in
its x-y plane and its axis along z. A board's frame has its origin at the centre of its bottom face (z-up, the
board lies on the table); holes go through it, at given (x, y) offsets. The fixture is a board whose single hole
is looser and has a floor, so a peg stands in it upright for a regrasp.

Collision shapes are exact: cross-sections and board outlines minus holes are triangulated (mapbox-earcut) and the
triangles merged into convex polygons (Hertel-Mehlhorn), each extruded into one convex part of a compound
(:mod:`manipstack.assets.convex_parts`), so holes are never closed or widened by an approximate decomposition.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import mapbox_earcut
import numpy as np
import shapely
from shapely.geometry import LinearRing, Polygon

from manipstack.assets.convex_parts import PartFiles, box, part_files, prism
from manipstack.errors import InputError, MissingInputError

DATA_DIR = Path(__file__).resolve().parent / "fmb_data"
DEFAULT_PEGS_FILE = DATA_DIR / "pegs.json"
"""The nine FMB cross-sections: rectangle, round, oval, hexagon, arch, square-circle, double-square, 3-prong, star."""

PEG_KEYS = ("name", "polygon", "length", "color", "hole")
"""Keys of one peg in a spec file (``hole`` optional)."""

DEFAULT_CLEARANCE = 0.0015
"""Gap in m between a peg's side and its hole's wall when centred (the hole is the cross-section offset by it)."""

COLLISION_MARGIN = 0.0003
"""Bullet collision margin in m for pegs and boards: Bullet pads a convex hull by its margin (1 mm by default),
which alone would close a 1.5 mm clearance between a peg's and a hole's hulls; 0.3 mm keeps contacts stable."""

SIZE_SCALES = {"S": 0.85, "M": 1.0, "L": 1.15}
"""FMB's peg sizes as scale factors of the shipped (medium) cross-sections."""

COLORS = {
    "red": (0.85, 0.2, 0.2), "orange": (0.95, 0.55, 0.15), "yellow": (0.95, 0.85, 0.2), "green": (0.25, 0.7, 0.3),
    "blue": (0.2, 0.4, 0.85), "purple": (0.55, 0.3, 0.75), "white": (0.92, 0.92, 0.9), "black": (0.15, 0.15, 0.15),
}
"""FMB's eight peg colours, RGB in [0, 1]."""


@dataclass(frozen=True)
class PegSpec:
    """One peg: cross-section ``polygon`` (K, 2) m, counter-clockwise, centred on its centroid; ``length`` m along
    the peg axis; ``color`` RGB in [0, 1]; ``hole`` an explicit hole outline (L, 2) m in the same frame, or None."""

    name: str
    polygon: tuple[tuple[float, float], ...]
    length: float
    color: tuple[float, float, float]
    hole: tuple[tuple[float, float], ...] | None = None

    @property
    def width(self) -> float:
        """Largest extent in m of the cross-section along x or y."""
        p = np.asarray(self.polygon)
        return float((p.max(0) - p.min(0)).max())

    def scaled(self, factor: float, name: str | None = None) -> PegSpec:
        """The same peg with its cross-section (and explicit hole) scaled by ``factor`` (length unchanged)."""
        poly = tuple(tuple(float(c * factor) for c in v) for v in self.polygon)
        hole = None if self.hole is None else tuple(tuple(float(c * factor) for c in v) for v in self.hole)
        return replace(self, name=name or self.name, polygon=poly, hole=hole)

    def grown(self, offset: float) -> PegSpec:
        """The same peg with its cross-section offset outward by ``offset`` m (mitred corners), e.g. a peg too
        large for its hole; an explicit hole is kept."""
        grown = Polygon(self.polygon).buffer(offset, join_style="mitre", mitre_limit=10.0)
        return replace(self, polygon=_ccw_points(grown))


def _ccw_points(polygon: Polygon) -> tuple[tuple[float, float], ...]:
    """Exterior vertices (K, 2) of a shapely polygon, counter-clockwise, without the closing repeat."""
    ring = shapely.geometry.polygon.orient(polygon, 1.0).exterior
    return tuple((float(x), float(y)) for x, y in list(ring.coords)[:-1])


def check_polygon(points: object, where: str) -> np.ndarray:
    """``points`` as a (K, 2) array in m, or :class:`InputError` naming ``where`` if it is not a simple,
    counter-clockwise polygon of at least 3 finite vertices."""
    try:
        array = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{where}: must be a list of [x, y] points in m") from None
    if array.ndim != 2 or array.shape[1] != 2 or len(array) < 3 or not np.all(np.isfinite(array)):
        raise InputError(f"{where}: must be at least 3 finite [x, y] points in m, got shape {list(array.shape)}")
    ring = LinearRing(array)
    if not ring.is_simple:
        raise InputError(f"{where}: the polygon self-intersects; list its vertices in order around the outline")
    if not ring.is_ccw:
        raise InputError(f"{where}: the polygon is clockwise; list its vertices counter-clockwise")
    if Polygon(array).area < 1e-8:
        raise InputError(f"{where}: the polygon's area is below 0.01 cm^2")
    return array


def _peg(entry: object, where: str) -> PegSpec:
    if not isinstance(entry, dict):
        raise InputError(f"{where}: must be an object with keys {list(PEG_KEYS)}")
    unknown = sorted(set(entry) - set(PEG_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; a peg has {list(PEG_KEYS)}")
    missing = [k for k in PEG_KEYS[:4] if k not in entry]
    if missing:
        raise InputError(f"{where}: missing key(s) {missing}")
    name = entry["name"]
    if not isinstance(name, str) or not name:
        raise InputError(f"{where} field 'name': must be a non-empty string")
    where = f"{where} ({name!r})"
    polygon = check_polygon(entry["polygon"], f"{where} field 'polygon'")
    centroid = np.array(Polygon(polygon).centroid.coords[0])
    length = entry["length"]
    if not isinstance(length, (int, float)) or not 0.01 <= length <= 0.3:
        raise InputError(f"{where} field 'length': must be in [0.01, 0.3] m, got {length!r}")
    color = entry["color"]
    if (not isinstance(color, list) or len(color) != 3 or
            not all(isinstance(c, (int, float)) and 0 <= c <= 1 for c in color)):
        raise InputError(f"{where} field 'color': must be [r, g, b] in [0, 1], got {color!r}")
    hole = None
    if entry.get("hole") is not None:
        hole_array = check_polygon(entry["hole"], f"{where} field 'hole'")
        if not Polygon(hole_array).contains(Polygon(polygon)):
            raise InputError(f"{where} field 'hole': the hole is smaller than its peg (it must contain the "
                             f"peg's polygon with a gap all round)")
        hole = tuple(map(tuple, (hole_array - centroid).tolist()))
    return PegSpec(name, tuple(map(tuple, (polygon - centroid).tolist())), float(length),
                   tuple(float(c) for c in color), hole)


def load_pegs(path: str | os.PathLike = DEFAULT_PEGS_FILE) -> list[PegSpec]:
    """Read a peg spec file (see module docstring); every problem is one :class:`InputError` naming the file,
    the peg's index and the field."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"peg spec file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or set(data) != {"pegs"} or not isinstance(data["pegs"], list) or not data["pegs"]:
        raise InputError(f"{path}: must be an object {{\"pegs\": [...]}} with at least one peg")
    pegs = [_peg(entry, f"{path} peg {i}") for i, entry in enumerate(data["pegs"])]
    names = [p.name for p in pegs]
    if len(set(names)) != len(names):
        raise InputError(f"{path}: peg names must be unique, got {names}")
    return pegs


def save_pegs(path: str | os.PathLike, pegs: Sequence[PegSpec]) -> None:
    """Write pegs as a spec file that :func:`load_pegs` reads back."""
    entries = []
    for peg in pegs:
        entry = {"name": peg.name, "polygon": [list(v) for v in peg.polygon], "length": peg.length,
                 "color": list(peg.color)}
        if peg.hole is not None:
            entry["hole"] = [list(v) for v in peg.hole]
        entries.append(entry)
    Path(path).write_text(json.dumps({"pegs": entries}, indent=1) + "\n")


def hole_outline(peg: PegSpec, clearance: float = DEFAULT_CLEARANCE) -> np.ndarray:
    """The hole (L, 2) m, counter-clockwise, for ``peg``: its explicit hole, or its cross-section offset outward
    by ``clearance`` m (mitred corners, so straight walls stay straight)."""
    if peg.hole is not None:
        return np.asarray(peg.hole)
    if not clearance > 0:
        raise InputError(f"clearance must be > 0 m (a hole smaller than its peg does not fit), got {clearance}")
    return np.asarray(_ccw_points(Polygon(peg.polygon).buffer(clearance, join_style="mitre", mitre_limit=10.0)))


# ---------------------------------------------------------------------------------------------- convex pieces
def _triangulate(polygon: Polygon) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 2) and counter-clockwise triangles (T, 3) of a polygon with holes (mapbox-earcut)."""
    polygon = shapely.geometry.polygon.orient(polygon, 1.0)
    rings = [np.asarray(polygon.exterior.coords)[:-1]] + [np.asarray(r.coords)[:-1] for r in polygon.interiors]
    vertices = np.concatenate(rings)
    ends = np.cumsum([len(r) for r in rings]).astype(np.uint32)
    triangles = np.asarray(mapbox_earcut.triangulate_float64(vertices, ends), dtype=np.int64).reshape(-1, 3)
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    cross = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
    triangles[cross < 0] = triangles[cross < 0][:, ::-1]
    return vertices, triangles


def _is_convex(vertices: np.ndarray, loop: list[int]) -> bool:
    """Whether the counter-clockwise loop of vertex indices turns left (or goes straight) at every vertex."""
    p = vertices[loop]
    d1 = np.roll(p, -1, axis=0) - p
    d2 = np.roll(p, -2, axis=0) - np.roll(p, -1, axis=0)
    return bool(np.all(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0] >= -1e-12))


def _merge(loop_a: list[int], loop_b: list[int], u: int, v: int) -> list[int]:
    """The loop of two counter-clockwise loops sharing the edge u -> v (in ``loop_a``; v -> u in ``loop_b``)."""
    ia = loop_a.index(v)
    from_v = loop_a[ia:] + loop_a[:ia]  # v ... u
    ib = loop_b.index(u)
    from_u = loop_b[ib:] + loop_b[:ib]  # u ... v
    return from_v[:-1] + from_u[:-1]


def convex_pieces(polygon: Polygon) -> list[np.ndarray]:
    """Convex polygons (each (K, 2) m, counter-clockwise) whose union is ``polygon`` (holes allowed), exactly:
    an ear-cut triangulation merged greedily across diagonals while the result stays convex (Hertel-Mehlhorn,
    at most 4x the minimum number of pieces)."""
    vertices, triangles = _triangulate(polygon)
    loops: list[list[int] | None] = [list(t) for t in triangles]
    merged = True
    while merged:
        merged = False
        edges: dict[tuple[int, int], int] = {}
        for k, loop in enumerate(loops):
            if loop is None:
                continue
            for u, v in zip(loop, loop[1:] + loop[:1]):
                edges[(u, v)] = k
        for (u, v), ka in edges.items():
            kb = edges.get((v, u))
            if kb is None or kb == ka or loops[ka] is None or loops[kb] is None:
                continue
            candidate = _merge(loops[ka], loops[kb], u, v)
            if _is_convex(vertices, candidate):
                loops[ka], loops[kb] = candidate, None
                merged = True
                break
    return [vertices[loop] for loop in loops if loop is not None]


# ---------------------------------------------------------------------------------------------- bodies
def peg_parts(peg: PegSpec) -> list[np.ndarray]:
    """Convex parts (each (2K, 3) corner points, m) of a peg in its frame (axis along z, centred)."""
    return [prism(piece, peg.length, "xyz") for piece in convex_pieces(Polygon(peg.polygon))]


def peg_files(peg: PegSpec, cache_dir: str | os.PathLike) -> PartFiles:
    """Write (once) a peg's OBJ files under ``cache_dir/fmb/``; the size is its bounding box in m."""
    return part_files(peg_parts(peg), Path(cache_dir) / "fmb", f"peg-{_slug(peg.name)}")


@dataclass(frozen=True)
class BoardGeometry:
    """A board: outline ``size`` (x, y) in m, ``thickness`` (the holes' depth) in m, ``floor`` m of solid material
    under the holes (0: through holes; the fixture has one), holes as (outline (L, 2) m, centre (x, y) m)."""

    size: tuple[float, float]
    thickness: float
    holes: tuple[tuple[np.ndarray, tuple[float, float]], ...]
    floor: float = 0.0

    def __post_init__(self) -> None:
        if min(self.size) <= 0 or self.thickness <= 0 or self.floor < 0:
            raise InputError(f"board size {self.size} and thickness {self.thickness} m must be > 0, floor >= 0")
        outline = Polygon(box_outline(self.size))
        for i, (hole, centre) in enumerate(self.holes):
            if not outline.buffer(-0.003).contains(Polygon(np.asarray(hole) + centre)):
                raise InputError(f"board hole {i} at {centre} does not fit inside the {self.size} m board "
                                 "with a 3 mm rim")


def box_outline(size: Sequence[float]) -> np.ndarray:
    """Counter-clockwise rectangle (4, 2) m of extents ``size`` (x, y), centred."""
    hx, hy = size[0] / 2, size[1] / 2
    return np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])


def board_parts(board: BoardGeometry) -> list[np.ndarray]:
    """Convex parts (each corner points (K, 3), m) of a board in its frame (bottom face at z = 0)."""
    holes = [Polygon(np.asarray(h) + c) for h, c in board.holes]
    solid = Polygon(box_outline(board.size)).difference(shapely.union_all(holes)) if holes else Polygon(
        box_outline(board.size))
    pieces = [piece for poly in getattr(solid, "geoms", [solid]) for piece in convex_pieces(poly)]
    z_mid = board.floor + board.thickness / 2
    parts = [prism(piece, board.thickness, "xyz") + [0.0, 0.0, z_mid] for piece in pieces]
    if board.floor > 0:
        hx, hy = board.size[0] / 2, board.size[1] / 2
        parts.append(box((-hx, -hy, 0.0), (hx, hy, board.floor)))
    return parts


def board_files(board: BoardGeometry, name: str, cache_dir: str | os.PathLike) -> PartFiles:
    """Write (once) a board's OBJ files under ``cache_dir/fmb/``."""
    return part_files(board_parts(board), Path(cache_dir) / "fmb", f"board-{_slug(name)}")


def peg_board(peg: PegSpec, clearance: float = DEFAULT_CLEARANCE, thickness: float = 0.02,
              margin: float = 0.025) -> BoardGeometry:
    """A single-hole board for ``peg``: the hole (see :func:`hole_outline`) at the centre, ``margin`` m of board
    around the hole's bounding box, through holes ``thickness`` m deep."""
    hole = hole_outline(peg, clearance)
    extent = 2 * np.abs(hole).max(0) + 2 * margin
    return BoardGeometry((float(extent[0]), float(extent[1])), thickness, ((hole, (0.0, 0.0)),))


def multi_board(pegs: Sequence[PegSpec], clearance: float = DEFAULT_CLEARANCE, thickness: float = 0.02,
                spacing: float = 0.07) -> BoardGeometry:
    """A board with one hole per peg in a row along x, ``spacing`` m apart (FMB's multi-object boards)."""
    holes = tuple((hole_outline(p, clearance), ((i - (len(pegs) - 1) / 2) * spacing, 0.0)) for i, p in enumerate(pegs))
    extent_y = max(2 * float(np.abs(h).max(0)[1]) for h, _ in holes) + 0.05
    return BoardGeometry((len(pegs) * spacing, extent_y), thickness, holes)


def fixture(peg: PegSpec, clearance: float = 0.004, depth: float = 0.03, floor: float = 0.005) -> BoardGeometry:
    """The reorientation fixture for ``peg``: a pocket ``clearance`` m looser than the peg and ``depth`` m deep,
    with a ``floor`` m thick bottom, in which the peg stands upright to be regrasped from above."""
    board = peg_board(replace(peg, hole=None), clearance, depth, margin=0.02)
    return replace(board, floor=floor)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
