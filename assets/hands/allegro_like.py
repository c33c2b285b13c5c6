"""Generator of an Allegro-like 16-DoF hand: URDF + hand spec JSON, reproducible and seed-free.

Hand frame (the ``wrist`` root link, to which the ``palm`` link is fixed): origin at the wrist, centre of the
palm's back edge; x = palm normal (the side the fingers close toward), z = finger direction,
y = lateral (index side +y).
The palm front face is the plane x = 0. Three fingers (index, middle, ring) have an abduction joint
about x and three flexion joints about y (positive angle flexes toward +x); the thumb has an
opposition joint about z and three flexion joints. Link lengths, limits, masses follow the
Wonik Allegro hand (v4) within a few millimetres. Collisions are capsules (box for the palm).

The spec lists the actuated joints (order = joint vector order everywhere) with limits, the canonical
open pose, the pre-shape that grasp synthesis starts from (flexion joints 0.9 rad closer), contact
candidates (points with outward normals on the finger pads and tips), penetration spheres (centre +
radius, covering every collision shape), the collision capsules and boxes themselves (for the hand's
signed distance) and surface points, all in link frames.

Run ``python -m assets.hands.allegro_like`` to rewrite ``allegro_like.urdf`` and ``allegro_like.json``.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tyro

from manipstack.errors import InputError

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Capsule:
    """A capsule along a link-frame axis: from ``start`` (3,) m, ``length`` m along ``axis`` (3,) unit, ``radius`` m."""

    start: tuple[float, float, float]
    axis: tuple[float, float, float]
    length: float
    radius: float

    def point(self, s: float) -> np.ndarray:
        return np.asarray(self.start) + s * np.asarray(self.axis)


@dataclass
class Link:
    name: str
    capsule: Capsule | None
    mass: float
    pad_normal: tuple[float, float, float] = (1.0, 0.0, 0.0)
    """Link-frame direction the finger pad faces (where contact candidates go)."""
    is_tip: bool = False


@dataclass
class Joint:
    name: str
    parent: str
    child: str
    origin: tuple[float, float, float]
    axis: tuple[float, float, float]
    lower: float
    upper: float
    open_rad: float


@dataclass
class HandDesign:
    links: list[Link] = field(default_factory=list)
    joints: list[Joint] = field(default_factory=list)


PALM_EXTENTS = (0.025, 0.095, 0.105)  # x (thickness), y (width), z (length), m
PALM_CENTER = (-PALM_EXTENTS[0] / 2, 0.0, PALM_EXTENTS[2] / 2)
PALM_MASS = 0.40
WRIST_MASS = 0.02
FINGER_RADIUS = 0.0098
THUMB_RADIUS = 0.0105
# (base offset, proximal, medial, distal) link lengths in m, Allegro v4
FINGER_LENGTHS = (0.0164, 0.054, 0.0384, 0.0267)
FINGER_MASSES = (0.012, 0.065, 0.036, 0.032)
FINGER_Y = {"index": 0.0435, "middle": 0.0, "ring": -0.0435}
FINGER_LIMITS = ((-0.47, 0.47), (-0.196, 1.61), (-0.174, 1.709), (-0.227, 1.618))
THUMB_LIMITS = ((0.263, 1.396), (-0.105, 1.163), (-0.189, 1.644), (-0.162, 1.719))
THUMB_LENGTHS = (0.022, 0.050, 0.045, 0.030)
THUMB_MASSES = (0.018, 0.040, 0.040, 0.035)
THUMB_BASE = (-0.010, -0.030, 0.022)


def design() -> HandDesign:
    """The kinematic tree of the hand (link frames, joints, limits, collision capsules)."""
    hand = HandDesign()
    hand.links.append(Link("palm", None, PALM_MASS))
    z = (0.0, 0.0, 1.0)
    for finger, y in FINGER_Y.items():
        names = [f"{finger}_{k}" for k in ("base", "proximal", "medial", "distal")]
        origins = [(-FINGER_RADIUS, y, PALM_EXTENTS[2]), (0.0, 0.0, FINGER_LENGTHS[0]),
                   (0.0, 0.0, FINGER_LENGTHS[1]), (0.0, 0.0, FINGER_LENGTHS[2])]
        axes = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 1.0, 0.0), (0.0, 1.0, 0.0)]
        parent = "palm"
        for k, name in enumerate(names):
            lo, hi = FINGER_LIMITS[k]
            open_rad = 0.0 if k == 0 else 0.1
            hand.joints.append(Joint(f"{name}_joint", parent, name, origins[k], axes[k], lo, hi, open_rad))
            length = FINGER_LENGTHS[k]
            capsule = Capsule((0.0, 0.0, 0.0), z, length, FINGER_RADIUS) if k > 0 else None
            hand.links.append(Link(name, capsule, FINGER_MASSES[k], is_tip=(k == 3)))
            parent = name
    # thumb: chain along local -y; opposition about z swings it in front of the palm, flexion about -x curls it to +z
    minus_y = (0.0, -1.0, 0.0)
    names = ["thumb_base", "thumb_proximal", "thumb_medial", "thumb_distal"]
    origins = [THUMB_BASE, (0.0, -THUMB_LENGTHS[0], 0.0), (0.0, -THUMB_LENGTHS[1], 0.0), (0.0, -THUMB_LENGTHS[2], 0.0)]
    axes = [(0.0, 0.0, 1.0), (-1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)]
    open_pose = (0.9, 0.2, 0.1, 0.1)
    parent = "palm"
    for k, name in enumerate(names):
        lo, hi = THUMB_LIMITS[k]
        hand.joints.append(Joint(f"{name}_joint", parent, name, origins[k], axes[k], lo, hi, open_pose[k]))
        capsule = Capsule((0.0, 0.0, 0.0), minus_y, THUMB_LENGTHS[k], THUMB_RADIUS) if k > 0 else None
        hand.links.append(Link(name, capsule, THUMB_MASSES[k], pad_normal=(0.0, 0.0, 1.0), is_tip=(k == 3)))
        parent = name
    return hand


def _fmt(values) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def _capsule_rpy(axis: tuple[float, float, float]) -> tuple[float, float, float]:
    """Roll-pitch-yaw turning the URDF capsule axis (+z) onto ``axis`` (only +z and -y are used)."""
    if axis == (0.0, 0.0, 1.0):
        return (0.0, 0.0, 0.0)
    if axis == (0.0, -1.0, 0.0):
        return (math.pi / 2, 0.0, 0.0)
    raise InputError(f"unsupported capsule axis {axis}")


def _cylinder_inertia(mass: float, radius: float, length: float) -> tuple[float, float]:
    """(transverse, axial) principal inertia in kg m^2 of a solid cylinder."""
    return mass * (3 * radius**2 + length**2) / 12.0, mass * radius**2 / 2.0


def _inertial_xml(link: Link) -> str:
    if link.name == "palm":
        x, y, z = PALM_EXTENTS
        m = link.mass
        ixx, iyy, izz = m * (y * y + z * z) / 12, m * (x * x + z * z) / 12, m * (x * x + y * y) / 12
        com = PALM_CENTER
    elif link.capsule is None:
        ixx = iyy = izz = 2.0 / 5.0 * link.mass * FINGER_RADIUS**2
        com = (0.0, 0.0, 0.0)
    else:
        cap = link.capsule
        transverse, axial = _cylinder_inertia(link.mass, cap.radius, cap.length)
        com = tuple(cap.point(cap.length / 2))
        ixx, iyy, izz = (transverse, transverse, axial) if cap.axis[2] else (transverse, axial, transverse)
    return (
        f'    <inertial><origin xyz="{_fmt(com)}" rpy="0 0 0"/><mass value="{link.mass:.6g}"/>'
        f'<inertia ixx="{ixx:.6g}" ixy="0" ixz="0" iyy="{iyy:.6g}" iyz="0" izz="{izz:.6g}"/></inertial>\n'
    )


def _geometry_xml(link: Link) -> str:
    if link.name == "palm":
        geom = f'<box size="{_fmt(PALM_EXTENTS)}"/>'
        origin = f'<origin xyz="{_fmt(PALM_CENTER)}" rpy="0 0 0"/>'
    elif link.capsule is None:
        return ""
    else:
        cap = link.capsule
        geom = f'<capsule radius="{cap.radius:.6g}" length="{cap.length:.6g}"/>'
        origin = f'<origin xyz="{_fmt(cap.point(cap.length / 2))}" rpy="{_fmt(_capsule_rpy(cap.axis))}"/>'
    color = "0.35 0.4 0.5 1" if link.name == "palm" else "0.85 0.85 0.85 1"
    return (
        f"    <visual>{origin}<geometry>{geom}</geometry><material name=\"m_{link.name}\"><color rgba=\"{color}\"/>"
        f"</material></visual>\n    <collision>{origin}<geometry>{geom}</geometry></collision>\n"
    )


def urdf_text(hand: HandDesign) -> str:
    """The URDF document of ``hand``."""
    parts = ['<?xml version="1.0"?>\n<!-- generated by assets/hands/allegro_like.py; do not edit -->\n',
             '<robot name="allegro_like">\n']
    # root link with its inertial frame at the link frame: PyBullet places a base by its inertial frame
    parts.append(f'  <link name="wrist">\n    <inertial><origin xyz="0 0 0" rpy="0 0 0"/><mass value="{WRIST_MASS}"/>'
                 '<inertia ixx="1e-5" ixy="0" ixz="0" iyy="1e-5" iyz="0" izz="1e-5"/></inertial>\n  </link>\n')
    parts.append('  <joint name="wrist_palm" type="fixed"><parent link="wrist"/><child link="palm"/>'
                 '<origin xyz="0 0 0" rpy="0 0 0"/></joint>\n')
    for link in hand.links:
        parts.append(f'  <link name="{link.name}">\n{_inertial_xml(link)}{_geometry_xml(link)}  </link>\n')
    for j in hand.joints:
        parts.append(
            f'  <joint name="{j.name}" type="revolute"><parent link="{j.parent}"/><child link="{j.child}"/>'
            f'<origin xyz="{_fmt(j.origin)}" rpy="0 0 0"/><axis xyz="{_fmt(j.axis)}"/>'
            f'<limit lower="{j.lower:.6g}" upper="{j.upper:.6g}" effort="0.7" velocity="6.0"/>'
            f'<dynamics damping="0.01" friction="0.0"/></joint>\n'
        )
    parts.append("</robot>\n")
    return "".join(parts)


def _round(values) -> list[float]:
    return [round(float(v), 6) for v in values]


def spec_dict(hand: HandDesign, urdf_name: str) -> dict:
    """The hand spec (see module docstring); every point is in its link's frame, m."""
    contacts, spheres, surface, capsules = [], [], [], []
    for link in hand.links:
        if link.capsule is None:
            continue
        cap = link.capsule
        capsules.append({"link": link.name, "start": _round(cap.point(0.0)), "end": _round(cap.point(cap.length)),
                         "radius": cap.radius})
        pad = np.asarray(link.pad_normal)
        side = np.cross(np.asarray(cap.axis), pad)
        # pad contacts: 3 along the link on the pad side, plus one at the tip for distal links
        for s in np.linspace(0.25, 0.85, 3) * cap.length:
            contacts.append({"link": link.name, "position": _round(cap.point(s) + cap.radius * pad),
                             "normal": _round(pad)})
        if link.is_tip:
            tip = (pad + np.asarray(cap.axis)) / np.linalg.norm(pad + np.asarray(cap.axis))
            contacts.append({"link": link.name, "position": _round(cap.point(cap.length) + cap.radius * tip),
                             "normal": _round(tip)})
        # penetration spheres every ~radius along the capsule axis (ends included)
        n = max(2, int(math.ceil(cap.length / cap.radius)) + 1)
        for s in np.linspace(0.0, cap.length, n):
            spheres.append({"link": link.name, "center": _round(cap.point(s)), "radius": cap.radius})
        # surface points: rings around the axis
        for s in np.linspace(0.0, cap.length, 5):
            for a in np.linspace(0.0, 2 * math.pi, 8, endpoint=False):
                radial = math.cos(a) * pad + math.sin(a) * side
                surface.append({"link": link.name, "position": _round(cap.point(s) + cap.radius * radial)})
    # palm: spheres filling the box (radius = half thickness), surface points on the front face; no contact
    # candidates (the palm is passive: force closure from actuated fingers gives higher physics yield)
    r = PALM_EXTENTS[0] / 2
    for y in np.linspace(-PALM_EXTENTS[1] / 2 + r, PALM_EXTENTS[1] / 2 - r, 5):
        for z in np.linspace(r, PALM_EXTENTS[2] - r, 5):
            spheres.append({"link": "palm", "center": _round((-r, y, z)), "radius": r})
            surface.append({"link": "palm", "position": _round((0.0, y, z))})
    return {
        "name": "allegro_like",
        "urdf": urdf_name,
        "root_link": "wrist",
        "joints": [{"name": j.name, "lower": j.lower, "upper": j.upper} for j in hand.joints],
        "open_pose": [j.open_rad for j in hand.joints],
        "init_pose": [j.open_rad + (0.9 if j.axis != (1.0, 0.0, 0.0) and "thumb_base" not in j.name else 0.0)
                      for j in hand.joints],
        "palm_center": [0.0, 0.0, 0.09],
        "palm_normal": [1.0, 0.0, 0.0],
        "finger_direction": [0.0, 0.0, 1.0],
        "link_groups": {"wrist": "palm", **{link.name: link.name.split("_")[0] for link in hand.links}},
        "contact_candidates": contacts,
        "penetration_spheres": spheres,
        "collision_capsules": capsules,
        "collision_boxes": [{"link": "palm", "center": _round(PALM_CENTER),
                             "half_extents": _round(np.asarray(PALM_EXTENTS) / 2)}],
        "surface_points": surface,
    }


@dataclass
class GenerateConfig:
    """Write the Allegro-like hand URDF and its spec JSON."""

    out_dir: Path = HERE
    """Folder receiving allegro_like.urdf and allegro_like.json."""


def generate(out_dir: Path) -> tuple[Path, Path]:
    """Write ``allegro_like.urdf`` and ``allegro_like.json`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    hand = design()
    urdf_path, spec_path = out_dir / "allegro_like.urdf", out_dir / "allegro_like.json"
    urdf_path.write_text(urdf_text(hand))
    spec_path.write_text(json.dumps(spec_dict(hand, urdf_path.name), indent=1) + "\n")
    return urdf_path, spec_path


def main(argv: list[str] | None = None) -> None:
    config = tyro.cli(GenerateConfig, args=argv)
    for path in generate(config.out_dir):
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
