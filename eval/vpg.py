"""``manipstack eval vpg``: test episodes of trained VPG checkpoints, with the paper's metrics.

Runs ``--runs`` greedy episodes (no exploration, no learning) per arrangement — random drops of
``--random N`` objects, or every JSON case in ``--cases DIR`` — and writes ``<out>/metrics.json``.
Metrics follow Zeng et al. 2018 (fractions in [0, 1]):

- completion: fraction of runs in which every object of the test is grasped before ``10`` consecutive
  failures or the action limit (the paper's ``evaluate.py`` counts a run as complete when its successful
  grasps reach the number of objects, so a run that pushes an object out of the workspace is not complete);
- grasp_success: successful grasps / grasp attempts per completed run, averaged over completed runs;
- action_efficiency: objects in the test / actions taken per completed run, averaged over completed runs.

Also reported: ``clearance``, the fraction of runs that empty the workspace, counting objects pushed out
of it as removed (the env's ``terminated``; more lenient than completion), and ``objects_lost``.

Runs of one case differ by a small seeded jitter of the object poses (``--jitter``), standing in for
the simulator noise that made the paper's repeated runs differ. Several ``--checkpoint`` folders are
evaluated on the same episodes; the top-level numbers belong to the first and ``models`` holds all.
Also written: ``<model>/episode.gif`` (one episode) and ``<model>/qmaps.png`` (push and grasp Q maps
over the heightmap with the chosen action marked, at the episode's first push if it pushes).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro

from manipstack.envs.data.provenance import run_metadata
from manipstack.envs.robots import Workcell
from manipstack.envs.tasks.push_grasp import PushGraspEnv
from manipstack.errors import InputError
from manipstack.eval.media import write_gif
from manipstack.eval.report import DemoSection
from manipstack.eval.runner import Episode, EpisodeJob, run_episodes
from manipstack.grasp_models.checkpoint import load_checkpoint
from manipstack.grasp_models.device import check_device
from manipstack.policies.vpg.agent import GRASP, PUSH, VPGAgent, VPGCheckpointConfig, load_agent
from manipstack.policies.vpg.policy import VPGPolicy


@dataclass
class EvalVPGConfig:
    """Evaluate VPG checkpoints on random clutter or on test-case files."""

    checkpoint: tuple[Path, ...]
    """One or more VPG checkpoint folders (model.safetensors + config.json); all run the same episodes."""
    random: int | None = None
    """Drop this many random objects per episode (exclusive with --cases)."""
    cases: Path | None = None
    """Folder of JSON test cases; every case runs --runs times (exclusive with --random)."""
    runs: int = 10
    """Episodes per arrangement (random: episodes in total)."""
    seed: int = 0
    """First evaluation seed (episode k of an arrangement under evaluation seed s uses 10_000_000 + 1000 * s + k)."""
    eval_seeds: int = 1
    """Evaluation seeds per checkpoint: seed, seed + 1, ... (each runs --runs episodes per arrangement); a
    checkpoint's numbers are the mean over its evaluation seeds."""
    out: Path = Path("reports/vpg_eval")
    """Output folder for metrics.json, the episode GIF and the Q-map figure."""
    objects: Path | None = None
    """Folder of mesh/URDF files to drop instead of the toy blocks (with --random)."""
    object_families: tuple[str, ...] = ()
    """Procedural object families to drop instead of the toy blocks (with --random), e.g. the held-out ``stars``
    (``manipstack.assets.vpg_objects``); empty = VPG's toy blocks, whatever the training used."""
    max_actions: int | None = None
    """Action limit per episode (default: the training env's, 50)."""
    raft_fraction: float = 0.0
    """Share of random scenes packed into plank rafts (0 = VPG's random drops, whatever the training used)."""
    jitter: tuple[float, float] = (0.001, 0.035)
    """Case-pose jitter per run: position std in m and yaw std in rad (clipped at 2 std); (0, 0) disables."""
    video: bool = True
    """Write a GIF of the first episode and a Q-map figure of its first action, per checkpoint."""
    device: str = "cpu"
    """Torch device."""
    workers: int = 1
    """Parallel episode workers: 1 runs in this process; more run chunks of episodes as Ray tasks (same results)."""
    ray_address: str | None = None
    """Address of a running Ray cluster (e.g. 'auto' or 'ray://host:10001') instead of a local Ray instance."""
    threads: int | None = 1
    """Torch CPU threads; 1 is fastest for this small net on a busy 2-core CPU, None keeps torch's choice."""

    def __post_init__(self) -> None:
        if (self.random is None) == (self.cases is None):
            raise InputError("give exactly one of --random N_OBJECTS or --cases DIR")
        if self.random is not None and self.random < 1:
            raise InputError(f"--random needs at least 1 object, got {self.random}")
        if self.cases is not None and not sorted(Path(self.cases).glob("*.json")):
            raise InputError(f"--cases {self.cases} holds no .json test cases")
        if self.runs < 1:
            raise InputError(f"--runs must be >= 1, got {self.runs}")
        if not 1 <= self.eval_seeds <= 100:
            raise InputError(f"--eval-seeds must be in [1, 100], got {self.eval_seeds}")
        check_device(self.device)
        if self.workers < 1:
            raise InputError(f"--workers must be >= 1, got {self.workers}")
        names = [model_name(c) for c in self.checkpoint]
        if len(set(names)) < len(names):
            raise InputError(f"checkpoint folders need distinct names (results are keyed by them), got {names}")
        if (self.objects is not None or self.object_families) and self.cases is not None:
            raise InputError("--objects / --object-families swap the objects of random drops; they cannot be "
                             "combined with --cases")


