"""Episode datasets in robomimic's HDF5 layout: the one writer, the one reader, and a recording wrapper (no torch).

Layout (robomimic's, https://robomimic.github.io/docs/datasets/overview.html; names and dtypes as robomimic's
own scripts write them -- ``dataset_states_to_obs.py``, ``utils/file_utils.py:create_hdf5_filter_key``)::

    data/                   attrs: total (int, samples over all demos),
                                   env_args (JSON string {"env_name", "type", "env_kwargs"}; type 2 = gym)
        demo_<i>/           attrs: num_samples (int, T)
            obs/<key>       (T, ...) observation t, the one action t was chosen from; dtype as recorded
            actions         (T, A) float64
            rewards         (T,) float64, reward of step t
            dones           (T,) int64, 1 on the episode's last step (terminated or truncated), else 0
            states          (T, S) float64, optional: simulator state at observation t
    mask/<filter key>       (K,) bytes (dtype 'S'): demo names, e.g. mask/train, mask/valid

Crash safety: an episode is buffered in memory and written whole when it ends (``num_samples`` set last, then
``data.attrs['total']``), and the file is flushed; between episodes no HDF5 call is in flight, so a process
killed at any time outside that short write leaves a readable file holding every finished episode. Reopening
a file to append deletes a demo left without ``num_samples`` by a kill during the write.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import h5py
import numpy as np

from manipstack.envs.data.hdf5 import DatasetFileError, open_for_reading, require

log = logging.getLogger(__name__)

WHAT = "robomimic episode file"
GYM_ENV_TYPE = 2
"""robomimic's ``EnvType.GYM_TYPE`` (``robomimic/envs/env_base.py``): the ``type`` of a Gymnasium env in env_args."""
_DEMO = re.compile(r"demo_(\d+)")


@dataclass
class Episode:
    """One finished episode of T steps (the arrays of one ``data/demo_<i>`` group).

    Attributes:
        obs: observation key -> (T, ...) array; step t's observation, the one action t was chosen from.
        actions: (T, A) actions.
        rewards: (T,) reward of each step.
        dones: (T,) 1 on the last step, else 0.
        states: (T, S) simulator state at each observation, or None.
    """

    obs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    states: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.actions = np.asarray(self.actions, dtype=np.float64)
        self.rewards = np.asarray(self.rewards, dtype=np.float64)
        self.dones = np.asarray(self.dones, dtype=np.int64)
        self.obs = {k: np.asarray(v) for k, v in self.obs.items()}
        if self.states is not None:
            self.states = np.asarray(self.states, dtype=np.float64)
        if self.actions.ndim == 1:
            self.actions = self.actions[:, None]  # (T,) scalar actions -> (T, 1)
        lengths = {"actions": len(self.actions), "rewards": len(self.rewards), "dones": len(self.dones),
                   **{f"obs/{k}": len(v) for k, v in self.obs.items()}}
        if self.states is not None:
            lengths["states"] = len(self.states)
        if len(set(lengths.values())) != 1 or not self.obs:
            raise ValueError(f"an episode needs obs and equally long arrays, got lengths {lengths}")
        if self.num_samples < 1:
            raise ValueError("an episode needs at least one step")
        bad = [k for k in self.obs if not k or "/" in k]
        if bad:
            raise ValueError(f"observation keys must be non-empty and free of '/', got {bad}")

    @property
    def num_samples(self) -> int:
        """Number of steps T."""
        return len(self.actions)


def flatten_obs(obs: Any, array_key: str = "obs") -> dict[str, np.ndarray]:
    """An observation as flat key -> array: a (nested) dict's keys joined with '.', an array under ``array_key``."""
    if not isinstance(obs, Mapping):
        return {array_key: np.asarray(obs)}
    flat: dict[str, np.ndarray] = {}
    for key, value in obs.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in flatten_obs(value, array_key).items()})
        else:
            flat[str(key)] = np.asarray(value)
    return flat


@dataclass
class EpisodeBuffer:
    """The steps of the episode in flight, in memory until it ends."""

    obs: list[dict[str, np.ndarray]] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    dones: list[int] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)

    def add(self, obs: dict[str, np.ndarray], action: Any, reward: float, done: bool,
            state: np.ndarray | None = None) -> None:
        """Append step t: its observation (flat dict), action, reward, done flag and optional simulator state."""
        if self.obs and set(obs) != set(self.obs[0]):
            raise ValueError(f"observation keys changed within an episode: {sorted(self.obs[0])} -> {sorted(obs)}")
        if self.obs and (state is None) != (not self.states):
            raise ValueError("give a simulator state for every step of an episode or for none")
        self.obs.append({k: np.array(v, copy=True) for k, v in obs.items()})
        self.actions.append(np.array(action, dtype=np.float64, copy=True))
        self.rewards.append(float(reward))
        self.dones.append(int(done))
        if state is not None:
            self.states.append(np.array(state, dtype=np.float64, copy=True))

    def __len__(self) -> int:
        return len(self.actions)

    def to_episode(self) -> Episode:
        """The buffered steps as an :class:`Episode`."""
        if not self.obs:
            raise ValueError("the episode buffer is empty")
        obs = {k: np.stack([o[k] for o in self.obs]) for k in self.obs[0]}
        return Episode(obs, np.stack(self.actions), np.array(self.rewards), np.array(self.dones),
                       np.stack(self.states) if self.states else None)

    def clear(self) -> None:
        """Forget the buffered steps."""
        for steps in (self.obs, self.actions, self.rewards, self.dones, self.states):
            steps.clear()


