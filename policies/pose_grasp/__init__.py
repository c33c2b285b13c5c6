"""Pose-driven grasping policies for ``manipstack/PoseGrasp-v0``: the estimator's pose, or the true pose."""
