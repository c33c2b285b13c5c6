"""Writing images and episode videos for reports."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from manipstack.errors import InputError


def write_gif(frames: list[np.ndarray], path: Path, fps: float = 10.0) -> Path:
    """Write uint8 (H, W, 3) frames as a looping GIF; raises if there are none."""
    if not frames:
        raise InputError(f"no frames to write to {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, frames, duration=1000.0 / fps, loop=0)
    return path


def save_panels(panels: list[tuple[str, np.ndarray]], path: Path, cmap: str = "viridis") -> Path:
    """Save images side by side with titles; 2-D arrays are drawn with ``cmap`` and a colour bar."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4))
    for ax, (title, image) in zip(np.atleast_1d(axes), panels):
        shown = ax.imshow(image, cmap=cmap if image.ndim == 2 else None)
        if image.ndim == 2:
            fig.colorbar(shown, ax=ax, fraction=0.046)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