def _demo_index(name: str) -> int:
    match = _DEMO.fullmatch(name)
    return int(match.group(1)) if match else -1


class EpisodeWriter:
    """Writes episodes one at a time into a robomimic-layout file, flushing after each.

    Args:
        path: the HDF5 file (its folder is created).
        env_name: the env id (``env_args['env_name']``), e.g. ``manipstack/PushGrasp-v0``.
        env_kwargs: keyword arguments that rebuild the env (``env_args['env_kwargs']``; must be JSON-serialisable,
            other values are stored as their ``str``).
        env_type: robomimic env type (``env_args['type']``); 2 = gym.
        append: add to an existing file of the same env (numbering continues; a demo cut off by a kill is
            deleted); without it an existing file is an error.
    """

    def __init__(self, path: str | os.PathLike, env_name: str, env_kwargs: Mapping[str, Any] | None = None,
                 env_type: int = GYM_ENV_TYPE, append: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not append:
            raise FileExistsError(f"{self.path} exists; remove it or append to it (append=True)")
        if self.path.exists() and not h5py.is_hdf5(self.path):
            raise DatasetFileError(f"{self.path} exists and is not an HDF5 file; choose another output file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(self.path, "a")
        try:
            self.data = self.file.require_group("data")
            if "env_args" in self.data.attrs:
                made_by = json.loads(self.data.attrs["env_args"]).get("env_name")
                if made_by != env_name:
                    raise ValueError(f"{self.path} holds episodes of env {made_by!r}, not {env_name!r}; "
                                     "choose another output file")
            for name in [n for n in self.data if "num_samples" not in self.data[n].attrs]:
                log.warning("%s: removing %s, an episode cut off while it was being written", self.path, name)
                del self.data[name]
            self.data.attrs["total"] = int(sum(int(self.data[n].attrs["num_samples"]) for n in self.data))
            env_args = {"env_name": env_name, "type": int(env_type), "env_kwargs": dict(env_kwargs or {})}
            self.data.attrs["env_args"] = json.dumps(env_args, indent=4, default=str)
            self._next = 1 + max([_demo_index(n) for n in self.data], default=-1)
            self.file.flush()
        except BaseException:
            self.file.close()
            raise

    @property
    def demos(self) -> list[str]:
        """Names of the written demos, in index order."""
        return sorted(self.data, key=_demo_index)

    @property
    def total(self) -> int:
        """Samples (steps) over all written demos."""
        return int(self.data.attrs["total"])

    def write(self, episode: Episode) -> str:
        """Write one finished episode as the next ``demo_<i>`` and flush; returns its name."""
        name = f"demo_{self._next}"
        group = self.data.create_group(name)
        for key, value in episode.obs.items():
            group.create_dataset(f"obs/{key}", data=value)
        group.create_dataset("actions", data=episode.actions)
        group.create_dataset("rewards", data=episode.rewards)
        group.create_dataset("dones", data=episode.dones)
        if episode.states is not None:
            group.create_dataset("states", data=episode.states)
        group.attrs["num_samples"] = episode.num_samples  # last: marks the demo complete
        self.data.attrs["total"] = self.total + episode.num_samples
        self.file.flush()
        self._next += 1
        return name

    def set_filter_key(self, key: str, demos: Sequence[str]) -> None:
        """Store the filter key ``mask/<key>`` (e.g. 'train', 'valid') naming ``demos``; replaces an existing one."""
        if not key or "/" in key:
            raise ValueError(f"a filter key must be non-empty and free of '/', got {key!r}")
        unknown = sorted(set(demos) - set(self.data))
        if unknown:
            raise ValueError(f"filter key {key!r} names demos not in {self.path}: {unknown}")
        mask = self.file.require_group("mask")
        if key in mask:
            del mask[key]
        mask.create_dataset(key, data=np.array(list(demos), dtype="S"))
        self.file.flush()

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        if self.file.id.valid:
            self.file.close()

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EpisodeDataset:
    """Read-only view of a robomimic-layout episode file; use as a context manager or call :meth:`close`.

    Raises:
        FileNotFoundError: no file at ``path``.
        DatasetFileError: not HDF5, or without ``data`` and its ``total`` / ``env_args`` attributes, or with
            ``env_args`` that is not a JSON object (the message names the file).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.file = open_for_reading(self.path, WHAT)
        try:
            require(self.file, self.path, WHAT, groups=("data",))
            self.data = self.file["data"]
            require(self.data, self.path, WHAT, attrs=("total", "env_args"))
            try:
                self.env_args: dict[str, Any] = json.loads(self.data.attrs["env_args"])
            except json.JSONDecodeError as err:
                raise DatasetFileError(f"{self.path}: data.attrs['env_args'] is not JSON ({err})") from err
            if not isinstance(self.env_args, dict):
                raise DatasetFileError(f"{self.path}: data.attrs['env_args'] is not a JSON object")
        except BaseException:
            self.file.close()
            raise

    @property
    def total(self) -> int:
        """Samples (steps) over all demos (``data.attrs['total']``)."""
        return int(self.data.attrs["total"])

    @property
    def filter_keys(self) -> list[str]:
        """Names of the filter keys under ``mask/``."""
        return sorted(self.file["mask"]) if "mask" in self.file else []

    def demos(self, filter_key: str | None = None) -> list[str]:
        """Demo names in index order: all finished ones, or those of ``mask/<filter_key>``."""
        if filter_key is None:
            return sorted((n for n in self.data if "num_samples" in self.data[n].attrs), key=_demo_index)
        if filter_key not in self.filter_keys:
            raise KeyError(f"{self.path}: no filter key {filter_key!r}; it has {self.filter_keys}")
        return sorted((n.decode("utf-8") for n in self.file["mask"][filter_key][()]), key=_demo_index)

    def read(self, demo: str) -> Episode:
        """The arrays of one demo.

        Raises:
            KeyError: no demo of that name.
            DatasetFileError: the demo lacks ``obs``, ``actions``, ``rewards``, ``dones`` or ``num_samples``, or
                an array's length differs from ``num_samples`` (the message names the file and the demo).
        """
        if demo not in self.data:
            raise KeyError(f"{self.path}: no demo {demo!r}")
        group = self.data[demo]
        require(group, self.path, WHAT, datasets=("actions", "rewards", "dones"), groups=("obs",),
                attrs=("num_samples",))
        states = group["states"][()] if "states" in group else None
        try:
            episode = Episode({k: group["obs"][k][()] for k in group["obs"]}, group["actions"][()],
                              group["rewards"][()], group["dones"][()], states)
        except ValueError as err:
            raise DatasetFileError(f"{self.path}: '{group.name}' is malformed: {err}") from err
        if episode.num_samples != int(group.attrs["num_samples"]):
            raise DatasetFileError(f"{self.path}: '{group.name}' holds {episode.num_samples} steps but its "
                                   f"num_samples says {int(group.attrs['num_samples'])}")
        return episode

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        if self.file.id.valid:
            self.file.close()

    def __enter__(self) -> EpisodeDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordEpisodes(gymnasium.Wrapper):
    """Records every episode of the wrapped env into a robomimic-layout file, writing each when it ends.

    Step t stores the observation the action was chosen from (a dict observation's keys, or an array under
    ``array_key``), the action, the reward and ``done = terminated or truncated``; ``state_fn(env)``, if given,
    is called after every reset and step for the simulator state that goes with the observation. An episode
    cut short by ``reset()`` or ``close()`` before it ended is not written (a log line says so).

    Args:
        env: the env to record.
        path: the output HDF5 file.
        state_fn: returns the simulator state (S,) of ``env`` (the wrapped env is passed), or None for no states.
        array_key: the ``obs/<key>`` name of a non-dict observation.
        append: add to an existing file instead of refusing to overwrite it.
        env_kwargs: keyword arguments stored in env_args (default: those of ``env.spec``).
    """

    def __init__(self, env: gymnasium.Env, path: str | os.PathLike,
                 state_fn: Callable[[gymnasium.Env], np.ndarray] | None = None, array_key: str = "obs",
                 append: bool = False, env_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__(env)
        spec = env.spec
        env_name = spec.id if spec is not None else type(env.unwrapped).__name__
        kwargs = env_kwargs if env_kwargs is not None else (dict(spec.kwargs) if spec is not None else {})
        self.writer = EpisodeWriter(path, env_name, kwargs, append=append)
        self.state_fn, self.array_key = state_fn, array_key
        self._buffer = EpisodeBuffer()
        self._obs: dict[str, np.ndarray] | None = None
        self._state: np.ndarray | None = None
        self._closed = False

    def _observe(self, obs: Any) -> None:
        self._obs = flatten_obs(obs, self.array_key)
        self._state = None if self.state_fn is None else np.asarray(self.state_fn(self.env))

    def _drop_unfinished(self) -> None:
        if len(self._buffer):
            log.info("%s: episode of %d steps not finished, not recorded", self.writer.path, len(self._buffer))
            self._buffer.clear()

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the env and start a new episode (an unfinished one is dropped)."""
        self._drop_unfinished()
        obs, info = self.env.reset(**kwargs)
        self._observe(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the env and buffer the step; on the episode's end write it (``info['recorded_demo']`` names it)."""
        if self._obs is None:
            raise RuntimeError("call reset() before step(): the episode in flight has ended")
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._buffer.add(self._obs, action, float(reward), terminated or truncated, self._state)
        self._observe(obs)
        if terminated or truncated:
            info = {**info, "recorded_demo": self.writer.write(self._buffer.to_episode())}
            self._buffer.clear()
            self._obs = None
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        """Close the file (finished episodes are on disk already) and the env; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            self._drop_unfinished()
            self.writer.close()
        finally:
            self.env.close()
