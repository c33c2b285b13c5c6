"""The PyBullet world: one physics client per env, bodies looked up by name.

This is the only module family (``envs/core``) that calls PyBullet. Robots, tasks and primitives
use the facade methods here, so a second world in the same process never interferes with the first.

Units: SI (m, kg, s, rad, N). Frames: world, z-up, table top at z = 0. Quaternions (x, y, z, w).
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manipstack.envs.core.native_output import silenced

with silenced(2):  # the native module prints its build time when first imported
    import pybullet
import pybullet_data
from pybullet_utils import bullet_client

from manipstack.envs.core.mesh_cache import default_cache_dir, prepare_mesh
from manipstack.envs.core.scene_protocol import IDENTITY_QUAT

log = logging.getLogger(__name__)


def pybullet_data_path() -> Path:
    """The folder of the data files shipped with PyBullet (``pybullet_data``: plane, Panda, ``random_urdfs/``).

    Code outside ``envs`` that needs these files (e.g. grasp-object sources) asks here instead of importing
    ``pybullet_data`` itself.
    """
    return Path(pybullet_data.getDataPath())


@dataclass(frozen=True)
class JointInfo:
    """Static description of one joint of a multibody (limits in rad or m, forces in N or N m)."""

    index: int
    name: str
    joint_type: int
    lower: float
    upper: float
    max_force: float
    max_velocity: float
    link_name: str


@dataclass(frozen=True)
class Lighting:
    """TinyRenderer's light: a directional light of ``color`` (RGB in [0, 1]) shining from ``direction`` (3,)
    (world frame, toward the light), with ambient / diffuse / specular coefficients, and optional shadows."""

    direction: tuple[float, float, float] = (0.3, -0.4, 1.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.35
    specular: float = 0.05
    shadow: bool = False


class World:
    """A PyBullet simulation owned by one env; it satisfies :class:`~manipstack.envs.core.scene_protocol.SceneWorld`.

    Args:
        time_step: physics step in s.
        gravity: gravitational acceleration in m/s^2, applied along -z.
        solver_iterations: constraint-solver iterations per step.
        cache_dir: folder for converted meshes and convex decompositions; defaults to
            ``$MANIPSTACK_CACHE`` or ``~/.cache/manipstack``.
    """

    def __init__(
        self,
        time_step: float = 1.0 / 240.0,
        gravity: float = 9.81,
        solver_iterations: int = 50,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        if time_step <= 0:
            raise ValueError(f"time_step must be > 0 s, got {time_step}")
        if time_step > 1.0 / 60.0:
            warnings.warn(
                f"time_step {time_step:.4f} s is coarser than 1/60 s: contacts and grasps get unstable",
                stacklevel=2,
            )
        with silenced():  # every new client prints "argv[0]="
            self.client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        self.cid = self.client._client
        self.time_step = float(time_step)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.client.setAdditionalSearchPath(str(pybullet_data_path()))
        self.solver_iterations = int(solver_iterations)
        self.client.setPhysicsEngineParameter(
            fixedTimeStep=self.time_step, numSolverIterations=solver_iterations, deterministicOverlappingPairs=1
        )
        self.gravity = float(gravity)
        self.client.setGravity(0.0, 0.0, -self.gravity)
        self._step_simulation = functools.partial(pybullet.stepSimulation, physicsClientId=self.cid)
        self._bodies: dict[str, int] = {}
        self._hidden: dict[str, list[tuple[int, list[float]]]] = {}
        self._textures: dict[str, int] = {}
        self.sim_time = 0.0
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Disconnect the physics client; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self.client.disconnect()

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset_simulation(self) -> None:
        """Remove every body and restore gravity and engine parameters."""
        self.client.resetSimulation()
        self.client.setPhysicsEngineParameter(
            fixedTimeStep=self.time_step, numSolverIterations=self.solver_iterations, deterministicOverlappingPairs=1
        )
        self.client.setGravity(0.0, 0.0, -self.gravity)
        self._bodies.clear()
        self._hidden.clear()
        self._textures.clear()
        self.sim_time = 0.0

    def set_gravity(self, acceleration: Sequence[float]) -> None:
        """Set the gravity vector (3,) in m/s^2, world frame; :meth:`reset_simulation` restores (0, 0, -gravity)."""
        self.client.setGravity(*[float(a) for a in acceleration])

    # ------------------------------------------------------------------ stepping
    def step(self, num_steps: int = 1) -> None:
        """Advance physics by ``num_steps`` fixed time steps."""
        step = self._step_simulation
        for _ in range(num_steps):
            step()
        self.sim_time += num_steps * self.time_step

    def step_until_static(
        self,
        max_time: float = 5.0,
        linear_tol: float = 5e-3,
        angular_tol: float = 5e-2,
        names: Sequence[str] | None = None,
        check_every: int = 8,
    ) -> bool:
        """Step until every (named) dynamic body is at rest or ``max_time`` s of sim time passed.

        Args:
            max_time: limit in simulated s; the loop never runs longer.
            linear_tol: speed in m/s under which a body counts as static.
            angular_tol: angular speed in rad/s under which a body counts as static.
            names: bodies to watch; default all bodies with mass.
            check_every: physics steps between velocity checks.

        Returns:
            True if everything came to rest, False if the time limit was hit (also logged).
        """
        ids = [self._bodies[n] for n in names] if names is not None else self.dynamic_body_ids()
        max_steps = int(np.ceil(max_time / self.time_step))
        taken = 0
        while taken < max_steps:
            n = min(check_every, max_steps - taken)
            self.step(n)
            taken += n
            if all(self._is_static(i, linear_tol, angular_tol) for i in ids):
                return True
        log.info("step_until_static hit its %.2f s limit with bodies still moving", max_time)
        return False

    def _is_static(self, body_id: int, linear_tol: float, angular_tol: float) -> bool:
        lin, ang = self.client.getBaseVelocity(body_id)
        return float(np.linalg.norm(lin)) < linear_tol and float(np.linalg.norm(ang)) < angular_tol

    def dynamic_body_ids(self) -> list[int]:
        """Ids of bodies whose base has non-zero mass (the ones that can move)."""
        return [i for i in self._bodies.values() if self.client.getDynamicsInfo(i, -1)[0] > 0]

    # ------------------------------------------------------------------ state
    def save_state(self) -> int:
        """Snapshot the full physics state in memory; returns a handle for :meth:`restore_state`."""
        return self.client.saveState()

    def restore_state(self, state_id: int) -> None:
        """Restore a snapshot taken with :meth:`save_state` (same bodies must exist)."""
        self.client.restoreState(stateId=state_id)

    def remove_state(self, state_id: int) -> None:
        self.client.removeState(state_id)

    # ------------------------------------------------------------------ bodies
    def _register(self, name: str, body_id: int) -> int:
        if name in self._bodies:
            raise ValueError(f"a body named {name!r} already exists in this world")
        self._bodies[name] = body_id
        return body_id

    def body_id(self, name: str) -> int:
        """PyBullet id of the body called ``name``."""
        try:
            return self._bodies[name]
        except KeyError:
            raise KeyError(f"no body named {name!r}; bodies: {sorted(self._bodies)}") from None

    @property
    def body_names(self) -> list[str]:
        return list(self._bodies)

    def has_body(self, name: str) -> bool:
        return name in self._bodies

    def remove_body(self, name: str) -> None:
        self._hidden.pop(name, None)
        self.client.removeBody(self._bodies.pop(name))

    def enable_sleeping(self, name: str) -> None:
        """Let a body fall asleep once at rest (then it costs almost nothing to simulate until touched)."""
        self.client.changeDynamics(
            self.body_id(name), -1, activationState=pybullet.ACTIVATION_STATE_ENABLE_SLEEPING
        )

    def wake_up(self, name: str) -> None:
        """Wake a sleeping body (e.g. after the body it rested on was removed)."""
        self.client.changeDynamics(self.body_id(name), -1, activationState=pybullet.ACTIVATION_STATE_WAKE_UP)

    def set_visible(self, name: str, visible: bool) -> None:
        """Hide a body from rendering (all links fully transparent, which TinyRenderer skips) or show it again.

        Physics is unaffected. Use it to skip drawing a body known to be outside a camera's view.
        """
        body = self.body_id(name)
        if not visible and name not in self._hidden:
            links = [(d[1], list(d[7])) for d in self.client.getVisualShapeData(body)]
            self._hidden[name] = links
            for link, rgba in links:
                self.client.changeVisualShape(body, link, rgbaColor=[*rgba[:3], 0.0])
        elif visible and name in self._hidden:
            for link, rgba in self._hidden.pop(name):
                self.client.changeVisualShape(body, link, rgbaColor=rgba)

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
        """Load a URDF (absolute path or relative to pybullet_data) as body ``name``."""
        path = str(path)
        found = Path(path).is_file() or (pybullet_data_path() / path).is_file()
        if not found:
            raise FileNotFoundError(f"URDF not found: {path}")
        flags = pybullet.URDF_USE_INERTIA_FROM_FILE | (pybullet.URDF_USE_SELF_COLLISION if self_collision else 0)
        try:
            body = self.client.loadURDF(
                path, position, quat_xyzw, useFixedBase=fixed, globalScaling=scale, flags=flags
            )
        except pybullet.error as err:
            raise ValueError(f"could not load URDF {path}: {err}") from None
        return self._register(name, body)

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
        """Load a mesh file (.obj, .stl, .ply, ...) as a dynamic rigid body ``name``.

        The visual shape is the mesh itself; the collision shape is its convex decomposition
        (V-HACD, cached on disk) when ``decompose`` is set and the mesh is concave, else its hull.
        ``collision_path``, if given, is an OBJ already split into convex parts (one ``o`` object
        each, loaded as a compound of hulls) used as the collision shape instead.
        ``mass`` in kg (0 makes it static), ``scale`` unitless (scalar or per axis).
        """
        mesh = prepare_mesh(
            Path(path), self.cache_dir, decompose=decompose and collision_path is None, client=self.client
        )
        if collision_path is not None and not Path(collision_path).is_file():
            raise FileNotFoundError(f"collision mesh not found: {collision_path}")
        collision_obj = mesh.collision_obj if collision_path is None else Path(collision_path)
        mesh_scale = [float(scale)] * 3 if np.isscalar(scale) else [float(s) for s in scale]
        visual = self.client.createVisualShape(
            pybullet.GEOM_MESH, fileName=str(mesh.visual_obj), meshScale=mesh_scale, rgbaColor=list(color)
        )
        collision = self.client.createCollisionShape(
            pybullet.GEOM_MESH, fileName=str(collision_obj), meshScale=mesh_scale
        )
        body = self.client.createMultiBody(mass, collision, visual, position, quat_xyzw)
        self.client.changeDynamics(body, -1, lateralFriction=friction)
        return self._register(name, body)

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
        """Add a box, cylinder or sphere.

        Args:
            shape: ``"box"`` (size = full extents x, y, z in m), ``"cylinder"`` (size = diameter,
                diameter, height in m, axis along z) or ``"sphere"`` (size = diameter in m, repeated).
            mass: kg; 0 makes the body static.
        """
        size = np.asarray(size, dtype=float)
        if size.shape != (3,) or np.any(size <= 0):
            raise ValueError(f"size must be 3 positive extents in m, got {size.tolist()}")
        if shape == "box":
            geom = {"shapeType": pybullet.GEOM_BOX, "halfExtents": (size / 2).tolist()}
            vis = dict(geom)
        elif shape == "cylinder":
            geom = {"shapeType": pybullet.GEOM_CYLINDER, "radius": size[0] / 2, "height": size[2]}
            vis = {"shapeType": pybullet.GEOM_CYLINDER, "radius": size[0] / 2, "length": size[2]}
        elif shape == "sphere":
            geom = {"shapeType": pybullet.GEOM_SPHERE, "radius": size[0] / 2}
            vis = dict(geom)
        else:
            raise ValueError(f"shape must be one of {{'box', 'cylinder', 'sphere'}}, got {shape!r}")
        collision = self.client.createCollisionShape(**geom)
        visual = self.client.createVisualShape(rgbaColor=list(color), **vis)
        body = self.client.createMultiBody(mass, collision, visual, position, quat_xyzw)
        self.client.changeDynamics(body, -1, lateralFriction=friction)
        return self._register(name, body)

    def add_plane(self, name: str = "plane", friction: float = 0.8) -> int:
        """Static ground plane whose top surface is z = 0 (the table top)."""
        body = self.add_urdf(name, "plane.urdf", fixed=True)
        self.client.changeDynamics(body, -1, lateralFriction=friction)
        return body

    def set_dynamics(self, name: str, link: int = -1, **params: float) -> None:
        """Change dynamics (``mass``, ``lateralFriction``, ``spinningFriction``, ...) of a body link."""
        self.client.changeDynamics(self.body_id(name), link, **params)

    def set_texture(self, name: str, path: str | os.PathLike, link: int = -1) -> None:
        """Draw a body (link) with an image texture (PNG/JPG; the mesh's texture coordinates map it; loaded once)."""
        key = str(Path(path).resolve())
        if key not in self._textures:
            if not Path(key).is_file():
                raise FileNotFoundError(f"texture image not found: {path}")
            self._textures[key] = self.client.loadTexture(key)
        self.client.changeVisualShape(self.body_id(name), link, textureUniqueId=self._textures[key])

    def set_color(self, name: str, rgba: Sequence[float], link: int = -1) -> None:
        self.client.changeVisualShape(self.body_id(name), link, rgbaColor=list(rgba))

    def body_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Base pose: (position (3,) in m, quaternion (x, y, z, w)), world frame."""
        pos, quat = self.client.getBasePositionAndOrientation(self.body_id(name))
        return np.array(pos), np.array(quat)

    def set_body_pose(self, name: str, position: Sequence[float], quat_xyzw: Sequence[float]) -> None:
        self.client.resetBasePositionAndOrientation(self.body_id(name), position, quat_xyzw)

    def body_velocity(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Base (linear m/s (3,), angular rad/s (3,)) velocity, world frame."""
        lin, ang = self.client.getBaseVelocity(self.body_id(name))
        return np.array(lin), np.array(ang)

    def aabb(self, name: str, link: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounding box (min (3,), max (3,)) in m, world frame."""
        lo, hi = self.client.getAABB(self.body_id(name), link)
        return np.array(lo), np.array(hi)

    def contact_points(self, name_a: str, name_b: str | None = None, link_a: int | None = None) -> list:
        """PyBullet contact points between two bodies (or body A and anything)."""
        kwargs = {"bodyA": self.body_id(name_a)}
        if name_b is not None:
            kwargs["bodyB"] = self.body_id(name_b)
        if link_a is not None:
            kwargs["linkIndexA"] = link_a
        return list(self.client.getContactPoints(**kwargs))

    def closest_points(self, name_a: str, name_b: str, distance: float) -> list:
        """Point pairs closer than ``distance`` m between two bodies (negative distance = penetration)."""
        return list(self.client.getClosestPoints(self.body_id(name_a), self.body_id(name_b), distance))

    # ------------------------------------------------------------------ articulated bodies
    def joint_infos(self, name: str) -> list[JointInfo]:
        body = self.body_id(name)
        infos = []
        for j in range(self.client.getNumJoints(body)):
            raw = self.client.getJointInfo(body, j)
            infos.append(
                JointInfo(j, raw[1].decode(), raw[2], raw[8], raw[9], raw[10], raw[11], raw[12].decode())
            )
        return infos

    def joint_states(self, name: str, joints: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Joint (positions rad|m, velocities rad/s|m/s), each (len(joints),)."""
        states = self.client.getJointStates(self.body_id(name), joints)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def joint_reaction_wrench(self, name: str, joint: int) -> np.ndarray:
        """Reaction force/torque (6,) in N and N m at a joint with an enabled force-torque sensor."""
        return np.array(self.client.getJointState(self.body_id(name), joint)[2])

    def enable_ft_sensor(self, name: str, joint: int) -> None:
        self.client.enableJointForceTorqueSensor(self.body_id(name), joint, True)

    def reset_joints(self, name: str, joints: Sequence[int], positions: Sequence[float]) -> None:
        """Teleport joints to positions (rad|m) with zero velocity; no dynamics are simulated."""
        body = self.body_id(name)
        for j, q in zip(joints, positions):
            self.client.resetJointState(body, j, q, 0.0)

    def set_joint_targets(
        self,
        name: str,
        joints: Sequence[int],
        positions: Sequence[float],
        forces: Sequence[float],
        position_gain: float = 0.1,
        max_velocity: float | None = None,
    ) -> None:
        """Position-control motors toward target positions (rad|m) with max forces (N|N m)."""
        body = self.body_id(name)
        if max_velocity is None:
            self.client.setJointMotorControlArray(
                body,
                list(joints),
                pybullet.POSITION_CONTROL,
                targetPositions=list(positions),
                forces=list(forces),
                positionGains=[position_gain] * len(joints),
            )
            return
        for j, q, f in zip(joints, positions, forces):
            self.client.setJointMotorControl2(
                body, j, pybullet.POSITION_CONTROL, q, force=f, positionGain=position_gain, maxVelocity=max_velocity
            )

    def link_pose(self, name: str, link: int) -> tuple[np.ndarray, np.ndarray]:
        """World pose of a link frame: (position (3,) m, quaternion (x, y, z, w))."""
        state = self.client.getLinkState(self.body_id(name), link, computeForwardKinematics=True)
        return np.array(state[4]), np.array(state[5])

    def inverse_kinematics(
        self,
        name: str,
        link: int,
        position: Sequence[float],
        quat_xyzw: Sequence[float],
        rest_poses: Sequence[float] | None = None,
        lower: Sequence[float] | None = None,
        upper: Sequence[float] | None = None,
        max_iterations: int = 200,
        residual: float = 1e-5,
    ) -> np.ndarray:
        """Joint positions (all movable joints, rad|m) placing ``link`` at the target pose.

        With limits and rest poses given, PyBullet's null-space IK keeps the solution near them.
        """
        kwargs = {"maxNumIterations": max_iterations, "residualThreshold": residual}
        if rest_poses is not None:
            ranges = [u - lo for lo, u in zip(lower, upper)]
            kwargs.update(lowerLimits=list(lower), upperLimits=list(upper), jointRanges=ranges,
                          restPoses=list(rest_poses))
        return np.array(
            self.client.calculateInverseKinematics(self.body_id(name), link, position, quat_xyzw, **kwargs)
        )

    def create_world_constraint(
        self, child: str, position: Sequence[float], quat_xyzw: Sequence[float], max_force: float
    ) -> int:
        """Hold ``child``'s base at a world pose (m, quaternion (x, y, z, w)) with at most ``max_force`` N."""
        cid = self.client.createConstraint(
            self.body_id(child), -1, -1, -1, pybullet.JOINT_FIXED, (0, 0, 0), (0, 0, 0), list(position),
            childFrameOrientation=list(quat_xyzw),
        )
        self.client.changeConstraint(cid, list(position), list(quat_xyzw), maxForce=float(max_force))
        return cid

    def move_world_constraint(
        self, constraint_id: int, position: Sequence[float], quat_xyzw: Sequence[float], max_force: float
    ) -> None:
        """Move the world pose held by a :meth:`create_world_constraint` constraint."""
        self.client.changeConstraint(constraint_id, list(position), list(quat_xyzw), maxForce=float(max_force))

    def world_constraint_wrench(self, constraint_id: int, child: str) -> np.ndarray:
        """Wrench (6,) that a :meth:`create_world_constraint` constraint applied to ``child``'s base in the last step:
        force (3,) in N and torque (3,) in N m about the base origin, both in the base frame.

        (PyBullet reports the force in world axes and the torque in base axes; the force is rotated here.)
        """
        state = np.asarray(self.client.getConstraintState(constraint_id), dtype=float)
        _, quat = self.client.getBasePositionAndOrientation(self.body_id(child))
        world_from_base = np.asarray(self.client.getMatrixFromQuaternion(quat), dtype=float).reshape(3, 3)
        return np.concatenate([world_from_base.T @ state[:3], state[3:6]])

    def set_body_velocity(
        self, name: str, linear: Sequence[float] = (0.0, 0.0, 0.0), angular: Sequence[float] = (0.0, 0.0, 0.0)
    ) -> None:
        """Set a body's base velocity: linear (3,) m/s, angular (3,) rad/s, world frame."""
        self.client.resetBaseVelocity(self.body_id(name), list(linear), list(angular))

    # ------------------------------------------------------------------ rendering
    def render(
        self, view_matrix: Sequence[float], projection_matrix: Sequence[float], width: int, height: int,
        segmentation: bool = True, lighting: Lighting | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Render with TinyRenderer (CPU); ``lighting`` replaces PyBullet's default light.

        Returns:
            rgb uint8 (H, W, 3), OpenGL depth buffer float32 (H, W) in [0, 1], and body-id
            segmentation int32 (H, W) (-1 = background) or None.
        """
        flags = 0 if segmentation else pybullet.ER_NO_SEGMENTATION_MASK
        light = {} if lighting is None else {
            "lightDirection": list(lighting.direction), "lightColor": list(lighting.color),
            "lightAmbientCoeff": lighting.ambient, "lightDiffuseCoeff": lighting.diffuse,
            "lightSpecularCoeff": lighting.specular}
        _, _, rgba, depth, seg = self.client.getCameraImage(
            width, height, view_matrix, projection_matrix, renderer=pybullet.ER_TINY_RENDERER, flags=flags,
            shadow=int(lighting is not None and lighting.shadow), **light,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3]
        depth_buffer = np.asarray(depth, dtype=np.float32).reshape(height, width)
        seg_out = np.asarray(seg, dtype=np.int32).reshape(height, width) if segmentation else None
        return rgb, depth_buffer, seg_out
