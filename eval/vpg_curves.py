"""``manipstack eval vpg-curves``: VPG's simulation learning curves from training runs' TensorBoard logs.

As in the paper's simulation figure: grasp success rate and push-then-grasp success rate (grasps right after a push
that changed the scene) over training iterations, one line per method (VPG, Grasping-only, P+G Reactive), the
mean over its runs (training seeds) with a ±1 std band. Runs are grouped by their ``train_config.json``'s method
label (the method, plus the push reward where it is not the paper's: the same groups as ``manipstack eval vpg``);
each curve is the training loop's running rate over its last 200 actions.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import dacite
import numpy as np
import tyro

from manipstack.envs.data.provenance import run_metadata
from manipstack.errors import InputError, MissingInputError
from manipstack.policies.vpg.agent import VPGConfig

CURVES = {"grasp success rate": "train/grasp_success_rate",
          "push-then-grasp success rate": "train/push_then_grasp_success_rate"}
"""Panel title -> TensorBoard scalar tag written by ``manipstack train vpg``."""


@dataclass
class VPGCurvesConfig:
    """Plot VPG learning curves (mean +- std over training seeds per method) from training run folders."""

    runs: tuple[Path, ...]
    """Training run folders (each holds train_config.json and TensorBoard events), e.g. runs/vpg/*-s*."""
    out: Path = Path("reports/vpg/curves.png")
    """PNG to write; the curves' numbers go beside it as <out>.json."""
    points: int = 50
    """Iterations sampled per curve (the runs' scalars are interpolated onto a common grid)."""

    def __post_init__(self) -> None:
        for run in self.runs:
            if not (Path(run) / "train_config.json").is_file():
                raise MissingInputError(f"{run} is not a training run folder: train_config.json missing")
        if self.points < 2:
            raise InputError(f"--points must be >= 2, got {self.points}")


def read_scalars(run: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one scalar tag in a run folder's TensorBoard events (empty arrays if absent)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return np.zeros(0), np.zeros(0)
    scalars = events.Scalars(tag)
    return np.array([s.step for s in scalars], float), np.array([s.value for s in scalars], float)


def method_curves(runs: list[Path], tag: str, points: int) -> dict[str, dict[str, list[float]]]:
    """Per method: a common iteration grid and the mean and std over its runs of ``tag`` interpolated onto it
    (the grid ends at the shortest run of that method)."""
    by_method: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for run in runs:
        agent = json.loads((run / "train_config.json").read_text())["agent"]
        method = dacite.from_dict(VPGConfig, agent, config=dacite.Config(strict=False)).label
        steps, values = read_scalars(run, tag)
        if len(steps):
            by_method.setdefault(method, []).append((steps, values))
    curves = {}
    for method, series in sorted(by_method.items()):
        end = min(steps[-1] for steps, _ in series)
        start = max(steps[0] for steps, _ in series)
        grid = np.linspace(start, end, points)
        stacked = np.stack([np.interp(grid, steps, values) for steps, values in series])
        curves[method] = {"iterations": grid.tolist(), "mean": stacked.mean(0).tolist(),
                          "std": stacked.std(0, ddof=1).tolist() if len(series) > 1 else [0.0] * points,
                          "runs": len(series)}
    return curves


def plot(config: VPGCurvesConfig) -> dict[str, object]:
    """Write the figure and its numbers; returns the numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [Path(r) for r in config.runs]
    panels = {title: method_curves(runs, tag, config.points) for title, tag in CURVES.items()}
    methods = sorted({method for curves in panels.values() for method in curves})
    colours = {method: f"C{i}" for i, method in enumerate(methods)}
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4))
    for ax, (title, curves) in zip(np.atleast_1d(axes), panels.items()):
        for method, curve in curves.items():
            x, mean, std = (np.array(curve[k]) for k in ("iterations", "mean", "std"))
            ax.plot(x, mean, color=colours[method], label=f"{method} ({curve['runs']} seeds)")
            ax.fill_between(x, mean - std, mean + std, color=colours[method], alpha=0.2)
        ax.set_title(title)
        ax.set_xlabel("training iterations (actions)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        if curves:
            ax.legend(loc="lower right")
    fig.tight_layout()
    config.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(config.out, dpi=90)
    plt.close(fig)
    numbers = {**run_metadata([]), "runs": [str(r) for r in runs], "curves": panels}
    config.out.with_suffix(".json").write_text(json.dumps(numbers, indent=1))
    print(f"wrote {config.out} and {config.out.with_suffix('.json')}")
    return numbers


def main(argv: list[str] | None = None) -> None:
    plot(tyro.cli(VPGCurvesConfig, args=argv))


if __name__ == "__main__":
    main(sys.argv[1:])
