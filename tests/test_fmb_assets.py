"""FMB pegs, boards and fixture: spec-file validation, exact convex pieces, and fit / no-fit in physics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shapely.geometry import Polygon

from manipstack.assets import fmb
from manipstack.envs.core.world import World
from manipstack.envs.tasks.fmb_scene import add_board, add_peg
from manipstack.errors import InputError

FMB_SHAPES = ["rectangle", "round", "oval", "hexagon", "arch", "square-circle", "double-square", "3-prong", "star"]


def _spec_file(tmp_path, **overrides):
    peg = {"name": "tri", "polygon": [[0, 0], [0.03, 0], [0, 0.03]], "length": 0.06, "color": [1, 0, 0], **overrides}
    path = tmp_path / "pegs.json"
    path.write_text(json.dumps({"pegs": [peg]}))
    return path


def test_default_file_has_the_nine_fmb_cross_sections():
    pegs = fmb.load_pegs()
    assert [p.name for p in pegs] == FMB_SHAPES
    for peg in pegs:
        assert Polygon(peg.polygon).exterior.is_ccw
        assert np.allclose(Polygon(peg.polygon).centroid.coords[0], 0.0, atol=1e-9)
        assert peg.width < 0.04  # fits the Panda's 8 cm opening with room to spare


@pytest.mark.parametrize("overrides, field", [
    ({"polygon": [[0, 0], [0.03, 0.03], [0.03, 0], [0, 0.03]]}, "self-intersects"),
    ({"polygon": [[0, 0], [0, 0.03], [0.03, 0]]}, "clockwise"),
    ({"hole": [[0.001, 0.001], [0.02, 0.001], [0.001, 0.02]]}, "field 'hole': the hole is smaller than its peg"),
    ({"length": -1}, "field 'length'"),
    ({"colour": [1, 0, 0]}, "unknown key"),
])
def test_bad_peg_spec_is_one_error_naming_the_field(tmp_path, overrides, field):
    path = _spec_file(tmp_path, **overrides)
    with pytest.raises(InputError, match=field) as err:
        fmb.load_pegs(path)
    assert str(path) in str(err.value) and "peg 0" in str(err.value)


@pytest.mark.parametrize("missing", ["name", "polygon", "length", "color"])
def test_a_missing_peg_field_is_one_error_naming_it(tmp_path, missing):
    path = _spec_file(tmp_path)
    spec = json.loads(path.read_text())
    del spec["pegs"][0][missing]
    path.write_text(json.dumps(spec))
    with pytest.raises(InputError, match=rf"peg 0: missing key\(s\) \['{missing}'\]") as err:
        fmb.load_pegs(path)
    assert str(path) in str(err.value)


def test_hole_smaller_than_peg_by_clearance_is_refused():
    with pytest.raises(InputError, match="clearance"):
        fmb.hole_outline(fmb.load_pegs()[0], clearance=-0.001)


def test_spec_file_round_trip_and_new_cross_section(tmp_path):
    path = _spec_file(tmp_path)
    pegs = fmb.load_pegs(path)
    fmb.save_pegs(tmp_path / "again.json", pegs)
    again = fmb.load_pegs(tmp_path / "again.json")
    assert [(p.name, p.length, p.color) for p in again] == [(p.name, p.length, p.color) for p in pegs]
    assert np.allclose(again[0].polygon, pegs[0].polygon, atol=1e-12)
    assert Polygon(pegs[0].polygon).area == pytest.approx(0.03 * 0.03 / 2)


@pytest.mark.parametrize("name", FMB_SHAPES)
def test_convex_pieces_cover_cross_section_and_board_exactly(name):
    peg = {p.name: p for p in fmb.load_pegs()}[name]
    board = fmb.peg_board(peg)
    hole = Polygon(fmb.hole_outline(peg))
    solid = Polygon(fmb.box_outline(board.size)).difference(hole)
    for shape in (Polygon(peg.polygon), solid):
        pieces = [Polygon(p) for p in fmb.convex_pieces(shape)]
        assert all(abs(p.area - p.convex_hull.area) < 1e-12 for p in pieces)  # each piece convex
        assert abs(sum(p.area for p in pieces) - shape.area) < 1e-10  # no overlap, nothing missing
    board_pieces = [Polygon(p) for p in fmb.convex_pieces(solid)]
    assert all(p.intersection(hole).area < 1e-12 for p in board_pieces)  # the hole stays open


def _bottom_after_drop(peg: fmb.PegSpec, board: fmb.BoardGeometry, tmp_path) -> float:
    """Height in m of the peg's bottom face after it was dropped, standing, onto its board's hole for 1 s."""
    with World(cache_dir=tmp_path / "cache") as world:
        world.add_plane()
        add_board(world, "board", board, (0.0, 0.0, 0.0))
        add_peg(world, "peg", peg, (0.0, 0.0, board.thickness + peg.length / 2 + 0.005))
        world.step(240)
        return float(world.body_pose("peg")[0][2] - peg.length / 2)


@pytest.mark.parametrize("name", FMB_SHAPES)
def test_peg_fits_its_hole_and_a_peg_2mm_larger_does_not(name, tmp_path):
    """The peg falls through its 20 mm board onto the table; the same peg offset outward by 2 mm (0.5 mm wider
    than the hole on every side) stays on top of the board."""
    peg = {p.name: p for p in fmb.load_pegs()}[name]
    board = fmb.peg_board(peg)
    assert _bottom_after_drop(peg, board, tmp_path) < 0.002
    assert _bottom_after_drop(peg.grown(0.002), board, tmp_path) > board.thickness - 0.0005
