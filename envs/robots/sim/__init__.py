"""Simulated robots (PyBullet, in-process) implementing the contract in ``envs.robots.base``."""

from manipstack.envs.robots.sim.panda import SimPanda, SimPandaConfig
from manipstack.envs.robots.sim.workcell import SimWorkcell, SimWorkcellConfig

__all__ = ["SimPanda", "SimPandaConfig", "SimWorkcell", "SimWorkcellConfig"]
