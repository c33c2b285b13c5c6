"""Procedural graspable objects (meshes) for dexterous grasp synthesis."""
