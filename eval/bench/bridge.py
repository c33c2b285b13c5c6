"""``manipstack bench bridge``: driver-bridge latency against in-process calls, and a soak run.

In one run: the sim twin in this process (the baseline), then a ``manipstack bridge serve --backend sim``
subprocess on loopback reached through the ``bridge`` backend (CurveZMQ-encrypted). Reported medians:

- command round trips (``ping``: transport only; ``get_observation``; ``send_action`` of a hold: the arm joints,
  or the wrist pose and finger joints of the floating hand, ``--robot``), each beside the in-process call and the
  ratio; target: ``send_action`` <= 2 ms;
- one RGB-D frame: in-process ``SimCamera.capture()`` versus the stream (server capture start -> arrays in
  the client), split into the render in the server process and the bridge's own share (capture end -> arrays
  in the client: encode, CurveZMQ encrypt, send, decrypt, decode; target <= 25 ms); both ends run on this
  machine, so their monotonic clocks agree;
- soak: ``--soak`` command + observation cycles with the error count and the resident-memory growth of server
  and client after a warm-up;
- watchdog: a client process that is moving the arm is killed; the time until the server has halted the arm and
  released the session to another client (its watchdog timeout plus the halt), and the joint speed then.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro
from tqdm import tqdm

from manipstack.envs.data.provenance import run_metadata
from manipstack.envs.robots import make_robot
from manipstack.envs.robots.motion import hold_action
from manipstack.envs.robots.real.keys import generate_keys
from manipstack.envs.robots.real.protocol import SessionError
from manipstack.envs.robots.real.server import server_process
from manipstack.envs.robots.real.sim_twin import SimTwin, SimTwinConfig


@dataclass
class BridgeBenchConfig:
    """Driver-bridge latency and soak benchmark on loopback."""

    robot: str = "panda"
    """Robot of the digital twin (a registered workcell name: panda or floating-hand)."""
    commands: int = 2000
    """Timed round trips per command kind."""
    frames: int = 30
    """RGB-D frames timed in process and through the stream."""
    width: int = 640
    """Camera image width in pixels."""
    height: int = 480
    """Camera image height in pixels."""
    stream_hz: float = 5.0
    """Server camera rate in Hz while frames are timed."""
    soak: int = 10000
    """Command + observation cycles in the soak run (0 skips it)."""
    keys: Path | None = None
    """Keys folder (default: fresh keys in a temporary folder)."""
    out: Path | None = None
    """Optional JSON file for the numbers (with provenance)."""


def _median_ms(call: Callable[[], object], repeats: int) -> float:
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return 1000.0 * float(np.median(times))


def _rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def _in_process(config: BridgeBenchConfig) -> dict[str, float]:
    twin = SimTwin(SimTwinConfig(robot=config.robot, camera_width=config.width, camera_height=config.height))
    try:
        robot = twin.robot
        robot.connect()
        hold = hold_action(robot, robot.get_observation())
        camera = twin.cameras["top"]
        camera.capture()
        return {
            "get_observation_ms": _median_ms(robot.get_observation, config.commands),
            "send_action_ms": _median_ms(lambda: robot.send_action(hold), config.commands),
            "frame_capture_ms": _median_ms(camera.capture, config.frames),
        }
    finally:
        twin.close()


def _through_bridge(config: BridgeBenchConfig, keys: Path) -> dict[str, float]:
    args = ["--keys", str(keys), "--bind", "tcp://127.0.0.1:0", "--stream-hz", str(config.stream_hz),
            "--twin.robot", config.robot, "--twin.camera-width", str(config.width), "--twin.camera-height",
            str(config.height), "--log-level", "WARNING"]
    results: dict[str, float] = {}
    with server_process(args) as (process, endpoint):
        with make_robot("bridge", address=endpoint, keys=keys, stream=False) as robot:
            hold = hold_action(robot, robot.get_observation())
            robot.send_action(hold)
            results["ping_ms"] = _median_ms(lambda: robot._call("ping"), config.commands)
            results["get_observation_ms"] = _median_ms(robot.get_observation, config.commands)
            results["send_action_ms"] = _median_ms(lambda: robot.send_action(hold), config.commands)

        with make_robot("bridge", address=endpoint, keys=keys, stream=True, frame_timeout_s=5.0) as robot:
            camera = robot.cameras["top"]
            camera.capture()
            frames = [camera.capture() for _ in tqdm(range(config.frames), desc="frames", leave=False)]
            results["frame_end_to_end_ms"] = 1000.0 * float(np.median(
                [f["t_received"] - f["t_capture_start"] for f in frames]))
            results["frame_transfer_ms"] = 1000.0 * float(np.median(
                [f["t_received"] - f["t_capture_end"] for f in frames]))
            results["frame_server_capture_ms"] = 1000.0 * float(np.median(
                [f["t_capture_end"] - f["t_capture_start"] for f in frames]))
            results["send_action_while_streaming_ms"] = _median_ms(lambda: robot.send_action(hold),
                                                                   config.commands // 4)

        if config.soak > 0:
            results.update(_soak(config.soak, process.pid, endpoint, keys))
        if config.robot == "panda":
            results.update(watchdog_release(endpoint, keys))
    return results


def _soak(cycles: int, server_pid: int, endpoint: str, keys: Path) -> dict[str, float]:
    errors: list[str] = []
    warmup = min(500, cycles // 10)
    rss: dict[str, float] = {}
    start = time.perf_counter()
    with make_robot("bridge", address=endpoint, keys=keys, stream=False) as robot:
        hold = hold_action(robot, robot.get_observation())
        for i in tqdm(range(cycles), desc="soak", leave=False):
            if i == warmup:
                rss = {"server": _rss_mib(server_pid), "client": _rss_mib()}
            try:
                robot.send_action(hold)
                robot.get_observation()
            except Exception as err:  # counted and reported: the soak must see every failure
                errors.append(f"{type(err).__name__}: {err}")
    return {
        "soak_cycles": cycles,
        "soak_errors": len(errors),
        "soak_cycles_per_s": cycles / (time.perf_counter() - start),
        "soak_server_rss_growth_mib": _rss_mib(server_pid) - rss["server"],
        "soak_client_rss_growth_mib": _rss_mib() - rss["client"],
        "soak_first_error": errors[0] if errors else "",
    }


MOVING_CLIENT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from manipstack.envs.robots.real.client import BridgeRobot

    robot = BridgeRobot(sys.argv[1], sys.argv[2], stream=False)
    robot.connect()
    home = robot.get_observation()["joints.pos"]
    i = 0
    while True:
        i += 1
        robot.send_action({"joints.pos": home + np.array([0.3, 0.3, 0, 0, 0, 0, 0]) * np.sin(0.5 * i)})
        if i == 30:
            print("moving", flush=True)
    """
)
"""A bridge client that swings two Panda joints until it is killed (prints ``moving`` once it is under way)."""


