"""Motion helpers written only against the robot contract (:class:`~manipstack.envs.robots.base.Robot`): straight
Cartesian moves (optionally guarded by the wrist force), joint-space moves of the arm and of a dexterous hand,
gripper open/close, the grasp check and the action that holds a robot still. They run unchanged on every backend:
the simulator, the driver bridge and hardware. A helper for a feature group the robot lacks (a gripper helper on
a hand) raises :class:`~manipstack.envs.robots.base.FeatureNotSupportedError` before moving anything.

Units: m, rad, N; poses in the world frame, quaternions (x, y, z, w).
"""

from __future__ import annotations

import logging

import numpy as np

from manipstack.envs.core.poses import Pose, interpolate_poses, pose_to_pose7, rotation_angle_between
from manipstack.envs.robots.base import Robot

log = logging.getLogger(__name__)


def tcp_pose(robot: Robot) -> Pose:
    """Current TCP (position (3,) m, quaternion (x, y, z, w)), world frame."""
    pose7 = robot.get_observation()["tcp.pose"]
    return pose7[:3], pose7[3:]


def move_to_pose(
    robot: Robot,
    position: np.ndarray,
    quat_xyzw: np.ndarray,
    max_step_m: float = 0.01,
    max_step_rad: float = 0.08,
    position_tol_m: float = 0.001,
    angle_tol_rad: float = np.deg2rad(0.5),
    settle_periods: int = 40,
    stop_force_n: float | None = None,
) -> bool:
    """Move the TCP along a straight Cartesian line to a target pose.

    Waypoints are spaced at most ``max_step_m`` (m) and ``max_step_rad`` (rad) apart, one per control
    period; then the goal is held for up to ``settle_periods`` periods until within tolerance.

    With ``stop_force_n`` the move is *guarded*: once the wrist force (the ``wrench`` observation)
    differs from its value at the start of the move by more than ``stop_force_n`` N, the arm backs off to
    the last waypoint before the contact and the move ends (a real arm's guarded move does the same).

    Returns:
        True if the TCP ended within ``position_tol_m`` and ``angle_tol_rad`` of the target.
    """
    observation = robot.get_observation()
    start = (observation["tcp.pose"][:3], observation["tcp.pose"][3:])
    start_force = observation["wrench"][:3]
    goal = (np.asarray(position, dtype=float), np.asarray(quat_xyzw, dtype=float))
    distance = float(np.linalg.norm(goal[0] - start[0]))
    angle = rotation_angle_between(start[1], goal[1])
    num = max(1, int(np.ceil(max(distance / max_step_m, angle / max_step_rad))))
    goal7 = pose_to_pose7(*goal)
    waypoints = [pose_to_pose7(*w) for w in interpolate_poses(start, goal, num)] + [goal7] * settle_periods
    for i, waypoint in enumerate(waypoints):
        if i >= num or stop_force_n is not None:
            observation = robot.get_observation()
            pos, quat = observation["tcp.pose"][:3], observation["tcp.pose"][3:]
            if stop_force_n is not None and np.linalg.norm(observation["wrench"][:3] - start_force) > stop_force_n:
                robot.send_action({"tcp.pose": waypoints[i - 2] if i >= 2 else pose_to_pose7(*start)})
                log.debug("guarded move stopped by contact %.1f mm from its target",
                          1000 * np.linalg.norm(pos - goal[0]))
                return False
            if i >= num and _within(pos, quat, goal, position_tol_m, angle_tol_rad):
                return True
        robot.send_action({"tcp.pose": waypoint})
    pos, quat = tcp_pose(robot)
    reached = _within(pos, quat, goal, position_tol_m, angle_tol_rad)
    if not reached:
        log.info("move_to_pose stopped %.1f mm from its target", 1000 * np.linalg.norm(pos - goal[0]))
    return reached


def _within(position: np.ndarray, quat: np.ndarray, goal: Pose, position_tol_m: float, angle_tol_rad: float) -> bool:
    """Whether a TCP pose is within tolerance (m, rad) of ``goal``."""
    return bool(np.linalg.norm(position - goal[0]) < position_tol_m
                and rotation_angle_between(quat, goal[1]) < angle_tol_rad)


