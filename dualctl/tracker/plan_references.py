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
    """(T, H, W, 3): for each step, the frame nearest ``t + lookahead_s`` of the latest plan
    usable by then (conditioned ``latency_s`` or more before; the first plan before any is)."""
    t0 = times[starts]
    shown = []
    for t in times:
        usable = np.flatnonzero(t0 + latency_s <= t + 1e-9)
        i = usable[-1] if len(usable) else 0
        shown.append(nearest_plan_frame(plans[i], t0[i], t + lookahead_s, frame_s))
    return np.stack(shown)


def nearest_plan_frame(plan: np.ndarray, conditioned_at: float, t: float, frame_s: float):
    """The frame of ``plan`` (K, ...; frame k at ``conditioned_at + (k + 1) * frame_s``)
    nearest time ``t`` (s), clamped to the plan."""
    k = int(round((t - conditioned_at) / frame_s)) - 1
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
    }
    images = {camera: episode.images[camera], REFERENCE_CAMERA: shown}
    return Episode(images, episode.proprio, episode.wrench, episode.tactile, episode.action,
                   episode.timestamp, meta)  # fmt: skip
