"""``manipstack eval pose``: category-level 9-DoF pose estimates on a pose dataset, in NOCS's result format, scored
with NOCS's metrics (3D IoU bug fixed; ``manipstack.grasp_models.pose.metrics``).

Two modes:

- ``--checkpoint DIR --dataset F.h5 --out DIR``: estimate the pose of every ground-truth instance of every scene
  (instance masks and class ids from the simulator's segmentation: the estimator is not a detector, so every
  ground-truth instance gets exactly one estimate, with score 1), write one NOCS pickle per image to
  ``DIR/predictions/results_<scene>.pkl`` and score them.
- ``--predictions DIR --out DIR``: score any folder of NOCS result pickles (``gt_class_ids``, ``gt_RTs``,
  ``gt_scales``, ``gt_handle_visibility``, ``pred_class_ids``, ``pred_scores``, ``pred_RTs``, ``pred_scales``), e.g.
  a published method's result files.

Writes ``metrics.json`` (mAP and per-class AP at 3D IoU 25/50/75 and 5°2cm, 5°5cm, 10°2cm, 10°5cm, the full AP
curves, provenance, timing) and ``mAP_curves.png`` (AP vs 3D IoU, vs rotation and vs translation threshold, per
class and mean, as in the NOCS and Diff9D papers).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import tyro  # noqa: E402
from tqdm import tqdm  # noqa: E402

from manipstack.envs.data.pose_dataset import PoseDataset, PoseScene  # noqa: E402
from manipstack.envs.data.provenance import run_metadata  # noqa: E402
from manipstack.errors import InputError  # noqa: E402
from manipstack.grasp_models.checkpoint import load_checkpoint  # noqa: E402
from manipstack.grasp_models.device import check_device  # noqa: E402
from manipstack.grasp_models.pose.features import instance_inputs, sRT_from_pose  # noqa: E402
from manipstack.grasp_models.pose.metrics import (  # noqa: E402
    SYNSET_NAMES,
    PoseAPs,
    box_corners,
    compute_aps,
    load_results,
    transform,
    write_result,
)
from manipstack.grasp_models.pose.model import PoseEstimator  # noqa: E402


@dataclass
class EvalPoseConfig:
    """Estimate and score category-level 9-DoF poses (NOCS format and metrics)."""

    out: Path
    """Output folder: metrics.json, mAP_curves.png (and predictions/ with --checkpoint)."""
    checkpoint: Path | None = None
    """Pose checkpoint folder (with --dataset)."""
    dataset: Path | None = None
    """Pose dataset to estimate on (with --checkpoint), e.g. shifted-domain held-out instances."""
    predictions: Path | None = None
    """Instead: a folder of NOCS result pickles to score."""
    steps: int | None = None
    """DDIM steps (default: the checkpoint's inference_steps)."""
    hypotheses: int | None = None
    """DDIM samples per instance, aggregated (default: the checkpoint's ``hypotheses``)."""
    batch_size: int = 128
    """Instances per estimator call."""
    max_scenes: int | None = None
    """Only the first this many scenes of the dataset."""
    use_matches_for_pose: bool = True
    """Score poses only on pairs matched at 3D IoU > 0.1, as NOCS's and Diff9D's scripts do."""
    seed: int = 0
    """Seed of the point draws and the diffusion noise."""
    device: str = "cpu"
    """Torch device."""
    threads: int | None = 1
    """Torch CPU threads."""

    def __post_init__(self) -> None:
        check_device(self.device)
        own = self.checkpoint is not None or self.dataset is not None
        if own == (self.predictions is not None) or (own and (self.checkpoint is None or self.dataset is None)):
            raise InputError("give either --checkpoint and --dataset, or --predictions")


def estimate_scenes(estimator: PoseEstimator, scenes: list[PoseScene], seed: int, steps: int | None = None,
                    batch_size: int = 128, hypotheses: int | None = None
                    ) -> tuple[list[dict[str, np.ndarray]], float]:
    """NOCS results (one dict per scene) for every ground-truth instance, and the estimator seconds they took."""
    rng = np.random.default_rng([seed, 5])
    generator = torch.Generator(device=estimator.device).manual_seed(seed)
    cfg = estimator.config
    items, crops, points, ids = [], [], [], []
    for s, scene in enumerate(scenes):
        for k in range(len(scene)):
            inputs = instance_inputs(scene.rgb, scene.depth, scene.mask == k + 1, scene.intrinsics, rng,
                                     cfg.crop_size, cfg.num_points)
            if inputs is None:
                continue
            items.append((s, k, inputs.bbox))
            crops.append(inputs.crop)
            points.append(inputs.points)
            ids.append(int(scene.class_ids[k]))
    rotations, translations, extents = np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros((0, 3))
    seconds = 0.0
    for start in range(0, len(items), batch_size):
        chunk = slice(start, start + batch_size)
        begin = time.perf_counter()
        r, t, e = estimator.estimate(np.stack(crops[chunk]), np.stack(points[chunk]), np.array(ids[chunk]),
                                     generator, steps, hypotheses)
        seconds += time.perf_counter() - begin
        rotations, translations, extents = (np.concatenate([a, b]) for a, b in ((rotations, r), (translations, t),
                                                                              (extents, e)))
    per_scene: list[list[int]] = [[] for _ in scenes]
    for n, (s, _, _) in enumerate(items):
        per_scene[s].append(n)
    results = []
    for s, scene in enumerate(scenes):
        rows = per_scene[s]
        poses = [sRT_from_pose(rotations[n], translations[n], extents[n]) for n in rows]
        results.append({
            "image_id": int(scene.index), "gt_class_ids": scene.class_ids.astype(np.int64),
            "gt_RTs": scene.RTs.astype(np.float64), "gt_scales": scene.scales.astype(np.float64),
            "gt_handle_visibility": scene.handle_visibility.astype(np.int64),
            "gt_bboxes": np.array([items[n][2] for n in rows]).reshape(len(rows), 4),
            "pred_class_ids": np.array([ids[n] for n in rows], dtype=np.int64),
            "pred_bboxes": np.array([items[n][2] for n in rows]).reshape(len(rows), 4),
            "pred_scores": np.ones(len(rows), dtype=np.float64),
            "pred_RTs": np.array([p[0] for p in poses]).reshape(len(rows), 4, 4),
            "pred_scales": np.array([p[1] for p in poses]).reshape(len(rows), 3),
        })
    return results, seconds


def plot_curves(aps: PoseAPs, path: Path) -> Path:
    """AP vs 3D IoU threshold, vs rotation (translation unlimited) and vs translation (rotation unlimited)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    classes = [c for c in range(1, len(SYNSET_NAMES)) if aps.num_gt[c] > 0]
    panels = ((aps.iou_thresholds, lambda r: aps.iou[r], "3D IoU threshold"),
              (aps.degree_thresholds[:-1], lambda r: aps.pose[r, :-1, -1], "rotation error threshold (degrees)"),
              (aps.shift_thresholds[:-1], lambda r: aps.pose[r, -1, :-1], "translation error threshold (cm)"))
    for ax, (x, curve, label) in zip(axes, panels):
        for c in classes:
            ax.plot(x, 100 * np.asarray(curve(c)), label=SYNSET_NAMES[c], linewidth=1.2)
        ax.plot(x, 100 * np.asarray(curve(-1)), label="mean", color="black", linewidth=2.2)
        ax.set_xlabel(label)
        ax.set_ylabel("AP (%)")
        ax.set_ylim(0, 102)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def score(results: list[dict[str, np.ndarray]], out: Path, use_matches_for_pose: bool = True
          ) -> tuple[dict[str, object], PoseAPs]:
    """mAP summary of checked results; writes the curves plot into ``out``."""
    aps = compute_aps(results, use_matches_for_pose=use_matches_for_pose)
    summary = aps.summary()
    summary["images"] = len(results)
    summary["curves"] = {"iou_thresholds": list(aps.iou_thresholds),
                         "iou_map": np.round(100 * aps.iou[-1], 2).tolist(),
                         "degree_thresholds": list(aps.degree_thresholds[:-1]),
                         "degree_map": np.round(100 * aps.pose[-1, :-1, -1], 2).tolist(),
                         "shift_thresholds": list(aps.shift_thresholds[:-1]),
                         "shift_map": np.round(100 * aps.pose[-1, -1, :-1], 2).tolist()}
    plot_curves(aps, out / "mAP_curves.png")
    return summary, aps


def run(config: EvalPoseConfig) -> dict[str, object]:
    """Estimate (with --checkpoint) and score; returns what metrics.json holds."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    extra: dict[str, object] = {}
    if config.predictions is not None:
        folder = Path(config.predictions)
    else:
        checkpoint = load_checkpoint(config.checkpoint, config.device, kind="pose")
        estimator: PoseEstimator = checkpoint.model
        with PoseDataset(config.dataset) as dataset:
            indices = dataset.scenes()[: config.max_scenes]
            scenes = [dataset.read(i) for i in tqdm(indices, desc="read scenes", unit="scene", leave=False)]
            dataset_attrs = dataset.attrs
        results, seconds = estimate_scenes(estimator, scenes, config.seed, config.steps, config.batch_size,
                                            config.hypotheses)
        folder = out / "predictions"
        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.pkl"):
            old.unlink()
        for result in results:
            write_result(folder / f"results_{result['image_id']:06d}.pkl", result)
        n = sum(len(r["pred_class_ids"]) for r in results)
        extra = {"checkpoint": str(config.checkpoint), "dataset": str(config.dataset),
                 "dataset_domain": dataset_attrs["domain"], "dataset_instances": dataset_attrs["instances"],
                 "estimator_kind": estimator.config.kind,
                 "inference_steps": config.steps or estimator.config.inference_steps,
                 "hypotheses": config.hypotheses or estimator.config.hypotheses,
                 "instances": n, "estimator_seconds": round(seconds, 3),
                 "estimates_per_s_batched": round(n / max(seconds, 1e-9), 1)}
    results = load_results(folder)
    summary, _ = score(results, out, config.use_matches_for_pose)
    metrics = {**run_metadata(config.seed), **extra, "predictions": str(folder),
               "use_matches_for_pose": config.use_matches_for_pose, **summary}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps({k: metrics[k] for k in ("mean", "per_class", "images")}, indent=2))
    return metrics


