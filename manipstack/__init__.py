"""manipstack: a robot-manipulation learning stack (PyBullet Gymnasium envs, learning code in torch, one robot
contract for simulation and hardware).

The repository's top-level folders are its subpackages: ``manipstack.envs`` (environments, the PyBullet world,
robots, data files), ``manipstack.policies``, ``manipstack.grasp_models``, ``manipstack.assets``,
``manipstack.train`` and ``manipstack.eval`` (entry points). ``python -m manipstack`` is the command line.
"""

__version__ = "0.1.0"
