"""The shipped VPG checkpoint replays two recorded episodes exactly: actions, rewards and final object poses equal
those recorded with the code before the Task/Scene/runner refactor (commit afd00f1,
``tests/data/vpg_trace_afd00f1.json``).

The trace was recorded on a 2-core x86-64 VM; floating-point results of physics and convolutions differ between
machines (instruction sets, libm and oneDNN kernels), so the replay runs where this machine reproduces the
recording's platform canaries (raw PyBullet and raw torch, through no project code) and is skipped elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from vpg_trace_canary import canaries

from manipstack.eval.runner import EpisodeJob, rollout
from manipstack.eval.vpg import SHIPPED_CASES, SHIPPED_CHECKPOINT, EvalVPGConfig, make_env
from manipstack.policies.vpg.agent import load_agent
from manipstack.policies.vpg.policy import VPGPolicy

TRACE = json.loads((Path(__file__).parent / "data" / "vpg_trace_afd00f1.json").read_text())


def _same_platform() -> bool:
    return canaries() == TRACE["canaries"]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", sorted(TRACE["episodes"]))
def test_shipped_vpg_replays_the_recorded_episode(name):
    if not _same_platform():
        pytest.skip("this machine's floating-point arithmetic differs from the recording machine's (canaries)")
    recorded = TRACE["episodes"][name]
    options = recorded["options"]
    if options is None:
        eval_config = EvalVPGConfig(checkpoint=(SHIPPED_CHECKPOINT,), random=10, video=False)
    else:
        options = {**options, "case": str(SHIPPED_CASES / Path(options["case"]).name)}
        eval_config = EvalVPGConfig(checkpoint=(SHIPPED_CHECKPOINT,), cases=SHIPPED_CASES, video=False)
    agent, config = load_agent(SHIPPED_CHECKPOINT)
    env = make_env(config, eval_config)
    try:
        episode = rollout(env, VPGPolicy(agent), EpisodeJob(recorded["seed"], options))
        poses = {n: np.concatenate(env.world.body_pose(n)).tolist() for n in env.object_names}
    finally:
        env.close()
    assert [[int(a) for a in action] for action in episode.actions] == recorded["actions"]
    assert episode.rewards == recorded["rewards"]
    assert episode.final_info["objects_lost"] == recorded["objects_lost"]
    assert poses == recorded["final_poses"]
