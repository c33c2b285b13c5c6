"""The trained VPG agent as a :class:`~manipstack.envs.core.task.Policy`: greedy over its Q maps, with VPG's failure
memory (told each action's reward through ``feedback``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from manipstack.policies.vpg.agent import VPGAgent, load_agent


class VPGPolicy:
    """Greedy VPG: the arg-max over valid pixels of both primitives' Q maps, avoiding where the same primitive just
    failed in an unchanged scene (no exploration, no learning)."""

    def __init__(self, agent: VPGAgent) -> None:
        self.agent = agent

    @classmethod
    def from_checkpoint(cls, folder: str | os.PathLike, device: str = "cpu", threads: int | None = 1) -> VPGPolicy:
        """Load a VPG checkpoint folder; ``threads`` sets torch's CPU threads in this process (None keeps them)."""
        if threads is not None:
            torch.set_num_threads(threads)
        return cls(load_agent(folder, device)[0])

    def reset(self) -> None:
        self.agent.new_episode()

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """``[primitive, rotation, row, col]`` for a heightmap observation."""
        return self.agent.act(observation, explore=False)[1]

    def feedback(self, action: np.ndarray, reward: float, info: dict[str, Any]) -> None:
        self.agent.observe_result(action, reward)
