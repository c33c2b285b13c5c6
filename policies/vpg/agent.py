"""VPG agent: acting from Q maps, Q-learning updates and prioritised replay, for three methods.

- ``vpg``: push and grasp Q-learning with future discount ``gamma`` (0.5); target
  ``r + gamma * max_a' Q(s', a')`` over both primitives, all rotations and pixels.
- ``reactive`` (P+G Reactive): the same push and grasp nets supervised on the immediate reward only.
- ``grasping-only``: grasps only, supervised on the immediate grasp reward (VPG's baseline).

The update for one transition is a Huber loss at the executed pixel and rotation only (a grasp also
at the symmetric rotation, ``i + R/2``). Exploration is epsilon-greedy over primitives, annealed
from 0.5 to 0.1; within a primitive the action is the arg-max over rotations and valid pixels.
Valid pixels: grasps on an object (height > ``object_height`` m), pushes on the table 1-3 cm from one (a
push starting on or at the edge of an object rides over it);
pixels where the same primitive just failed in an unchanged scene are avoided until the scene changes.
Replay: besides the newest transition, each update samples ``replay_samples`` stored transitions whose
reward differs from the newest one, biased toward large surprise ``|Q - target|`` (VPG's power-law
rank sampling). Targets of stored transitions are those computed when they were recorded.

Shapes: R rotations, H x W heightmap; actions are ``[primitive, rotation, row, col]`` (push 0, grasp 1).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from manipstack.envs.tasks.push_grasp import PushGraspConfig
from manipstack.errors import InputError
from manipstack.grasp_models.checkpoint import CheckpointKind, load_checkpoint, load_weights
from manipstack.policies.vpg.net import QNet, preprocess, q_at_pixels, q_maps

METHODS = ("vpg", "grasping-only", "reactive")
PUSH, GRASP = 0, 1


@dataclass
class VPGConfig:
    """Hyper-parameters of the VPG learner (and of the network it builds)."""

    method: str = "vpg"
    """One of 'vpg', 'grasping-only', 'reactive'."""
    num_rotations: int = 16
    """Rotations R evaluated per primitive (must match the env)."""
    heightmap_size: int = 112
    """Heightmap side in pixels (must match the env)."""
    pixel_size: float = 0.004
    """Heightmap pixel side in m (must match the env)."""
    width: int = 32
    """Channels of the network trunk."""
    gamma: float = 0.5
    """Future discount (VPG: 0.5); reactive and grasping-only use 0."""
    learning_rate: float = 5e-4
    """Adam learning rate."""
    weight_decay: float = 2e-5
    """Adam weight decay."""
    epsilon_start: float = 0.5
    """Initial probability of exploring the other primitive."""
    epsilon_end: float = 0.1
    """Final exploration probability."""
    epsilon_anneal_iterations: int = 2000
    """Iterations over which epsilon falls linearly from start to end."""
    random_pixel_start: float = 0.3
    """Initial probability of taking a uniformly random valid pixel and rotation within the chosen primitive
    (helps a from-scratch network see diverse grasps early); it falls linearly to 0 with epsilon's schedule."""
    replay_samples: int = 2
    """Stored transitions trained on per update besides the newest one."""
    replay_power: float = 2.0
    """Power-law exponent of surprise-rank sampling (VPG: 2); larger favours surprising samples more."""
    object_height: float = 0.01
    """Pixels higher than this (m) count as object pixels (valid grasp centres)."""
    push_reach: float = 0.03
    """Push starts must lie within this distance (m) of an object pixel."""
    push_clearance: float = 0.01
    """...and at least this far (m) from one, so the closed fingers start on the table (the env lifts a push
    over the highest surface within the fingers' half-width of its start; training sets it from the env)."""
    failure_radius: float = 0.012
    """Radius (m) around a failed action where the same primitive is avoided until the scene changes."""
    push_reward: float = 0.5
    """Immediate reward a push that changed the scene is learned with (VPG's paper: 0.5, its ``--push_rewards``).
    With discount 0.5, endless scene-changing pushes are then worth 0.5 / (1 - 0.5) = 1, as much as a sure grasp, so
    on shapes whose grasp Q values are uncertain pushing wins forever. 0 is VPG's ablation without push rewards: a
    push is worth only the grasp it enables (gamma * max Q of the next scene), and endless pushing is worth 0."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.num_rotations < 2 or self.num_rotations % 2:
            raise InputError(f"num_rotations must be an even number >= 2, got {self.num_rotations}")
        if not 0 <= self.gamma < 1:
            raise InputError(f"gamma must be in [0, 1), got {self.gamma}")
        if not 0 <= self.epsilon_end <= self.epsilon_start <= 1:
            raise InputError("need 0 <= epsilon_end <= epsilon_start <= 1")
        if not 0 <= self.push_reward <= 1:
            raise InputError(f"push_reward must be in [0, 1], got {self.push_reward}")

    @property
    def discount(self) -> float:
        """The discount actually used: ``gamma`` for VPG, 0 for the reactive baselines."""
        return self.gamma if self.method == "vpg" else 0.0

    @property
    def uses_push(self) -> bool:
        return self.method != "grasping-only"

    @property
    def label(self) -> str:
        """What results and learning curves are grouped under: the method, with the push reward when it is not the
        paper's (e.g. ``vpg (push reward 0)``)."""
        default = VPGConfig.push_reward
        return self.method if self.push_reward == default else f"{self.method} (push reward {self.push_reward:g})"


