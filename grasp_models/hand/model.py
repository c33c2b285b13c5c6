"""Batched, differentiable hand kinematics from a URDF and its hand spec (any hand, any joint count).

A hand pose is one vector per hand, shape (B, 3 + 6 + J): wrist translation (m, object/world frame),
wrist rotation as rot6d (the first two columns of the rotation matrix, Zhou et al. 2019), and the J
actuated joint angles (rad) in the spec's joint order. The wrist frame is the URDF's root link (spec ``root_link``).
Forward kinematics uses ``pytorch_kinematics`` (as DexGraspNet does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytorch_kinematics as pk
import torch

from manipstack.assets.hands import DEFAULT_HAND_SPEC


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) from rot6d (..., 6) = [column 0, column 1] by Gram-Schmidt."""
    a, b = rot6d[..., :3], rot6d[..., 3:6]
    x = torch.nn.functional.normalize(a, dim=-1)
    y = torch.nn.functional.normalize(b - (x * b).sum(-1, keepdim=True) * x, dim=-1)
    z = torch.cross(x, y, dim=-1)
    return torch.stack([x, y, z], dim=-1)


def matrix_to_rot6d(rot: torch.Tensor) -> torch.Tensor:
    """rot6d (..., 6) = first two columns of rotation matrices (..., 3, 3)."""
    return torch.cat([rot[..., :, 0], rot[..., :, 1]], dim=-1)


@dataclass
class HandState:
    """Result of forward kinematics for B hands.

    Attributes:
        wrist_rot: (B, 3, 3) world-from-wrist rotation.
        wrist_pos: (B, 3) wrist position, m, world frame.
        link_tf: (B, L, 4, 4) world-from-link transforms, L = links in ``HandModel.link_names`` order.
        joints: (B, J) joint angles, rad.
    """

    wrist_rot: torch.Tensor
    wrist_pos: torch.Tensor
    link_tf: torch.Tensor
    joints: torch.Tensor


