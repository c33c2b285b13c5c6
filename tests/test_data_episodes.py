"""Robomimic-layout episode files: round trip with robomimic's names and dtypes, filter keys, the recording
wrapper, appending, bad-file errors naming the file, and a process killed with SIGKILL mid-episode."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gymnasium
import h5py
import numpy as np
import pytest

from manipstack.envs.data.episodes import (
    GYM_ENV_TYPE,
    DatasetFileError,
    Episode,
    EpisodeDataset,
    EpisodeWriter,
    RecordEpisodes,
)

STEP = 0.1


class CountingEnv(gymnasium.Env):
    """Toy env: ``pos`` (2,) float32 moves by the action; a 4x4 RGB ``image`` shows the step count; reward
    -|pos|; terminates after ``episode_length`` steps. ``state()`` is (t, pos x, pos y)."""

    def __init__(self, episode_length: int = 5, dict_obs: bool = True) -> None:
        self.episode_length, self.dict_obs = episode_length, dict_obs
        vector = gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.observation_space = gymnasium.spaces.Dict({
            "pos": vector, "image": gymnasium.spaces.Box(0, 255, (4, 4, 3), np.uint8)}) if dict_obs else vector
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.t, self.pos = 0, np.zeros(2, np.float32)

    def _obs(self):
        if not self.dict_obs:
            return self.pos.copy()
        return {"pos": self.pos.copy(), "image": np.full((4, 4, 3), self.t % 256, np.uint8)}

    def state(self) -> np.ndarray:
        return np.array([self.t, *self.pos], dtype=np.float64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.pos = 0, np.zeros(2, np.float32)
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        self.pos = (self.pos + np.asarray(action, np.float32)).astype(np.float32)
        return self._obs(), -float(np.linalg.norm(self.pos)), self.t >= self.episode_length, False, {}


def run_episode(env: gymnasium.Env, seed: int) -> dict:
    env.reset(seed=seed)
    while True:
        _, _, terminated, truncated, info = env.step(np.full(2, STEP, np.float32))
        if terminated or truncated:
            return info


def check_counting_episode(episode: Episode, length: int = 5) -> None:
    t = np.arange(length)
    np.testing.assert_allclose(episode.obs["pos"], np.stack([STEP * t, STEP * t], axis=1), atol=1e-6)
    assert episode.obs["image"].dtype == np.uint8 and episode.obs["image"][:, 0, 0, 0].tolist() == t.tolist()
    np.testing.assert_allclose(episode.rewards, -np.hypot(STEP * (t + 1), STEP * (t + 1)), atol=1e-6)
    assert episode.dones.tolist() == [0] * (length - 1) + [1]
    np.testing.assert_allclose(episode.states[:, 0], t)


def test_round_trip_has_robomimic_names_and_dtypes(tmp_path):
    path = tmp_path / "demos.hdf5"
    env = RecordEpisodes(CountingEnv(), path, state_fn=lambda e: e.unwrapped.state(), env_kwargs={"size": 3})
    assert run_episode(env, 0)["recorded_demo"] == "demo_0"
    assert run_episode(env, 1)["recorded_demo"] == "demo_1"
    env.close()
    with h5py.File(path, "r") as f:  # the raw layout robomimic reads
        assert f["data"].attrs["total"] == 10
        assert json.loads(f["data"].attrs["env_args"]) == {"env_name": "CountingEnv", "type": GYM_ENV_TYPE,
                                                           "env_kwargs": {"size": 3}}
        demo = f["data/demo_0"]
        assert demo.attrs["num_samples"] == 5
        assert set(demo) == {"obs", "actions", "rewards", "dones", "states"} and set(demo["obs"]) == {"pos", "image"}
        assert demo["actions"].dtype == np.float64 and demo["actions"].shape == (5, 2)
        assert demo["rewards"].dtype == np.float64 and demo["dones"].dtype == np.int64
        assert demo["states"].dtype == np.float64 and demo["obs/pos"].dtype == np.float32
    with EpisodeDataset(path) as dataset:
        assert dataset.demos() == ["demo_0", "demo_1"] and dataset.total == 10
        assert dataset.env_args["env_name"] == "CountingEnv"
        for name in dataset.demos():
            check_counting_episode(dataset.read(name))


def test_array_observations_and_unfinished_episodes(tmp_path):
    path = tmp_path / "demos.hdf5"
    env = RecordEpisodes(CountingEnv(episode_length=3, dict_obs=False), path, array_key="state_vec")
    env.reset(seed=0)
    env.step(np.zeros(2, np.float32))  # cut short by the next reset: not recorded
    run_episode(env, 1)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(2, np.float32))
    env.reset(seed=2)
    env.step(np.zeros(2, np.float32))  # in flight at close: not recorded
    env.close()
    env.close()  # idempotent
    with EpisodeDataset(path) as dataset:
        assert dataset.demos() == ["demo_0"]
        episode = dataset.read("demo_0")
        assert list(episode.obs) == ["state_vec"] and episode.states is None and episode.num_samples == 3


def test_filter_keys_hold_demo_names_as_bytes(tmp_path):
    path = tmp_path / "demos.hdf5"
    with EpisodeWriter(path, "manipstack/Toy-v0") as writer:
        for n in (2, 3, 4):
            writer.write(Episode({"x": np.zeros((n, 1))}, np.zeros((n, 1)), np.zeros(n), np.eye(n)[-1]))
        writer.set_filter_key("train", ["demo_0", "demo_2"])
        writer.set_filter_key("valid", ["demo_1"])
        with pytest.raises(ValueError, match=r"names demos not in .*demos.hdf5: \['demo_9'\]"):
            writer.set_filter_key("test", ["demo_9"])
    with h5py.File(path, "r") as f:
        assert f["mask/train"].dtype.kind == "S" and f["mask/train"][()].tolist() == [b"demo_0", b"demo_2"]
    with EpisodeDataset(path) as dataset:
        assert dataset.filter_keys == ["train", "valid"]
        assert dataset.demos("train") == ["demo_0", "demo_2"] and dataset.demos("valid") == ["demo_1"]
        assert dataset.total == 9
        with pytest.raises(KeyError, match="no filter key 'test'"):
            dataset.demos("test")


def test_append_continues_numbering_and_drops_a_cut_off_demo(tmp_path):
    path = tmp_path / "demos.hdf5"
    episode = Episode({"x": np.zeros((2, 1))}, np.zeros((2, 1)), np.zeros(2), [0, 1])
    with EpisodeWriter(path, "toy") as writer:
        writer.write(episode)
    with h5py.File(path, "a") as f:  # a demo a kill interrupted during its write: no num_samples
        f.create_group("data/demo_1/obs")
    with pytest.raises(FileExistsError, match="append"):
        EpisodeWriter(path, "toy")
    with EpisodeWriter(path, "toy", append=True) as writer:
        assert writer.demos == ["demo_0"]
        assert writer.write(episode) == "demo_1" and writer.total == 4
    with pytest.raises(ValueError, match="holds episodes of env 'toy', not 'other'"):
        EpisodeWriter(path, "other", append=True)


def test_bad_files_fail_with_an_error_naming_the_file(tmp_path):
    missing = tmp_path / "missing.hdf5"
    with pytest.raises(FileNotFoundError, match=f"robomimic episode file not found: {missing}"):
        EpisodeDataset(missing)
    text = tmp_path / "text.hdf5"
    text.write_text("no")
    with pytest.raises(DatasetFileError, match=f"{text} is not an HDF5 file"):
        EpisodeDataset(text)
    bare = tmp_path / "bare.hdf5"
    with h5py.File(bare, "w") as f:
        f.create_group("data").attrs["total"] = 0
    with pytest.raises(DatasetFileError, match=f"{bare}: '/data' lacks attribute 'env_args'"):
        EpisodeDataset(bare)
    with h5py.File(bare, "a") as f:
        f["data"].attrs["env_args"] = "{not json"
    with pytest.raises(DatasetFileError, match="env_args'] is not JSON"):
        EpisodeDataset(bare)
    broken = tmp_path / "broken.hdf5"
    with EpisodeWriter(broken, "toy") as writer:
        writer.write(Episode({"x": np.zeros((2, 1))}, np.zeros((2, 1)), np.zeros(2), [0, 1]))
    with h5py.File(broken, "a") as f:
        f["data/demo_0"].attrs["num_samples"] = 3
    with EpisodeDataset(broken) as dataset, pytest.raises(DatasetFileError, match="holds 2 steps but its num_samples"):
        dataset.read("demo_0")
    with h5py.File(broken, "a") as f:
        del f["data/demo_0/actions"]
    with EpisodeDataset(broken) as dataset, pytest.raises(
            DatasetFileError, match=f"{broken}: '/data/demo_0' lacks dataset 'actions'"):
        dataset.read("demo_0")
    with pytest.raises(ValueError, match="equally long"):
        Episode({"x": np.zeros((3, 1))}, np.zeros((2, 1)), np.zeros(2), [0, 1])


CRASH_SCRIPT = """
import sys, time
import numpy as np
from test_data_episodes import CountingEnv, run_episode
from manipstack.envs.data.episodes import RecordEpisodes

