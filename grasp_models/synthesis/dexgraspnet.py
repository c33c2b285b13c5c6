"""DexGraspNet grasp synthesis (Wang et al. 2023), readable top to bottom, batched over hands, CPU-friendly.

Energy of a hand pose with K selected contact points x_k (world = object frame, m) and object normals n_k
(outward unit SDF gradient at x_k):

    E = E_fc + w_dis * E_dis + w_pen * E_pen + w_spen * E_spen + w_joints * E_joints

- E_fc = |sum_k n_k|^2 + |sum_k x_k x n_k|^2: net force and torque of unit normal forces (force closure);
- E_dis = sum_k |sdf(x_k)|: contacts on the surface (m);
- E_pen = sum_s relu(r_s + m - sdf(c_s)) + sum_p relu(m - sdf_box(p)): hand penetration spheres (centre c_s,
  radius r_s; along capsule axes they measure capsule penetration exactly) inside the object, and object
  surface points p inside the hand's collision boxes (the palm, which spheres cover poorly), m, with an
  optional clearance margin m;
- E_spen = summed overlap of penetration spheres of different fingers (m);
- E_joints = summed joint-limit violation (rad).

Optimisation (DexGraspNet's ``Annealing``): an RMSProp-scaled gradient step on the pose, each contact index
resampled with probability ``switch_probability``, then a Metropolis test per hand,
accept if u < exp((E_old - E_new) / T), with T and the step size decaying stepwise. Every random draw
comes from the ``torch.Generator`` passed in (a CPU generator; draws are moved to the hand model's device),
so the same seed gives the same grasps -- and the same initial grasps on every device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from manipstack.grasp_models.hand.model import HandModel, HandState, matrix_to_rot6d
from manipstack.grasp_models.objects import ObjectModel


@dataclass(frozen=True)
class EnergyWeights:
    """Weights of the energy terms (DexGraspNet defaults)."""

    distance: float = 100.0
    """Weight of E_dis (contact distance to the surface, per m)."""
    penetration: float = 100.0
    """Weight of E_pen (hand inside the object, per m)."""
    self_penetration: float = 10.0
    """Weight of E_spen (finger-finger overlap, per m)."""
    joints: float = 1.0
    """Weight of E_joints (joint-limit violation, per rad)."""
    penetration_margin: float = 0.0
    """Clearance in m that E_pen asks for (0 in DexGraspNet): closer than this counts as penetration, so grasps
    end just off the surface and physics does not start from an ejecting overlap."""


@dataclass(frozen=True)
class AnnealingConfig:
    """Annealed optimiser settings, tuned for CPU budgets (DexGraspNet, on a GPU: 6000 iterations, switch
    probability 0.5, temperature 18; with the pre-shaped start 300 steps reach ~45% physics yield here)."""

    iterations: int = 300
    """Optimisation steps per batch."""
    contacts: int = 4
    """Contact points selected per hand (K)."""
    step_size: float = 0.005
    """Initial step size (m for translation, rad-ish for rot6d and joints) of the RMS-normalised gradient step."""
    step_size_decay: float = 0.95
    """Step size multiplier every ``step_size_period`` steps."""
    step_size_period: int = 50
    """Steps between step-size decays."""
    temperature: float = 2.0
    """Initial Metropolis temperature (energy units)."""
    temperature_decay: float = 0.95
    """Temperature multiplier every ``annealing_period`` steps."""
    annealing_period: int = 30
    """Steps between temperature decays."""
    switch_probability: float = 0.1
    """Probability of resampling each contact index per step."""
    rms_decay: float = 0.98
    """Weight of the new squared gradient in the running RMS (DexGraspNet's mu)."""
    init_gap: tuple[float, float] = (0.005, 0.03)
    """Range of the initial gap in m between the palm and the object's support plane."""
    init_joint_noise: float = 0.15
    """Std in rad of the Gaussian noise on the initial (open-pose) joints."""
    init_tilt: float = 0.3
    """Max tilt in rad of the initial palm normal away from pointing at the object centre."""

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.contacts < 1:
            raise ValueError(f"iterations and contacts must be >= 1, got {self.iterations}, {self.contacts}")
        if not 0 <= self.switch_probability <= 1:
            raise ValueError(f"switch_probability must be in [0, 1], got {self.switch_probability}")


@dataclass
class EnergyTerms:
    """Per-hand energy terms, each (B,): total, force closure, distance, penetration, self-penetration, joints."""

    total: torch.Tensor
    fc: torch.Tensor
    dis: torch.Tensor
    pen: torch.Tensor
    spen: torch.Tensor
    joints: torch.Tensor


@dataclass
class SynthesisResult:
    """Optimised grasps of B hands: poses (B, 3 + 6 + J), contact indices (B, K), final energy terms."""

    poses: torch.Tensor
    contact_idx: torch.Tensor
    energy: EnergyTerms


def force_closure_energy(points: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """|sum n|^2 + |sum x x n|^2 (B,) for contact points (B, K, 3) m and unit normals (B, K, 3)."""
    force = normals.sum(dim=1)
    torque = torch.cross(points, normals, dim=-1).sum(dim=1)
    return (force**2).sum(-1) + (torque**2).sum(-1)


def grasp_energy(hand: HandModel, obj: ObjectModel, poses: torch.Tensor, contact_idx: torch.Tensor,
                 weights: EnergyWeights) -> EnergyTerms:
    """Energy terms of hand poses (B, 3 + 6 + J) using contact candidates ``contact_idx`` (B, K)."""
    state: HandState = hand.forward(poses)
    candidates, _ = hand.contact_candidates(state)  # (B, C, 3)
    points = torch.gather(candidates, 1, contact_idx[..., None].expand(-1, -1, 3))  # (B, K, 3)
    dist, normals = obj.query(points)  # (B, K), (B, K, 3)
    e_fc = force_closure_energy(points, normals)
    e_dis = dist.abs().sum(-1)
    centres, radii = hand.penetration_spheres(state)  # (B, S, 3), (S,)
    sphere_dist, _ = obj.query(centres)
    margin = weights.penetration_margin
    object_points = obj.surface_points.expand(len(poses), -1, -1)  # (B, N, 3)
    e_pen = (torch.relu(radii + margin - sphere_dist).sum(-1)
             + torch.relu(margin - hand.box_signed_distance(state, object_points)).sum(-1))
    e_spen = hand.self_penetration(state)
    e_joints = hand.joint_limit_violation(state.joints)
    total = (e_fc + weights.distance * e_dis + weights.penetration * e_pen
             + weights.self_penetration * e_spen + weights.joints * e_joints)
    return EnergyTerms(total, e_fc, e_dis, e_pen, e_spen, e_joints)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(v, dim=-1)


def _on(hand: HandModel, drawn: torch.Tensor) -> torch.Tensor:
    """A tensor drawn from the (CPU) generator, moved to the hand model's device (a no-op on the CPU)."""
    return drawn.to(hand.device)


def initial_poses(hand: HandModel, obj: ObjectModel, batch: int, config: AnnealingConfig,
                  generator: torch.Generator) -> torch.Tensor:
    """B hand poses around the object, palm facing it (DexGraspNet-style initialisation), (B, 3 + 6 + J).

    A random approach direction d is drawn on the sphere; the palm normal points along -d (tilted by up to
    ``init_tilt``), the fingers get a random roll about it, and the hand's ``palm_center`` is placed
    ``init_gap`` beyond the object's support plane along d; joints start at the spec's pre-shape (``init_pose``)
    plus Gaussian noise.
    """
    kw = {"generator": generator, "dtype": hand.dtype}
    d = _unit(_on(hand, torch.randn(batch, 3, **kw)))  # (B, 3) approach direction, object frame
    tilt = _unit(_on(hand, torch.randn(batch, 3, **kw))) * config.init_tilt * _on(hand, torch.rand(batch, 1, **kw))
    palm_normal = _unit(-d + tilt)
    roll = _on(hand, torch.randn(batch, 3, **kw))
    finger = _unit(roll - (roll * palm_normal).sum(-1, keepdim=True) * palm_normal)
    # rotation taking the hand's (palm_normal, finger_direction) onto the sampled world directions
    hand_x, hand_z = hand.palm_normal, hand.finger_direction
    hand_frame = torch.stack([hand_x, torch.cross(hand_z, hand_x, dim=-1), hand_z], dim=-1)  # (3, 3)
    world_frame = torch.stack([palm_normal, torch.cross(finger, palm_normal, dim=-1), finger], dim=-1)  # (B, 3, 3)
    rot = world_frame @ hand_frame.T
    vertices = torch.as_tensor(obj.mesh.vertices, dtype=hand.dtype, device=hand.device)
    support = (vertices @ d.T).max(dim=0).values  # (B,) m
    gap = config.init_gap[0] + (config.init_gap[1] - config.init_gap[0]) * _on(hand, torch.rand(batch, **kw))
    palm_target = d * (support + gap)[:, None]
    translation = palm_target - (rot @ hand.palm_center[:, None]).squeeze(-1)
    noise = _on(hand, torch.randn(batch, hand.num_joints, **kw))
    joints = hand.clamp_joints(hand.init_pose + config.init_joint_noise * noise)
    return torch.cat([translation, matrix_to_rot6d(rot), joints], dim=-1)


def synthesize(hand: HandModel, obj: ObjectModel, batch: int, generator: torch.Generator,
               config: AnnealingConfig | None = None, weights: EnergyWeights | None = None,
               energy_log: list[float] | None = None) -> SynthesisResult:
    """Optimise ``batch`` grasps on ``obj``; appends the mean energy per step to ``energy_log`` if given."""
    config = config or AnnealingConfig()
    weights = weights or EnergyWeights()
    poses = initial_poses(hand, obj, batch, config, generator)
    contact_idx = _on(hand, torch.randint(hand.num_contacts, (batch, config.contacts), generator=generator))
    poses.requires_grad_(True)
    energy = grasp_energy(hand, obj, poses, contact_idx, weights)
    energy.total.sum().backward()
    rms = torch.zeros(hand.pose_dim, dtype=hand.dtype, device=hand.device)
    for step in range(1, config.iterations + 1):
        step_size = config.step_size * config.step_size_decay ** (step // config.step_size_period)
        temperature = config.temperature * config.temperature_decay ** (step // config.annealing_period)
        grad = poses.grad
        rms = config.rms_decay * (grad**2).mean(0) + (1 - config.rms_decay) * rms
        with torch.no_grad():
            new_poses = poses - step_size * grad / (rms.sqrt() + 1e-6)
            switch = _on(hand, torch.rand(contact_idx.shape, generator=generator)) < config.switch_probability
            resampled = _on(hand, torch.randint(hand.num_contacts, contact_idx.shape, generator=generator))
            new_idx = torch.where(switch, resampled, contact_idx)
        new_poses.requires_grad_(True)
        new_energy = grasp_energy(hand, obj, new_poses, new_idx, weights)
        new_energy.total.sum().backward()
        with torch.no_grad():
            u = _on(hand, torch.rand(batch, generator=generator, dtype=hand.dtype))
            accept = u < torch.exp((energy.total - new_energy.total) / temperature)  # (B,)
            merged = torch.where(accept[:, None], new_poses, poses)
            merged_grad = torch.where(accept[:, None], new_poses.grad, poses.grad)
            contact_idx = torch.where(accept[:, None], new_idx, contact_idx)
            energy = EnergyTerms(*(torch.where(accept, getattr(new_energy, f), getattr(energy, f)).detach()
                                   for f in ("total", "fc", "dis", "pen", "spen", "joints")))
        poses = merged.detach().requires_grad_(True)
        poses.grad = merged_grad
        if energy_log is not None:
            energy_log.append(float(energy.total.mean()))
    return SynthesisResult(poses.detach(), contact_idx, energy)


def squeeze_joints(hand: HandModel, obj: ObjectModel, poses: torch.Tensor, squeeze: float,
                   contact_threshold: float = 0.01, damping: float = 1e-4) -> torch.Tensor:
    """Joint targets (B, J) rad that push the hand's contact candidates ``squeeze`` m into the object.

    Candidates within ``contact_threshold`` m of the surface get a target ``squeeze`` m along the inward object
    normal; one damped least-squares step on a finite-difference Jacobian maps those targets to joints
    (DexGraspNet's "target joints" for physics validation). Hands without such contacts keep their joints.
    """
    with torch.no_grad():
        B, J = poses.shape[0], hand.num_joints
        eps = 1e-4
        kw = {"dtype": poses.dtype, "device": poses.device}
        offsets = torch.cat([torch.zeros(1, J, **kw), eps * torch.eye(J, **kw)])
        batch = poses[:, None].repeat(1, J + 1, 1)  # (B, J + 1, D)
        batch[..., 9:] += offsets
        points, _ = hand.contact_candidates(hand.forward(batch.view(B * (J + 1), -1)))
        points = points.view(B, J + 1, -1, 3)  # (B, J + 1, C, 3)
        base = points[:, 0]  # (B, C, 3)
        jac = ((points[:, 1:] - base[:, None]) / eps).permute(0, 2, 3, 1).reshape(B, -1, J)  # (B, 3C, J)
        dist, normals = obj.query(base)  # (B, C), (B, C, 3)
        near = (dist < contact_threshold).to(poses.dtype)[..., None]  # (B, C, 1)
        delta = (-squeeze * normals * near).reshape(B, -1, 1)  # (B, 3C, 1)
        jac = jac * near.repeat(1, 1, 3).reshape(B, -1, 1)
        lhs = jac.transpose(1, 2) @ jac + damping * torch.eye(J, **kw)
        dq = torch.linalg.solve(lhs, jac.transpose(1, 2) @ delta).squeeze(-1)  # (B, J)
        return hand.clamp_joints(poses[:, 9:] + dq)
