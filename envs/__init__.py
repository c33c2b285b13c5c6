"""Gymnasium environments in PyBullet. Importing this package registers every ``manipstack/<Name>-v0`` id.

This package imports no torch: learning code lives in ``policies`` and ``grasp_models``.
"""

from gymnasium.envs.registration import register

ENV_IDS: list[str] = []


def _register(name: str, entry_point: str, max_episode_steps: int | None = None) -> None:
    env_id = f"manipstack/{name}-v0"
    register(id=env_id, entry_point=entry_point, max_episode_steps=max_episode_steps)
    ENV_IDS.append(env_id)


_register("PushGrasp", "manipstack.envs.tasks.push_grasp:PushGraspEnv")
_register("PoseGrasp", "manipstack.envs.tasks.pose_grasp:PoseGraspEnv")
_register("DexGrasp", "manipstack.envs.tasks.dex_grasp:DexGraspEnv")
