"""Category-level 9-DoF pose estimation (Diff9D): inputs from RGB-D + instance masks, the diffusion / regression
estimator, and NOCS's metrics. ``metrics`` and ``features`` are numpy only; ``model`` needs torch."""