def watchdog_release(endpoint: str, keys: Path, limit_s: float = 30.0) -> dict[str, float]:
    """Kill a client that is moving the arm and measure how long the server takes to halt it and free the session.

    Returns ``watchdog_release_s`` (client killed -> another client holds the session), the joint speed in rad/s
    when the session was freed, and the speed while the client was moving; raises if the session is not free
    within ``limit_s``.
    """
    client = subprocess.Popen([sys.executable, "-c", MOVING_CLIENT, endpoint, str(keys)], stdout=subprocess.PIPE,
                              text=True)
    observer = make_robot("bridge", address=endpoint, keys=keys, stream=False, timeout_s=10.0)
    try:
        if client.stdout.readline().strip() != "moving":
            raise RuntimeError("the moving client did not start")
        moving_speed = float(np.max(np.abs(observer._call("get_observation")["joints.vel"])))  # read-only call
        client.kill()
        killed = time.monotonic()
        client.wait()
        while True:
            try:
                observer.connect()
                break
            except SessionError:
                if time.monotonic() - killed > limit_s:
                    raise RuntimeError(f"the watchdog did not release the session within {limit_s} s") from None
                time.sleep(0.002)
        released = time.monotonic() - killed
        speed = float(np.max(np.abs(observer.get_observation()["joints.vel"])))
        return {"watchdog_release_s": released, "joint_speed_after_release_radps": speed,
                "joint_speed_while_moving_radps": moving_speed}
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        observer.disconnect()


