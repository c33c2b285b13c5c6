"""Physics validation of dexterous grasps in PyBullet, and ``manipstack eval grasps``.

A grasp (wrist pose in the object frame + joint angles) is **valid** when, with the wrist held at the grasp
pose and the fingers driven to the grasp joints plus a small squeeze along the contact normals, the object
stays held (moves < ``max_displacement`` and keeps contact with the hand) for ``hold_time`` s under gravity
applied along each of the 6 axis directions separately -- all 6 must hold -- and the largest hand-object
penetration at the grasp pose is < ``max_penetration``. The squeeze first runs ``settle_time`` s without
gravity (the object must not be pushed ``max_displacement`` away by it); each hold test then starts from that
squeezed state and measures the displacement from it. The object floats free at the origin of the world
(= object frame). Parameters are fixed in :class:`ValidationConfig`; change them only knowingly.

``manipstack eval grasps --dataset FILE.h5 --out DIR`` re-validates every grasp of a dataset and writes
``DIR/metrics.json``; ``--perturb MM,DEG`` re-tests each valid grasp under a random wrist perturbation of that
size (translation MM mm along a random direction, rotation DEG deg about a random axis): ``robust_rate``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import trimesh
import tyro
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from manipstack.envs.core.mesh_cache import cache_trimesh
from manipstack.envs.core.poses import matrix_to_quat
from manipstack.envs.core.world import World
from manipstack.envs.data.provenance import run_metadata
from manipstack.envs.robots.sim.hand import DEFAULT_HAND_SPEC, SimHand, SimHandConfig
from manipstack.grasp_models.hand.model import HandModel, rot6d_to_matrix
from manipstack.grasp_models.metrics import joint_entropy, wrist_rotation_spread
from manipstack.grasp_models.objects import ObjectModel
from manipstack.grasp_models.synthesis import squeeze_joints

GRAVITY_DIRECTIONS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)


@dataclass(frozen=True)
class ValidationConfig:
    """Fixed physics-validation parameters (SI units)."""

    hold_time: float = 1.0
    """Seconds each of the 6 gravity directions is applied."""
    settle_time: float = 0.1
    """Seconds the fingers squeeze without gravity before the hold tests."""
    max_displacement: float = 0.02
    """Largest allowed object displacement in m during a hold test."""
    max_penetration: float = 0.005
    """Largest allowed hand-object penetration depth in m at the grasp pose."""
    squeeze: float = 0.01
    """Target depth in m of the squeeze along the inward contact normals (turned into joint targets)."""
    squeeze_contact_threshold: float = 0.01
    """Hand contact candidates within this distance in m of the surface are squeezed."""
    gravity: float = 9.81
    """Magnitude of the gravity applied along each axis direction, m/s^2."""
    object_density: float = 400.0
    """Object density in kg/m^3 (mass = density x volume)."""
    object_friction: float = 0.8
    """Object lateral friction; with hand friction 1.0 the effective coefficient is 0.8 (PyBullet multiplies)."""
    time_step: float = 1.0 / 240.0
    """Physics time step in s."""
    solver_iterations: int = 30
    """Constraint-solver iterations per step."""


@dataclass
class GraspCheck:
    """Outcome of one grasp: valid, penetration depth in m, and the failing stage (``""`` if valid)."""

    valid: bool
    penetration: float
    failure: str


class GraspValidator:
    """One PyBullet world holding a floating hand and one object; validates grasps one at a time.

    Args:
        vertices: (V, 3) object mesh in m, object frame (origin = where the object floats).
        faces: (F, 3) int triangles.
        config: validation parameters.
        hand_spec: hand spec JSON.
        cache_dir: folder for the object's OBJ file and convex decomposition (default: the World's).
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, config: ValidationConfig | None = None,
                 hand_spec: Path = DEFAULT_HAND_SPEC, cache_dir: Path | None = None) -> None:
        self.config = config or ValidationConfig()
        self.world = World(time_step=self.config.time_step, gravity=0.0,
                           solver_iterations=self.config.solver_iterations, cache_dir=cache_dir)
        mesh = trimesh.Trimesh(np.asarray(vertices, float), np.asarray(faces, np.int64), process=False)
        path = cache_trimesh(mesh, self.world.cache_dir / "grasp_objects")
        volume = abs(mesh.volume) if mesh.is_watertight else mesh.convex_hull.volume
        self.mass = self.config.object_density * volume
        self.world.add_mesh("object", path, mass=self.mass, friction=self.config.object_friction,
                            decompose=not mesh.is_convex, color=(0.9, 0.55, 0.2, 1.0))
        self.hand = SimHand(self.world, SimHandConfig(spec=hand_spec), position=(0.0, 0.0, 1.0))
        self._base_state = self.world.save_state()

    def close(self) -> None:
        self.world.close()

    def penetration(self) -> float:
        """Current largest hand-object penetration depth in m (0 if apart)."""
        points = self.world.closest_points(self.hand.name, "object", 0.0)
        return max([0.0, *(-p[8] for p in points)])

    def set_grasp(self, position: np.ndarray, quat_xyzw: np.ndarray, joints: np.ndarray) -> None:
        """Place the hand at a grasp (wrist pose in m / (x, y, z, w), joints (J,) rad) and the object at rest."""
        self.world.restore_state(self._base_state)
        self.world.set_gravity((0.0, 0.0, 0.0))
        self.world.set_body_pose("object", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
        self.world.set_body_velocity("object")
        self.hand.reset(position, quat_xyzw, joints)

    def check(self, position: np.ndarray, quat_xyzw: np.ndarray, joints: np.ndarray, squeeze_joints: np.ndarray
              ) -> GraspCheck:
        """Validate one grasp; ``squeeze_joints`` (J,) rad are the motor targets during the hold tests."""
        cfg = self.config
        self.set_grasp(position, quat_xyzw, joints)
        depth = self.penetration()
        if depth >= cfg.max_penetration:
            return GraspCheck(False, depth, "penetration")
        self.hand.set_joint_targets(squeeze_joints)
        self.world.step(int(round(cfg.settle_time / cfg.time_step)))
        settled = self.world.body_pose("object")[0]
        if float(np.linalg.norm(settled)) >= cfg.max_displacement:
            return GraspCheck(False, depth, "pushed away by the squeeze")
        squeezed = self.world.save_state()
        steps = int(round(cfg.hold_time / cfg.time_step))
        try:
            for direction in GRAVITY_DIRECTIONS:
                self.world.restore_state(squeezed)
                self.world.set_gravity(cfg.gravity * direction)
                self.world.step(steps)
                moved = float(np.linalg.norm(self.world.body_pose("object")[0] - settled))
                if moved >= cfg.max_displacement:
                    return GraspCheck(False, depth, f"dropped along {direction.tolist()}")
                if not self.world.contact_points(self.hand.name, "object"):
                    return GraspCheck(False, depth, f"lost contact along {direction.tolist()}")
        finally:
            self.world.remove_state(squeezed)
        return GraspCheck(True, depth, "")


def poses_to_wrist(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wrist positions (B, 3) m and quaternions (B, 4) (x, y, z, w) of hand poses (B, 3 + 6 + J)."""
    rot = rot6d_to_matrix(torch.as_tensor(poses[:, 3:9], dtype=torch.float64)).numpy()
    return poses[:, :3].copy(), np.stack([matrix_to_quat(r) for r in rot])


def validate_grasps(hand: HandModel, obj: ObjectModel, validator: GraspValidator, poses: np.ndarray
                    ) -> list[GraspCheck]:
    """Validate hand poses (B, 3 + 6 + J) on one object; squeeze targets come from the differentiable model."""
    poses_t = torch.as_tensor(poses, dtype=hand.dtype)
    cfg = validator.config
    targets = squeeze_joints(hand, obj, poses_t, cfg.squeeze, cfg.squeeze_contact_threshold).numpy()
    positions, quats = poses_to_wrist(np.asarray(poses, float))
    return [validator.check(positions[i], quats[i], poses[i, 9:], targets[i]) for i in range(len(poses))]


def perturb_poses(poses: np.ndarray, translation_m: float, rotation_rad: float, rng: np.random.Generator
                  ) -> np.ndarray:
    """Poses (B, 3 + 6 + J) with the wrist moved ``translation_m`` m along a random direction and rotated
    ``rotation_rad`` about a random axis (through the wrist, object frame)."""
    out = np.array(poses, dtype=float)
    B = len(out)
    direction = rng.normal(size=(B, 3))
    out[:, :3] += translation_m * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    axis = rng.normal(size=(B, 3))
    delta = Rotation.from_rotvec(rotation_rad * axis / np.linalg.norm(axis, axis=1, keepdims=True))
    rot = rot6d_to_matrix(torch.as_tensor(out[:, 3:9])).numpy()
    new = delta.as_matrix() @ rot  # (B, 3, 3)
    out[:, 3:9] = np.concatenate([new[:, :, 0], new[:, :, 1]], axis=1)
    return out


@dataclass
class EvalGraspsConfig:
    """Re-validate a grasp dataset in PyBullet and write metrics.json."""

    dataset: Path
    """Grasp dataset (HDF5 written by ``manipstack data grasps``)."""
    out: Path = Path("runs/eval_grasps")
    """Output folder for metrics.json."""
    perturb: str | None = None
    """'MM,DEG': also re-test each valid grasp with the wrist moved MM mm and turned DEG deg (robust_rate)."""
    split: str | None = None
    """Only objects of this split ('train' or 'test'); all if unset."""
    max_objects: int | None = None
    """Validate at most this many objects, evenly spaced over the (sorted) selection."""
    seed: int = 0
    """Seed of the perturbations."""
    hand_spec: Path = DEFAULT_HAND_SPEC
    """Hand spec JSON the dataset was made with."""

    def __post_init__(self) -> None:
        if not self.dataset.is_file():
            raise FileNotFoundError(f"dataset not found: {self.dataset}")
        if self.perturb is not None:
            parts = self.perturb.split(",")
            if len(parts) != 2 or not all(p.replace(".", "", 1).isdigit() for p in parts):
                raise ValueError(f"--perturb must be 'MM,DEG' (two non-negative numbers), got {self.perturb!r}")


def evaluate(config: EvalGraspsConfig) -> dict[str, object]:
    """Re-validate the dataset; returns the metrics written to ``config.out/metrics.json``."""
    hand = HandModel(config.hand_spec)
    rng = np.random.default_rng(config.seed)
    perturb = tuple(float(p) for p in config.perturb.split(",")) if config.perturb else None
    valid, depth, q1, joints_valid, spreads, robust = [], [], [], [], [], []
    objects = 0
    with h5py.File(config.dataset, "r") as f:
        names = [n for n in f if f[n].attrs.get("complete", False)
                 and (config.split is None or f[n].attrs["split"] == config.split)]
        if config.max_objects is not None and config.max_objects < len(names):
            names = [names[i] for i in np.linspace(0, len(names) - 1, config.max_objects).round().astype(int)]
        for name in tqdm(names, desc="eval grasps", unit="obj"):
            group = f[name]
            vertices, faces, poses = group["vertices"][()], group["faces"][()], group["poses"][()]
            obj = ObjectModel(vertices, faces, np.random.default_rng(0))
            validator = GraspValidator(vertices, faces, hand_spec=config.hand_spec)
            try:
                checks = validate_grasps(hand, obj, validator, poses)
                ok = np.array([c.valid for c in checks])
                if perturb is not None and ok.any():
                    moved = perturb_poses(poses[ok], perturb[0] / 1000, np.deg2rad(perturb[1]), rng)
                    robust.extend(c.valid for c in validate_grasps(hand, obj, validator, moved))
            finally:
                validator.close()
            objects += 1
            valid.extend(ok.tolist())
            depth.extend(c.penetration for c in checks)
            q1.extend(group["q1"][()][ok].tolist())
            joints_valid.append(poses[ok, 9:])
            if ok.sum() >= 2:
                spreads.append(wrist_rotation_spread(rot6d_to_matrix(torch.as_tensor(poses[ok, 3:9])).numpy()))
    all_joints = np.concatenate(joints_valid) if joints_valid else np.zeros((0, hand.num_joints))
    entropy = joint_entropy(all_joints, hand.lower.numpy(), hand.upper.numpy())
    metrics: dict[str, object] = {
        **run_metadata(config.seed),
        "dataset": str(config.dataset),
        "objects": objects,
        "grasps": len(valid),
        "valid_rate": float(np.mean(valid)) if valid else 0.0,
        "penetration_mm_mean": 1000 * float(np.mean(depth)) if depth else 0.0,
        "penetration_mm_max": 1000 * float(np.max(depth)) if depth else 0.0,
        "q1_mean": float(np.mean(q1)) if q1 else 0.0,
        "h_mean": float(entropy.mean()),
        "h_std": float(entropy.std()),
        "wrist_rotation_spread_rad": float(np.mean(spreads)) if spreads else 0.0,
    }
    if perturb is not None:
        metrics["perturb_mm_deg"] = list(perturb)
        metrics["robust_rate"] = float(np.mean(robust)) if robust else 0.0
    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> None:
    metrics = evaluate(tyro.cli(EvalGraspsConfig, args=argv))
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, str)}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
