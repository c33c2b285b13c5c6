"""Tasks, policies and the one Gymnasium env that composes them with a workcell.

A :class:`Task` (Ravens' split) owns what makes an env family: how an episode's scene is built from a seeded
generator, how an action becomes robot motion, how observations are made from camera frames and robot state,
and reward and termination. :class:`RobotTaskEnv` is the thin Gymnasium shell around it: seeding, spaces, the
workcell (a simulated table with a robot, in-process or a digital twin behind the driver bridge), the cameras of
its :class:`ObservationConfig`, rendering and cleanup. An env family is a Task plus a small ``RobotTaskEnv``
subclass that builds it from the family's config.

A :class:`Policy` is anything with ``reset()`` and ``act(observation) -> action``; one that learns from what its
actions achieved (VPG's failure memory) also implements :class:`FeedbackPolicy`. Tasks may offer a scripted
expert through :meth:`Task.oracle`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from manipstack.envs.core.camera import DepthNoise, Intrinsics, SimCamera, look_at
from manipstack.envs.robots.base import Workcell
from manipstack.errors import InputError


@runtime_checkable
class Policy(Protocol):
    """A decision maker: ``reset()`` at the start of an episode, then ``act(observation) -> action`` each step."""

    def reset(self) -> None: ...

    def act(self, observation: Any) -> Any: ...


@runtime_checkable
class FeedbackPolicy(Policy, Protocol):
    """A policy that is told what each action achieved (the env's reward and info) before it acts again."""

    def feedback(self, action: Any, reward: float, info: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class CameraSpec:
    """A simulated pinhole camera: image size, vertical field of view, pose by eye/target/up (m, world frame)."""

    name: str
    """Camera name; its frame is handed to the task under this key."""
    width: int
    """Image width in pixels."""
    height: int
    """Image height in pixels."""
    fov_deg: float
    """Vertical field of view in degrees."""
    eye: tuple[float, float, float]
    """Camera position in m, world frame."""
    target: tuple[float, float, float]
    """Point the optical axis passes through, m, world frame."""
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    """World direction that appears toward the top of the image."""
    near: float = 0.01
    """Near clipping distance in m."""
    far: float = 10.0
    """Far clipping distance in m."""
    segmentation: bool = True
    """Render the body-id segmentation mask."""
    noise: DepthNoise | None = None
    """Depth noise model (drawn from the env's seeded generator), or exact depth."""

    def build(self, world: Any, rng: np.random.Generator | None = None) -> SimCamera:
        """The camera in ``world``; ``rng`` feeds its depth noise."""
        return SimCamera(world, Intrinsics.from_fov(self.width, self.height, self.fov_deg),
                         look_at(np.array(self.eye), np.array(self.target), up=np.array(self.up)), name=self.name,
                         near=self.near, far=self.far, noise=self.noise, rng=rng, segmentation=self.segmentation)


@dataclass(frozen=True)
class ObservationConfig:
    """Which cameras an env captures for each observation (handed to :meth:`Task.observe`) and for ``render()``."""

    cameras: tuple[CameraSpec, ...] = ()
    """Cameras captured at every observation (none: the task observes robot and object state only)."""
    render_camera: CameraSpec | None = None
    """The perspective view ``render()`` returns (``render_mode="rgb_array"``)."""
    robot_visible: bool = True
    """Draw the robot in the observation cameras. False skips drawing an arm that rests out of their view (speed
    only; physics is unaffected); ``render()`` always shows it."""


@dataclass
class TaskStep:
    """What :meth:`Task.evaluate` returns for one step."""

    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any] = field(default_factory=dict)


class Task(abc.ABC):
    """One env family's scene, action execution, observation, reward and termination (see module docstring).

    Subclasses set :attr:`observation_space` and :attr:`action_space` in ``__init__``, and name the keys
    ``reset(options=...)`` accepts in :attr:`reset_options`.
    """

    observation_space: spaces.Space
    action_space: spaces.Space
    reset_options: frozenset[str] = frozenset()

    @abc.abstractmethod
    def reset(self, cell: Workcell, rng: np.random.Generator, options: dict[str, Any]) -> dict[str, Any]:
        """Build a new episode's scene in ``cell`` with every random choice drawn from ``rng``; returns the
        reset ``info``."""

    @abc.abstractmethod
    def observe(self, cell: Workcell, frames: dict[str, dict[str, np.ndarray]]) -> Any:
        """The observation, from the captured camera ``frames`` (camera name -> ``Camera.capture()``) and state."""

    def check_action(self, action: Any) -> Any:
        """``action`` as the task executes it; raises :class:`InputError` when it is outside the action space."""
        if not self.action_space.contains(action):
            raise InputError(f"action {action!r} is outside the action space {self.action_space}")
        return action

    @abc.abstractmethod
    def act(self, cell: Workcell, action: Any, observation: Any) -> dict[str, Any]:
        """Execute ``action`` (the current ``observation`` at hand) on the robot; returns what happened, for
        :meth:`evaluate`."""

    @abc.abstractmethod
    def evaluate(self, cell: Workcell, action: Any, outcome: dict[str, Any], before: Any, after: Any) -> TaskStep:
        """Reward, termination and info of a step from its ``outcome`` and the observations around it."""

    def oracle(self, cell: Workcell) -> Policy | None:
        """A scripted expert for this task, if it has one."""
        return None


class RobotTaskEnv(gym.Env):
    """A Gymnasium env composed of a workcell, a task and an observation config (see module docstring).

    Args:
        task: the env family's task.
        workcell: the table and robot the task builds its scene in (see ``manipstack.envs.robots.make_workcell``).
        observation: cameras captured for observations and rendering.
        render_mode: ``"rgb_array"`` or None.
        owns_workcell: close the workcell on :meth:`close` (False for one passed in by the caller, e.g. a digital
            twin's, which stays open).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, task: Task, workcell: Workcell, observation: ObservationConfig | None = None,
                 render_mode: str | None = None, owns_workcell: bool = True) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InputError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.task, self.workcell, self.render_mode = task, workcell, render_mode
        self.observation_config = observation or ObservationConfig()
        self._owns_workcell = owns_workcell
        self.observation_space, self.action_space = task.observation_space, task.action_space
        self.world, self.robot = workcell.world, workcell.robot
        self._cameras: dict[str, SimCamera] = {}
        self._view: SimCamera | None = None
        self._observation: Any = None

    def _build_cameras(self) -> None:
        """(Re)build the cameras at each reset: their depth noise draws from the generator ``reset(seed=...)``
        just made (building one is only matrix arithmetic)."""
        config = self.observation_config
        self._cameras = {spec.name: spec.build(self.world, self.np_random) for spec in config.cameras}
        if config.render_camera is not None:
            self._view = config.render_camera.build(self.world, self.np_random)

    def _observe(self) -> Any:
        frames = {name: camera.capture() for name, camera in self._cameras.items()}
        return self.task.observe(self.workcell, frames)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start an episode: the task builds its scene from the env's generator (seeded by ``seed``); ``options``
        are the task's reset options (:attr:`Task.reset_options`)."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - self.task.reset_options)
        if unknown:
            raise InputError(f"unknown reset options {unknown}; supported: {sorted(self.task.reset_options)}")
        self._build_cameras()
        info = self.task.reset(self.workcell, self.np_random, options)
        if not self.observation_config.robot_visible:
            self.world.set_visible(self.robot.name, False)
        self._observation = self._observe()
        return self._observation, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._observation is None:
            raise RuntimeError("call reset() before step()")
        action = self.task.check_action(action)
        before = self._observation
        outcome = self.task.act(self.workcell, action, before)
        self._observation = self._observe()
        result = self.task.evaluate(self.workcell, action, outcome, before, self._observation)
        return self._observation, result.reward, result.terminated, result.truncated, result.info

    def render(self) -> np.ndarray | None:
        """An RGB image (H, W, 3) uint8 from the render camera when ``render_mode="rgb_array"``, robot drawn."""
        if self.render_mode != "rgb_array" or self._view is None:
            return None
        hidden = not self.observation_config.robot_visible
        if hidden:
            self.world.set_visible(self.robot.name, True)
        try:
            return self._view.capture()["rgb"]
        finally:
            if hidden:
                self.world.set_visible(self.robot.name, False)

    def close(self) -> None:
        """Release the workcell (robot and physics world) if this env owns it; safe to call twice."""
        if self._owns_workcell:
            self.workcell.close()
