"""The grasp-validation scene: a floating hand and one free object in PyBullet, gravity along 6 axes (no torch).

A grasp (wrist pose in the object frame + joint angles) is **valid** when, with the wrist held at the grasp
pose and the fingers driven to the grasp joints plus a small squeeze along the contact normals, the object
stays held (moves < ``max_displacement`` and keeps contact with the hand) for ``hold_time`` s under gravity
applied along each of the 6 axis directions separately -- all 6 must hold -- and the largest hand-object
penetration at the grasp pose is < ``max_penetration``. The squeeze first runs ``settle_time`` s without
gravity (the object must not be pushed ``max_displacement`` away by it); each hold test then starts from that
squeezed state and measures the displacement from it. The object floats free at the origin of the world
(= object frame). Parameters are fixed in :class:`ValidationConfig`; change them only knowingly.

The squeeze targets come from the caller (``manipstack.grasp_models.validation`` computes them with the
differentiable hand model and validates batches of grasps); this module only runs the physics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from manipstack.assets.hands import DEFAULT_HAND_SPEC
from manipstack.envs.core.mesh_cache import cache_trimesh
from manipstack.envs.core.world import World
from manipstack.envs.robots import make_robot

GRAVITY_DIRECTIONS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
"""The 6 unit directions (6, 3), world = object frame, along which gravity is applied in turn."""


@dataclass(frozen=True)
class ValidationConfig:
    """Fixed physics-validation parameters (SI units)."""

    hold_time: float = 1.0
    """Seconds each of the 6 gravity directions is applied."""
    settle_time: float = 0.1
    """Seconds the fingers squeeze without gravity before the hold tests."""
    max_displacement: float = 0.02
    """Largest allowed object displacement in m during a hold test."""
    max_penetration: float = 0.005
    """Largest allowed hand-object penetration depth in m at the grasp pose."""
    squeeze: float = 0.01
    """Target depth in m of the squeeze along the inward contact normals (turned into joint targets)."""
    squeeze_contact_threshold: float = 0.01
    """Hand contact candidates within this distance in m of the surface are squeezed."""
    gravity: float = 9.81
    """Magnitude of the gravity applied along each axis direction, m/s^2."""
    object_density: float = 400.0
    """Object density in kg/m^3 (mass = density x volume)."""
    object_friction: float = 0.8
    """Object lateral friction; with hand friction 1.0 the effective coefficient is 0.8 (PyBullet multiplies)."""
    time_step: float = 1.0 / 240.0
    """Physics time step in s."""
    solver_iterations: int = 30
    """Constraint-solver iterations per step."""


@dataclass
class GraspCheck:
    """Outcome of one grasp: valid, penetration depth in m, and the failing stage (``""`` if valid)."""

    valid: bool
    penetration: float
    failure: str


class GraspValidator:
    """One PyBullet world holding a floating hand and one object; validates grasps one at a time.

    The hand comes from the robot registry (``make_robot("sim-hand", ...)``); besides the contract the validator
    uses what only a simulated hand offers: teleporting to a grasp (``reset``) and setting PD targets directly.

    Args:
        vertices: (V, 3) object mesh in m, object frame (origin = where the object floats).
        faces: (F, 3) int triangles.
        config: validation parameters.
        hand_spec: hand spec JSON.
        cache_dir: folder for the object's OBJ file and convex decomposition (default: the World's).
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, config: ValidationConfig | None = None,
                 hand_spec: Path = DEFAULT_HAND_SPEC, cache_dir: Path | None = None) -> None:
        self.config = config or ValidationConfig()
        self.world = World(time_step=self.config.time_step, gravity=0.0,
                           solver_iterations=self.config.solver_iterations, cache_dir=cache_dir)
        mesh = trimesh.Trimesh(np.asarray(vertices, float), np.asarray(faces, np.int64), process=False)
        path = cache_trimesh(mesh, self.world.cache_dir / "grasp_objects")
        volume = abs(mesh.volume) if mesh.is_watertight else mesh.convex_hull.volume
        self.mass = self.config.object_density * volume
        self.world.add_mesh("object", path, mass=self.mass, friction=self.config.object_friction,
                            decompose=not mesh.is_convex, color=(0.9, 0.55, 0.2, 1.0))
        self.hand = make_robot("sim-hand", world=self.world, spec=hand_spec, position=(0.0, 0.0, 1.0))
        self._base_state = self.world.save_state()

    def close(self) -> None:
        """Disconnect the physics client; safe to call more than once."""
        self.world.close()

    def __enter__(self) -> GraspValidator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def penetration(self) -> float:
        """Current largest hand-object penetration depth in m (0 if apart)."""
        points = self.world.closest_points(self.hand.name, "object", 0.0)
        return max([0.0, *(-p[8] for p in points)])

    def set_grasp(self, position: np.ndarray, quat_xyzw: np.ndarray, joints: np.ndarray) -> None:
        """Place the hand at a grasp (wrist pose in m / (x, y, z, w), joints (J,) rad) and the object at rest."""
        self.world.restore_state(self._base_state)
        self.world.set_gravity((0.0, 0.0, 0.0))
        self.world.set_body_pose("object", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
        self.world.set_body_velocity("object")
        self.hand.reset(position, quat_xyzw, joints)

    def check(self, position: np.ndarray, quat_xyzw: np.ndarray, joints: np.ndarray, squeeze_joints: np.ndarray
              ) -> GraspCheck:
        """Validate one grasp: wrist position (3,) m and quaternion (x, y, z, w) in the object frame, joints
        (J,) rad; ``squeeze_joints`` (J,) rad are the motor targets during the hold tests."""
        cfg = self.config
        self.set_grasp(position, quat_xyzw, joints)
        depth = self.penetration()
        if depth >= cfg.max_penetration:
            return GraspCheck(False, depth, "penetration")
        self.hand.set_joint_targets(squeeze_joints)
        self.world.step(int(round(cfg.settle_time / cfg.time_step)))
        settled = self.world.body_pose("object")[0]
        if float(np.linalg.norm(settled)) >= cfg.max_displacement:
            return GraspCheck(False, depth, "pushed away by the squeeze")
        squeezed = self.world.save_state()
        steps = int(round(cfg.hold_time / cfg.time_step))
        try:
            for direction in GRAVITY_DIRECTIONS:
                self.world.restore_state(squeezed)
                self.world.set_gravity(cfg.gravity * direction)
                self.world.step(steps)
                moved = float(np.linalg.norm(self.world.body_pose("object")[0] - settled))
                if moved >= cfg.max_displacement:
                    return GraspCheck(False, depth, f"dropped along {direction.tolist()}")
                if not self.world.contact_points(self.hand.name, "object"):
                    return GraspCheck(False, depth, f"lost contact along {direction.tolist()}")
        finally:
            self.world.remove_state(squeezed)
        return GraspCheck(True, depth, "")
