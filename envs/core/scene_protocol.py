"""The scene protocol: what a task may use of a workcell's world, in one typed list.

:class:`SceneWorld` declares, with their signatures, the methods and attributes of
:class:`~manipstack.envs.core.world.World` that tasks (and :class:`~manipstack.envs.core.camera.SimCamera`) use to
build, query, step and render a scene. :class:`~manipstack.envs.core.world.World` satisfies it in-process; the
driver bridge derives its remote allowlist from it (:data:`SCENE_WORLD_METHODS`, :data:`SCENE_WORLD_ATTRIBUTES`),
so a digital twin's world offers exactly this, and tests check that every member is served.

Everything here is plain data in and out (names, numbers, arrays, file paths), which is what lets it cross the
bridge. Units: SI (m, kg, s, rad, N). Frames: world, z-up, table top at z = 0. Quaternions (x, y, z, w).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # world.py imports this module
    from manipstack.envs.core.world import Lighting

IDENTITY_QUAT = (0.0, 0.0, 0.0, 1.0)


@runtime_checkable
class SceneWorld(Protocol):
    """The world of a workcell as tasks see it (see module docstring)."""

    sim_time: float
    """Simulated time in s since the last reset."""
    time_step: float
    """Physics step in s."""
    cache_dir: Path
    """Folder for generated and converted meshes (on a bridge client: the client's own cache folder)."""

    @property
    def body_names(self) -> list[str]:
        """Names of the bodies in the world, in the order they were added."""
        ...

    # ------------------------------------------------------------------ building the scene
    def add_urdf(
        self,
        name: str,
        path: str | os.PathLike,
        position: Sequence[float] = (0.0, 0.0, 0.0),
        quat_xyzw: Sequence[float] = IDENTITY_QUAT,
        scale: float = 1.0,
        fixed: bool = False,
        self_collision: bool = False,
    ) -> int:
        """Load a URDF (absolute path or relative to pybullet_data) as body ``name`` at a pose (m, (x, y, z, w));
        returns its id. ``scale`` is unitless; ``fixed`` pins the base."""
        ...

    def add_mesh(
        self,
        name: str,
        path: str | os.PathLike,
        position: Sequence[float] = (0.0, 0.0, 0.0),
        quat_xyzw: Sequence[float] = IDENTITY_QUAT,
        scale: float | Sequence[float] = 1.0,
        mass: float = 0.1,
        friction: float = 0.8,
        color: Sequence[float] = (0.7, 0.7, 0.7, 1.0),
        decompose: bool = True,
        collision_path: str | os.PathLike | None = None,
    ) -> int:
        """Load a mesh file as dynamic rigid body ``name`` (collision: convex decomposition, its hull, or the
        convex parts in ``collision_path``); ``mass`` in kg (0: static), ``scale`` unitless, ``color`` RGBA in
        [0, 1]; returns its id."""
        ...

    def add_primitive(
        self,
        name: str,
        shape: str,
        size: Sequence[float],
        position: Sequence[float] = (0.0, 0.0, 0.0),
        quat_xyzw: Sequence[float] = IDENTITY_QUAT,
        mass: float = 0.1,
        friction: float = 0.8,
        color: Sequence[float] = (0.7, 0.7, 0.7, 1.0),
    ) -> int:
        """Add a ``"box"`` (size = full extents (3,) m), ``"cylinder"`` (diameter, diameter, height in m, axis z)
        or ``"sphere"`` (diameter in m, repeated); ``mass`` in kg (0: static); returns its id."""
        ...

    def remove_body(self, name: str) -> None:
        """Remove body ``name`` from the world."""
        ...

    def has_body(self, name: str) -> bool:
        """Whether a body called ``name`` exists."""
        ...

    # ------------------------------------------------------------------ body properties
    def set_dynamics(self, name: str, link: int = -1, **params: float) -> None:
        """Change dynamics (``mass`` kg, ``lateralFriction``, ``spinningFriction``, ...) of a body link (-1: base)."""
        ...

    def set_color(self, name: str, rgba: Sequence[float], link: int = -1) -> None:
        """Set a link's colour, RGBA (4,) in [0, 1] (-1: base)."""
        ...

    def enable_sleeping(self, name: str) -> None:
        """Let a body fall asleep once at rest."""
        ...

    def wake_up(self, name: str) -> None:
        """Wake a sleeping body."""
        ...

    def set_visible(self, name: str, visible: bool) -> None:
        """Hide a body from rendering or show it again; physics is unaffected."""
        ...

    # ------------------------------------------------------------------ body state
    def body_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Base pose: (position (3,) in m, quaternion (x, y, z, w)), world frame."""
        ...

    def set_body_pose(self, name: str, position: Sequence[float], quat_xyzw: Sequence[float]) -> None:
        """Teleport a body's base to a pose: position (3,) m, quaternion (x, y, z, w), world frame."""
        ...

    def body_velocity(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Base (linear m/s (3,), angular rad/s (3,)) velocity, world frame."""
        ...

    def set_body_velocity(
        self, name: str, linear: Sequence[float] = (0.0, 0.0, 0.0), angular: Sequence[float] = (0.0, 0.0, 0.0)
    ) -> None:
        """Set a body's base velocity: linear (3,) m/s, angular (3,) rad/s, world frame."""
        ...

    def aabb(self, name: str, link: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounding box (min (3,), max (3,)) in m, world frame."""
        ...

    def contact_points(self, name_a: str, name_b: str | None = None, link_a: int | None = None) -> list:
        """PyBullet contact points between two bodies (or body A and anything)."""
        ...

    def closest_points(self, name_a: str, name_b: str, distance: float) -> list:
        """Point pairs closer than ``distance`` m between two bodies (negative distance = penetration)."""
        ...

    # ------------------------------------------------------------------ stepping and rendering
    def step(self, num_steps: int = 1) -> None:
        """Advance physics by ``num_steps`` fixed time steps."""
        ...

    def step_until_static(
        self,
        max_time: float = 5.0,
        linear_tol: float = 5e-3,
        angular_tol: float = 5e-2,
        names: Sequence[str] | None = None,
        check_every: int = 8,
    ) -> bool:
        """Step until every (named) dynamic body moves slower than ``linear_tol`` m/s and ``angular_tol`` rad/s,
        for at most ``max_time`` simulated s; True if everything came to rest."""
        ...

    def render(
        self, view_matrix: Sequence[float], projection_matrix: Sequence[float], width: int, height: int,
        segmentation: bool = True, lighting: Lighting | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Render on the CPU: rgb uint8 (H, W, 3), OpenGL depth buffer float32 (H, W) in [0, 1], and body-id
        segmentation int32 (H, W) (-1 = background) or None."""
        ...


def _members(protocol: type) -> tuple[frozenset[str], frozenset[str]]:
    """(method names, attribute names) a protocol class declares itself (public names only)."""
    methods, attributes = set(), set(getattr(protocol, "__annotations__", {}))
    for name, value in vars(protocol).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            attributes.add(name)
        elif inspect.isfunction(value):
            methods.add(name)
    return frozenset(methods), frozenset(attributes)


SCENE_WORLD_METHODS, SCENE_WORLD_ATTRIBUTES = _members(SceneWorld)
"""Names of the :class:`SceneWorld` methods, and of its attributes (read without arguments)."""
