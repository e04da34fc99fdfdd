"""Planner references for training the tracker's head: an episode replayed through the
diffusion planner as the runtime runs it, so each step's label can be paired with the frame
the tracker would have been shown from a plan (blurred, late, conditioned on an older frame)
rather than a sharp frame of the real future.

A plan is conditioned on the episode's frame, proprio and instruction every ``replan_s``
(from a random phase) and becomes usable ``latency_s`` after its observation; the reference
at step ``t`` is the latest usable plan's frame nearest ``t + lookahead_s``, as
:class:`~dualctl.runtime.plan_buffer.PlanBuffer` answers it (without the blend between plans).
``bench/tracker_plan_references.py`` writes such copies of a dataset.
"""

from __future__ import annotations

import numpy as np

from dualctl.data.dataset import REFERENCE_CAMERA
from dualctl.data.episode import Episode
from dualctl.planner.diffusion_planner import DiffusionPlanner


def plan_starts(times: np.ndarray, replan_s: float, phase_s: float) -> np.ndarray:
    """Step indices the plans are conditioned at: the first step, then every ``replan_s`` (s)
    from ``phase_s``."""
    wanted = np.arange(phase_s, times[-1] + 1e-9, replan_s)
    starts = np.searchsorted(times, wanted - 1e-9)
    return np.unique(np.concatenate([[0], starts[starts < len(times)]]))


def shown_frames(
    times: np.ndarray, starts: np.ndarray, plans: np.ndarray, frame_s: float,
    latency_s: float, lookahead_s: float,
) -> np.ndarray:  # fmt: skip
    """(T, H, W, 3): :func:`shown_frame` at every step time of ``times``, the plans
    conditioned at the steps ``starts``."""
    t0 = times[starts]
    return np.stack([shown_frame(t0, plans, t, frame_s, latency_s, lookahead_s) for t in times])


def shown_frame(
    conditioned_at: np.ndarray, plans, t: float, frame_s: float, latency_s: float,
    lookahead_s: float,
) -> np.ndarray:  # fmt: skip
    """The frame nearest ``t + lookahead_s`` (s) of the latest plan usable at ``t``: plans
    (each K frames, frame k at ``conditioned_at + (k + 1) * frame_s``) become usable
    ``latency_s`` after the time they were conditioned at; before any is, the first stands in."""
    usable = np.flatnonzero(np.asarray(conditioned_at) + latency_s <= t + 1e-9)
    i = usable[-1] if len(usable) else 0
    plan = plans[i]
    k = int(round((t + lookahead_s - conditioned_at[i]) / frame_s)) - 1
    return plan[min(max(k, 0), len(plan) - 1)]


def with_planner_references(
    episode: Episode, planner: DiffusionPlanner, rng: np.random.Generator,
    replan_s: float, latency_s: float, lookahead_s: float,
) -> Episode:  # fmt: skip
    """A copy of ``episode`` whose ``reference`` camera holds the planner's frames."""
    camera = planner.config.camera
    times = np.asarray(episode.timestamp, np.float64)
    starts = plan_starts(times, replan_s, rng.uniform(0.0, replan_s))
    instruction = episode.meta["instruction"]
    plans = planner.imagine(
        episode.images[camera][starts], episode.proprio[starts], [instruction] * len(starts)
    )
    frame_s = planner.config.horizon_s / planner.config.horizon
    shown = shown_frames(times, starts, plans, frame_s, latency_s, lookahead_s)
    meta = {
        **episode.meta,
        "reference_source": f"planner (replan {replan_s} s, latency {latency_s} s, "
        f"lookahead {lookahead_s} s)",
        "reference_camera": camera,
    }
    images = {**episode.images, REFERENCE_CAMERA: shown}  # every camera kept (a wrist view)
    return Episode(images, episode.proprio, episode.wrench, episode.tactile, episode.action,
                   episode.timestamp, meta)  # fmt: skip
