"""The simulated workcell a task builds its scene in: a table (ground plane, top at z = 0) and a Panda."""

from __future__ import annotations

from dataclasses import dataclass, field

from manipstack.envs.core.world import World
from manipstack.envs.robots.sim.panda import SimPanda, SimPandaConfig


@dataclass(frozen=True)
class SimWorkcellConfig:
    """Physics settings and arm of a simulated workcell."""

    time_step: float = 1.0 / 240.0
    """Physics time step in s."""
    solver_iterations: int = 50
    """Constraint-solver iterations per physics step (speed vs. contact accuracy)."""
    panda: SimPandaConfig = field(default_factory=SimPandaConfig)
    """The arm."""


class SimWorkcell:
    """A :class:`World` holding a table plane and a connected :class:`SimPanda` (``world``, ``robot``).

    :meth:`reset` empties the world and rebuilds table and arm in the same order every time, so a task
    that adds its objects after it gets the same physics whether the workcell is in-process or a
    digital twin behind the driver bridge.
    """

    def __init__(self, config: SimWorkcellConfig | None = None) -> None:
        self.config = config or SimWorkcellConfig()
        self.world = World(time_step=self.config.time_step, solver_iterations=self.config.solver_iterations)
        self.robot = SimPanda(self.world, self.config.panda)
        self.reset()

    def reset(self) -> None:
        """Remove every body, then add the table plane and the arm (at home, gripper open)."""
        self.robot.disconnect()
        self.world.reset_simulation()
        self.world.add_plane()
        self.robot.connect()

    def close(self) -> None:
        """Release arm and physics client; safe to call more than once."""
        self.robot.close()
        self.world.close()
