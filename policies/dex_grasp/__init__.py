"""Policies for ``manipstack/DexGrasp-v0``: the scripted goal-grasp executor (and the learned teacher over it)."""
