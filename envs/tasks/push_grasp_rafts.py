"""Packed "rafts" of planks: clutter where a top-down parallel-jaw grasp has no room and a push helps.

A raft is 2-4 planks (rectangular prisms longer than the 8 cm gripper opening, 4.2-5 cm wide) lying
side by side with a 0.5 mm gap. A plank fits the gripper only across its width, where a finger lands on
the neighbouring plank (the guarded grasp aborts); two planks together are wider than the opening.
Pushing a plank along its length slides it out of the raft, after which it can be grasped: the
push-grasp synergy VPG learns. (Failed grasps at a raft's corners can still shove planks apart.)
Training scenes mix rafts with freely dropped blocks (``PushGraspConfig.raft_fraction``).

Positions are in m relative to the workspace centre, table top z = 0 (as in test cases).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manipstack.assets.blocks import PALETTE
from manipstack.envs.core.poses import euler_to_quat

PLANK_LENGTH = (0.09, 0.11)  # m, longer than the Panda's 8 cm opening
PLANK_WIDTH = (0.042, 0.05)  # m, two side by side are wider than the opening
PLANK_HEIGHT = (0.025, 0.04)  # m
GAP = 0.0005  # m between neighbouring planks


@dataclass(frozen=True)
class Footprint:
    """A disc (centre (2,) in m, radius in m) that other objects must keep out of."""

    center: np.ndarray
    radius: float

    def overlaps(self, center: np.ndarray, radius: float) -> bool:
        return bool(np.linalg.norm(self.center - center) < self.radius + radius)


def raft(rng: np.random.Generator, num_planks: int, center: np.ndarray, yaw: float) -> tuple[list[dict], float]:
    """Planks of one raft as test-case object fields, and the raft's footprint radius in m.

    Args:
        rng: random generator (sizes and colours).
        num_planks: planks side by side (>= 2).
        center: raft centre (x, y) in m, relative to the workspace centre.
        yaw: raft orientation in rad about z (planks' length along yaw).
    """
    length = float(rng.uniform(*PLANK_LENGTH))
    width = float(rng.uniform(*PLANK_WIDTH))
    height = float(rng.uniform(*PLANK_HEIGHT))
    along = np.array([np.cos(yaw), np.sin(yaw)])
    across = np.array([-along[1], along[0]])
    quat = tuple(float(q) for q in euler_to_quat([0.0, 0.0, yaw]))
    planks = []
    for i in range(num_planks):
        offset = (i - (num_planks - 1) / 2) * (width + GAP)
        xy = center + offset * across
        color = PALETTE[int(rng.integers(len(PALETTE)))]
        planks.append({"shape": "rect_prism", "size": (length, width, height), "color": color,
                       "position": (float(xy[0]), float(xy[1]), height / 2), "orientation": quat})
    radius = 0.5 * float(np.hypot(length, num_planks * (width + GAP)))
    return planks, radius


def place_rafts(
    rng: np.random.Generator, max_objects: int, half_extent: float, max_rafts: int = 2
) -> tuple[list[dict], list[Footprint]]:
    """1..``max_rafts`` non-overlapping rafts with at most ``max_objects`` planks in all.

    Raft centres are uniform within ``half_extent`` m of the workspace centre; returns the planks (as
    test-case object fields) and the rafts' footprints (for placing loose objects around them).
    """
    planks: list[dict] = []
    footprints: list[Footprint] = []
    for _ in range(int(rng.integers(1, max_rafts + 1))):
        count = min(int(rng.integers(2, 5)), max_objects - len(planks))
        if count < 2:
            break
        for _attempt in range(20):
            center = rng.uniform(-half_extent, half_extent, size=2)
            members, radius = raft(rng, count, center, float(rng.uniform(-np.pi, np.pi)))
            if not any(f.overlaps(center, radius) for f in footprints):
                planks.extend(members)
                footprints.append(Footprint(center, radius))
                break
    return planks, footprints
