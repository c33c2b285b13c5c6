"""The scene protocol: World satisfies SceneWorld member by member, and the bridge allowlist is derived from it."""

from __future__ import annotations

import inspect

import pytest

from manipstack.envs.core.scene_protocol import SCENE_WORLD_ATTRIBUTES, SCENE_WORLD_METHODS, SceneWorld
from manipstack.envs.core.world import World
from manipstack.envs.robots.real.protocol import (
    LOCAL_WORLD_ATTRIBUTES,
    REMOTE_WORLD_ATTRIBUTES,
    REMOTE_WORLD_METHODS,
)

pytestmark = pytest.mark.timeout(60)


def test_protocol_declares_what_tasks_use() -> None:
    assert {"add_mesh", "add_urdf", "add_primitive", "set_dynamics", "set_color", "enable_sleeping", "wake_up",
            "set_visible", "remove_body", "has_body", "body_pose", "set_body_pose", "body_velocity", "aabb",
            "contact_points", "step", "step_until_static", "render"} <= SCENE_WORLD_METHODS
    assert {"body_names", "sim_time", "time_step", "cache_dir"} <= SCENE_WORLD_ATTRIBUTES
    assert not SCENE_WORLD_METHODS & SCENE_WORLD_ATTRIBUTES
    for name in SCENE_WORLD_METHODS:
        assert inspect.getdoc(getattr(SceneWorld, name)), f"SceneWorld.{name} needs a docstring"


@pytest.mark.parametrize("name", sorted(SCENE_WORLD_METHODS))
def test_world_method_has_the_protocol_signature(name: str) -> None:
    assert inspect.signature(getattr(World, name)) == inspect.signature(getattr(SceneWorld, name)), name


def test_world_satisfies_the_protocol() -> None:
    with World() as world:
        assert isinstance(world, SceneWorld)
        for name in SCENE_WORLD_ATTRIBUTES:
            assert hasattr(world, name), name
        assert isinstance(world.body_names, list) and isinstance(world.sim_time, float)


def test_bridge_allowlist_is_the_protocol() -> None:
    assert REMOTE_WORLD_METHODS == SCENE_WORLD_METHODS
    assert REMOTE_WORLD_ATTRIBUTES | LOCAL_WORLD_ATTRIBUTES == SCENE_WORLD_ATTRIBUTES
    assert not REMOTE_WORLD_ATTRIBUTES & LOCAL_WORLD_ATTRIBUTES
