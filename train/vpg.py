"""``manipstack train vpg``: self-supervised push-grasp Q-learning (VPG) and its two baselines.

One iteration = one action in ``manipstack/PushGrasp-v0``: Q maps of the current heightmap ->
epsilon-greedy action -> env step -> target from the next heightmap's Q maps -> one update on the
new transition plus prioritised replay samples. Episodes restart when the workspace is clear or
after 10 failures in a row; episode ``k`` is reset with seed ``seed * 100003 + k``.

Writes TensorBoard scalars and checkpoints under ``--out`` (default ``runs/vpg/<method>-s<seed>``):
``checkpoints/last`` (weights + optimiser, replay buffer, RNG and counters: ``--resume`` continues
from it exactly) and weight-only snapshots ``checkpoints/iter_<n>``. Checkpoints are taken at the
first episode boundary after every ``--checkpoint-every`` iterations, so a resumed run replays the
same episodes it would have seen.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from manipstack.envs.tasks.push_grasp import PushGraspConfig, PushGraspEnv
from manipstack.errors import InputError, MissingInputError
from manipstack.grasp_models.checkpoint import load_train_state, load_weights, save_checkpoint
from manipstack.grasp_models.device import check_device
from manipstack.policies.vpg.agent import GRASP, PUSH, VPGAgent, VPGConfig

WINDOW = 200  # actions in the running success-rate window


@dataclass
class TrainVPGConfig:
    """Train VPG (or a baseline) on random 10-block clutter."""

    method: str = "vpg"
    """'vpg' (push + grasp, gamma 0.5), 'grasping-only' or 'reactive' (P+G, immediate reward only)."""
    iterations: int = 2500
    """Training actions (iterations) in total, counting those before a resume."""
    seed: int = 0
    """Seed of the network initialisation, exploration, replay sampling and every episode."""
    out: Path | None = None
    """Run folder (TensorBoard events + checkpoints); default runs/vpg/<method>-s<seed>."""
    checkpoint_every: int = 250
    """Checkpoint at the first episode end after every this many iterations (and at the end)."""
    resume: bool = False
    """Continue from <out>/checkpoints/last (model, optimiser, replay, RNG, counters)."""
    time_limit_minutes: float | None = None
    """Stop (with a checkpoint) at the first episode end after this much wall-clock time in this process."""
    device: str = "cpu"
    """Torch device, e.g. 'cpu' or 'cuda'."""
    threads: int | None = 1
    """Torch CPU threads; 1 is fastest for this small net on a busy 2-core CPU (OpenMP threads spin-wait for
    cores), None keeps torch's choice."""
    env: PushGraspConfig = field(default_factory=PushGraspConfig)
    """Environment settings (heightmap size, rotations, objects ...)."""
    agent: VPGConfig = field(default_factory=VPGConfig)
    """Learner settings; its method, rotations, heightmap geometry and push clearance are taken from --method
    and --env."""

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise InputError(f"iterations must be >= 1, got {self.iterations}")
        check_device(self.device)
        if self.checkpoint_every < 1:
            raise InputError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        self.agent = dataclasses.replace(
            self.agent, method=self.method, num_rotations=self.env.num_rotations,
            heightmap_size=self.env.heightmap_size, pixel_size=self.env.pixel_size,
            push_clearance=self.env.primitives.finger_half_width,
        )
        if self.out is None:
            self.out = Path("runs/vpg") / f"{self.method}-s{self.seed}"


class Stats:
    """Running statistics over the last ``WINDOW`` actions and per episode."""

    def __init__(self) -> None:
        self.window: collections.deque[tuple[int, float, bool]] = collections.deque(maxlen=WINDOW)
        self.push_then_grasp: collections.deque[bool] = collections.deque(maxlen=WINDOW)
        self.last: tuple[int, float] | None = None  # previous action of this episode (primitive, reward)

    def record(self, primitive: int, reward: float, explored: bool) -> None:
        self.window.append((primitive, reward, explored))
        if primitive == GRASP and self.last is not None and self.last[0] == PUSH and self.last[1] > 0:
            self.push_then_grasp.append(reward > 0)
        self.last = (primitive, reward)

    def scalars(self) -> dict[str, float]:
        grasps = [r for p, r, _ in self.window if p == GRASP]
        pushes = [r for p, r, _ in self.window if p == PUSH]
        out = {
            "grasp_success_rate": float(np.mean([r > 0 for r in grasps])) if grasps else 0.0,
            "push_fraction": len(pushes) / max(1, len(self.window)),
            "push_change_rate": float(np.mean([r > 0 for r in pushes])) if pushes else 0.0,
        }
        if self.push_then_grasp:
            out["push_then_grasp_success_rate"] = float(np.mean(self.push_then_grasp))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"window": list(self.window), "push_then_grasp": list(self.push_then_grasp), "last": self.last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.window.extend(state["window"])
        self.push_then_grasp.extend(state["push_then_grasp"])
        self.last = state["last"]


def episode_seed(seed: int, episode: int) -> int:
    """Reset seed of training episode ``episode``."""
    return seed * 100003 + episode


