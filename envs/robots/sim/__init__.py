"""Simulated robots (PyBullet, in-process) implementing the contract in ``envs.robots.base``."""

from manipstack.envs.robots.sim.hand import SimHand, SimHandConfig
from manipstack.envs.robots.sim.panda import SimPanda, SimPandaConfig
from manipstack.envs.robots.sim.workcell import (
    FloatingHandWorkcell,
    FloatingHandWorkcellConfig,
    SimWorkcell,
    SimWorkcellConfig,
)

__all__ = ["FloatingHandWorkcell", "FloatingHandWorkcellConfig", "SimHand", "SimHandConfig", "SimPanda",
           "SimPandaConfig", "SimWorkcell", "SimWorkcellConfig"]
