"""The data layer: the one reader/writer per file format (grasp datasets, robomimic-layout episodes) and the
provenance every written file carries. No torch here: learning code reads these files through this package."""
