"""The scripted executor of ``manipstack/DexGrasp-v0`` (the baseline row of every table), from the ``state``
observation only.

Phases (by control step, each ending early when its target is reached): **approach** a pre-grasp point
``standoff_m`` behind the goal wrist pose along the palm normal and ``above_m`` above it, fingers open;
**descend** in a straight line to the goal wrist pose; **close** the fingers to the goal joints plus a squeeze
(``squeeze`` x (goal - open pose), past the goal in the closing direction); **lift** the wrist toward the lift goal,
squeezing. Every wrist command is the canonical-frame error to the phase's target, scaled to the action range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from manipstack.assets.hands import DEFAULT_HAND_SPEC
from manipstack.envs.core.poses import rot6d_to_matrix
from manipstack.envs.tasks.dex_grasp import OBS_SLICES, DexGraspConfig


@dataclass(frozen=True)
class ScriptedConfig:
    """Phase lengths (control steps) and targets of the scripted executor."""

    approach_steps: int = 60
    """Most steps to reach the pre-grasp point."""
    descend_steps: int = 40
    """Most steps to descend to the goal wrist pose."""
    close_steps: int = 25
    """Steps closing the fingers before lifting."""
    standoff_m: float = 0.05
    """Pre-grasp distance behind the goal along the palm normal, m."""
    above_m: float = 0.05
    """Pre-grasp height above the goal, m."""
    reached_m: float = 0.005
    """A phase's wrist target counts as reached within this distance, m."""
    descend_speed: float = 0.5
    """Largest action magnitude while descending (fraction of the env's wrist step)."""
    squeeze: float = 0.25
    """Finger targets past the goal: goal + squeeze x (goal - open pose)."""


class ScriptedDexPolicy:
    """Approach, descend, close with a squeeze, lift (see module docstring); ``phase`` names the current phase."""

    def __init__(self, config: ScriptedConfig | None = None, env_config: DexGraspConfig | None = None) -> None:
        self.config = config or ScriptedConfig()
        self.env_config = env_config or DexGraspConfig()
        spec = json.loads(DEFAULT_HAND_SPEC.read_text())
        self.lower = np.array([j["lower"] for j in spec["joints"]])
        self.upper = np.array([j["upper"] for j in spec["joints"]])
        self.open_pose = np.array(spec["open_pose"])
        self.palm_normal = np.array(spec["palm_normal"], dtype=float)
        self.reset()

    def reset(self) -> None:
        self.step, self.phase, self.phase_start = 0, "approach", 0

    def _joint_action(self, joints_rad: np.ndarray) -> np.ndarray:
        return np.clip(2.0 * (joints_rad - self.lower) / (self.upper - self.lower) - 1.0, -1.0, 1.0)

    def _wrist_action(self, obs: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray, speed: float
                      ) -> tuple[np.ndarray, float]:
        """Wrist action (6,) toward a canonical-frame target and the remaining distance in m."""
        cfg = self.env_config
        wrist_rot = rot6d_to_matrix(obs[OBS_SLICES["wrist_rot6d"]])
        error = target_pos - obs[OBS_SLICES["wrist_pos"]]
        turn = Rotation.from_matrix(target_rot @ wrist_rot.T).as_rotvec()
        move = np.clip(error / cfg.max_wrist_step_m, -speed, speed)
        rotate = np.clip(turn / cfg.max_wrist_rot_rad, -1.0, 1.0)
        return np.concatenate([move, rotate]), float(np.linalg.norm(error))

    def _advance(self, phase: str) -> None:
        self.phase, self.phase_start = phase, self.step

    def act(self, observation: np.ndarray) -> np.ndarray:
        cfg, obs = self.config, np.asarray(observation, dtype=np.float64)
        wrist = obs[OBS_SLICES["wrist_pos"]]
        goal_pos = wrist + obs[OBS_SLICES["goal_dpos"]]
        goal_rot = rot6d_to_matrix(obs[OBS_SLICES["wrist_rot6d"]] + obs[OBS_SLICES["goal_drot6d"]])
        goal_joints = obs[OBS_SLICES["joints"]] + obs[OBS_SLICES["goal_djoints"]]
        elapsed = self.step - self.phase_start
        fingers = self.open_pose
        if self.phase == "approach":
            pre = goal_pos - cfg.standoff_m * (goal_rot @ self.palm_normal) + np.array([0.0, 0.0, cfg.above_m])
            wrist_action, left = self._wrist_action(obs, pre, goal_rot, 1.0)
            if left < cfg.reached_m * 2 or elapsed >= cfg.approach_steps:
                self._advance("descend")
        elif self.phase == "descend":
            wrist_action, left = self._wrist_action(obs, goal_pos, goal_rot, cfg.descend_speed)
            if left < cfg.reached_m or elapsed >= cfg.descend_steps:
                self._advance("close")
        else:
            fingers = goal_joints + cfg.squeeze * (goal_joints - self.open_pose)
            if self.phase == "close":
                wrist_action = np.zeros(6)
                share = min(1.0, (elapsed + 1) / (0.6 * cfg.close_steps))
                fingers = self.open_pose + share * (fingers - self.open_pose)
                if elapsed >= cfg.close_steps:
                    self._advance("lift")
            else:
                lift = obs[OBS_SLICES["lift_dpos"]]
                wrist_action = np.concatenate([np.clip(lift / self.env_config.max_wrist_step_m, -0.5, 0.5),
                                               np.zeros(3)])
        self.step += 1
        return np.concatenate([wrist_action, self._joint_action(fingers)]).astype(np.float32)
