"""Objects for grasp synthesis: where they come from, how they are normalised, and their SDF.

Object sources (``--objects SPEC``, comma-separated items):

- ``procedural:N``: N primitives (box, cylinder, sphere, capsule, ellipsoid in turn), sizes from the seed;
- ``random_urdfs:N``: N meshes from pybullet_data's ``random_urdfs/`` (chosen by the seed);
- ``dir:PATH`` or a plain folder path: every mesh file (.obj .stl .ply .off .glb) in it, sorted by name.

Every object is normalised: centred on its bounding-box centre and scaled so that its longest extent
is ``size_range`` m (drawn per object). Objects float free (no table), object frame = world frame.
The energy queries a signed-distance grid (positive outside, m) with trilinear interpolation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open3d as o3d
import torch
import trimesh

from manipstack.assets.grasp_objects.procedural import KINDS, make_primitive
from manipstack.envs.core.mesh_cache import load_trimesh
from manipstack.envs.core.world import pybullet_data_path

MESH_SUFFIXES = (".obj", ".stl", ".ply", ".off", ".glb")


@dataclass(frozen=True)
class ObjectSource:
    """One object to synthesise grasps for.

    Attributes:
        name: unique id, used as the HDF5 group name.
        kind: ``procedural/<shape>``, ``random_urdfs`` or ``mesh``.
        ref: mesh file path, or for procedural objects the shape kind.
        seed: seed of this object's random choices (procedural size, normalised scale, synthesis).
    """

    name: str
    kind: str
    ref: str
    seed: int


def parse_object_spec(spec: str, seed: int) -> list[ObjectSource]:
    """Objects named by ``spec`` (see module docstring); same spec and seed give the same list."""
    sources: list[ObjectSource] = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        head, _, arg = item.partition(":")
        if head in ("procedural", "random_urdfs"):
            if not arg.isdigit() or int(arg) < 1:
                raise ValueError(f"object spec {item!r}: expected {head}:N with N >= 1")
            count = int(arg)
            if head == "procedural":
                for i in range(count):
                    kind = KINDS[i % len(KINDS)]
                    sources.append(ObjectSource(f"proc_{kind}_{i:04d}", f"procedural/{kind}", kind, seed * 100003 + i))
            else:
                folder = pybullet_data_path() / "random_urdfs"
                files = sorted(folder.glob("*/*.obj"))
                if count > len(files):
                    raise ValueError(f"object spec {item!r}: only {len(files)} meshes in {folder}")
                picks = np.random.default_rng(seed).choice(len(files), size=count, replace=False)
                for i in sorted(picks.tolist()):
                    sources.append(ObjectSource(f"rand_{files[i].stem}", "random_urdfs", str(files[i]),
                                                seed * 100003 + 50000 + i))
        else:
            folder = Path(arg if head == "dir" else item)
            if not folder.is_dir():
                raise ValueError(f"object spec {item!r}: {folder} is not a folder (use procedural:N, random_urdfs:N "
                                 "or dir:PATH)")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MESH_SUFFIXES)
            if not files:
                raise ValueError(f"object spec {item!r}: no mesh files ({', '.join(MESH_SUFFIXES)}) in {folder}")
            for f in files:
                digest = int(hashlib.sha256(str(f).encode()).hexdigest()[:8], 16)
                sources.append(ObjectSource(f"mesh_{f.stem}", "mesh", str(f), seed * 100003 + digest % 50000))
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"object spec {spec!r} names some objects twice")
    return sources


def load_object_mesh(source: ObjectSource, size_range: tuple[float, float] = (0.06, 0.10)
                     ) -> tuple[trimesh.Trimesh, float]:
    """The normalised mesh of ``source`` (m, centred) and the scale applied to the raw mesh."""
    rng = np.random.default_rng(source.seed)
    if source.kind.startswith("procedural/"):
        mesh, _ = make_primitive(source.ref, rng)
    else:
        mesh = load_trimesh(Path(source.ref))
    mesh = mesh.copy()
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    scale = float(rng.uniform(*size_range) / mesh.extents.max())
    mesh.apply_scale(scale)
    return mesh, scale


class ObjectModel:
    """Signed distance (grid + trilinear interpolation) and surface samples of one object, in torch.

    Args:
        vertices: (V, 3) m, object frame; faces: (F, 3) int.
        resolution: grid points along the longest side of the padded bounding box.
        margin: padding around the bounding box, m.
        num_surface_points: surface samples for initialisation and rendering.
        rng: generator for the surface samples.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, rng: np.random.Generator, resolution: int = 48,
                 margin: float = 0.03, num_surface_points: int = 256, device: str | torch.device = "cpu") -> None:
        self.mesh = trimesh.Trimesh(np.asarray(vertices, float), np.asarray(faces, np.int64), process=False)
        self.device = torch.device(device)
        lo, hi = self.mesh.bounds[0] - margin, self.mesh.bounds[1] + margin
        spacing = float((hi - lo).max() / (resolution - 1))
        counts = np.ceil((hi - lo) / spacing).astype(int) + 1  # (nx, ny, nz)
        axes = [lo[i] + spacing * np.arange(counts[i]) for i in range(3)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)  # (nx, ny, nz, 3)
        sdf = signed_distance(self.mesh, grid.reshape(-1, 3)).reshape(*counts)
        grad = np.stack(np.gradient(sdf, spacing), axis=0)  # (3, nx, ny, nz)
        # grid_sample wants (C, D, H, W) = (C, z, y, x)
        volume = np.concatenate([sdf[None], grad], axis=0).transpose(0, 3, 2, 1)
        self.volume = torch.tensor(volume[None], dtype=torch.float32, device=self.device)  # (1, 4, nz, ny, nx)
        self.lo = torch.tensor(lo, dtype=torch.float32, device=self.device)
        self.hi = torch.tensor(lo + spacing * (counts - 1), dtype=torch.float32, device=self.device)
        points, face_idx = sample_surface(self.mesh, num_surface_points, rng)
        self.surface_points = torch.tensor(points, dtype=torch.float32, device=self.device)  # (N, 3)
        self.surface_normals = torch.tensor(self.mesh.face_normals[face_idx], dtype=torch.float32, device=self.device)
        self.radius = float(np.linalg.norm(self.mesh.vertices, axis=1).max())

    def query(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Signed distance (...,) in m (positive outside) and unit outward normals (..., 3) at points (..., 3).

        Outside the grid the distance is the boundary value plus the distance to the grid box.
        """
        shape = points.shape[:-1]
        flat = points.reshape(-1, 3)
        inside = torch.maximum(torch.minimum(flat, self.hi), self.lo)
        coords = (inside - self.lo) / (self.hi - self.lo) * 2 - 1  # (M, 3) in [-1, 1], (x, y, z) order
        sampled = torch.nn.functional.grid_sample(
            self.volume, coords.view(1, 1, 1, -1, 3), mode="bilinear", align_corners=True
        ).view(4, -1)  # (4, M)
        dist = sampled[0] + torch.linalg.norm(flat - inside, dim=-1)
        normals = torch.nn.functional.normalize(sampled[1:].T, dim=-1)
        return dist.view(shape), normals.view(*shape, 3)


def signed_distance(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Exact signed distance (N,) in m from points (N, 3) to a closed mesh, positive outside (Open3D)."""
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.asarray(mesh.vertices, np.float32)),
                        o3d.core.Tensor(np.asarray(mesh.faces, np.uint32)))
    return scene.compute_signed_distance(o3d.core.Tensor(np.asarray(points, np.float32))).numpy().astype(np.float64)


def sample_surface(mesh: trimesh.Trimesh, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform surface samples: points (count, 3) m and the index (count,) of the face each lies on."""
    areas = mesh.area_faces
    face_idx = rng.choice(len(areas), size=count, p=areas / areas.sum())
    tri = mesh.triangles[face_idx]  # (count, 3, 3)
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    points = tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0])
    return points, face_idx
