"""Motion primitives for table-top manipulation with a parallel gripper, written only against the robot contract:
guarded top-down grasp, lift, place, retreat, push, and a rest pose out of the overhead camera's view.

Motions are straight Cartesian lines with large steps in free space and small steps near the table, with short
bounded settles, built on :mod:`manipstack.envs.robots.motion`: the primitives run unchanged on any
:class:`~manipstack.envs.robots.base.Robot` with a ``gripper.width`` (the sim Panda, the driver bridge, hardware).
VPG's push and grasp start and end at the rest pose, so the heightmap rendered after an action shows the scene and
not the arm.

Angles are about the world z axis in rad; positions are in m, world frame; quaternions (x, y, z, w).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manipstack.envs.core.poses import Pose, euler_to_quat
from manipstack.envs.robots.base import Robot
from manipstack.envs.robots.motion import (
    close_gripper,
    is_grasping,
    move_to_joints,
    move_to_pose,
    open_gripper,
    tcp_pose,
)
from manipstack.errors import InputError


@dataclass(frozen=True)
class PrimitiveConfig:
    """Geometry and speed of the primitives (m, rad)."""

    rest_position: tuple[float, float, float] = (-0.33, 0.0, 0.42)
    """TCP position in m, world frame, between actions: outside the overhead camera's view."""
    approach_height: float = 0.10
    """Height in m above the contact height of the pre-pose the arm descends from."""
    travel_step: float = 0.04
    """Cartesian step in m per control period in free space."""
    contact_step: float = 0.02
    """Cartesian step in m per control period while descending, pushing and lifting."""
    travel_tolerance: float = 0.01
    """Position tolerance in m of free-space moves (short settle)."""
    contact_tolerance: float = 0.004
    """Position tolerance in m near the table."""
    grasp_depth: float = 0.03
    """How far in m below the surface height at the grasp point the TCP (fingertip centre) goes."""
    min_tcp_height: float = 0.015
    """Lowest TCP height in m above the table (fingertips reach ~12 mm below the TCP)."""
    push_height: float = 0.015
    """TCP height in m above the local surface at which a push travels."""
    finger_half_width: float = 0.01
    """Half-width in m of the closed fingers: a push travels above the highest surface this close to its start."""
    push_length: float = 0.10
    """Length in m of a push."""
    lift_height: float = 0.15
    """TCP height in m a grasp lifts to before the grasp is checked."""
    stop_force: float = 20.0
    """Change of the wrist force in N that stops a grasp's descent (fingers landing on an object)."""
    guarded_step: float = 0.005
    """Cartesian step in m per control period of a grasp's guarded descent."""
    abort_height: float = 0.01
    """A grasp whose guarded descent stops more than this (m) above its grasp height is aborted."""

    def __post_init__(self) -> None:
        positive = ("approach_height", "travel_step", "contact_step", "push_length", "lift_height", "stop_force",
                    "guarded_step", "abort_height", "finger_half_width")
        for field_name in positive:
            if getattr(self, field_name) <= 0:
                raise InputError(f"{field_name} must be > 0, got {getattr(self, field_name)}")


def top_down_quat(yaw: float) -> np.ndarray:
    """TCP orientation (x, y, z, w) pointing the gripper down, turned by ``yaw`` rad about world z.

    With yaw 0 the fingers close along world y, so fingers closing along world angle ``a`` need yaw ``a - pi/2``.
    """
    return euler_to_quat([np.pi, 0.0, yaw])


def _finger_yaw(closing_angle: float) -> float:
    """Yaw in [-pi/2, pi/2) rad that makes the fingers close along ``closing_angle`` (the gripper is symmetric)."""
    return float(closing_angle % np.pi - np.pi / 2)


def go_to_rest(robot: Robot, config: PrimitiveConfig, rest_joints: np.ndarray | None = None) -> np.ndarray:
    """Go to the rest pose; returns the arm joints (n,) in rad there.

    Without ``rest_joints`` the TCP moves in a straight line to ``config.rest_position``; with them the arm
    moves in joint space to that exact configuration, so every primitive starts from the same arm posture
    (Cartesian moves from a drifted posture can end in a different inverse-kinematics branch).
    """
    if rest_joints is None:
        move_to_pose(
            robot, np.array(config.rest_position), top_down_quat(0.0), max_step_m=config.travel_step,
            max_step_rad=0.4, position_tol_m=config.travel_tolerance, angle_tol_rad=0.1, settle_periods=6,
        )
    else:
        move_to_joints(robot, rest_joints, max_step_rad=0.25, tol_rad=0.02, settle_periods=6)
    return robot.get_observation()["joints.pos"]


def _travel(robot: Robot, position: np.ndarray, quat: np.ndarray, config: PrimitiveConfig) -> bool:
    return move_to_pose(
        robot, position, quat, max_step_m=config.travel_step, max_step_rad=0.4,
        position_tol_m=config.travel_tolerance, angle_tol_rad=0.05, settle_periods=8,
    )


def _contact_move(
    robot: Robot, position: np.ndarray, quat: np.ndarray, config: PrimitiveConfig, guarded: bool = False
) -> bool:
    return move_to_pose(
        robot, position, quat, max_step_m=config.guarded_step if guarded else config.contact_step, max_step_rad=0.2,
        position_tol_m=config.contact_tolerance, angle_tol_rad=0.05, settle_periods=8,
        stop_force_n=config.stop_force if guarded else None,
    )