# ---------------------------------------------------------------------------------------------------- overlays
BOX_EDGES = [(i, j) for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count("1") == 1]


def draw_box(image: np.ndarray, sRT: np.ndarray, scales: np.ndarray, intrinsics: np.ndarray,
             color: tuple[int, int, int], thickness: int = 1) -> None:
    """Draw the 12 edges of a posed NOCS box (camera frame) into ``image`` (H, W, 3) uint8, in place."""
    corners = transform(sRT, box_corners(scales))
    if np.any(corners[:, 2] <= 0.01):
        return
    uv = corners[:, :2] / corners[:, 2:] * [intrinsics[0, 0], intrinsics[1, 1]] + intrinsics[:2, 2]
    height, width = image.shape[:2]
    # box_corners orders corners by sign bits (x, y, z); edges join corners one bit apart
    for i, j in BOX_EDGES:
        samples = np.linspace(0.0, 1.0, int(np.linalg.norm(uv[i] - uv[j])) + 2)
        points = uv[i][None] + samples[:, None] * (uv[j] - uv[i])[None]
        for dr in range(-(thickness // 2), thickness - thickness // 2):
            cols = np.floor(points[:, 0]).astype(int) + dr
            rows = np.floor(points[:, 1]).astype(int) + dr
            inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
            image[rows[inside], cols[inside]] = color


def overlay(scene: PoseScene, result: dict[str, np.ndarray]) -> np.ndarray:
    """The scene's RGB with true boxes (green) and estimated boxes (red)."""
    image = scene.rgb.copy()
    for sRT, scales in zip(result["gt_RTs"], result["gt_scales"]):
        draw_box(image, sRT, scales, scene.intrinsics, (40, 220, 60), 2)
    for sRT, scales in zip(result["pred_RTs"], result["pred_scales"]):
        draw_box(image, sRT, scales, scene.intrinsics, (240, 40, 40), 1)
    return image


def demo(out_dir: Path, seed: int):
    """Report section: the shipped diffusion checkpoint on freshly rendered shifted-domain scenes of held-out
    instances, true (green) vs estimated (red) boxes, and those scenes' metrics."""
    from manipstack.envs.core.mesh_cache import default_cache_dir
    from manipstack.envs.tasks.pose_scenes import PoseSceneConfig, SceneRenderer
    from manipstack.eval.media import save_panels
    from manipstack.eval.report import DemoSection

    torch.set_num_threads(1)
    out = out_dir / "pose"
    checkpoint_dir = Path(__file__).resolve().parents[1] / "assets" / "checkpoints" / "pose" / "diffusion"
    estimator: PoseEstimator = load_checkpoint(checkpoint_dir, "cpu", kind="pose").model
    config = PoseSceneConfig(domain="shifted", instances="test")
    renderer = SceneRenderer(default_cache_dir())
    try:
        raw = [renderer.render(1000 + i, config, seed) for i in range(12)]
    finally:
        renderer.close()
    scenes = [PoseScene(index=1000 + i, names=r["names"], **{k: r[k] for k in (
        "rgb", "depth", "mask", "intrinsics", "world_from_cam", "class_ids", "RTs", "scales", "extents",
        "handle_visibility")}) for i, r in enumerate(raw)]
    results, seconds = estimate_scenes(estimator, scenes, seed)
    images = [overlay(scene, result) for scene, result in zip(scenes, results)]
    panels = [save_panels([(f"scene {s.index}", im) for s, im in zip(scenes[k:k + 3], images[k:k + 3])],
                          out / f"overlays_{k // 3}.png") for k in range(0, 12, 3)]
    summary, _ = score(results, out)
    mean = summary["mean"]
    return DemoSection(
        "Category-level 9-DoF pose (Diff9D)",
        "The shipped diffusion pose estimator (3 DDIM steps) on 12 freshly rendered scenes of the shifted domain "
        "(other lighting, colours, textures, intrinsics, depth noise with edge dropout) with held-out instances; "
        "green: true boxes, red: estimated boxes. Instance masks come from the simulator's segmentation. Metrics "
        "of these 12 scenes only (NOCS mAP, 3D IoU bug fixed); the README has the full held-out evaluation.",
        metrics={"instances": int(sum(len(r["pred_class_ids"]) for r in results)),
                 **{f"mAP {k}": v for k, v in mean.items()}, "estimator_s": round(seconds, 2)},
        images=[*panels, out / "mAP_curves.png"],
    )


def main(argv: list[str] | None = None) -> None:
    run(tyro.cli(EvalPoseConfig, args=argv))


if __name__ == "__main__":
    main()
