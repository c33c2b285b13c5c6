"""Robot wrappers that watch an episode: camera frames every few control periods (videos), applied actions (logs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from manipstack.envs.core.camera import Camera
from manipstack.envs.robots.base import Robot, RobotWrapper


class RecordingRobot(RobotWrapper):
    """Forwards the contract to ``robot`` and appends ``camera.capture()["rgb"]`` to :attr:`frames`
    every ``every`` calls of :meth:`send_action`.

    Args:
        robot: the robot to drive (already constructed; connection is forwarded).
        camera: the camera that films the episode.
        every: control periods between frames.
        max_frames: stop recording after this many frames (keeps long episodes bounded).
    """

    def __init__(self, robot: Robot, camera: Camera, every: int = 4, max_frames: int = 600) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1 control period, got {every}")
        super().__init__(robot)
        self.camera, self.every, self.max_frames = camera, every, max_frames
        self.frames: list[np.ndarray] = []
        self._calls = 0

    def capture(self) -> None:
        """Append one frame now."""
        if len(self.frames) < self.max_frames:
            self.frames.append(self.camera.capture()["rgb"])

    def _send_action(self, action: dict[str, Any]) -> dict[str, np.ndarray]:
        applied = self.inner.send_action(action)
        self._calls += 1
        if self._calls % self.every == 0:
            self.capture()
        return applied


class ActionRecorder(RobotWrapper):
    """Forwards the contract to ``robot`` and appends every applied action (as the robot returned it) to
    :attr:`applied`. It can be attached to a robot that is already connected: disconnecting the recorder
    leaves the robot's connection to its owner."""

    def __init__(self, robot: Robot) -> None:
        super().__init__(robot)
        self.applied: list[dict[str, np.ndarray]] = []

    def _disconnect(self) -> None:
        """Left to the inner robot's owner."""

    def _send_action(self, action: dict[str, Any]) -> dict[str, np.ndarray]:
        applied = self.inner.send_action(action)
        self.applied.append(applied)
        return applied
