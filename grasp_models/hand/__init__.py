"""Differentiable multi-finger hand model (batched forward kinematics from a URDF + hand spec)."""

from manipstack.grasp_models.hand.model import HandModel, HandState, matrix_to_rot6d, rot6d_to_matrix

__all__ = ["HandModel", "HandState", "matrix_to_rot6d", "rot6d_to_matrix"]
