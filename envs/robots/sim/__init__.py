"""Simulated robots (PyBullet, in-process) implementing the contract in ``envs.robots.base``."""

from envs.robots.sim.panda import SimPanda, SimPandaConfig

__all__ = ["SimPanda", "SimPandaConfig"]
