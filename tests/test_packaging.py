"""One import name: the installed distribution exposes only ``manipstack``; entry points run as modules of it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys


def test_the_distribution_has_exactly_one_top_level_name():
    names = sorted(name for name, dists in importlib.metadata.packages_distributions().items() if "manipstack" in dists)
    assert names == ["manipstack"]


def test_modules_run_under_the_package_name_and_old_names_are_gone(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)

    help_text = run("-m", "manipstack.train.vpg", "--help")
    assert help_text.returncode == 0 and "--iterations" in help_text.stdout
    cli = run("-m", "manipstack", "--help")
    assert cli.returncode == 0 and "manipstack train vpg" in cli.stdout
    for old in ("envs", "eval", "train", "policies", "assets", "grasp_models"):
        assert run("-c", f"import {old}").returncode != 0, f"'import {old}' still works outside the repository"
