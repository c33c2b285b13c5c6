"""``manipstack eval pose-grasp``: Panda grasps driven by estimated 9-DoF poses, beside the same episodes driven by
the true poses.

Both runs use ``manipstack/PoseGrasp-v0`` (held-out instances, shifted render domain by default) with the same
episode seeds through the one runner (``eval.runner.run_episodes``, in-process or on Ray): one with
:class:`~manipstack.policies.pose_grasp.policy.EstimatedPosePolicy` on the checkpoint, one with
:class:`~manipstack.policies.pose_grasp.policy.GroundTruthPosePolicy` (privileged observations). Writes
``metrics.json``: success rates overall and per category, the estimate's position and up-axis errors, provenance.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import tyro

from manipstack.envs.data.provenance import run_metadata
from manipstack.envs.tasks.pose_grasp import PoseGraspConfig, PoseGraspEnv
from manipstack.eval.runner import EpisodeJob, run_episodes
from manipstack.grasp_models.device import check_device
from manipstack.policies.pose_grasp.policy import EstimatedPosePolicy, GroundTruthPosePolicy


@dataclass
class EvalPoseGraspConfig:
    """Grasp success from estimated poses vs from true poses."""

    checkpoint: Path
    """Pose checkpoint folder."""
    episodes: int = 40
    """Episodes per run (the same seeds for both runs)."""
    out: Path = Path("reports/pose_grasp")
    """Folder for metrics.json."""
    seed: int = 0
    """Episode k is reset with seed ``seed * 100003 + k``; also seeds the estimator's point draws and noise."""
    steps: int | None = None
    """DDIM steps (default: the checkpoint's)."""
    workers: int = 1
    """Parallel workers (1: in-process; more: local Ray instance)."""
    ray_address: str | None = None
    """A running Ray cluster instead of a local instance."""
    device: str = "cpu"
    """Torch device of the estimator."""
    env: PoseGraspConfig = field(default_factory=PoseGraspConfig)
    """Environment settings (categories, instance split, render domain ...)."""

    def __post_init__(self) -> None:
        check_device(self.device)
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")


def _estimated_policy(checkpoint: str, device: str, seed: int, steps: int | None) -> EstimatedPosePolicy:
    return EstimatedPosePolicy.from_checkpoint(checkpoint, device, seed, steps)


def _summary(episodes: list) -> dict[str, object]:
    infos = [e.final_info for e in episodes]
    success = np.array([i["grasp_success"] for i in infos], dtype=float)
    categories = sorted({i["category"] for i in infos})
    return {"episodes": len(infos), "success_rate": round(float(success.mean()), 4),
            "per_category": {c: round(float(np.mean([i["grasp_success"] for i in infos if i["category"] == c])), 4)
                             for c in categories},
            "aborted": int(sum(i["aborted"] for i in infos)),
            "position_error_cm_median": round(float(np.median([i["position_error_cm"] for i in infos])), 2),
            "up_error_deg_median": round(float(np.median([i["up_error_deg"] for i in infos])), 2)}


def run(config: EvalPoseGraspConfig) -> dict[str, object]:
    jobs = [EpisodeJob(seed=config.seed * 100003 + k) for k in range(config.episodes)]
    estimated = run_episodes(functools.partial(PoseGraspEnv, replace(config.env, privileged=False)),
                             functools.partial(_estimated_policy, str(config.checkpoint), config.device, config.seed,
                                               config.steps),
                             jobs, config.workers, config.ray_address, desc="estimated pose")
    truth = run_episodes(functools.partial(PoseGraspEnv, replace(config.env, privileged=True)),
                         GroundTruthPosePolicy, jobs, config.workers, config.ray_address, desc="true pose")
    est, gt = _summary(estimated), _summary(truth)
    metrics = {**run_metadata(config.seed), "checkpoint": str(config.checkpoint),
               "domain": config.env.domain, "instances": config.env.instances,
               "categories": list(config.env.categories), "estimated_pose": est, "true_pose": gt,
               "gap_points": round(100 * (gt["success_rate"] - est["success_rate"]), 1),
               "targets": {"estimated_pose_success": ">= 0.80", "gap_points": "<= 10"}}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps({"estimated_pose": est, "true_pose": gt, "gap_points": metrics["gap_points"]}, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> None:
    run(tyro.cli(EvalPoseGraspConfig, args=argv))


if __name__ == "__main__":
    main()
