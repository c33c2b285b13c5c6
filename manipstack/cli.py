"""The ``manipstack`` command: ``manipstack <group> <name> [options]``.

Each command is a module with a ``main(argv)`` function whose options come from a config dataclass
(tyro), so ``manipstack train vpg --help`` and ``python -m manipstack.train.vpg --help`` print the same thing.
Modules are imported only when their command runs, so ``manipstack --help`` is instant.
"""

from __future__ import annotations

import importlib
import sys

# group -> name -> (module below manipstack, one-line summary)
COMMANDS: dict[str, dict[str, tuple[str, str]]] = {
    "demo": {"": ("eval.report", "run every capability at demo size and write reports/demo/index.html")},
    "train": {
        "vpg": ("train.vpg", "train VPG push-grasp Q-networks (or the grasping-only / reactive baselines)"),
    },
    "eval": {
        "vpg": ("eval.vpg", "evaluate VPG checkpoints on random clutter or test cases; metrics.json, GIF, Q maps"),
        "grasps": ("eval.grasp_validation", "re-validate a grasp dataset in PyBullet; metrics.json (+ --perturb)"),
    },
    "bench": {
        "sim": ("eval.bench.sim_speed", "physics step and render rates; World wrapper overhead"),
        "vpg": ("eval.bench.vpg", "VPG Q-map forward and env-step times; the paper's DenseNet towers as a ratio"),
        "bridge": ("eval.bench.bridge", "driver-bridge latency (commands, RGB-D frames) vs in-process; soak"),
        "grasps": ("eval.bench.grasps", "grasp synthesis: 1 worker vs Ray workers; batched hand FK time"),
    },
    "data": {
        "grasps": ("train.grasp_data", "synthesise + validate dexterous grasps per object into HDF5 (Ray, resumable)"),
    },
    "bridge": {
        "serve": ("envs.robots.real.server", "serve a robot backend over the authenticated driver bridge"),
        "keygen": ("envs.robots.real.keys", "create CurveZMQ server/client key pairs for the bridge"),
    },
}


def _usage() -> str:
    lines = ["usage: manipstack <command> [<name>] [options]   (add --help to any command)", ""]
    for group, names in COMMANDS.items():
        for name, (_, summary) in names.items():
            lines.append(f"  manipstack {group} {name}".rstrip().ljust(34) + summary)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to the command's module."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return
    group, rest = argv[0], argv[1:]
    if group not in COMMANDS:
        sys.exit(f"manipstack: unknown command {group!r}\n\n{_usage()}")
    names = COMMANDS[group]
    if "" in names:
        name = ""
    elif rest and rest[0] in names:
        name, rest = rest[0], rest[1:]
    else:
        given = rest[0] if rest else "(none)"
        sys.exit(f"manipstack {group}: unknown name {given}; choose one of {sorted(names)}\n\n{_usage()}")
    module = importlib.import_module(f"manipstack.{names[name][0]}")
    sys.argv = [f"manipstack {group} {name}".rstrip(), *rest]
    module.main(rest)


if __name__ == "__main__":
    main()
