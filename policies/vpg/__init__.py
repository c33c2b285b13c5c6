"""VPG push-grasp Q-learning: fully convolutional Q-networks over rotated heightmaps, agent and replay."""

from policies.vpg.agent import METHODS, VPGAgent, VPGConfig, load_agent
from policies.vpg.net import QNet, q_maps

__all__ = ["METHODS", "QNet", "VPGAgent", "VPGConfig", "load_agent", "q_maps"]