class ReplayBuffer:
    """Transitions ``(color, height, action, reward, target, surprise)``; heights stored as float16 m."""

    def __init__(self) -> None:
        self.colors: list[np.ndarray] = []
        self.heights: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.targets: list[float] = []
        self.surprise: list[float] = []

    def __len__(self) -> int:
        return len(self.rewards)

    def add(self, color: np.ndarray, height: np.ndarray, action: np.ndarray, reward: float, target: float) -> int:
        self.colors.append(np.asarray(color, dtype=np.uint8))
        self.heights.append(np.asarray(height, dtype=np.float16))
        self.actions.append(np.asarray(action, dtype=np.int64))
        self.rewards.append(float(reward))
        self.targets.append(float(target))
        self.surprise.append(float("inf"))  # never trained on: most surprising
        return len(self) - 1

    def sample(self, count: int, exclude: int, reward: float, rng: np.random.Generator, power: float) -> list[int]:
        """Indices of ``count`` transitions (not ``exclude``) whose reward differs from ``reward`` when any do,
        drawn by power-law over surprise rank (most surprising most likely)."""
        rewards = np.asarray(self.rewards)
        candidates = np.flatnonzero(rewards != reward)
        if len(candidates) == 0:
            candidates = np.arange(len(self))
        candidates = candidates[candidates != exclude]
        if len(candidates) == 0:
            return []
        surprise = np.asarray(self.surprise)[candidates]
        order = candidates[np.argsort(surprise, kind="stable")]  # ascending surprise
        ranks = np.round(rng.power(power, size=count) * (len(order) - 1)).astype(int)
        return [int(order[r]) for r in ranks]

    def state_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in ("colors", "heights", "actions", "rewards", "targets", "surprise")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, list(value))


