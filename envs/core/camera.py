"""Pinhole RGB-D cameras.

Camera frame follows OpenCV: x right, y down, z forward (optical axis). Extrinsics are
``world_from_cam`` 4x4 transforms (a camera-frame point p maps to ``world_from_cam @ p``).
Depth is metric: distance along the optical axis in m (not along the ray).
Pixel (row v, col u) covers [u, u+1) x [v, v+1); its centre is (u + 0.5, v + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from manipstack.envs.core.world import Lighting, World
from manipstack.errors import InputError

# OpenGL camera (x right, y up, z backward) expressed in the OpenCV camera frame.
_CV_FROM_GL = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels: focal lengths fx, fy; principal point cx, cy; image width x height."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"image size must be positive, got {self.width}x{self.height}")
        if self.fx <= 0 or self.fy <= 0:
            raise InputError(f"focal lengths must be positive pixels, got fx={self.fx}, fy={self.fy}")

    @classmethod
    def from_fov(cls, width: int, height: int, fov_y_deg: float) -> Intrinsics:
        """Square-pixel intrinsics with the principal point at the image centre and a vertical field of view."""
        fy = 0.5 * height / np.tan(np.deg2rad(fov_y_deg) / 2)
        return cls(fy, fy, width / 2, height / 2, width, height)

    @property
    def matrix(self) -> np.ndarray:
        """3x3 camera matrix K."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    def opengl_projection(self, near: float, far: float) -> np.ndarray:
        """4x4 OpenGL projection matrix equivalent to these intrinsics (row-major)."""
        w, h = self.width, self.height
        return np.array(
            [
                [2 * self.fx / w, 0, 1 - 2 * self.cx / w, 0],
                [0, 2 * self.fy / h, 2 * self.cy / h - 1, 0],
                [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)],
                [0, 0, -1, 0],
            ]
        )


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """``world_from_cam`` 4x4 for a camera at ``eye`` (m, world) looking at ``target``; image top toward ``up``."""
    eye, target, up = (np.asarray(v, dtype=float) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-8:  # looking along up: pick any perpendicular
        x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    transform = np.eye(4)
    transform[:3, :3] = np.stack([x, y, z], axis=1)
    transform[:3, 3] = eye
    return transform


def linearize_depth(depth_buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metric depth (m along the optical axis) from an OpenGL depth buffer in [0, 1]."""
    return (far * near / (far - (far - near) * depth_buffer)).astype(np.float32)


@dataclass(frozen=True)
class DepthNoise:
    """Depth noise: Gaussian with std ``base_std + scale_std * depth^2`` (m), random pixel dropout to 0, and
    dropout at depth edges (as structured-light and stereo sensors lose pixels along silhouettes): a pixel whose
    depth differs from a 4-neighbour's by more than ``edge_threshold`` m is set to 0 with probability
    ``edge_dropout``."""

    base_std: float = 0.001
    scale_std: float = 0.0025
    dropout: float = 0.0
    edge_dropout: float = 0.0
    edge_threshold: float = 0.02

    def apply(self, depth_m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        std = self.base_std + self.scale_std * depth_m**2
        noisy = depth_m + rng.normal(size=depth_m.shape) * std
        if self.dropout > 0:
            noisy[rng.random(depth_m.shape) < self.dropout] = 0.0
        if self.edge_dropout > 0:
            edge = np.zeros(depth_m.shape, dtype=bool)
            step_rows = np.abs(np.diff(depth_m, axis=0)) > self.edge_threshold
            step_cols = np.abs(np.diff(depth_m, axis=1)) > self.edge_threshold
            edge[1:] |= step_rows
            edge[:-1] |= step_rows
            edge[:, 1:] |= step_cols
            edge[:, :-1] |= step_cols
            noisy[edge & (rng.random(depth_m.shape) < self.edge_dropout)] = 0.0
        return noisy.astype(np.float32)


class Camera(Protocol):
    """What every camera (sim or real) offers."""

    name: str
    intrinsics: Intrinsics

    def capture(self) -> dict[str, np.ndarray]:
        """``{"rgb": uint8 (H, W, 3), "depth": float32 (H, W) m, "seg"?: int32 (H, W),
        "intrinsics": K (3, 3), "extrinsics": world_from_cam (4, 4)}``."""
        ...


class SimCamera:
    """A camera rendering a :class:`World` with PyBullet's TinyRenderer.

    Args:
        world: the world to render.
        intrinsics: pinhole intrinsics.
        world_from_cam: extrinsic pose (4, 4), OpenCV camera frame.
        near, far: clipping planes in m.
        noise: optional depth-noise model; needs ``rng``.
        rng: generator for the noise (pass the env's ``np_random``).
        lighting: TinyRenderer light (None: PyBullet's default).
    """

    def __init__(
        self,
        world: World,
        intrinsics: Intrinsics,
        world_from_cam: np.ndarray,
        name: str = "camera",
        near: float = 0.01,
        far: float = 10.0,
        noise: DepthNoise | None = None,
        rng: np.random.Generator | None = None,
        segmentation: bool = True,
        lighting: Lighting | None = None,
    ) -> None:
        if not 0 < near < far:
            raise InputError(f"need 0 < near < far, got near={near}, far={far}")
        if noise is not None and rng is None:
            raise InputError("a depth-noise model needs an rng (pass the env's np_random)")
        self.world, self.intrinsics, self.name = world, intrinsics, name
        self.near, self.far, self.noise, self.rng, self.segmentation = near, far, noise, rng, segmentation
        self.lighting = lighting
        self.set_pose(world_from_cam)
        self._projection = intrinsics.opengl_projection(near, far).T.flatten().tolist()

    def set_pose(self, world_from_cam: np.ndarray) -> None:
        """Move the camera; ``world_from_cam`` (4, 4), OpenCV camera frame."""
        self.world_from_cam = np.asarray(world_from_cam, dtype=float)
        gl_view = np.linalg.inv(self.world_from_cam @ _CV_FROM_GL)
        self._view = gl_view.T.flatten().tolist()  # PyBullet wants column-major

    def capture(self) -> dict[str, np.ndarray]:
        intr = self.intrinsics
        rgb, depth_buffer, seg = self.world.render(
            self._view, self._projection, intr.width, intr.height, segmentation=self.segmentation,
            lighting=self.lighting,
        )
        depth = linearize_depth(depth_buffer, self.near, self.far)
        depth[depth_buffer >= 1.0] = 0.0  # nothing hit: invalid
        if self.noise is not None:
            depth = self.noise.apply(depth, self.rng)
        frame = {"rgb": rgb, "depth": depth, "intrinsics": intr.matrix, "extrinsics": self.world_from_cam.copy()}
        if seg is not None:
            frame["seg"] = seg
        return frame
