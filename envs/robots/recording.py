"""A robot wrapper that grabs a camera frame every few control periods (for episode videos)."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.core.camera import Camera
from envs.robots.base import Feature, Robot


class RecordingRobot(Robot):
    """Forwards the contract to ``robot`` and appends ``camera.capture()["rgb"]`` to :attr:`frames`
    every ``every`` calls of :meth:`send_action`.

    Args:
        robot: the robot to drive (already constructed; connection is forwarded).
        camera: the camera that films the episode.
        every: control periods between frames.
        max_frames: stop recording after this many frames (keeps long episodes bounded).
    """

    def __init__(self, robot: Robot, camera: Camera, every: int = 4, max_frames: int = 600) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1 control period, got {every}")
        self.robot, self.camera, self.every, self.max_frames = robot, camera, every, max_frames
        self.name = robot.name
        self.control_period_s = robot.control_period_s
        self.frames: list[np.ndarray] = []
        self._calls = 0

    @property
    def observation_features(self) -> dict[str, Feature]:
        return self.robot.observation_features

    @property
    def action_features(self) -> dict[str, Feature]:
        return self.robot.action_features

    @property
    def home_joints(self) -> np.ndarray:
        return self.robot.home_joints

    @property
    def gripper_max_width(self) -> float:
        return self.robot.gripper_max_width

    def capture(self) -> None:
        """Append one frame now."""
        if len(self.frames) < self.max_frames:
            self.frames.append(self.camera.capture()["rgb"])

    def _connect(self) -> None:
        self.robot.connect()

    def _disconnect(self) -> None:
        self.robot.disconnect()

    def _get_observation(self) -> dict[str, np.ndarray]:
        return self.robot.get_observation()

    def _send_action(self, action: dict[str, Any]) -> dict[str, np.ndarray]:
        applied = self.robot.send_action(action)
        self._calls += 1
        if self._calls % self.every == 0:
            self.capture()
        return applied