def model_name(checkpoint: Path) -> str:
    """The name results are keyed by: the checkpoint folder's name, or ``<run>-<name>`` for a training run's
    ``<run>/checkpoints/last`` or ``iter_<n>`` (so several runs' ``last`` checkpoints can be evaluated together)."""
    checkpoint = Path(checkpoint)
    if checkpoint.parent.name == "checkpoints" and checkpoint.parent.parent.name:
        return f"{checkpoint.parent.parent.name}-{checkpoint.name}"
    return checkpoint.name


# ---------------------------------------------------------------------------- metrics
def summarize_episode(primitives: list[int], rewards: list[float], cleared: bool, num_objects: int,
                      objects_lost: int = 0, objects_moved: list[int] | None = None) -> dict[str, Any]:
    """Counts of one episode from its executed primitives (0 push, 1 grasp) and rewards.

    Args:
        primitives, rewards: per action.
        cleared: the episode terminated with the workspace empty.
        num_objects: objects in the workspace after reset (the objects of the test).
        objects_lost: objects pushed out of the workspace during the episode (a run that lost any is not
            ``completed``: not every object was grasped).
        objects_moved: per action, the objects it moved by more than 1 cm (``info["objects_moved"]``); counts the
            failed grasps that shoved something.
    """
    grasps = [r for p, r in zip(primitives, rewards) if p == GRASP]
    moved = objects_moved if objects_moved is not None else [0] * len(primitives)
    failed_moving = sum(p == GRASP and r == 0 and m > 0 for p, r, m in zip(primitives, rewards, moved))
    return {
        "num_objects": num_objects,
        "actions": len(primitives),
        "grasps": len(grasps),
        "grasp_successes": int(sum(r > 0 for r in grasps)),
        "pushes": int(sum(p == PUSH for p in primitives)),
        "cleared": bool(cleared),
        "completed": bool(cleared and objects_lost == 0),
        "objects_lost": int(objects_lost),
        "failed_grasps": int(sum(r == 0 for r in grasps)),
        "failed_grasps_moving_objects": int(failed_moving),
        "longest_push_streak": _longest_run(primitives, PUSH),
    }


def _longest_run(values: list[int], value: int) -> int:
    """Length of the longest run of consecutive ``value`` in ``values``."""
    longest = current = 0
    for v in values:
        current = current + 1 if v == value else 0
        longest = max(longest, current)
    return longest