def run(config: BridgeBenchConfig) -> dict[str, dict[str, float]]:
    """Measure in process, then through the bridge; returns ``{"in_process": ..., "bridge": ...}``."""
    with tempfile.TemporaryDirectory() as tmp:
        keys = config.keys
        if keys is None:
            keys = Path(tmp) / "keys"
            generate_keys(keys)
        return {"in_process": _in_process(config), "bridge": _through_bridge(config, keys)}


def main(argv: list[str] | None = None) -> None:
    config = tyro.cli(BridgeBenchConfig, args=argv)
    results = run(config)
    local, bridge = results["in_process"], results["bridge"]
    print(f"{'call (median)':44s}{'in-process':>12s}{'bridge':>12s}{'ratio':>9s}   target")
    print(f"{'ping (transport + CurveZMQ only)':44s}{'-':>12s}{bridge['ping_ms']:10.3f}ms{'-':>9s}")
    for name, key, target in (("get_observation (robot state)", "get_observation_ms", ""),
                              ("send_action (hold, 1 control period)", "send_action_ms", "<= 2 ms")):
        ratio = bridge[key] / local[key]
        print(f"{name:44s}{local[key]:10.3f}ms{bridge[key]:10.3f}ms{ratio:8.1f}x   {target}")
    size = f"{config.width}x{config.height}"
    ratio = bridge["frame_end_to_end_ms"] / local["frame_capture_ms"]
    print(f"{'RGB-D ' + size + ' frame (capture -> client)':44s}{local['frame_capture_ms']:10.3f}ms"
          f"{bridge['frame_end_to_end_ms']:10.3f}ms{ratio:8.2f}x")
    print(f"{'  of which render in the server process':44s}{'-':>12s}{bridge['frame_server_capture_ms']:10.3f}ms"
          f"{bridge['frame_server_capture_ms'] / local['frame_capture_ms']:8.2f}x")
    print(f"{'  of which bridge transfer (capture end ->)':44s}{'-':>12s}{bridge['frame_transfer_ms']:10.3f}ms"
          f"{'-':>9s}   <= 25 ms")
    print(f"{'send_action while streaming ' + size:44s}{local['send_action_ms']:10.3f}ms"
          f"{bridge['send_action_while_streaming_ms']:10.3f}ms"
          f"{bridge['send_action_while_streaming_ms'] / local['send_action_ms']:8.1f}x")
    if config.soak > 0:
        print(f"soak: {bridge['soak_cycles']} cycles at {bridge['soak_cycles_per_s']:.0f}/s, "
              f"{bridge['soak_errors']} errors, RSS growth after warm-up: server "
              f"{bridge['soak_server_rss_growth_mib']:+.2f} MiB, client {bridge['soak_client_rss_growth_mib']:+.2f} MiB"
              + (f"; first error: {bridge['soak_first_error']}" if bridge["soak_errors"] else ""))
    if "watchdog_release_s" in bridge:
        print(f"watchdog: client killed -> arm halted and session free in {1000 * bridge['watchdog_release_s']:.0f} ms "
              f"(watchdog timeout + halt); joints at {bridge['joint_speed_after_release_radps']:.4f} rad/s then, "
              f"{bridge['joint_speed_while_moving_radps']:.2f} rad/s while moving")
    if config.out is not None:
        config.out.parent.mkdir(parents=True, exist_ok=True)
        config.out.write_text(json.dumps({**run_metadata(0), "config": {k: str(v) for k, v in vars(config).items()},
                                          "results": results}, indent=2))


if __name__ == "__main__":
    main()
