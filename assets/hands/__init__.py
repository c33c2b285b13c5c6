"""Hand models: a URDF plus a hand spec JSON each (joints, limits, contact candidates, penetration spheres, poses)."""

from pathlib import Path

DEFAULT_HAND_SPEC = Path(__file__).resolve().parent / "allegro_like.json"
"""Spec of the shipped Allegro-like 16-DoF hand (its URDF beside it), the default of every hand-using command."""