def aggregate(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The paper's metrics over episode summaries (see module docstring); 0.0 where nothing completed."""
    completed = [e for e in episodes if e["completed"]]
    with_grasps = [e for e in completed if e["grasps"] > 0]
    return {
        "completion": len(completed) / len(episodes) if episodes else 0.0,
        "clearance": sum(e["cleared"] for e in episodes) / len(episodes) if episodes else 0.0,
        "grasp_success": float(np.mean([e["grasp_successes"] / e["grasps"] for e in with_grasps])) if with_grasps
        else 0.0,
        "action_efficiency": float(np.mean([e["num_objects"] / e["actions"] for e in completed])) if completed
        else 0.0,
        "runs": len(episodes),
        "completed_runs": len(completed),
        "mean_actions": float(np.mean([e["actions"] for e in episodes])) if episodes else 0.0,
        "objects_lost": int(sum(e["objects_lost"] for e in episodes)),
        "pushes": int(sum(e["pushes"] for e in episodes)),
        "failed_grasp_disturbance": (sum(e["failed_grasps_moving_objects"] for e in episodes)
                                     / max(1, sum(e["failed_grasps"] for e in episodes))),
        "max_push_streak": max((e["longest_push_streak"] for e in episodes), default=0),
    }


# ---------------------------------------------------------------------------- figures
def plot_q_maps(obs: dict[str, np.ndarray], q: np.ndarray, action: np.ndarray, num_rotations: int,
                path: Path) -> Path:
    """Figure of the colour heightmap and the push / grasp Q maps (max over rotations), action marked.

    Args:
        obs: observation with ``color`` (H, W, 3) uint8.
        q: Q maps (2, R, H, W).
        action: ``[primitive, rotation, row, col]``.
        num_rotations: R.
        path: PNG file to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    primitive, rotation, row, col = (int(a) for a in action)
    angle = 2 * np.pi * rotation / num_rotations
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    panels = [("heightmap (colour)", None), ("push Q (max over rotations)", q[PUSH].max(0)),
              ("grasp Q (max over rotations)", q[GRASP].max(0))]
    for ax, (title, values) in zip(axes, panels):
        ax.imshow(obs["color"])
        if values is not None:
            shown = ax.imshow(values, cmap="jet", alpha=0.55)
            fig.colorbar(shown, ax=ax, fraction=0.046)
        length = 8 if primitive == PUSH else 5
        dx, dy = length * np.cos(angle), length * np.sin(angle)
        if primitive == PUSH:
            ax.arrow(col, row, 2 * dx, 2 * dy, color="white", width=0.8, head_width=3)
        else:
            ax.plot([col - dx, col + dx], [row - dy, row + dy], color="white", linewidth=2.5)
        ax.plot(col, row, "o", color="white", markersize=6, markeredgecolor="black")
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle(f"chosen: {'push' if primitive == PUSH else 'grasp'} at (row {row}, col {col}), "
                 f"{np.rad2deg(angle):.0f} deg, Q = {q[primitive, rotation, row, col]:.2f}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- rollouts
def make_env(checkpoint: VPGCheckpointConfig, eval_config: EvalVPGConfig, workcell: Workcell | None = None
             ) -> PushGraspEnv:
    """The env a checkpoint was trained in, with the evaluation's object set and limits; in ``workcell`` if
    given (e.g. a digital twin behind the driver bridge), else in-process."""
    overrides: dict[str, Any] = {"objects_dir": str(eval_config.objects) if eval_config.objects else None,
                                 "object_families": tuple(eval_config.object_families),
                                 "raft_fraction": eval_config.raft_fraction}
    if eval_config.random is not None:
        overrides["num_objects"] = eval_config.random
    if eval_config.max_actions is not None:
        overrides["max_actions"] = eval_config.max_actions
    return PushGraspEnv(dataclasses.replace(checkpoint.env, **overrides), render_mode="rgb_array", workcell=workcell)


def _env_for(checkpoint: Path, eval_config: EvalVPGConfig) -> PushGraspEnv:
    """The evaluation env of a checkpoint folder (a picklable factory for the runner's workers)."""
    return make_env(load_checkpoint(checkpoint, kind="vpg").config, eval_config)


def arrangements(config: EvalVPGConfig) -> list[tuple[str, dict[str, Any] | None]]:
    """(name, reset options) of each arrangement: one per case file, or one random-drop entry."""
    if config.cases is not None:
        return [(p.stem, {"case": str(p)}) for p in sorted(Path(config.cases).glob("*.json"))]
    return [(f"random-{config.random}", None)]


def eval_seeds(config: EvalVPGConfig) -> list[int]:
    """The evaluation seeds: ``seed``, ``seed + 1``, ... (``--eval-seeds`` of them)."""
    return [config.seed + i for i in range(config.eval_seeds)]


def episode_jobs(config: EvalVPGConfig) -> list[EpisodeJob]:
    """Every test episode: ``--runs`` per arrangement and evaluation seed s, episode k seeded
    ``10_000_000 + 1000 * s + k``, case runs jittered; the first one is recorded (GIF, Q maps) when ``--video``."""
    jobs = []
    for seed in eval_seeds(config):
        for case, options in arrangements(config):
            if options is not None and any(config.jitter):
                options = {**options, "jitter": list(config.jitter)}
            jobs.extend(EpisodeJob(10_000_000 + 1000 * seed + k, options, case) for k in range(config.runs))
    if config.video:
        jobs[0] = dataclasses.replace(jobs[0], record=True)
    return jobs


def episode_summary(episode: Episode) -> dict[str, Any]:
    """The paper's per-episode counts of a runner episode (objects lost at reset are not part of the test)."""
    lost = episode.final_info["objects_lost"] - episode.reset_info["objects_lost"]
    summary = summarize_episode([int(a[0]) for a in episode.actions], episode.rewards, episode.terminated,
                                episode.reset_info["objects_left"], lost, [i["objects_moved"] for i in episode.infos])
    return {**summary, "seed": episode.job.seed, "eval_seed": (episode.job.seed - 10_000_000) // 1000,
            "case": episode.job.tag}


HEADLINE = ("completion", "grasp_success", "action_efficiency")
"""The paper's three metrics: what mean ± std and "closest to the mean" are computed over."""


def seed_mean(episodes: list[dict[str, Any]]) -> dict[str, float]:
    """A checkpoint's headline metrics (and failed-grasp disturbance) as the mean over its evaluation seeds."""
    per_seed = [aggregate([e for e in episodes if e["eval_seed"] == s]) for s in sorted({e["eval_seed"] for e in
                                                                                         episodes})]
    keys = (*HEADLINE, "clearance", "failed_grasp_disturbance")
    return {key: float(np.mean([m[key] for m in per_seed])) for key in keys}


def method_summary(models: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method: mean ± std over its checkpoints (training seeds) of each checkpoint's mean over evaluation seeds,
    and the checkpoint closest to the mean (smallest summed absolute deviation over the headline metrics)."""
    methods: dict[str, dict[str, Any]] = {}
    for method in sorted({m["method"] for m in models.values()}):
        names = [n for n, m in models.items() if m["method"] == method]
        values = {n: models[n]["seed_mean"] for n in names}
        summary: dict[str, Any] = {"checkpoints": names}
        for key in values[names[0]]:
            column = np.array([values[n][key] for n in names])
            summary[key] = {"mean": float(column.mean()), "std": float(column.std(ddof=1)) if len(names) > 1 else 0.0}
        summary["closest_to_mean"] = min(names, key=lambda n: sum(abs(values[n][k] - summary[k]["mean"])
                                                                   for k in HEADLINE))
        summary["objects_lost"] = int(sum(models[n]["objects_lost"] for n in names))
        summary["max_push_streak"] = max(models[n]["max_push_streak"] for n in names)
        methods[method] = summary
    return methods


def write_media(episode: Episode, agent: VPGAgent, folder: Path) -> None:
    """``episode.gif`` of a recorded episode and ``qmaps.png`` at its first push (its first action if it never
    pushes), Q maps recomputed from the recorded observation."""
    write_gif(episode.frames, folder / "episode.gif", fps=2.0)
    primitives = [int(a[0]) for a in episode.actions]
    step = primitives.index(PUSH) if PUSH in primitives else 0
    if episode.actions:
        observation = episode.observations[step]
        plot_q_maps(observation, agent.predict(observation), episode.actions[step], agent.config.num_rotations,
                    folder / "qmaps.png")


def evaluate(config: EvalVPGConfig) -> dict[str, Any]:
    """Run every checkpoint on every arrangement; writes and returns the metrics dict."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    models: dict[str, Any] = {}
    start = time.time()
    jobs = episode_jobs(config)
    for checkpoint in config.checkpoint:
        agent, ckpt_config = load_agent(checkpoint, config.device)
        name = model_name(checkpoint)
        runs = run_episodes(functools.partial(_env_for, Path(checkpoint), config),
                            functools.partial(VPGPolicy.from_checkpoint, checkpoint, config.device, config.threads),
                            jobs, config.workers, config.ray_address, desc=f"eval {name}")
        episodes = [episode_summary(episode) for episode in runs]
        if config.video:
            write_media(runs[0], agent, out / name)
        per_case = {case: aggregate([e for e in episodes if e["case"] == case]) for case, _ in arrangements(config)}
        models[name] = {"checkpoint": str(checkpoint), "method": ckpt_config.agent.label,
                        **aggregate(episodes), "seed_mean": seed_mean(episodes), "per_case": per_case,
                        "episodes": episodes}
        result = models[name]
        print(f"{name}: completion {result['completion']:.3f}, grasp success {result['grasp_success']:.3f}, "
              f"action efficiency {result['action_efficiency']:.3f} over {len(episodes)} runs "
              f"(clearance {result['clearance']:.3f}, {result['objects_lost']} objects pushed out)")
    first = models[model_name(config.checkpoint[0])]
    metrics = {
        **run_metadata(eval_seeds(config)),
        "mode": "cases" if config.cases is not None else "random",
        "cases_dir": str(config.cases) if config.cases else None,
        "num_objects": config.random,
        "objects_dir": str(config.objects) if config.objects else None,
        "object_families": list(config.object_families),
        "runs_per_arrangement": config.runs,
        "jitter": list(config.jitter) if config.cases else None,
        "wall_time_s": round(time.time() - start, 1),
        **{k: first[k] for k in ("completion", "grasp_success", "action_efficiency", "clearance", "runs",
                                 "completed_runs", "mean_actions", "objects_lost", "per_case")},
        "models": {k: {kk: vv for kk, vv in v.items() if kk != "episodes"} for k, v in models.items()},
        "methods": method_summary(models),
        "episodes": {k: v["episodes"] for k, v in models.items()},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    for method, summary in metrics["methods"].items():
        print(f"{method} over {len(summary['checkpoints'])} checkpoint(s) x {config.eval_seeds} evaluation seed(s): "
              + ", ".join(f"{k} {summary[k]['mean']:.3f} +- {summary[k]['std']:.3f}" for k in HEADLINE)
              + f"; closest to the mean: {summary['closest_to_mean']}")
    print(f"wrote {out / 'metrics.json'}")
    return metrics


SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[1] / "assets" / "checkpoints" / "vpg" / "vpg"
SHIPPED_CASES = Path(__file__).resolve().parents[1] / "assets" / "vpg_cases"
DEMO_CASES = ("03_plank_raft", "05_slab_stack", "10_crossed_rafts")


def demo(out_dir: Path, seed: int) -> DemoSection:
    """Demo-report section: the shipped VPG checkpoint on 3 random 10-block drops and 1 run of each of 3 cases."""
    folder = out_dir / "vpg"
    random_metrics = evaluate(EvalVPGConfig(checkpoint=(SHIPPED_CHECKPOINT,), random=10, runs=3, seed=seed,
                                            out=folder / "random"))
    cases = folder / "cases_subset"
    cases.mkdir(parents=True, exist_ok=True)
    for name in DEMO_CASES:
        (cases / f"{name}.json").write_text((SHIPPED_CASES / f"{name}.json").read_text())
    case_metrics = evaluate(EvalVPGConfig(checkpoint=(SHIPPED_CHECKPOINT,), cases=cases, runs=1, seed=seed,
                                          out=folder / "cases"))
    metrics: dict[str, float | int | str] = {}
    for prefix, values in (("random10", random_metrics), ("cases3", case_metrics)):
        for key in ("completion", "grasp_success", "action_efficiency", "runs"):
            metrics[f"{prefix}_{key}"] = round(values[key], 3) if isinstance(values[key], float) else values[key]
    metrics["cases3_pushes"] = sum(e["pushes"] for e in case_metrics["episodes"]["vpg"])
    return DemoSection(
        title="VPG push-grasp Q-learning",
        summary="Shipped VPG checkpoint (trained from scratch on this CPU), greedy: 3 random 10-block drops and "
                f"one run of the challenging cases {', '.join(DEMO_CASES)}. GIFs: the first episode of each; "
                "figures: push and grasp Q maps (max over 16 rotations) over the heightmap at the episode's first "
                "push (its first action if it never pushes), chosen action marked. Full evaluation: "
                "manipstack eval vpg.",
        metrics=metrics,
        images=[folder / "cases" / "vpg" / "qmaps.png", folder / "cases" / "vpg" / "episode.gif",
                folder / "random" / "vpg" / "qmaps.png", folder / "random" / "vpg" / "episode.gif"],
    )


def main(argv: list[str] | None = None) -> None:
    evaluate(tyro.cli(EvalVPGConfig, args=argv))


if __name__ == "__main__":
    main()
