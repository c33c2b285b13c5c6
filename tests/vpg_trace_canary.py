"""Platform canaries for the recorded VPG trace: raw PyBullet contact physics and raw torch convolutions, through no
project code. A recorded trace can only be replayed bit for bit on a machine whose floating-point arithmetic gives
these same numbers (CPU instruction set, libm and oneDNN kernels differ between machines)."""

from __future__ import annotations

import numpy as np
import pybullet
import pybullet_data
import torch
from pybullet_utils import bullet_client


def physics_canary() -> list[float]:
    """Pose (7,) of a box dropped tilted onto a plane and a Panda's IK solution (9,), raw PyBullet calls only."""
    client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
    try:
        client.setAdditionalSearchPath(pybullet_data.getDataPath())
        client.setPhysicsEngineParameter(fixedTimeStep=1 / 120, numSolverIterations=10, deterministicOverlappingPairs=1)
        client.setGravity(0, 0, -9.81)
        client.loadURDF("plane.urdf")
        shape = client.createCollisionShape(pybullet.GEOM_BOX, halfExtents=[0.02, 0.03, 0.01])
        box = client.createMultiBody(0.2, shape, -1, [0.0, 0.0, 0.1], client.getQuaternionFromEuler([0.3, 0.2, 0.1]))
        for _ in range(240):
            client.stepSimulation()
        panda = client.loadURDF("franka_panda/panda.urdf", [-0.55, 0, 0], useFixedBase=True)
        ik = client.calculateInverseKinematics(panda, 11, [-0.1, 0.05, 0.2], [1.0, 0.0, 0.0, 0.0])
        position, quat = client.getBasePositionAndOrientation(box)
        return [*position, *quat, *ik]
    finally:
        client.disconnect()


def torch_canary() -> list[float]:
    """Outputs of a fixed conv / batch-norm / bilinear / grid-sample stack on a fixed input (one CPU thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        x = torch.rand(2, 4, 48, 48, generator=generator)
        conv1 = torch.nn.Conv2d(4, 16, 3, padding=1)
        conv2 = torch.nn.Conv2d(16, 1, 1)
        for module in (conv1, conv2):
            with torch.no_grad():
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) - 0.5)
                module.bias.copy_(torch.rand(module.bias.shape, generator=generator) - 0.5)
        with torch.no_grad():
            y = torch.relu(torch.nn.functional.batch_norm(conv1(x), None, None, training=True))
            y = torch.nn.functional.interpolate(conv2(y), scale_factor=2, mode="bilinear", align_corners=False)
            theta = torch.tensor([[[0.8, -0.6, 0.1], [0.6, 0.8, 0.0]]] * 2)
            grid = torch.nn.functional.affine_grid(theta, list(y.shape), align_corners=False)
            y = torch.nn.functional.grid_sample(y, grid, mode="nearest", align_corners=False)
        return [float(v) for v in y.flatten()[::97].double()]
    finally:
        torch.set_num_threads(threads)


def canaries() -> dict[str, list[float]]:
    return {"physics": physics_canary(), "torch": torch_canary(),
            "numpy": [float(v) for v in np.sin(np.linspace(0.0, 7.0, 9)) * np.exp(np.linspace(-1.0, 1.0, 9))]}
