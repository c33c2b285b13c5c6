"""A floating multi-finger hand in PyBullet: the wrist is held at a pose by a constraint, fingers are PD-driven.

Any hand described by a URDF + hand spec JSON works (see ``assets/hands/``); joints are addressed in the
spec's order, whatever their number. Units: m, rad, N, N m; quaternions (x, y, z, w); world frame.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manipstack.envs.core.world import World

DEFAULT_HAND_SPEC = Path(__file__).resolve().parents[3] / "assets" / "hands" / "allegro_like.json"


@dataclass(frozen=True)
class SimHandConfig:
    """Floating-hand settings."""

    spec: Path = DEFAULT_HAND_SPEC
    """Hand spec JSON; its ``urdf`` entry is resolved relative to the spec's folder."""
    wrist_max_force: float = 2000.0
    """Max force in N of the constraint holding the wrist (large: the wrist is effectively fixed)."""
    joint_max_torque: float = 0.7
    """Max motor torque per finger joint in N m (Allegro: about 0.7)."""
    position_gain: float = 0.3
    """Position gain of the joint PD motors."""
    friction: float = 1.0
    """Lateral friction coefficient of every hand link (PyBullet multiplies it with the other body's)."""
    name: str = "hand"
    """Body name in the world."""

    def __post_init__(self) -> None:
        if not Path(self.spec).is_file():
            raise FileNotFoundError(f"hand spec not found: {self.spec}")
        if self.wrist_max_force <= 0 or self.joint_max_torque <= 0:
            raise ValueError("wrist_max_force and joint_max_torque must be > 0")


class SimHand:
    """A floating hand in a :class:`World`.

    Args:
        world: the world to load the hand into.
        config: hand settings.
        position: initial wrist position (3,), m; quat_xyzw: initial wrist orientation (x, y, z, w).
    """

    def __init__(self, world: World, config: SimHandConfig | None = None,
                 position: Sequence[float] = (0.0, 0.0, 0.0),
                 quat_xyzw: Sequence[float] = (0.0, 0.0, 0.0, 1.0)) -> None:
        self.world, self.config = world, config or SimHandConfig()
        spec_path = Path(self.config.spec)
        self.spec = json.loads(spec_path.read_text())
        self.name = self.config.name
        world.add_urdf(self.name, spec_path.parent / self.spec["urdf"], position, quat_xyzw)
        by_name = {j.name: j for j in world.joint_infos(self.name)}
        missing = [j["name"] for j in self.spec["joints"] if j["name"] not in by_name]
        if missing:
            raise ValueError(f"hand spec joints missing from the URDF: {missing}")
        self.joint_ids = [by_name[j["name"]].index for j in self.spec["joints"]]
        self.lower = np.array([j["lower"] for j in self.spec["joints"]])
        self.upper = np.array([j["upper"] for j in self.spec["joints"]])
        self.link_ids = [-1, *sorted(j.index for j in by_name.values())]
        for link in self.link_ids:
            world.set_dynamics(self.name, link, lateralFriction=self.config.friction)
        self._constraint = world.create_world_constraint(self.name, position, quat_xyzw, self.config.wrist_max_force)

    @property
    def num_joints(self) -> int:
        """Number of actuated finger joints J."""
        return len(self.joint_ids)

    def reset(self, position: Sequence[float], quat_xyzw: Sequence[float], joints_rad: Sequence[float]) -> None:
        """Teleport the wrist to a pose and the fingers to joint angles (J,) rad, all at rest; motors hold them."""
        joints_rad = self._check_joints(joints_rad)
        self.world.set_body_pose(self.name, position, quat_xyzw)
        self.world.set_body_velocity(self.name)
        self.world.move_world_constraint(self._constraint, position, quat_xyzw, self.config.wrist_max_force)
        self.world.reset_joints(self.name, self.joint_ids, joints_rad)
        self.set_joint_targets(joints_rad)

    def set_joint_targets(self, joints_rad: Sequence[float]) -> None:
        """PD targets (J,) rad for the finger joints, each motor limited to ``joint_max_torque``."""
        joints_rad = self._check_joints(joints_rad)
        self.world.set_joint_targets(self.name, self.joint_ids, joints_rad, [self.config.joint_max_torque]
                                     * self.num_joints, position_gain=self.config.position_gain)

    def _check_joints(self, joints_rad: Sequence[float]) -> np.ndarray:
        joints = np.asarray(joints_rad, dtype=float)
        if joints.shape != (self.num_joints,) or not np.all(np.isfinite(joints)):
            raise ValueError(f"need {self.num_joints} finite joint angles in rad, got {joints.tolist()}")
        return joints
