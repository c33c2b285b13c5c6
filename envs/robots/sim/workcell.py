"""Simulated workcells a task builds its scene in: a table (ground plane, top at z = 0) and one robot.

``"panda"`` (:class:`SimWorkcell`): the Franka Panda with its parallel gripper. ``"floating-hand"``
(:class:`FloatingHandWorkcell`): the dexterous hand held above the table by its wrist constraint. Both are
registered by name in :mod:`manipstack.envs.robots` (``make_workcell(robot, ...)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from manipstack.envs.core.world import World
from manipstack.envs.robots.sim.hand import SimHand, SimHandConfig
from manipstack.envs.robots.sim.panda import SimPanda, SimPandaConfig


class _TableWorkcell:
    """A :class:`World` with a table plane and a robot in it (``world``, ``robot``), rebuilt on :meth:`reset`.

    :meth:`reset` empties the world and rebuilds table and robot in the same order every time, so a task
    that adds its objects after it gets the same physics whether the workcell is in-process or a
    digital twin behind the driver bridge.
    """

    world: World
    robot: SimPanda | SimHand

    def reset(self) -> None:
        """Remove every body, then add the table plane and the robot (at home, end effector open)."""
        self.robot.disconnect()
        self.world.reset_simulation()
        self.world.add_plane()
        self.robot.connect()

    def close(self) -> None:
        """Release robot and physics client; safe to call more than once."""
        self.robot.close()
        self.world.close()


@dataclass(frozen=True)
class SimWorkcellConfig:
    """Physics settings and arm of a simulated workcell."""

    time_step: float = 1.0 / 240.0
    """Physics time step in s."""
    solver_iterations: int = 50
    """Constraint-solver iterations per physics step (speed vs. contact accuracy)."""
    panda: SimPandaConfig = field(default_factory=SimPandaConfig)
    """The arm."""


class SimWorkcell(_TableWorkcell):
    """A :class:`World` holding a table plane and a connected :class:`SimPanda` (``world``, ``robot``)."""

    def __init__(self, config: SimWorkcellConfig | None = None) -> None:
        self.config = config or SimWorkcellConfig()
        self.world = World(time_step=self.config.time_step, solver_iterations=self.config.solver_iterations)
        self.robot = SimPanda(self.world, self.config.panda)
        self.reset()


PALM_DOWN_QUAT_XYZW = (0.0, math.sqrt(0.5), 0.0, math.sqrt(0.5))
"""Wrist orientation (x, y, z, w) turning the shipped hand palm-down (its palm normal, wrist +x, to world -z)
with the fingers (wrist +z) along world +x: a quarter turn about world y."""


@dataclass(frozen=True)
class FloatingHandWorkcellConfig:
    """Physics settings and hand of a simulated floating-hand workcell."""

    time_step: float = 1.0 / 240.0
    """Physics time step in s."""
    solver_iterations: int = 50
    """Constraint-solver iterations per physics step (speed vs. contact accuracy)."""
    hand: SimHandConfig = field(default_factory=SimHandConfig)
    """The hand."""
    home_position: tuple[float, float, float] = (0.0, 0.0, 0.3)
    """Home wrist position in m, world frame (the table top is z = 0)."""
    home_quat_xyzw: tuple[float, float, float, float] = PALM_DOWN_QUAT_XYZW
    """Home wrist orientation (x, y, z, w), world frame (default: palm down, fingers along +x)."""

    def __post_init__(self) -> None:
        if len(self.home_position) != 3 or self.home_position[2] <= 0:
            raise ValueError(f"home_position must be (x, y, z) in m above the table (z > 0), got {self.home_position}")
        norm = math.sqrt(sum(q * q for q in self.home_quat_xyzw)) if len(self.home_quat_xyzw) == 4 else 0.0
        if abs(norm - 1.0) > 1e-6:
            raise ValueError(f"home_quat_xyzw must be a unit quaternion (x, y, z, w), got {self.home_quat_xyzw}")


class FloatingHandWorkcell(_TableWorkcell):
    """A :class:`World` holding a table plane and a connected floating :class:`SimHand` (``world``, ``robot``),
    the hand at its home wrist pose with the fingers open."""

    def __init__(self, config: FloatingHandWorkcellConfig | None = None) -> None:
        self.config = cfg = config or FloatingHandWorkcellConfig()
        self.world = World(time_step=cfg.time_step, solver_iterations=cfg.solver_iterations)
        self.robot = SimHand(self.world, cfg.hand, cfg.home_position, cfg.home_quat_xyzw)
        self.reset()
