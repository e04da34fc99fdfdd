"""Rollout videos of ablation episodes, in the demo's format (camera | plan strip | force and
width traces, with a caption; MP4 and GIF) so an arm's video reads like the demo's."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dualctl.eval.results import EpisodeResult
from dualctl.runtime.demo_video import Snapshot, compose_panel, write_videos
from dualctl.runtime.telemetry import Telemetry
from dualctl.types import Observation, Plan


class FrameRecorder:
    """Keeps each new camera frame once, with the plan being followed then (drivers may call
    it on every tick)."""

    def __init__(self, camera: str, lookahead_s: float = 0.0):
        self.camera, self.lookahead_s = camera, lookahead_s
        self.snapshots: list[Snapshot] = []
        self._stamp = -math.inf

    def __call__(
        self,
        now: float,
        observation: Observation,
        plan: Plan | None = None,
        reference_t: float | None = None,
    ) -> None:
        stamp = observation.stamps.get(f"image/{self.camera}", observation.timestamp)
        if self.camera in observation.images and stamp > self._stamp:
            self._stamp = stamp
            image = observation.images[self.camera].copy()
            self.snapshots.append(Snapshot(now, image, plan, self.lookahead_s, reference_t))


def write_rollout(
    folder: Path,
    result: EpisodeResult,
    instruction: str,
    recorder: FrameRecorder,
    telemetry: Telemetry,
    fps: float,
) -> Path | None:
    """``<folder>/<task>_<arm>_<split>_<seed>.mp4`` (and ``.gif``); None without frames."""
    snapshots = recorder.snapshots
    if not snapshots:
        return None
    traces = {name: telemetry.array(name) for name in telemetry.columns}
    t_end = float(traces["t"][-1]) if len(traces["t"]) else snapshots[-1].t
    verdict = "SUCCESS" if result.success else f"FAILED ({result.failure_reason})"
    frames = []
    for snap in snapshots:
        caption = f"{result.arm} | {result.task}: {instruction}   t={snap.t - snapshots[0].t:5.2f}s"
        if snap is snapshots[-1]:
            caption += f"   {verdict}"
        frames.append(compose_panel(snap, traces, t_end, caption))
    frames.extend([frames[-1]] * int(fps))  # hold the verdict for a second
    stem = f"{result.task}_{result.arm}_{result.split}_{result.seed}"
    mp4 = Path(folder) / f"{stem}.mp4"
    write_videos([np.ascontiguousarray(f) for f in frames], mp4, mp4.with_suffix(".gif"), fps)
    return mp4
