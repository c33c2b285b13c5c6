"""Robots behind one contract (``base.Robot``); factories building a robot by backend name and a workcell by
robot name (both registries, extended with :func:`register_backend` / :func:`register_workcell`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from manipstack.envs.robots.base import Feature, FeatureNotSupportedError, Robot, RobotNotConnectedError, Workcell

_BACKENDS: dict[str, Callable[..., Robot]] = {}
_WORKCELLS: dict[str, Callable[..., Workcell]] = {}


def register_backend(name: str, factory: Callable[..., Robot]) -> None:
    """Make ``make_robot(name, ...)`` call ``factory(...)``."""
    _BACKENDS[name] = factory


def _make_sim(**kwargs: Any) -> Robot:
    from manipstack.envs.robots.sim.panda import SimPanda

    return SimPanda(**kwargs)


def _make_sim_hand(spec: Any = None, **kwargs: Any) -> Robot:
    from manipstack.envs.robots.sim.hand import SimHand, SimHandConfig

    return SimHand(config=SimHandConfig() if spec is None else SimHandConfig(spec=spec), **kwargs)


def _make_bridge(**kwargs: Any) -> Robot:
    from manipstack.envs.robots.real.client import BridgeRobot

    return BridgeRobot(**kwargs)


def _make_fmb_franka_http(**kwargs: Any) -> Robot:
    from manipstack.envs.robots.real.fmb_franka import FmbFrankaHttp

    return FmbFrankaHttp(**kwargs)


register_backend("sim", _make_sim)
register_backend("sim-hand", _make_sim_hand)
register_backend("bridge", _make_bridge)
register_backend("fmb-franka-http", _make_fmb_franka_http)


def make_robot(backend: str, **kwargs: Any) -> Robot:
    """Build a robot by backend name with backend-specific keyword arguments.

    Backends: ``"sim"`` (``SimPanda(world, ...)``), ``"sim-hand"`` (the floating dexterous hand,
    ``SimHand(world, position=..., quat_xyzw=...)`` with ``spec=`` a hand spec JSON path), ``"bridge"``
    (``BridgeRobot(address, keys, ...)``, a driver-bridge client) and ``"fmb-franka-http"``
    (``FmbFrankaHttp(config, url=...)``).
    """
    try:
        factory = _BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown robot backend {backend!r}; available: {sorted(_BACKENDS)}") from None
    return factory(**kwargs)


# ------------------------------------------------------------------------------------------------ workcells
def register_workcell(robot_name: str, factory: Callable[..., Workcell]) -> None:
    """Make ``make_workcell(robot_name, ...)`` call ``factory(**kwargs)`` for an in-process (``"sim"``) workcell.

    A factory accepts at least ``time_step`` (s) and ``solver_iterations`` (the physics settings a digital twin
    is served with), and returns a connected workcell whose robot reports the same features wherever it runs.
    """
    _WORKCELLS[robot_name] = factory


def workcell_names() -> list[str]:
    """Robot names ``make_workcell`` builds, sorted."""
    return sorted(_WORKCELLS)


def _panda_workcell(**kwargs: Any) -> Workcell:
    from manipstack.envs.robots.sim.workcell import SimWorkcell, SimWorkcellConfig

    return SimWorkcell(SimWorkcellConfig(**kwargs))


def _floating_hand_workcell(**kwargs: Any) -> Workcell:
    from manipstack.envs.robots.sim.workcell import FloatingHandWorkcell, FloatingHandWorkcellConfig

    return FloatingHandWorkcell(FloatingHandWorkcellConfig(**kwargs))


register_workcell("panda", _panda_workcell)
register_workcell("floating-hand", _floating_hand_workcell)


def _sim_workcell(robot: str, **kwargs: Any) -> Workcell:
    return _WORKCELLS[robot](**kwargs)


def _bridge_workcell(robot: str, **kwargs: Any) -> Workcell:
    from manipstack.envs.robots.real.client import RemoteWorkcell

    return RemoteWorkcell(robot=robot, **kwargs)


_WORKCELL_BACKENDS: dict[str, Callable[..., Workcell]] = {"sim": _sim_workcell, "bridge": _bridge_workcell}


def make_workcell(robot: str = "panda", backend: str = "sim", **kwargs: Any) -> Workcell:
    """Build the workcell (table + ``robot``, connected, at home) a simulated task runs in.

    Args:
        robot: a registered robot name: ``"panda"`` (keyword arguments of ``SimWorkcellConfig``) or
            ``"floating-hand"`` (keyword arguments of ``FloatingHandWorkcellConfig``); see :func:`workcell_names`.
        backend: ``"sim"`` builds it in this process; ``"bridge"`` returns the workcell of a digital twin
            behind the driver bridge (keyword arguments of ``BridgeRobot``: ``address``, ``keys``, ...), whose
            server must serve the same robot (``--twin.robot``).
    """
    if robot not in _WORKCELLS:
        hint = f"; the backend is the second argument now: make_workcell('panda', backend={robot!r}, ...)" \
            if robot in _WORKCELL_BACKENDS else ""
        raise ValueError(f"unknown workcell robot {robot!r}; registered: {workcell_names()}{hint}")
    try:
        build = _WORKCELL_BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown workcell backend {backend!r}; available: {sorted(_WORKCELL_BACKENDS)}") from None
    return build(robot, **kwargs)


__all__ = ["Feature", "FeatureNotSupportedError", "Robot", "RobotNotConnectedError", "Workcell", "make_robot",
           "make_workcell", "register_backend", "register_workcell", "workcell_names"]