env = RecordEpisodes(CountingEnv(), sys.argv[1], state_fn=lambda e: e.unwrapped.state())
for seed in range(3):
    print("finished", run_episode(env, seed)["recorded_demo"], flush=True)
env.unwrapped.episode_length = 10**9  # episode 4 never ends: the kill lands inside it
env.reset(seed=3)
print("inside episode 4", flush=True)
while True:
    env.step(np.full(2, 0.1, np.float32))
    time.sleep(0.005)
"""


def test_sigkill_mid_episode_leaves_every_finished_episode(tmp_path):
    path = tmp_path / "demos.hdf5"
    script = tmp_path / "record.py"
    script.write_text(CRASH_SCRIPT)
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                                            os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=environ)
    lines: queue.Queue[str] = queue.Queue()  # a reader thread: readline() alone could block past any deadline
    reader = threading.Thread(target=lambda: [lines.put(line.strip()) for line in proc.stdout], daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120  # bounded: a busy machine may start Python slowly
        while "inside episode 4" not in seen and proc.poll() is None and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=1.0))
            except queue.Empty:
                pass
        assert seen == ["finished demo_0", "finished demo_1", "finished demo_2", "inside episode 4"], (
            seen, proc.stderr.read() if proc.poll() is not None else "")
        time.sleep(0.3)  # some steps of episode 4 are buffered
        assert proc.poll() is None, "the recording script ended before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        reader.join(timeout=30)  # the pipe is at EOF once the process is gone
        proc.stdout.close()
        proc.stderr.close()
    with EpisodeDataset(path) as dataset:
        assert dataset.demos() == ["demo_0", "demo_1", "demo_2"] and dataset.total == 15
        for name in dataset.demos():
            check_counting_episode(dataset.read(name))