class HandModel:
    """A hand described by a spec JSON (see ``assets/hands/allegro_like.py``) and the URDF it names.

    Args:
        spec_path: the hand spec; its ``urdf`` entry is resolved relative to the spec's folder.
        device: torch device for every tensor of the model.
        dtype: floating dtype.
    """

    def __init__(self, spec_path: str | Path = DEFAULT_HAND_SPEC, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        spec_path = Path(spec_path)
        if not spec_path.is_file():
            raise FileNotFoundError(f"hand spec not found: {spec_path}")
        self.spec = json.loads(spec_path.read_text())
        self.spec_path = spec_path
        self.urdf_path = spec_path.parent / self.spec["urdf"]
        if not self.urdf_path.is_file():
            raise FileNotFoundError(f"URDF named by {spec_path} not found: {self.urdf_path}")
        self.device, self.dtype = torch.device(device), dtype
        self.chain = pk.build_chain_from_urdf(self.urdf_path.read_bytes()).to(dtype=dtype, device=self.device)
        self.joint_names: list[str] = [j["name"] for j in self.spec["joints"]]
        chain_joints = self.chain.get_joint_parameter_names()
        missing = sorted(set(self.joint_names) - set(chain_joints))
        if missing or len(chain_joints) != len(self.joint_names):
            raise ValueError(f"spec joints and URDF actuated joints differ: spec-only {missing}, URDF {chain_joints}")
        # spec order -> chain order
        self._to_chain = torch.tensor([self.joint_names.index(n) for n in chain_joints], device=self.device)
        self.num_joints = len(self.joint_names)
        self.lower = torch.tensor([j["lower"] for j in self.spec["joints"]], dtype=dtype, device=self.device)
        self.upper = torch.tensor([j["upper"] for j in self.spec["joints"]], dtype=dtype, device=self.device)
        self.open_pose = torch.tensor(self.spec["open_pose"], dtype=dtype, device=self.device)
        # pre-shape that synthesis starts from (defaults to the open pose for specs without one)
        self.init_pose = self.clamp_joints(torch.tensor(self.spec.get("init_pose", self.spec["open_pose"]), dtype=dtype,
                                                        device=self.device))
        self.root_link: str = self.spec["root_link"]
        self.link_names: list[str] = [self.root_link, *[n for n in self.chain.get_frame_names(exclude_fixed=False)
                                                         if n != self.root_link]]
        self.palm_center = torch.tensor(self.spec["palm_center"], dtype=dtype, device=self.device)
        self.palm_normal = torch.tensor(self.spec["palm_normal"], dtype=dtype, device=self.device)
        self.finger_direction = torch.tensor(self.spec["finger_direction"], dtype=dtype, device=self.device)

        def points(key: str, field: str) -> tuple[torch.Tensor, torch.Tensor]:
            entries = self.spec[key]
            unknown = sorted({e["link"] for e in entries} - set(self.link_names))
            if unknown:
                raise ValueError(f"spec {key} name links missing from the URDF: {unknown}")
            idx = torch.tensor([self.link_names.index(e["link"]) for e in entries], device=self.device)
            return idx, torch.tensor([e[field] for e in entries], dtype=dtype, device=self.device)

        self.contact_link, self.contact_local = points("contact_candidates", "position")
        _, self.contact_normal_local = points("contact_candidates", "normal")
        self.sphere_link, self.sphere_local = points("penetration_spheres", "center")
        self.sphere_radius = torch.tensor([e["radius"] for e in self.spec["penetration_spheres"]], dtype=dtype,
                                          device=self.device)
        self.surface_link, self.surface_local = points("surface_points", "position")
        self.capsule_link, self.capsule_start = points("collision_capsules", "start")
        _, self.capsule_end = points("collision_capsules", "end")
        self.capsule_radius = torch.tensor([e["radius"] for e in self.spec["collision_capsules"]], dtype=dtype,
                                           device=self.device)
        self.box_link, self.box_center = points("collision_boxes", "center")
        _, self.box_half = points("collision_boxes", "half_extents")
        groups = self.spec["link_groups"]
        group_ids = {g: i for i, g in enumerate(sorted(set(groups.values())))}
        sphere_group = torch.tensor([group_ids[groups[self.link_names[i]]] for i in self.sphere_link.tolist()],
                                    device=self.device)
        # self-penetration is checked between spheres of different groups (fingers / palm) that are apart in the
        # open pose (spheres touching there, e.g. where the thumb is mounted, are neighbours by design)
        self.self_pairs = sphere_group[:, None] != sphere_group[None, :]
        self.self_pairs &= self._sphere_overlap(self.open_pose[None]).squeeze(0) <= 0
        self.num_contacts = len(self.contact_link)

    @property
    def pose_dim(self) -> int:
        """Length of one hand pose vector: 3 + 6 + J."""
        return 9 + self.num_joints

    def split_pose(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(translation (B, 3) m, rot6d (B, 6), joints (B, J) rad) of poses (B, 3 + 6 + J)."""
        if pose.shape[-1] != self.pose_dim:
            raise ValueError(f"hand pose needs {self.pose_dim} values (3 + 6 + {self.num_joints}), got {pose.shape}")
        return pose[..., :3], pose[..., 3:9], pose[..., 9:]

    def forward(self, pose: torch.Tensor) -> HandState:
        """Forward kinematics of poses (B, 3 + 6 + J) -> :class:`HandState` (world frame)."""
        translation, rot6d, joints = self.split_pose(pose)
        rot = rot6d_to_matrix(rot6d)
        fk = self.chain.forward_kinematics(joints[:, self._to_chain])
        local = torch.stack([fk[name].get_matrix() for name in self.link_names], dim=1)  # (B, L, 4, 4) wrist frame
        world = torch.zeros_like(local)
        world[..., :3, :3] = rot[:, None] @ local[..., :3, :3]
        world[..., :3, 3] = (rot[:, None] @ local[..., :3, 3:4]).squeeze(-1) + translation[:, None]
        world[..., 3, 3] = 1.0
        return HandState(rot, translation, world, joints)

    @staticmethod
    def _transform(state: HandState, link_idx: torch.Tensor, local: torch.Tensor, rotate_only: bool = False
                   ) -> torch.Tensor:
        tf = state.link_tf[:, link_idx]  # (B, N, 4, 4)
        out = (tf[..., :3, :3] @ local[None, :, :, None]).squeeze(-1)  # (B, N, 3)
        return out if rotate_only else out + tf[..., :3, 3]

    def contact_candidates(self, state: HandState) -> tuple[torch.Tensor, torch.Tensor]:
        """Contact candidates: (positions (B, C, 3) m, outward unit normals (B, C, 3)), world frame."""
        return (self._transform(state, self.contact_link, self.contact_local),
                self._transform(state, self.contact_link, self.contact_normal_local, rotate_only=True))

    def penetration_spheres(self, state: HandState) -> tuple[torch.Tensor, torch.Tensor]:
        """Penetration keypoints: (centres (B, S, 3) m world frame, radii (S,) m)."""
        return self._transform(state, self.sphere_link, self.sphere_local), self.sphere_radius

    def surface_points(self, state: HandState) -> torch.Tensor:
        """Points on the collision surface (B, P, 3), m, world frame."""
        return self._transform(state, self.surface_link, self.surface_local)

    def capsule_signed_distance(self, state: HandState, points: torch.Tensor) -> torch.Tensor:
        """Signed distance (B, N) in m from points (B, N, 3), world frame, to the collision capsules (min over them)."""
        a = self._transform(state, self.capsule_link, self.capsule_start)[:, None]  # (B, 1, K, 3)
        b = self._transform(state, self.capsule_link, self.capsule_end)[:, None]
        p = points[:, :, None]  # (B, N, 1, 3)
        ab = b - a
        t = (((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0.0, 1.0)  # (B, N, K)
        closest = a + t[..., None] * ab
        return (torch.linalg.norm(p - closest, dim=-1) - self.capsule_radius).min(dim=-1).values

    def box_signed_distance(self, state: HandState, points: torch.Tensor) -> torch.Tensor:
        """Signed distance (B, N) in m from points (B, N, 3), world frame, to the collision boxes (min over them)."""
        tf = state.link_tf[:, self.box_link]  # (B, K, 4, 4)
        rot = tf[..., :3, :3]
        centre = (rot @ self.box_center[None, :, :, None]).squeeze(-1) + tf[..., :3, 3]  # (B, K, 3)
        local = ((points[:, :, None] - centre[:, None])[..., None, :] @ rot[:, None]).squeeze(-2)  # (B, N, K, 3)
        q = local.abs() - self.box_half
        outside = torch.linalg.norm(q.clamp_min(0.0), dim=-1)
        return (outside + q.max(dim=-1).values.clamp_max(0.0)).min(dim=-1).values

    def signed_distance(self, state: HandState, points: torch.Tensor) -> torch.Tensor:
        """Signed distance (B, N) in m from points (N, 3) or (B, N, 3), world frame, to the hand's collision
        shapes (capsules and boxes; negative inside). Exact per shape; the union takes the minimum."""
        if points.dim() == 2:
            points = points.expand(len(state.joints), -1, -1)
        dists = []
        if len(self.capsule_link):
            dists.append(self.capsule_signed_distance(state, points))
        if len(self.box_link):
            dists.append(self.box_signed_distance(state, points))
        return torch.stack(dists, dim=-1).min(dim=-1).values

    def _sphere_overlap(self, joints: torch.Tensor) -> torch.Tensor:
        identity = torch.tensor([1.0, 0, 0, 0, 1, 0], dtype=self.dtype, device=self.device).expand(len(joints), 6)
        state = self.forward(torch.cat([torch.zeros_like(joints[:, :3]), identity, joints], dim=-1))
        centres, radii = self.penetration_spheres(state)
        return torch.relu(radii[:, None] + radii[None, :] - torch.cdist(centres, centres))  # (B, S, S)

    def self_penetration(self, state: HandState) -> torch.Tensor:
        """Self-penetration (B,) in m: summed sphere overlaps between different fingers / the palm."""
        centres, radii = self.penetration_spheres(state)
        dist = torch.cdist(centres, centres)  # (B, S, S)
        overlap = torch.relu(radii[:, None] + radii[None, :] - dist) * self.self_pairs
        return overlap.sum(dim=(1, 2)) / 2

    def joint_limit_violation(self, joints: torch.Tensor) -> torch.Tensor:
        """Summed violation (B,) in rad of the joint limits by joints (B, J)."""
        return (torch.relu(joints - self.upper) + torch.relu(self.lower - joints)).sum(-1)

    def clamp_joints(self, joints: torch.Tensor) -> torch.Tensor:
        """Joints (B, J) clamped into the limits."""
        return torch.maximum(torch.minimum(joints, self.upper), self.lower)
