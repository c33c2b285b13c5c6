"""Provenance of every metrics file, dataset and report: the exact command, the project's commit, seeds, machine."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The folder holding the project's top-level folders (the git checkout for an editable install)."""


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """Short commit hash of the project's own checkout (found from this file's location, not the current
    directory), with ``+dirty`` when tracked files have uncommitted changes; ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+dirty" if status else commit


def run_metadata(seed: int | list[int]) -> dict[str, object]:
    """The provenance every metrics file carries: exact command, commit, seed(s), machine, time."""
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git_commit": git_commit(),
        "seed": seed,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