def grasp(
    robot: Robot, position: np.ndarray, surface_height: float, closing_angle: float, config: PrimitiveConfig
) -> Pose | None:
    """Guarded top-down parallel-jaw grasp: open, descend onto the grasp point, close.

    Args:
        robot: any robot implementing the contract with a parallel gripper.
        position: grasp centre (x, y) or (x, y, z) in m, world frame; only x, y are used.
        surface_height: height in m of the surface at the grasp centre (the heightmap value).
        closing_angle: direction in rad (about world z, from +x) along which the fingers close.
        config: primitive geometry.

    The descent is guarded: if the fingers land on an object more than ``abort_height`` above the grasp
    height, the arm backs off and retreats to the pre-grasp pose without closing (as a real arm stopped by
    contact would), so a finger that has no room fails without crushing the neighbour into the table.

    Returns:
        The commanded TCP pose (position (3,) m, quaternion) at which the fingers closed, or None if aborted.
    """
    quat = top_down_quat(_finger_yaw(closing_angle))
    tcp_z = max(surface_height - config.grasp_depth, config.min_tcp_height)
    target = np.array([position[0], position[1], tcp_z])
    above = target + [0.0, 0.0, config.approach_height]
    robot.send_action({"gripper.width": robot.gripper_max_width})
    _travel(robot, above, quat, config)
    _contact_move(robot, above, quat, config)  # settle: the guard compares against the wrench at rest
    _contact_move(robot, target, quat, config, guarded=True)
    if tcp_pose(robot)[0][2] > target[2] + config.abort_height:  # the fingers landed on an object: abort
        _travel(robot, above, quat, config)
        return None
    close_gripper(robot, max_periods=12)
    return target, quat


def lift(robot: Robot, grasp_pose: Pose, config: PrimitiveConfig, height: float | None = None) -> bool:
    """Lift straight up from a grasp pose (position (3,) m, quaternion) to ``height`` m (default
    ``config.lift_height``), orientation kept; returns whether the fingers are held apart by something."""
    position, quat = grasp_pose
    top = config.lift_height if height is None else height
    _travel(robot, np.array([position[0], position[1], top]), quat, config)
    return is_grasping(robot)


def place(robot: Robot, position: np.ndarray, quat_xyzw: np.ndarray, config: PrimitiveConfig) -> bool:
    """Carry what the gripper holds above ``position`` (3,) m (the TCP target when released), descend to it,
    open, and retreat upward; returns whether the TCP reached the release pose before opening."""
    position = np.asarray(position, dtype=float)
    above = position + [0.0, 0.0, config.approach_height]
    _travel(robot, above, quat_xyzw, config)
    reached = _contact_move(robot, position, quat_xyzw, config)
    open_gripper(robot, max_periods=12)
    retreat(robot, config)
    return reached


def retreat(robot: Robot, config: PrimitiveConfig, distance: float | None = None) -> bool:
    """Move the TCP straight up by ``distance`` m (default ``config.approach_height``) from where it is."""
    position, quat = tcp_pose(robot)
    up = config.approach_height if distance is None else distance
    return _travel(robot, position + [0.0, 0.0, up], quat, config)


def release_and_rest(robot: Robot, config: PrimitiveConfig, rest_joints: np.ndarray | None = None) -> None:
    """Open the gripper (one command; it opens while moving) and go to rest (see :func:`go_to_rest`)."""
    robot.send_action({"gripper.width": robot.gripper_max_width})
    go_to_rest(robot, config, rest_joints)


def push(
    robot: Robot, position: np.ndarray, local_height: float, direction: float, config: PrimitiveConfig,
    rest_joints: np.ndarray | None = None, bounds: np.ndarray | None = None,
) -> None:
    """Straight push with closed fingers from ``position`` along ``direction``, then back to rest.

    Args:
        robot: any robot implementing the contract.
        position: push start (x, y) in m, world frame.
        local_height: highest surface in m around the start (the fingers travel just above it).
        direction: push direction in rad about world z, from +x.
        config: primitive geometry.
        rest_joints: arm joints (n,) in rad of the rest posture to return to (see :func:`go_to_rest`).
        bounds: workspace limits ``[[x_min, x_max], [y_min, y_max]]`` in m, world frame; the push's end
            point is clipped into them, as VPG's robot does (a push never drives the fingers out of the
            workspace, so it cannot carry an object along the whole way off the table).
    """
    quat = top_down_quat(_finger_yaw(direction + np.pi / 2))  # fingers side by side across the push
    tcp_z = max(local_height + config.push_height, config.min_tcp_height)
    start = np.array([position[0], position[1], tcp_z])
    end = start + config.push_length * np.array([np.cos(direction), np.sin(direction), 0.0])
    if bounds is not None:
        low, high = np.asarray(bounds, dtype=float).T
        end[:2] = np.clip(end[:2], low, high)
    robot.send_action({"gripper.width": 0.0})
    _travel(robot, start + [0.0, 0.0, config.approach_height], quat, config)
    _contact_move(robot, start, quat, config)
    _contact_move(robot, end, quat, config)
    _contact_move(robot, end + [0.0, 0.0, config.approach_height], quat, config)
    release_and_rest(robot, config, rest_joints)
