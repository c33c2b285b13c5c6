"""Robots behind one contract (``base.Robot``); factories building a robot or a simulated workcell by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from manipstack.envs.robots.base import Feature, Robot, RobotNotConnectedError, Workcell

_BACKENDS: dict[str, Callable[..., Robot]] = {}


def register_backend(name: str, factory: Callable[..., Robot]) -> None:
    """Make ``make_robot(name, ...)`` call ``factory(...)``."""
    _BACKENDS[name] = factory


def _make_sim(**kwargs: Any) -> Robot:
    from manipstack.envs.robots.sim.panda import SimPanda

    return SimPanda(**kwargs)


def _make_bridge(**kwargs: Any) -> Robot:
    from manipstack.envs.robots.real.client import BridgeRobot

    return BridgeRobot(**kwargs)


def _make_fmb_franka_http(**kwargs: Any) -> Robot:
    from manipstack.envs.robots.real.fmb_franka import FmbFrankaHttp

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


def make_workcell(backend: str = "sim", **kwargs: Any) -> Workcell:
    """Build the workcell a simulated task runs in: in-process (``"sim"``, keyword arguments of
    ``SimWorkcellConfig``) or a digital twin behind the driver bridge (``"bridge"``, keyword arguments of
    ``BridgeRobot``: ``address``, ``keys``, ...)."""
    if backend == "sim":
        from manipstack.envs.robots.sim.workcell import SimWorkcell, SimWorkcellConfig

        return SimWorkcell(SimWorkcellConfig(**kwargs))
    if backend == "bridge":
        from manipstack.envs.robots.real.client import RemoteWorkcell

        return RemoteWorkcell(**kwargs)
    raise ValueError(f"unknown workcell backend {backend!r}; available: ['bridge', 'sim']")


__all__ = ["Feature", "Robot", "RobotNotConnectedError", "Workcell", "make_robot", "make_workcell", "register_backend"]
