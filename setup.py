"""Maps the repository's top-level folders into the one installed package ``manipstack`` (metadata: pyproject.toml).

``envs/`` installs as ``manipstack.envs``, ``policies/`` as ``manipstack.policies``, and so on; nothing else lands
in site-packages as a top-level name.
"""

from setuptools import find_packages, setup

SUBPACKAGES = ("envs", "policies", "grasp_models", "assets", "train", "eval")

setup(
    packages=["manipstack", *(f"manipstack.{name}" for name in find_packages(include=[
        pattern for sub in SUBPACKAGES for pattern in (sub, f"{sub}.*")]))],
    package_dir={"manipstack": "manipstack", **{f"manipstack.{sub}": sub for sub in SUBPACKAGES}},
)
