"""The MuJoCo world (installed as ``dualctl.sim``): scenes, tasks, scripted experts, envs."""
