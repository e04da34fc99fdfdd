"""Reference sources that stand in for the diffusion planner in some arms, both built from the
scripted expert's recorded rollout of the same episode (same task, split and seed):

- :class:`GoalPlanner`: every "plan" is the expert's final frame repeated (the goal image a
  goal-conditioned tracker follows when there is no planner, as in V-JEPA 2-AC).
- :class:`OraclePlanner`: the expert's recorded future from the observation's time on, at the
  planner's frame times (an upper bound on what a better video model could give the tracker).

Both implement :class:`~dualctl.planner.base.Planner`, so the runtime runs them exactly as it
runs the diffusion planner (same plan client, latency, buffer and stitching).
"""

from __future__ import annotations

import numpy as np

from dualctl.data.episode import Episode
from dualctl.planner.base import Planner
from dualctl.types import Observation, Plan


class _ExpertPlanner(Planner):
    """Shared timing: ``horizon`` frames spread over ``horizon_s`` after the observation.

    Args:
        expert: the expert's episode (images at its ``timestamp``, s from the episode start).
        horizon: frames per plan.
        horizon_s: time the plan spans, s.
        camera: the camera whose frames are planned.
        start_time: clock time (s) at which the controlled episode started, so observation times
            map onto the expert's episode time.
    """

    def __init__(
        self,
        expert: Episode,
        horizon: int,
        horizon_s: float,
        camera: str = "scene",
        start_time: float = 0.0,
    ):
        self.frames = expert.images[camera]
        self.times = np.asarray(expert.timestamp, np.float64)
        self.horizon, self.horizon_s, self.camera = horizon, horizon_s, camera
        self.start_time = start_time

    def _frame_times(self, observation: Observation) -> np.ndarray:
        step = self.horizon_s / self.horizon
        return observation.timestamp + step * np.arange(1, self.horizon + 1)

    def _plan(self, observation: Observation, frames: np.ndarray, instruction: str) -> Plan:
        times = self._frame_times(observation)
        return Plan(
            frames=np.ascontiguousarray(frames),
            times=times,
            conditioned_at=observation.timestamp,
            valid_until=float(times[-1]),
            instruction=instruction,
            camera=self.camera,
        )


class GoalPlanner(_ExpertPlanner):
    """The expert's last frame (the task done), held over the whole plan."""

    def plan(self, observation: Observation, instruction: str) -> Plan:
        goal = np.repeat(self.frames[-1:], self.horizon, axis=0)
        return self._plan(observation, goal, instruction)


class OraclePlanner(_ExpertPlanner):
    """The expert's frames at the plan's frame times (held at the last frame after its end)."""

    def plan(self, observation: Observation, instruction: str) -> Plan:
        episode_times = self._frame_times(observation) - self.start_time
        index = np.clip(np.searchsorted(self.times, episode_times - 1e-9), 0, len(self.times) - 1)
        return self._plan(observation, self.frames[index], instruction)