def move_to_joints(
    robot: Robot, joints_rad: np.ndarray, max_step_rad: float = 0.05, tol_rad: float = 0.005, settle_periods: int = 40
) -> bool:
    """Move the arm joints linearly to ``joints_rad`` (n,), at most ``max_step_rad`` per period per joint."""
    robot.require_action("joints.pos", "move_to_joints")
    return _move_joints(robot, "joints.pos", joints_rad, max_step_rad, tol_rad, settle_periods)


def move_hand_joints(
    robot: Robot, joints_rad: np.ndarray, max_step_rad: float = 0.05, tol_rad: float = 0.01, settle_periods: int = 40
) -> bool:
    """Move the dexterous hand's finger joints linearly to ``joints_rad`` (J,), at most ``max_step_rad`` per period
    per joint, then hold until within ``tol_rad`` (at most ``settle_periods`` periods); True if reached."""
    robot.require_action("hand.joints.pos", "move_hand_joints")
    return _move_joints(robot, "hand.joints.pos", joints_rad, max_step_rad, tol_rad, settle_periods)


def _move_joints(
    robot: Robot, key: str, joints_rad: np.ndarray, max_step_rad: float, tol_rad: float, settle_periods: int
) -> bool:
    """Joint-space move of the joints under action/observation ``key`` (rad); True if within ``tol_rad``."""
    start = robot.get_observation()[key]
    goal = np.asarray(joints_rad, dtype=float)
    num = max(1, int(np.ceil(np.max(np.abs(goal - start)) / max_step_rad)))
    for fraction in np.linspace(0, 1, num + 1)[1:]:
        robot.send_action({key: start + fraction * (goal - start)})
    for _ in range(settle_periods):
        if np.max(np.abs(robot.get_observation()[key] - goal)) < tol_rad:
            return True
        robot.send_action({key: goal})
    return bool(np.max(np.abs(robot.get_observation()[key] - goal)) < tol_rad)


def hold_action(robot: Robot, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The action that holds ``robot`` where ``observation`` measured it: the arm joints (``joints.pos``) where
    they are commandable, else the TCP pose; plus the hand's finger joints if it has a hand. A gripper is left
    out (it keeps its target, so a grasped object stays held)."""
    actions = robot.action_features
    key = "joints.pos" if "joints.pos" in actions else "tcp.pose"
    hold = {key: observation[key]}
    if "hand.joints.pos" in actions:
        hold["hand.joints.pos"] = observation["hand.joints.pos"]
    return hold


def _command_gripper(robot: Robot, width_m: float, max_periods: int, still_tol_m: float = 2e-4) -> float:
    """Command a gripper width and wait (bounded) until the fingers stop moving; returns the final width in m."""
    previous = None
    for _ in range(max_periods):
        robot.send_action({"gripper.width": width_m})
        width = float(robot.get_observation()["gripper.width"])
        if previous is not None and abs(width - previous) < still_tol_m:
            return width
        previous = width
    return float(robot.get_observation()["gripper.width"])


def open_gripper(robot: Robot, width_m: float | None = None, max_periods: int = 30) -> float:
    """Open to ``width_m`` (default fully); returns the reached width in m."""
    robot.require_action("gripper.width", "open_gripper")
    return _command_gripper(robot, robot.gripper_max_width if width_m is None else width_m, max_periods)


def close_gripper(robot: Robot, max_periods: int = 30) -> float:
    """Close until the fingers stop (on an object or fully shut); returns the final width in m."""
    robot.require_action("gripper.width", "close_gripper")
    return _command_gripper(robot, 0.0, max_periods)


def is_grasping(robot: Robot, min_width_m: float = 0.002) -> bool:
    """True if a closed gripper is held open by something (VPG's check): width above ``min_width_m``."""
    robot.require_observation("gripper.width", "is_grasping")
    return float(robot.get_observation()["gripper.width"]) > min_width_m
