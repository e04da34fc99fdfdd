"""Plans on their own timeline: what the tracker should see at time t, and how a late plan
joins the one being executed.

A plan's frames are encoded by the tracker into latents stamped with the plan's frame times. The
buffer keeps one piecewise-linear latent trajectory. When a new plan arrives at ``now``, the
tracker is already heading for the reference at ``now + lookahead``; that part is kept, and over
the next ``blend_s`` seconds the trajectory blends smoothly into the new plan (the idea of
real-time chunking: never jump the target the fast loop is already following).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualctl.errors import ConfigError
from dualctl.types import Observation, Plan

#: Extra knots placed inside the blend window so its smooth weight survives linear interpolation.
_BLEND_KNOTS = 8


def validate_plan(plan: object, observation: Observation) -> str | None:
    """Why ``plan`` cannot be the answer to a request made with ``observation``; None if fine."""
    if not isinstance(plan, Plan):
        return f"expected a Plan, got {type(plan).__name__}"
    if not np.isfinite([plan.conditioned_at, plan.valid_until]).all():
        return "non-finite conditioned_at or valid_until"
    if abs(plan.conditioned_at - observation.timestamp) > 1e-6:
        return (
            f"conditioned_at {plan.conditioned_at:.6f} s is not the observation's "
            f"{observation.timestamp:.6f} s"
        )
    if plan.horizon == 0 or not np.isfinite(plan.times).all():
        return "no frames or non-finite frame times"
    if plan.times[0] < plan.conditioned_at - 1e-6:
        return "frame times start before the observation it was conditioned on"
    if plan.valid_until <= plan.conditioned_at:
        return "valid_until is not after conditioned_at"
    image = observation.images.get(plan.camera)
    if image is None:
        return f"plan imitates camera {plan.camera!r}, which the body does not have"
    if plan.frames.shape[1:] != image.shape:
        return f"frames are {plan.frames.shape[1:]}, the camera gives {image.shape}"
    return None


@dataclass
class LatentTrajectory:
    """Latents (M, D) at strictly increasing times (M,) s; linear in between, held at the ends."""

    times: np.ndarray
    latents: np.ndarray

    def at(self, t: float) -> np.ndarray:
        times = self.times
        if t <= times[0]:
            return self.latents[0]
        if t >= times[-1]:
            return self.latents[-1]
        i = int(np.searchsorted(times, t, side="right"))
        w = (t - times[i - 1]) / (times[i] - times[i - 1])
        return ((1.0 - w) * self.latents[i - 1] + w * self.latents[i]).astype(np.float32)

    def at_many(self, ts: np.ndarray) -> np.ndarray:
        """Latents (N, D) at times ``ts`` (N,) s, as :meth:`at` gives them one by one."""
        ts = np.clip(np.asarray(ts, np.float64), self.times[0], self.times[-1])
        i = np.clip(np.searchsorted(self.times, ts, side="right"), 1, len(self.times) - 1)
        span = self.times[i] - self.times[i - 1]
        w = ((ts - self.times[i - 1]) / np.where(span > 0, span, 1.0))[:, None]
        return ((1.0 - w) * self.latents[i - 1] + w * self.latents[i]).astype(np.float32)

    @property
    def end(self) -> float:
        return float(self.times[-1])


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def stitch(
    old: LatentTrajectory, new: LatentTrajectory, keep_until: float, blend_s: float
) -> LatentTrajectory:
    """``old`` up to ``keep_until`` (s), a smooth blend into ``new`` over ``blend_s`` (s), then
    ``new``. Only the part from ``keep_until`` on is kept, with one knot before it."""
    blend_end = keep_until + blend_s
    window = np.linspace(keep_until, blend_end, _BLEND_KNOTS) if blend_s > 0 else [keep_until]
    knots = np.unique(np.concatenate([window, new.times[new.times > blend_end]]))
    weights = _smoothstep((knots - keep_until) / blend_s) if blend_s > 0 else np.ones(len(knots))
    latents = np.stack(
        [(1.0 - w) * old.at(t) + w * new.at(t) for t, w in zip(knots, weights)]
    ).astype(np.float32)
    return LatentTrajectory(knots, latents)


class PlanBuffer:
    """The current reference trajectory, its freshness, and where on it the robot is.

    Where the robot is on the plan's timeline (:meth:`position`) is the clock
    (``alignment="clock"``: the robot keeps the plan's pace) or the plan time whose latent is
    nearest the robot's current one (``"latent"``), searched forward from the last match up
    to now every ``step_s`` (s). A plan shows the pace of the demonstrations it was trained on;
    a robot that lags it (a late plan, a slow grasp) is then still shown the part just ahead
    of it, not the plan's end. In latent mode a new plan replaces the old one outright (its
    timeline starts where the robot was when it was conditioned; no blend is needed to stay
    continuous, the robot's own latent places it).

    Args:
        blend_s: length of the blend from the old plan into a new one, s.
        max_age_s: a plan conditioned longer ago than this (s) is stale.
        alignment: "clock" or "latent".
        step_s: latent alignment's search step, s.
    """

    def __init__(
        self, blend_s: float, max_age_s: float, alignment: str = "clock", step_s: float = 0.05
    ):
        if alignment not in ("clock", "latent"):
            raise ConfigError("runtime.plan_alignment", alignment, '"clock" or "latent"')
        self.blend_s, self.max_age_s = blend_s, max_age_s
        self.alignment, self.step_s = alignment, step_s
        self.trajectory: LatentTrajectory | None = None
        self.plan: Plan | None = None
        self.conditioned_at = -np.inf
        self.valid_until = -np.inf
        self.progress = -np.inf

    def install(self, plan: Plan, latents: np.ndarray, now: float, lookahead_s: float) -> str:
        """Take a new plan whose frames encode to ``latents`` (K, D), arriving at ``now`` (s).

        Returns how: "swapped" (nothing valid to keep), "stitched", or "dropped" (an older plan
        than the current one: plans can finish out of order after a restart).
        """
        if plan.conditioned_at <= self.conditioned_at:
            return "dropped"
        new = LatentTrajectory(plan.times.copy(), np.asarray(latents, np.float32))
        if self.alignment == "latent":
            self.trajectory, how = new, "swapped"
            self.progress = plan.conditioned_at
        elif self.trajectory is None or self.is_stale(now):
            self.trajectory, how = new, "swapped"
        else:
            keep_until = now + lookahead_s
            self.trajectory, how = (
                stitch(self.trajectory, new, keep_until, self.blend_s),
                "stitched",
            )
        self.plan, self.conditioned_at, self.valid_until = (
            plan,
            plan.conditioned_at,
            plan.valid_until,
        )
        return how

    def align(self, latent: np.ndarray, now: float) -> None:
        """Latent alignment: move :attr:`progress` to the plan time, between the last match
        and ``now`` (s), whose latent is nearest ``latent`` (the robot's current view: the
        plan latents' first ``len(latent)`` values; what follows, e.g. a hand-pose reading, is
        not compared)."""
        if self.alignment != "latent" or self.trajectory is None:
            return
        candidates = np.arange(self.progress, max(self.progress, now) + 1e-9, self.step_s)
        planned = self.trajectory.at_many(candidates)[:, : len(latent)]
        gaps = np.linalg.norm(planned - latent, axis=1)
        self.progress = float(candidates[int(np.argmin(gaps))])

    def position(self, now: float) -> float:
        """The time (s) on the plan's timeline where the robot is at ``now``."""
        return now if self.alignment == "clock" else self.progress

    def is_stale(self, now: float) -> bool:
        """No plan, past its ``valid_until``, or older than ``max_age_s``."""
        return (
            self.trajectory is None
            or now > self.valid_until
            or now - self.conditioned_at > self.max_age_s
        )

    def age(self, now: float) -> float:
        """Seconds since the current plan's observation was taken (inf without a plan)."""
        return now - self.conditioned_at

    def reference(self, t: float) -> np.ndarray | None:
        """The reference latent for time ``t`` (s), or None when there is no trajectory."""
        return None if self.trajectory is None else self.trajectory.at(t)

    def time_left(self, t: float) -> float:
        """How long after ``t`` (s) the plan's last frame lies; -inf without a plan."""
        return -np.inf if self.trajectory is None else self.trajectory.end - t
