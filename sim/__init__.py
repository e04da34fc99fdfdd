"""The MuJoCo world (installed as ``dualctl.sim``): scenes, tasks, scripted experts, envs.

Importing it registers the gymnasium envs ``dualctl/<Task>-v0`` for every task in
:data:`dualctl.sim.tasks.TASKS`.
"""

import gymnasium as gym
from dualctl.sim.tasks import TASKS

for _task in TASKS:
    if f"dualctl/{_task}-v0" not in gym.registry:
        gym.register(
            id=f"dualctl/{_task}-v0", entry_point="dualctl.sim.env:SimEnv", kwargs={"task": _task}
        )