def checkpoint_config(config: TrainVPGConfig) -> dict[str, Any]:
    """The ``config.json`` of a VPG checkpoint: how to rebuild the net, the env it acts in, how it was trained."""
    return {
        "kind": "vpg",
        "agent": dataclasses.asdict(config.agent),
        "env": dataclasses.asdict(config.env),
        "train": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()
                  if k not in ("env", "agent")},
    }


def train(config: TrainVPGConfig) -> Path:
    """Run (or resume) training; returns the folder of the last checkpoint."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    last = out / "checkpoints" / "last"
    torch.manual_seed(config.seed)
    agent = VPGAgent(config.agent, device=config.device, seed=config.seed)
    stats = Stats()
    counters = {"episode": 0, "episode_actions": 0, "episode_reward": 0.0, "wall_time_s": 0.0}
    if config.resume:
        if not last.is_dir():
            raise MissingInputError(f"--resume: no checkpoint at {last}; train without --resume first")
        load_weights(last, agent.net, config.device)
        state = load_train_state(last)
        agent.load_train_state(state["agent"])
        stats.load_state_dict(state["stats"])
        counters.update(state["counters"])
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed from {last} at iteration {agent.iteration}, episode {counters['episode']}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(checkpoint_config(config), indent=2))
    writer = SummaryWriter(str(out))
    env = PushGraspEnv(config.env)
    start = time.time()
    wall_before = counters["wall_time_s"]
    next_checkpoint = (agent.iteration // config.checkpoint_every + 1) * config.checkpoint_every

    def save(with_state: bool) -> Path:
        counters["wall_time_s"] = wall_before + time.time() - start
        state = None
        if with_state:
            state = {"agent": agent.train_state(), "stats": stats.state_dict(), "counters": dict(counters),
                     "torch_rng": torch.get_rng_state()}
        folder = save_checkpoint(last if with_state else out / "checkpoints" / f"iter_{agent.iteration:05d}",
                                 agent.net, checkpoint_config(config), state)
        return folder

    try:
        obs, _ = env.reset(seed=episode_seed(config.seed, counters["episode"]))
        agent.new_episode()
        stats.last = None
        q = agent.predict(obs)
        bar = tqdm(total=config.iterations, initial=agent.iteration, desc=f"train {config.method}", unit="act")
        while agent.iteration < config.iterations:
            action, explored = agent.choose(q, obs["height"], explore=True)
            next_obs, reward, terminated, truncated, info = env.step(action)
            agent.observe_result(action, reward)
            next_q = agent.predict(next_obs) if not terminated else None
            learned = agent.learning_reward(action, reward)
            target = agent.target(learned, next_q, next_obs["height"])
            index = agent.replay.add(obs["color"], obs["height"], action, learned, target)
            loss = agent.update(index)
            agent.iteration += 1
            stats.record(int(action[0]), reward, explored)
            counters["episode_actions"] += 1
            counters["episode_reward"] += reward
            step = agent.iteration
            writer.add_scalar("train/loss", loss, step)
            writer.add_scalar("train/epsilon", agent.epsilon, step)
            for key, value in stats.scalars().items():
                writer.add_scalar(f"train/{key}", value, step)
            bar.update(1)
            bar.set_postfix(grasp=f"{stats.scalars()['grasp_success_rate']:.2f}", ep=counters["episode"],
                            left=info["objects_left"])
            if terminated or truncated:
                writer.add_scalar("episode/completed", float(terminated), counters["episode"])
                writer.add_scalar("episode/actions", counters["episode_actions"], counters["episode"])
                writer.add_scalar("episode/objects_grasped", info["objects_grasped"], counters["episode"])
                writer.add_scalar("episode/objects_lost", info["objects_lost"], counters["episode"])
                counters.update(episode=counters["episode"] + 1, episode_actions=0, episode_reward=0.0)
                timed_out = (config.time_limit_minutes is not None
                             and time.time() - start > 60 * config.time_limit_minutes)
                if agent.iteration >= next_checkpoint or agent.iteration >= config.iterations or timed_out:
                    save(with_state=False)
                    save(with_state=True)
                    next_checkpoint = (agent.iteration // config.checkpoint_every + 1) * config.checkpoint_every
                if timed_out:
                    print(f"time limit of {config.time_limit_minutes} min reached at iteration {agent.iteration}")
                    break
                obs, _ = env.reset(seed=episode_seed(config.seed, counters["episode"]))
                agent.new_episode()
                stats.last = None
                q = agent.predict(obs)
            else:
                obs, q = next_obs, next_q
        bar.close()
        if agent.iteration >= config.iterations and not (terminated or truncated):
            save(with_state=False)
            save(with_state=True)
    finally:
        writer.close()
        env.close()
    writer_time = wall_before + time.time() - start
    print(f"trained {agent.iteration} iterations, {counters['episode']} episodes, wall time {writer_time:.0f} s "
          f"(this process {time.time() - start:.0f} s); checkpoint: {last}")
    return last


def main(argv: list[str] | None = None) -> None:
    train(tyro.cli(TrainVPGConfig, args=argv))


if __name__ == "__main__":
    main()
