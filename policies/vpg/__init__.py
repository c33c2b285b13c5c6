"""VPG push-grasp Q-learning: fully convolutional Q-networks over rotated heightmaps, agent and replay."""

from manipstack.policies.vpg.agent import METHODS, VPGAgent, VPGConfig, load_agent
from manipstack.policies.vpg.net import QNet, q_maps

__all__ = ["METHODS", "QNet", "VPGAgent", "VPGConfig", "load_agent", "q_maps"]
