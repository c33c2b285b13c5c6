"""Robots behind one contract (``base.Robot``) and a factory that builds one by backend name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from envs.robots.base import Feature, Robot, RobotNotConnectedError

_BACKENDS: dict[str, Callable[..., Robot]] = {}


def register_backend(name: str, factory: Callable[..., Robot]) -> None:
    """Make ``make_robot(name, ...)`` call ``factory(...)``."""
    _BACKENDS[name] = factory


def _make_sim(**kwargs: Any) -> Robot:
    from envs.robots.sim.panda import SimPanda

    return SimPanda(**kwargs)


def _make_bridge(**kwargs: Any) -> Robot:
    from envs.robots.real.client import BridgeRobot

    return BridgeRobot(**kwargs)


def _make_fmb_franka_http(**kwargs: Any) -> Robot:
    from envs.robots.real.fmb_franka import FmbFrankaHttp

    return FmbFrankaHttp(**kwargs)


register_backend("sim", _make_sim)
register_backend("bridge", _make_bridge)
register_backend("fmb-franka-http", _make_fmb_franka_http)


def make_robot(backend: str, **kwargs: Any) -> Robot:
    """Build a robot by backend name with backend-specific keyword arguments.

    Backends: ``"sim"`` (``SimPanda(world, ...)``), ``"bridge"`` (``BridgeRobot(address, keys, ...)``, a
    driver-bridge client) and ``"fmb-franka-http"`` (``FmbFrankaHttp(config, url=...)``).
    """
    try:
        factory = _BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown robot backend {backend!r}; available: {sorted(_BACKENDS)}") from None
    return factory(**kwargs)


__all__ = ["Feature", "Robot", "RobotNotConnectedError", "make_robot", "register_backend"]
