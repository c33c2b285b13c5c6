"""Adding FMB's pegs, boards and fixture (:mod:`manipstack.assets.fmb`) to a world as rigid bodies.

Bodies are compounds of the exact convex parts the asset module writes, with Bullet's collision margin reduced
to :data:`~manipstack.assets.fmb.COLLISION_MARGIN` so a 1.5 mm clearance stays open. Poses are (position (3,) m,
quaternion (x, y, z, w)) in the world frame, of the peg's frame (centroid, mid-length) or the board's frame (centre
of its bottom face).
"""

from __future__ import annotations

from collections.abc import Sequence

from shapely.geometry import Polygon

from manipstack.assets.convex_parts import PartFiles
from manipstack.assets.fmb import COLLISION_MARGIN, BoardGeometry, PegSpec, board_files, peg_files
from manipstack.envs.core.world import World

PEG_DENSITY = 600.0
"""Peg density in kg/m^3 (FMB's pegs are 3D-printed PLA with infill)."""


def _add(world: World, name: str, files: PartFiles, position: Sequence[float], quat_xyzw: Sequence[float], mass: float,
         color: Sequence[float], friction: float) -> None:
    world.add_mesh(name, files.visual_obj, position, quat_xyzw, mass=mass, friction=friction,
                   color=(*color[:3], 1.0), collision_path=files.collision_obj)
    world.set_dynamics(name, collisionMargin=COLLISION_MARGIN, spinningFriction=0.001, rollingFriction=0.0005)


def add_peg(world: World, name: str, peg: PegSpec, position: Sequence[float], quat_xyzw: Sequence[float] = (0, 0, 0, 1),
            friction: float = 0.8) -> float:
    """Add ``peg`` as a dynamic body; returns its mass in kg (cross-section area x length x density)."""
    mass = float(Polygon(peg.polygon).area * peg.length * PEG_DENSITY)
    _add(world, name, peg_files(peg, world.cache_dir), position, quat_xyzw, mass, peg.color, friction)
    return mass


def add_board(world: World, name: str, board: BoardGeometry, position: Sequence[float],
              quat_xyzw: Sequence[float] = (0, 0, 0, 1), color: Sequence[float] = (0.75, 0.6, 0.4),
              friction: float = 0.5) -> None:
    """Add a board (or the fixture) as a static body."""
    _add(world, name, board_files(board, name, world.cache_dir), position, quat_xyzw, 0.0, color, friction)