class VPGAgent:
    """Acts with and trains the VPG Q-networks.

    Args:
        config: learner settings.
        device: torch device for the network.
        seed: seed of the agent's own generator (exploration and replay sampling).
    """

    def __init__(self, config: VPGConfig, device: str | torch.device = "cpu", seed: int = 0) -> None:
        self.config = config
        self.device = torch.device(device)
        self.net = QNet(config.width).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.replay = ReplayBuffer()
        self.rng = np.random.default_rng(seed)
        self.iteration = 0
        R = config.num_rotations
        self.angles = torch.arange(R, dtype=torch.float32, device=self.device) * (2 * math.pi / R)
        self._failures: list[tuple[int, int, int]] = []  # (primitive, row, col) of failures in this scene

    # ------------------------------------------------------------------ acting
    @property
    def _anneal_fraction(self) -> float:
        return min(1.0, self.iteration / max(1, self.config.epsilon_anneal_iterations))

    @property
    def epsilon(self) -> float:
        """Current probability of exploring the other primitive (linear anneal)."""
        cfg = self.config
        return cfg.epsilon_start + self._anneal_fraction * (cfg.epsilon_end - cfg.epsilon_start)

    @property
    def random_pixel_prob(self) -> float:
        """Current probability of a random valid pixel and rotation within the chosen primitive."""
        return self.config.random_pixel_start * (1.0 - self._anneal_fraction)

    def _tensor_inputs(self, colors: np.ndarray, heights: np.ndarray) -> torch.Tensor:
        color = torch.as_tensor(np.asarray(colors), device=self.device)
        height = torch.as_tensor(np.asarray(heights, dtype=np.float32), device=self.device)
        return preprocess(color, height)

    @torch.no_grad()
    def predict(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Q maps (2, R, H, W) of one observation: ``[primitive, rotation, row, col]``."""
        self.net.eval()
        inputs = self._tensor_inputs(obs["color"][None], obs["height"][None])  # (1, 4, H, W)
        q = q_maps(self.net, inputs, self.angles[None])  # (1, R, 2, H, W)
        return q[0].permute(1, 0, 2, 3).cpu().numpy()  # (2, R, H, W)

    def valid_masks(self, height: np.ndarray) -> np.ndarray:
        """Boolean masks (2, H, W) of valid push starts (table pixels between ``push_clearance`` and ``push_reach``
        of an object) and grasp centres (object pixels) in a height map (H, W) in m."""
        cfg = self.config
        objects = torch.as_tensor(height > cfg.object_height, dtype=torch.float32)[None, None]  # (1, 1, H, W)

        def dilated(distance_m: float) -> np.ndarray:
            r = int(round(distance_m / cfg.pixel_size))
            return F.max_pool2d(objects, 2 * r + 1, stride=1, padding=r)[0, 0].numpy() > 0

        masks = np.stack([dilated(cfg.push_reach) & ~dilated(cfg.push_clearance), objects[0, 0].numpy() > 0])
        if not cfg.uses_push:
            masks[PUSH] = False
        rows, cols = np.ogrid[: height.shape[0], : height.shape[1]]
        radius = cfg.failure_radius / cfg.pixel_size
        for primitive, row, col in self._failures:
            masks[primitive] &= (rows - row) ** 2 + (cols - col) ** 2 > radius**2
        return masks

    def choose(self, q: np.ndarray, height: np.ndarray, explore: bool) -> tuple[np.ndarray, bool]:
        """Pick ``[primitive, rotation, row, col]`` from Q maps (2, R, H, W); returns it and whether it explored."""
        masks = self.valid_masks(height)
        if not masks.any():  # nothing recognisable: fall back to every pixel
            masks[:] = True
            if not self.config.uses_push:
                masks[PUSH] = False
        masked = np.where(masks[:, None], q, -np.inf)  # (2, R, H, W)
        best = masked.reshape(2, -1).max(axis=1)  # (2,)
        primitive = int(np.argmax(best))
        explored = False
        if explore and self.config.uses_push and np.isfinite(best).all() and self.rng.random() < self.epsilon:
            primitive, explored = 1 - primitive, True
        if explore and self.rng.random() < self.random_pixel_prob:
            rows, cols = np.nonzero(masks[primitive])
            pick = int(self.rng.integers(len(rows)))
            rotation = int(self.rng.integers(self.config.num_rotations))
            return np.array([primitive, rotation, rows[pick], cols[pick]], dtype=np.int64), True
        rotation, row, col = np.unravel_index(int(np.argmax(masked[primitive])), masked.shape[1:])
        return np.array([primitive, rotation, row, col], dtype=np.int64), explored

    def act(self, obs: dict[str, np.ndarray], explore: bool) -> tuple[np.ndarray, np.ndarray, bool]:
        """Q maps (2, R, H, W), chosen action (4,) and whether it explored, for one observation."""
        q = self.predict(obs)
        action, explored = self.choose(q, obs["height"], explore)
        return q, action, explored

    def observe_result(self, action: np.ndarray, reward: float) -> None:
        """Remember a failure (to avoid repeating it) or forget all failures once something worked."""
        if reward > 0:
            self._failures.clear()
        else:
            self._failures.append((int(action[0]), int(action[2]), int(action[3])))

    def new_episode(self) -> None:
        self._failures.clear()

    # ------------------------------------------------------------------ learning
    def learning_reward(self, action: np.ndarray, reward: float) -> float:
        """The reward an action is learned with: the env's, except a rewarded push earns ``push_reward``."""
        if int(action[0]) == PUSH and reward > 0:
            return float(self.config.push_reward)
        return float(reward)

    def target(self, reward: float, next_q: np.ndarray | None, next_height: np.ndarray | None) -> float:
        """Q-learning target: ``reward + discount * max Q(s')`` over valid actions (no future if ``next_q`` is None);
        ``reward`` is the learning reward (:meth:`learning_reward`)."""
        discount = self.config.discount
        if discount == 0 or next_q is None:
            return float(reward)
        masks = self.valid_masks(next_height)
        if not masks.any():
            return float(reward)
        return float(reward + discount * np.max(np.where(masks[:, None], next_q, -np.inf)))

    def update(self, index: int) -> float:
        """One gradient step on replay transition ``index`` plus prioritised replay samples; returns the loss."""
        cfg = self.config
        replay = self.replay
        indices = [index, *replay.sample(cfg.replay_samples, index, replay.rewards[index], self.rng, cfg.replay_power)]
        colors = np.stack([replay.colors[i] for i in indices])
        heights = np.stack([replay.heights[i] for i in indices]).astype(np.float32)
        actions = np.stack([replay.actions[i] for i in indices])  # (B, 4)
        targets = torch.tensor([replay.targets[i] for i in indices], dtype=torch.float32, device=self.device)
        R = cfg.num_rotations
        rotations = torch.as_tensor(actions[:, 1], device=self.device)
        symmetric = (rotations + R // 2) % R
        angles = torch.stack([self.angles[rotations], self.angles[symmetric]], dim=1)  # (B, 2)
        self.net.train()
        batch = torch.arange(len(indices), device=self.device)
        prim = torch.as_tensor(actions[:, 0], device=self.device)
        rows = torch.as_tensor(actions[:, 2], device=self.device)
        cols = torch.as_tensor(actions[:, 3], device=self.device)
        q = q_at_pixels(self.net, self._tensor_inputs(colors, heights), angles, rows, cols)  # (B, 2, 2)
        predicted = q[batch, 0, prim]  # (B,) at the executed rotation
        loss = F.smooth_l1_loss(predicted, targets, reduction="sum")
        grasps = prim == GRASP
        if grasps.any():  # a grasp is symmetric: also supervise the rotation turned by pi
            mirrored = q[batch, 1, prim]
            loss = loss + F.smooth_l1_loss(mirrored[grasps], targets[grasps], reduction="sum")
        loss = loss / len(indices)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        for i, value in zip(indices, (predicted.detach() - targets).abs().cpu().tolist()):
            replay.surprise[i] = value
        return float(loss.detach())

    # ------------------------------------------------------------------ state
    def train_state(self) -> dict[str, Any]:
        """Everything besides the weights needed to continue training exactly."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "replay": self.replay.state_dict(),
            "rng": self.rng.bit_generator.state,
            "iteration": self.iteration,
            "failures": list(self._failures),
        }

    def load_train_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.replay.load_state_dict(state["replay"])
        self.rng.bit_generator.state = state["rng"]
        self.iteration = int(state["iteration"])
        self._failures = [tuple(f) for f in state["failures"]]


@dataclass
class VPGCheckpointConfig:
    """``config.json`` of a VPG checkpoint: the learner (and its network), the env it was trained in, and how it was
    trained (the training command's settings, for provenance)."""

    agent: VPGConfig
    env: PushGraspConfig
    train: dict[str, Any] = field(default_factory=dict)


def _build_agent(config: VPGCheckpointConfig, folder: Path, device: str) -> VPGAgent:
    agent = VPGAgent(config.agent, device=device)
    load_weights(folder, agent.net, device)
    agent.net.eval()
    return agent


CHECKPOINT_KIND = CheckpointKind(VPGCheckpointConfig, _build_agent)
"""How :func:`~manipstack.grasp_models.checkpoint.load_checkpoint` rebuilds a ``kind: "vpg"`` checkpoint."""


def load_agent(folder: str | os.PathLike, device: str = "cpu") -> tuple[VPGAgent, VPGCheckpointConfig]:
    """Rebuild an agent from a VPG checkpoint folder; returns it and the checkpoint's typed config."""
    checkpoint = load_checkpoint(folder, device, kind="vpg")
    return checkpoint.model, checkpoint.config
