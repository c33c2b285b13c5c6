"""VPG push-grasp Q-learning: fully convolutional Q-networks over rotated heightmaps, agent and replay."""

from policies.vpg.agent import METHODS, VPGAgent, VPGConfig
from policies.vpg.net import QNet, q_maps

__all__ = ["METHODS", "QNet", "VPGAgent", "VPGConfig", "q_maps"]
