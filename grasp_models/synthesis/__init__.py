"""DexGraspNet-style grasp synthesis: energy, initialisation and annealed optimisation."""

from manipstack.grasp_models.synthesis.dexgraspnet import (
    AnnealingConfig,
    EnergyTerms,
    EnergyWeights,
    SynthesisResult,
    grasp_energy,
    initial_poses,
    squeeze_joints,
    synthesize,
)

__all__ = [
    "AnnealingConfig",
    "EnergyTerms",
    "EnergyWeights",
    "SynthesisResult",
    "grasp_energy",
    "initial_poses",
    "squeeze_joints",
    "synthesize",
]
