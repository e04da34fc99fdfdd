"""Reference sources that stand in for the diffusion planner in some arms, both built from the
scripted expert's recorded rollout of the same episode (same task, split and seed):

- :class:`GoalPlanner`: every "plan" is the expert's final frame repeated (the goal image a
  goal-conditioned tracker follows when there is no planner, as in V-JEPA 2-AC).
- :class:`OraclePlanner`: the expert's recorded future from the point of its rollout that
  matches the robot's state, at the planner's frame times (an upper bound on what a better
  video model could give the tracker).

Both implement :class:`~dualctl.planner.base.Planner`, so the runtime runs them exactly as it
runs the diffusion planner (same plan client, latency, buffer and stitching).
"""

from __future__ import annotations

import numpy as np

from dualctl.data.episode import Episode
from dualctl.errors import ConfigError
from dualctl.planner.base import Planner
from dualctl.types import Observation, Plan


class _ExpertPlanner(Planner):
    """Shared timing: ``horizon`` frames spread over ``horizon_s`` after the observation.

    Args:
        expert: the expert's episode (images at its ``timestamp``, s from the episode start).
        horizon: frames per plan.
        horizon_s: time the plan spans, s.
        camera: the camera whose frames are planned.
    """

    def __init__(
        self,
        expert: Episode,
        horizon: int,
        horizon_s: float,
        camera: str = "scene",
    ):
        self.frames = expert.images[camera]
        self.times = np.asarray(expert.timestamp, np.float64)
        self.horizon, self.horizon_s, self.camera = horizon, horizon_s, camera

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


#: Weights of (x, y, z, yaw, width) in the match between the robot's proprio and the expert's:
#: metres count as they are, a radian of yaw like 5 cm.
_MATCH_WEIGHTS = np.array([1.0, 1.0, 1.0, 0.05, 1.0])


class StateAlignment:
    """Where the robot is on an expert's rollout: the expert step whose end-effector pose and
    finger opening best match the robot's proprio, never earlier than the last match and at
    most ``window_s`` of the expert's time after it.

    The window keeps a robot that lags the expert from being matched to a later phase that
    happens to look alike (an open hand high above the block matched the expert's raised hand
    at the end of the lift, 3 s ahead, and the reference then showed the task done for the
    rest of the episode): progress goes through the phases in between, one window per call.

    Args:
        expert_proprio: (T, PROPRIO_DIM) the expert's recorded proprio (SI units).
        step_s: time between the expert's recorded steps, s.
        window_s: how far past the last match (s of the expert's time) one call may look;
            0 looks at the whole rest of the rollout.
    """

    def __init__(self, expert_proprio: np.ndarray, step_s: float = 0.05, window_s: float = 1.0):
        if step_s <= 0:
            raise ConfigError("step_s", step_s, "a time step > 0 s")
        if window_s < 0:
            raise ConfigError("window_s", window_s, "a time >= 0 s (0 = no window)")
        self.poses = np.asarray(expert_proprio[:, :5], np.float64)
        self.window = max(1, round(window_s / step_s)) if window_s > 0 else len(self.poses)
        self.last = 0

    def step(self, proprio: np.ndarray) -> int:
        """Index of the expert step that best matches ``proprio`` (monotone in calls)."""
        gaps = (self.poses[self.last : self.last + self.window + 1] - proprio[:5]) * _MATCH_WEIGHTS
        self.last += int(np.argmin(np.linalg.norm(gaps, axis=1)))
        return self.last


class OraclePlanner(_ExpertPlanner):
    """The expert's recorded future from where the robot is now (:class:`StateAlignment`), at
    the plan's frame offsets after the matched step, held at its last frame. Aligning by state
    rather than by clock keeps the oracle meaningful when the robot is slower than the expert,
    as a planner conditioned on the current frame would be."""

    def __init__(
        self,
        expert: Episode,
        horizon: int,
        horizon_s: float,
        camera: str = "scene",
    ):
        super().__init__(expert, horizon, horizon_s, camera)
        self.step_s = float(np.median(np.diff(self.times))) if len(self.times) > 1 else 1.0
        self.alignment = StateAlignment(expert.proprio, self.step_s)

    def progress(self, observation: Observation) -> int:
        """Index of the expert step that best matches the observation (monotone)."""
        return self.alignment.step(observation.proprio)

    def plan(self, observation: Observation, instruction: str) -> Plan:
        offsets = self._frame_times(observation) - observation.timestamp
        index = self.progress(observation) + np.round(offsets / self.step_s).astype(int)
        return self._plan(
            observation, self.frames[np.minimum(index, len(self.frames) - 1)], instruction
        )
