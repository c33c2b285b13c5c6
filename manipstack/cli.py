"""The ``manipstack`` command: ``manipstack <group> <name> [options]``.

Each command is a module with a ``main(argv)`` function whose options come from a config dataclass
(tyro), so ``manipstack train vpg --help`` and ``python -m manipstack.train.vpg --help`` print the same thing.
Modules are imported only when their command runs, so ``manipstack --help`` is instant.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from manipstack.errors import ManipstackError

DEBUG_VARIABLE = "MANIPSTACK_DEBUG"
"""Environment variable that, set to 1, makes every command show tracebacks (as ``--debug`` does)."""

# group -> name -> (module below manipstack, one-line summary)
COMMANDS: dict[str, dict[str, tuple[str, str]]] = {
    "demo": {"": ("eval.report", "run every capability at demo size and write reports/demo/index.html")},
    "train": {
        "vpg": ("train.vpg", "train VPG push-grasp Q-networks (or the grasping-only / reactive baselines)"),
        "pose": ("train.pose", "train the Diff9D-style pose estimator (diffusion or regression) on pose scenes"),
        "ugg": ("train.ugg", "train the UGG grasp diffusion model on a grasp dataset (depth-view point clouds)"),
    },
    "eval": {
        "vpg": ("eval.vpg", "evaluate VPG checkpoints on random clutter or test cases; metrics.json, GIF, Q maps"),
        "vpg-curves": ("eval.vpg_curves", "VPG learning curves: grasp and push-then-grasp success, seeds per method"),
        "grasps": ("eval.grasp_validation", "re-validate a grasp dataset in PyBullet; metrics.json (+ --perturb)"),
        "pose": ("eval.pose", "9-DoF category-level pose: NOCS result pickles + mAP of a checkpoint (or of pickles)"),
        "pose-grasp": ("eval.pose_grasp", "Panda grasps driven by estimated poses vs ground-truth poses; metrics.json"),
    },
    "bench": {
        "sim": ("eval.bench.sim_speed", "physics step and render rates; World wrapper overhead"),
        "vpg": ("eval.bench.vpg", "VPG Q-map forward and env-step times; the paper's DenseNet towers as a ratio"),
        "bridge": ("eval.bench.bridge", "driver-bridge latency (commands, RGB-D frames) vs in-process; soak"),
        "grasps": ("eval.bench.grasps", "grasp synthesis: 1 worker vs Ray workers; batched hand FK time"),
        "pose": ("eval.bench.pose", "pose estimates per second (batched), one-object latency; diffusion vs regression"),
    },
    "data": {
        "grasps": ("train.grasp_data", "synthesise + validate dexterous grasps per object into HDF5 (Ray, resumable)"),
        "pose": ("train.pose_data", "render pose scenes (RGB-D, instance masks, NOCS ground truth) into HDF5 (Ray)"),
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


def run(main: Callable[[list[str]], object], argv: list[str], prog: str) -> None:
    """Run a command's ``main(argv)``: the project's own errors (:class:`ManipstackError`: bad input, missing files,
    unreachable robots) end in one line on stderr naming the problem, exit status 2; ``--debug`` anywhere in
    ``argv`` (or ``MANIPSTACK_DEBUG=1``) shows the traceback instead. Any other exception is a bug and keeps its
    traceback."""
    debug = "--debug" in argv or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    argv = [arg for arg in argv if arg != "--debug"]
    try:
        main(argv)
    except ManipstackError as err:
        if debug:
            raise
        message = " ".join(str(err).split())
        print(f"{prog}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def _fail(message: str) -> None:
    print(f"{message}\n\n{_usage()}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to the command's module."""
    argv = list(sys.argv[1:] if argv is None else argv)
    options = [arg for arg in argv if arg != "--debug"]
    if not options or options[0] in ("-h", "--help"):
        print(_usage())
        return
    group, rest = options[0], options[1:]
    if group not in COMMANDS:
        _fail(f"manipstack: unknown command {group!r}")
    names = COMMANDS[group]
    if "" in names:
        name = ""
    elif rest and rest[0] in names:
        name, rest = rest[0], rest[1:]
    else:
        _fail(f"manipstack {group}: unknown name {rest[0] if rest else '(none)'}; choose one of {sorted(names)}")
    module = importlib.import_module(f"manipstack.{names[name][0]}")
    prog = f"manipstack {group} {name}".rstrip()
    sys.argv = [prog, *rest]
    run(module.main, [*rest, *(["--debug"] if "--debug" in argv else [])], prog)


if __name__ == "__main__":
    main()
