"""Gymnasium envs ``dualctl/<Task>-v0``: one step per camera frame (``sim.camera_hz``).

Observations are a dict of arrays: ``image`` (the scene camera, H x W x 3 uint8), ``proprio``,
``wrench`` and ``tactile`` (shapes from dualctl.types); with a wrist or overhead camera also
``image_wrist`` / ``image_overhead``. The action is the flat ``ACTION_FIELDS`` vector. ``info`` carries
``success``, ``failure_reason``, ``instruction``, ``time`` (s) and ``action`` (as executed).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from dualctl.sim.config import SimConfig
from dualctl.sim.tasks import check_task, instruction, sample_variation
from dualctl.sim.world import MAX_EE_VELOCITY, World

from dualctl.types import (
    ACTION_DIM,
    GRIPPER_FORCE_RANGE,
    GRIPPER_SPEED_RANGE,
    GRIPPER_STROKE_M,
    PROPRIO_DIM,
    TACTILE_SHAPE,
    WRENCH_DIM,
    Action,
)


def action_space() -> gym.spaces.Box:
    low = np.array([*-MAX_EE_VELOCITY, 0.0, GRIPPER_SPEED_RANGE[0], GRIPPER_FORCE_RANGE[0]])
    high = np.array([*MAX_EE_VELOCITY, GRIPPER_STROKE_M, GRIPPER_SPEED_RANGE[1],
                     GRIPPER_FORCE_RANGE[1]])  # fmt: skip
    return gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), (ACTION_DIM,))


class SimEnv(gym.Env):
    """A task of the sim world as a gymnasium env. ``reset(seed=s)`` draws episode ``s`` of
    the config's split, so a seed names the same episode everywhere."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: str, config: SimConfig | None = None, render_mode=None):
        self.task = check_task(task)
        self.config = config or SimConfig()
        self.render_mode = render_mode
        size = self.config.camera_size
        image = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        spaces = {
            "image": image,
            "proprio": gym.spaces.Box(-np.inf, np.inf, (PROPRIO_DIM,), np.float32),
            "wrench": gym.spaces.Box(-np.inf, np.inf, (WRENCH_DIM,), np.float32),
            "tactile": gym.spaces.Box(-np.inf, np.inf, TACTILE_SHAPE, np.float32),
        }
        for name in self.config.cameras[1:]:
            spaces[f"image_{name}"] = image
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = action_space()
        self.world: World | None = None
        self.instruction = ""
        self._images: dict[str, np.ndarray] = {}

    def _observation(self) -> dict[str, np.ndarray]:
        self._images = self.world.render()
        obs = {
            "image": self._images["scene"],
            "proprio": self.world.proprio(),
            "wrench": self.world.wrench(),
            "tactile": self.world.tactile(),
        }
        for name in self.config.cameras[1:]:
            obs[f"image_{name}"] = self._images[name]
        return obs

    def _info(self, action: Action | None = None) -> dict:
        status = self.world.monitor.status
        info = {
            "success": status.success,
            "failure_reason": status.failure_reason,
            "instruction": self.instruction,
            "time": self.world.time,
            "variation": self.world.variation.to_meta(),
        }
        if action is not None:
            info["action"] = action.to_array()
        return info

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        self.close()
        variation = sample_variation(self.task, seed, self.config.split, self.config.distractor_pad)
        self.world = World(self.task, variation, self.config)
        self.instruction = instruction(self.task, variation)
        return self._observation(), self._info()

    def step(self, action):
        sent = self.world.apply(Action.from_array(np.asarray(action, np.float32)))
        self.world.advance_to(self.world.time + 1.0 / self.config.camera_hz)
        status = self.world.monitor.status
        reward = 1.0 if status.success else 0.0
        terminated = status.done and status.failure_reason != "timeout"
        truncated = status.failure_reason == "timeout"
        return self._observation(), reward, terminated, truncated, self._info(sent)

    def render(self):
        return self._images.get("scene")

    def close(self):
        if self.world is not None:
            self.world.close()
            self.world = None
