"""Entry points at toy size: the CLI dispatcher, the sim benchmark and the pick demo section."""

from __future__ import annotations

import importlib
import json

import pytest

from manipstack import cli
from manipstack.eval.bench.sim_speed import SimBenchConfig, run
from manipstack.eval.demo_pick import demo
from manipstack.eval.report import DemoConfig, run_demo


def test_cli_help_lists_commands(capsys):
    cli.main(["--help"])
    out = capsys.readouterr().out
    assert "manipstack bench sim" in out and "manipstack demo" in out


def test_cli_rejects_unknown_names(capsys):
    for argv, message in ((["fly"], "unknown command 'fly'"), (["bench", "nope"], "unknown name nope")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_sim_bench_reports_rates():
    results = run(SimBenchConfig(steps=100, repeats=1, renders=1))
    assert results["raw_steps_per_s"] > 100 and results["world_steps_per_s"] > 100
    assert results["rgbd_224x224_fps"] > 0 and results["rgbd_640x480_fps"] > 0


def test_pick_demo_lifts_a_block_and_writes_media(tmp_path):
    section = demo(tmp_path, seed=0)
    assert section.metrics["pick_success"] == 1
    assert all(p.is_file() and p.stat().st_size > 1000 for p in section.images)


def test_report_renders_sections_and_provenance(tmp_path):
    index = run_demo(DemoConfig(out=tmp_path, seed=1, only="pick"))
    assert "scripted Panda pick" in index.read_text()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["seed"] == 1 and "git_commit" in metrics and "command" in metrics


@pytest.mark.parametrize(
    "module_name", sorted({module for names in cli.COMMANDS.values() for module, _ in names.values()})
)
def test_every_command_module_has_main_and_help(module_name, capsys):
    module = importlib.import_module(f"manipstack.{module_name}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    assert len(capsys.readouterr().out) > 100


def test_train_eval_and_bench_cover_every_capability():
    assert {"vpg"} <= set(cli.COMMANDS["train"]) and {"vpg", "grasps"} <= set(cli.COMMANDS["eval"])
    assert {"sim", "vpg", "bridge", "grasps"} <= set(cli.COMMANDS["bench"])
