"""A user's bad input ends in one line naming the problem (exit status 2, no traceback), and PyBullet's native
output (``argv[0]=``, V-HACD's text) never reaches the terminal."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh

from manipstack import cli
from manipstack.envs.core.world import World
from manipstack.envs.data.provenance import git_commit

CHECKPOINT = Path(__file__).resolve().parents[1] / "assets" / "checkpoints" / "vpg" / "vpg"


def _one_line_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_bad_inputs_give_one_line_naming_the_problem(capsys, tmp_path):
    missing = tmp_path / "nope"
    assert f"checkpoint folder not found: {missing}" in _one_line_error(
        capsys, ["eval", "vpg", "--checkpoint", str(missing), "--random", "2"])
    corrupt = tmp_path / "corrupt"
    shutil.copytree(CHECKPOINT, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"not a tensor file")
    assert f"{corrupt / 'model.safetensors'}: not a readable safetensors file" in _one_line_error(
        capsys, ["eval", "vpg", "--checkpoint", str(corrupt), "--random", "2", "--runs", "1"])
    assert "server secret key not found" in _one_line_error(capsys, ["bridge", "serve", "--keys", str(missing)])
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no mesh or URDF files" in _one_line_error(
        capsys, ["eval", "vpg", "--checkpoint", str(CHECKPOINT), "--random", "2", "--objects", str(empty)])
    cases = tmp_path / "cases"
    cases.mkdir()
    typo = {"shape": "cube", "size": [0.04] * 3, "color": [1, 0, 0], "position": [0, 0, 0.02],
            "orientaton": [0, 0, 0, 1]}
    (cases / "typo.json").write_text(json.dumps({"objects": [typo]}))
    err = _one_line_error(capsys, ["eval", "vpg", "--checkpoint", str(CHECKPOINT), "--cases", str(cases), "--runs",
                                   "1", "--no-video", "--out", str(tmp_path / "out")])
    assert f"{cases / 'typo.json'} object 0: unknown key 'orientaton'" in err


def test_debug_shows_the_traceback(tmp_path):
    from manipstack.errors import MissingInputError

    with pytest.raises(MissingInputError):
        cli.main(["eval", "vpg", "--checkpoint", str(tmp_path / "nope"), "--random", "2", "--debug"])


def test_worlds_and_mesh_decomposition_print_nothing_natively(capfd, tmp_path):
    concave = trimesh.creation.annulus(r_min=0.02, r_max=0.04, height=0.02)
    path = tmp_path / "ring.obj"
    concave.export(path)
    with World(cache_dir=tmp_path / "cache") as world:
        World().close()
        world.add_mesh("ring", path)
    out, _ = capfd.readouterr()
    assert out == ""


def test_metadata_names_the_projects_commit_from_anywhere(tmp_path):
    code = "from manipstack.envs.data.provenance import run_metadata; print(run_metadata(0)['git_commit'])"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == git_commit() != "unknown"
