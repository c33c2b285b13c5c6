"""The one policy runner: roll any policy in any env for a list of seeded episodes, in-process or on Ray.

Every evaluation goes through :func:`run_episodes`. An episode is fully described by its :class:`EpisodeJob`
(reset seed and options), so it gives the same result whichever process runs it; with ``workers > 1`` (or a Ray
cluster) the jobs are split into chunks, each chunk builds its own env and policy from the picklable factories
and runs as one Ray task, retried on failure. Results come back in job order.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from manipstack.envs.core.parallel import parallel_map
from manipstack.envs.core.task import FeedbackPolicy, Policy


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run: the env's reset ``seed`` and ``options``, a free-form ``tag`` (e.g. the test case) and
    whether to ``record`` it (render frames and keep the observations)."""

    seed: int
    options: dict[str, Any] | None = None
    tag: str = ""
    record: bool = False


@dataclass
class Episode:
    """What happened in one episode.

    ``actions``, ``rewards`` and ``infos`` have one entry per step; ``observations`` (recorded episodes only) holds
    the observation each action was chosen from, and ``frames`` the rendered RGB images (H, W, 3) uint8 after the
    reset and after every step.
    """

    job: EpisodeJob
    reset_info: dict[str, Any]
    actions: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False
    observations: list[Any] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)

    @property
    def final_info(self) -> dict[str, Any]:
        """The last step's info (the reset info for an episode without steps)."""
        return self.infos[-1] if self.infos else self.reset_info


def rollout(env: gym.Env, policy: Policy, job: EpisodeJob, max_steps: int | None = None) -> Episode:
    """Run one episode of ``policy`` in ``env`` until it terminates or is truncated (or ``max_steps`` steps)."""
    observation, info = env.reset(seed=job.seed, options=job.options)
    policy.reset()
    episode = Episode(job, info)
    if job.record:
        episode.frames.append(env.render())
    while not (episode.terminated or episode.truncated) and (max_steps is None or len(episode.actions) < max_steps):
        action = policy.act(observation)
        if job.record:
            episode.observations.append(observation)
        observation, reward, episode.terminated, episode.truncated, info = env.step(action)
        if isinstance(policy, FeedbackPolicy):
            policy.feedback(action, float(reward), info)
        episode.actions.append(action)
        episode.rewards.append(float(reward))
        episode.infos.append(info)
        if job.record:
            episode.frames.append(env.render())
    return episode


def _run_chunk(jobs: Sequence[EpisodeJob], make_env: Callable[[], gym.Env], make_policy: Callable[[], Policy],
               max_steps: int | None) -> list[Episode]:
    """One Ray unit: build env and policy, run the jobs, release the env."""
    env = make_env()
    try:
        policy = make_policy()
        return [rollout(env, policy, job, max_steps) for job in jobs]
    finally:
        env.close()


def run_episodes(
    make_env: Callable[[], gym.Env],
    make_policy: Callable[[], Policy],
    jobs: Sequence[EpisodeJob],
    workers: int = 1,
    ray_address: str | None = None,
    retries: int = 2,
    max_steps: int | None = None,
    desc: str = "episodes",
) -> list[Episode]:
    """Run ``jobs`` and return their episodes in job order.

    Args:
        make_env: builds the env (e.g. ``functools.partial(gymnasium.make, "manipstack/PushGrasp-v0", ...)``);
            picklable for Ray.
        make_policy: builds the policy; picklable for Ray.
        jobs: the episodes.
        workers: 1 runs every job in this process with one env and one policy; more run chunks of jobs as Ray
            tasks on a local instance with that many CPUs.
        ray_address: a running Ray cluster instead of a local instance (``"auto"``, ``"ray://host:10001"``).
        retries: times Ray retries a chunk whose worker failed; a chunk that fails every time raises.
        max_steps: stop an episode after this many steps (None: the env's own termination and truncation).
        desc: progress-bar label.
    """
    if workers == 1 and ray_address is None:
        env = make_env()
        try:
            policy = make_policy()
            return [rollout(env, policy, job, max_steps) for job in tqdm(jobs, desc=desc, unit="ep")]
        finally:
            env.close()
    size = max(1, math.ceil(len(jobs) / (4 * workers)))  # a few chunks per worker balance uneven episodes
    chunks = [list(jobs[i:i + size]) for i in range(0, len(jobs), size)]
    unit = functools.partial(_run_chunk, make_env=make_env, make_policy=make_policy, max_steps=max_steps)
    results: list[list[Episode] | None] = [None] * len(chunks)
    bar = tqdm(total=len(jobs), desc=desc, unit="ep")
    for index, result in parallel_map(unit, chunks, workers, ray_address, retries,
                                      describe=lambda chunk: f"episodes with seeds {[j.seed for j in chunk]}"):
        if isinstance(result, Exception):
            raise result
        results[index] = result
        bar.update(len(result))
    bar.close()
    return [episode for chunk in results for episode in chunk]
