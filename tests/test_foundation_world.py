"""World: stepping, determinism, save/restore, object loading and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from manipstack.envs.core import mesh_cache
from manipstack.envs.core.world import World


def _drop_scene(world: World, seed: int) -> None:
    rng = np.random.default_rng(seed)
    world.add_plane()
    for i in range(10):
        world.add_primitive(
            f"obj{i}", str(rng.choice(["box", "cylinder", "sphere"])), rng.uniform(0.02, 0.06, 3).round(3).tolist()
            if i % 3 == 0 else [0.04, 0.04, 0.04],
            position=[rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), 0.05 + 0.06 * i],
            quat_xyzw=list(np.roll(rng.normal(size=4), 0) / 1.0),
        )


def _state(world: World) -> np.ndarray:
    return np.concatenate([np.concatenate(world.body_pose(n)) for n in world.body_names])


def test_free_fall_velocity_after_one_step_is_g_dt():
    with World(time_step=1 / 240) as world:
        world.add_primitive("ball", "sphere", [0.02] * 3, position=[0, 0, 1.0], mass=0.1)
        world.step()
        lin, _ = world.body_velocity("ball")
        assert lin[2] == pytest.approx(-9.81 / 240, rel=1e-3)
        assert world.sim_time == pytest.approx(1 / 240)


def test_same_seed_same_state_after_1000_steps():
    states = []
    for _ in range(2):
        with World() as world:
            _drop_scene(world, seed=3)
            world.step(1000)
            states.append(_state(world))
    np.testing.assert_array_equal(states[0], states[1])


def test_two_worlds_side_by_side_do_not_interfere():
    with World() as a, World(gravity=0.0) as b:
        a.add_primitive("box", "box", [0.05] * 3, position=[0, 0, 0.5])
        b.add_primitive("box", "box", [0.05] * 3, position=[0, 0, 0.5])
        a.step(240)
        b.step(240)
        assert a.body_pose("box")[0][2] < 0.0  # fell (no plane in world a)
        assert b.body_pose("box")[0][2] == pytest.approx(0.5)


def test_save_step_restore_step_is_identical():
    with World() as world:
        _drop_scene(world, seed=1)
        world.step(50)
        snapshot = world.save_state()
        world.step(200)
        first = _state(world)
        world.restore_state(snapshot)
        world.step(200)
        np.testing.assert_array_equal(first, _state(world))


def test_step_until_static_settles_and_respects_its_limit():
    with World() as world:
        world.add_plane()
        world.add_primitive("box", "box", [0.05] * 3, position=[0, 0, 0.1])
        assert world.step_until_static(max_time=3.0)
        assert world.sim_time < 3.0
        world.add_primitive("faller", "sphere", [0.02] * 3, position=[0, 0, 100.0])
        start = world.sim_time
        assert not world.step_until_static(max_time=0.5)
        assert world.sim_time - start == pytest.approx(0.5, abs=world.time_step)


def test_mesh_loading_scale_mass_friction_colour(tmp_path):
    path = tmp_path / "cube.stl"
    trimesh.creation.box([1.0, 1.0, 1.0]).export(path)
    with World(cache_dir=tmp_path / "cache") as world:
        world.add_plane()
        world.add_mesh("cube", path, position=[0, 0, 0.2], scale=0.05, mass=0.3, friction=0.6, color=[1, 0, 0, 1])
        world.step_until_static(max_time=3.0)
        lo, hi = world.aabb("cube")
        # PyBullet pads AABBs by its collision margin (2 mm per side for meshes)
        assert np.all((hi - lo > 0.0495) & (hi - lo < 0.0545))
        info = world.client.getDynamicsInfo(world.body_id("cube"), -1)
        assert info[0] == pytest.approx(0.3)
        assert info[1] == pytest.approx(0.6)


def test_concave_mesh_is_decomposed_once_and_cached(tmp_path):
    path = tmp_path / "bowl.obj"
    parts = [trimesh.creation.box([1.0, 1.0, 0.1])]
    for x in (-0.45, 0.45):
        wall = trimesh.creation.box([0.1, 1.0, 0.5])
        wall.apply_translation([x, 0, 0.25])
        parts.append(wall)
    trimesh.util.concatenate(parts).export(path)
    cache = tmp_path / "cache"
    with World(cache_dir=cache) as world:
        world.add_mesh("u", path, scale=0.1)
    decomposed = list(cache.rglob("vhacd.obj"))
    assert len(decomposed) == 1
    stamp = decomposed[0].stat().st_mtime_ns
    with World(cache_dir=cache) as world:
        world.add_mesh("u", path, scale=0.1)
    assert decomposed[0].stat().st_mtime_ns == stamp


def test_a_converted_mesh_is_not_loaded_again(tmp_path, monkeypatch):
    path = tmp_path / "cube.obj"
    trimesh.creation.box([0.05, 0.05, 0.05]).export(path)
    with World(cache_dir=tmp_path / "cache") as world:
        world.add_mesh("first", path)

        def no_load(mesh_path):
            raise AssertionError(f"{mesh_path} was loaded again")

        monkeypatch.setattr(mesh_cache, "load_trimesh", no_load)
        world.add_mesh("second", path)
        assert world.body_id("second") != world.body_id("first")


def test_missing_and_corrupt_assets_name_the_file(tmp_path):
    corrupt = tmp_path / "broken.obj"
    corrupt.write_text("this is not a mesh\nv 1 2\nf 9 9 9\n")
    with World(cache_dir=tmp_path / "cache") as world:
        with pytest.raises(FileNotFoundError, match="nope.obj"):
            world.add_mesh("x", tmp_path / "nope.obj")
        with pytest.raises(ValueError, match="broken.obj"):
            world.add_mesh("y", corrupt)
        with pytest.raises(FileNotFoundError, match="missing.urdf"):
            world.add_urdf("z", tmp_path / "missing.urdf")
        bad_urdf = tmp_path / "bad.urdf"
        bad_urdf.write_text("<robot><link")
        with pytest.raises(ValueError, match="bad.urdf"):
            world.add_urdf("w", bad_urdf)


def test_bad_input_errors():
    with World() as world:
        with pytest.raises(ValueError, match="shape must be one of"):
            world.add_primitive("a", "cone", [0.1, 0.1, 0.1])
        with pytest.raises(ValueError, match="positive extents"):
            world.add_primitive("a", "box", [0.1, -0.1, 0.1])
        world.add_primitive("a", "box", [0.1, 0.1, 0.1])
        with pytest.raises(ValueError, match="already exists"):
            world.add_primitive("a", "box", [0.1, 0.1, 0.1])
        with pytest.raises(KeyError, match="no body named 'b'"):
            world.body_pose("b")
    with pytest.raises(ValueError, match="time_step"):
        World(time_step=0)
    with pytest.warns(UserWarning, match="coarser than 1/60"):
        World(time_step=0.05).close()


def test_close_is_idempotent():
    world = World()
    world.close()
    world.close()
