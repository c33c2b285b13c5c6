"""UGG-style grasp diffusion over hand poses conditioned on the object's point cloud (see ``model``)."""
