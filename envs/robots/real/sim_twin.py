"""The simulated Panda as a digital twin: a World, a SimPanda and a camera that the bridge server can own.

The twin's scene operations (:data:`SCENE_METHODS`) take plain data only (names, sizes, poses), so a
remote client can build and inspect a scene without being able to run code on the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envs.core.camera import Intrinsics, SimCamera, look_at
from envs.core.poses import pose_to_pose7
from envs.core.world import World
from envs.robots.sim.panda import SimPanda, SimPandaConfig

SCENE_METHODS = ("reset", "add_primitive", "remove_body", "body_pose", "body_names", "step_until_static")
"""Twin methods a bridge client may call remotely."""


@dataclass(frozen=True)
class SimTwinConfig:
    """Simulated workcell served by ``manipstack bridge serve --backend sim``."""

    time_step: float = 1.0 / 240.0
    """Physics step in s."""
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
        if self.time_step <= 0:
            raise ValueError(f"time_step must be > 0 s, got {self.time_step}")
        if self.camera_width <= 0 or self.camera_height <= 0:
            raise ValueError(f"camera size must be positive, got {self.camera_width}x{self.camera_height}")


class SimTwin:
    """A world with a table plane, a Panda (``robot``, not yet connected) and optional cameras."""

    def __init__(self, config: SimTwinConfig | None = None, panda: SimPandaConfig | None = None) -> None:
        self.config = config or SimTwinConfig()
        self.panda_config = panda or SimPandaConfig()
        self.world: World
        self.robot: SimPanda
        self.cameras: dict[str, SimCamera] = {}
        self._build()

    def _build(self) -> None:
        cfg = self.config
        self.world = World(time_step=cfg.time_step)
        self.world.add_plane()
        self.robot = SimPanda(self.world, self.panda_config)
        self.cameras = {}
        if cfg.camera:
            intrinsics = Intrinsics.from_fov(cfg.camera_width, cfg.camera_height, cfg.camera_fov_deg)
            pose = look_at(np.array(cfg.camera_eye), np.zeros(3), up=np.array([1.0, 0.0, 0.0]))
            self.cameras["top"] = SimCamera(self.world, intrinsics, pose, name="top", segmentation=False)

    def close(self) -> None:
        """Release the physics clients; safe to call more than once."""
        self.robot.disconnect()
        self.world.close()

    # -------------------------------------------------------------- scene operations (remote-callable)
    def reset(self) -> None:
        """Rebuild the workcell from scratch (fresh physics client), as if just constructed; robot connected."""
        self.close()
        self._build()
        self.robot.connect()

    def add_primitive(
        self,
        name: str,
        shape: str,
        size: Sequence[float],
        position: Sequence[float],
        quat_xyzw: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
        mass: float = 0.1,
        friction: float = 0.8,
        color: Sequence[float] = (0.7, 0.7, 0.7, 1.0),
    ) -> None:
        """Add a box, cylinder or sphere (see :meth:`World.add_primitive`; sizes and positions in m, mass kg)."""
        self.world.add_primitive(name, shape, size, position, quat_xyzw, mass=mass, friction=friction, color=color)

    def remove_body(self, name: str) -> None:
        if name == self.robot.name:
            raise ValueError(f"the robot body {name!r} cannot be removed")
        self.world.remove_body(name)

    def body_pose(self, name: str) -> np.ndarray:
        """Base pose ``[x, y, z, qx, qy, qz, qw]`` (7,) of a body, m, world frame."""
        return pose_to_pose7(*self.world.body_pose(name))

    def body_names(self) -> list[str]:
        return self.world.body_names

    def step_until_static(self, max_time_s: float = 2.0) -> bool:
        """Advance physics until objects rest or ``max_time_s`` simulated s passed; True if they rest."""
        if not 0 < max_time_s <= 30:
            raise ValueError(f"max_time_s must be in (0, 30] s, got {max_time_s}")
        return self.world.step_until_static(max_time=max_time_s)
