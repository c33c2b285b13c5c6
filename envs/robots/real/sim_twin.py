"""A simulated workcell as a digital twin: a registered workcell (``make_workcell(robot)``: the Panda or the
floating hand) plus cameras, owned by the bridge server.

A remote client drives the twin's robot through the robot contract and its scene through
:meth:`SimTwin.reset` and :meth:`SimTwin.call_world`, which runs one of the :class:`World` methods named in
:data:`REMOTE_WORLD_METHODS` (or reads one of :data:`REMOTE_WORLD_ATTRIBUTES`) on plain data: names,
numbers, arrays and file paths on the server. No other code can be reached. With both on one machine (or
a shared filesystem), a task runs unchanged against the twin (see ``envs.robots.real.client.RemoteWorld``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from manipstack.envs.core.camera import Intrinsics, SimCamera, look_at
from manipstack.envs.robots import make_workcell, workcell_names
from manipstack.envs.robots.real.protocol import REMOTE_WORLD_ATTRIBUTES, REMOTE_WORLD_METHODS
from manipstack.envs.robots.sim.panda import SimPandaConfig

SCENE_METHODS = ("reset", "call_world")
"""Twin methods a bridge client may call remotely."""

@dataclass(frozen=True)
class SimTwinConfig:
    """Simulated workcell served by ``manipstack bridge serve --backend sim``."""

    robot: str = "panda"
    """Robot of the twin's workcell, a registered workcell name: panda (arm + parallel gripper) or floating-hand
    (the dexterous hand held by its wrist)."""
    time_step: float = 1.0 / 240.0
    """Physics step in s (match the task's, for results identical to an in-process run)."""
    solver_iterations: int = 50
    """Constraint-solver iterations per physics step (match the task's, for identical results)."""
    camera: bool = True
    """Add a top-down RGB-D camera named ``top`` (streamed by the bridge, not part of arm observations)."""
    camera_width: int = 320
    """Camera image width in pixels."""
    camera_height: int = 240
    """Camera image height in pixels."""
    camera_fov_deg: float = 45.0
    """Vertical field of view of the camera in degrees."""
    camera_eye: tuple[float, float, float] = (0.0, 0.0, 1.0)
    """Camera position in m, world frame; it looks at the world origin with image top toward +x."""

    def __post_init__(self) -> None:
        if self.robot not in workcell_names():
            raise ValueError(f"twin robot must be one of {workcell_names()}, got {self.robot!r}")
        if self.time_step <= 0:
            raise ValueError(f"time_step must be > 0 s, got {self.time_step}")
        if self.camera_width <= 0 or self.camera_height <= 0:
            raise ValueError(f"camera size must be positive, got {self.camera_width}x{self.camera_height}")


class SimTwin:
    """A simulated workcell (``world``, ``robot``) with optional cameras, remote-controllable by data only.

    Args:
        config: the workcell's robot, physics settings and camera.
        panda: Panda settings (only for ``config.robot == "panda"``; default ``SimPandaConfig()``).
    """

    def __init__(self, config: SimTwinConfig | None = None, panda: SimPandaConfig | None = None) -> None:
        self.config = cfg = config or SimTwinConfig()
        self.robot_name = cfg.robot
        """The registered workcell name of the twin's robot (``describe`` reports it as ``workcell``)."""
        settings: dict[str, Any] = {"time_step": cfg.time_step, "solver_iterations": cfg.solver_iterations}
        if panda is not None:
            if cfg.robot != "panda":
                raise ValueError(f"panda settings were given for a twin of robot {cfg.robot!r}")
            settings["panda"] = panda
        self.cell = make_workcell(cfg.robot, "sim", **settings)
        self.world, self.robot = self.cell.world, self.cell.robot
        self.cameras: dict[str, SimCamera] = {}
        if cfg.camera:
            intrinsics = Intrinsics.from_fov(cfg.camera_width, cfg.camera_height, cfg.camera_fov_deg)
            pose = look_at(np.array(cfg.camera_eye), np.zeros(3), up=np.array([1.0, 0.0, 0.0]))
            self.cameras["top"] = SimCamera(self.world, intrinsics, pose, name="top", segmentation=False)

    def close(self) -> None:
        """Release the physics clients; safe to call more than once."""
        self.cell.close()

    # -------------------------------------------------------------- scene operations (remote-callable)
    def reset(self) -> None:
        """Empty the workcell: only the table and the robot (at home, end effector open, connected) remain."""
        self.cell.reset()

    def call_world(self, attribute: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None) -> Any:
        """Run ``world.<attribute>(*args, **kwargs)`` for a method in :data:`REMOTE_WORLD_METHODS`, or read an
        attribute in :data:`REMOTE_WORLD_ATTRIBUTES` (no arguments)."""
        args, kwargs = list(args), dict(kwargs or {})
        if attribute in REMOTE_WORLD_ATTRIBUTES:
            if args or kwargs:
                raise ValueError(f"world.{attribute} is an attribute: it takes no arguments")
            return getattr(self.world, attribute)
        if attribute not in REMOTE_WORLD_METHODS:
            raise ValueError(f"world.{attribute} cannot be called remotely; allowed: "
                             f"{sorted(REMOTE_WORLD_METHODS | REMOTE_WORLD_ATTRIBUTES)}")
        if attribute == "remove_body" and self.robot.name in (*args[:1], kwargs.get("name")):
            raise ValueError(f"the robot body {self.robot.name!r} cannot be removed")
        return getattr(self.world, attribute)(*args, **kwargs)
