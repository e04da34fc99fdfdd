"""One ablation episode: build what the arm runs, drive the sim body for one episode on a
:class:`~dualctl.runtime.clock.VirtualClock`, and report the outcome with loop statistics.

:func:`make_episode_fn` is the episode factory the runner gives each worker process; models are
loaded once per worker (lazily, only those its arms need) and reused across episodes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from dualctl.config import Config, section_from_yaml
from dualctl.data.episode import Episode
from dualctl.eval.arms import (
    GOAL,
    HIERARCHY,
    OPEN_LOOP_PLAN,
    ORACLE,
    SINGLE_RATE,
    ArmSpec,
    arm_spec,
)
from dualctl.eval.baseline import BaselinePolicy, load_baseline
from dualctl.eval.drivers import InverseDynamics, run_open_loop_plans, run_single_rate
from dualctl.eval.references import GoalPlanner, OraclePlanner
from dualctl.eval.results import EpisodeResult, Job
from dualctl.eval.video import FrameRecorder, write_rollout
from dualctl.planner.base import Planner
from dualctl.runtime.clock import VirtualClock
from dualctl.runtime.planner_process import InProcessPlanClient, PlanClient
from dualctl.runtime.scheduler import run_controller
from dualctl.runtime.telemetry import RunSummary, Telemetry
from dualctl.tracker.base import Tracker

log = logging.getLogger(__name__)


@dataclass
class Models:
    """Loads each model a worker needs once, on first use.

    Attributes:
        config: the resolved configuration of the ablation.
    """

    config: Config
    _trackers: dict = field(default_factory=dict)
    _planner: Planner | None = None
    _baseline: BaselinePolicy | None = None
    _inverse: InverseDynamics | None = None
    _experts: dict = field(default_factory=dict)

    def tracker(self, controller: str, modalities: tuple[str, ...]) -> Tracker:
        """The tracker with ``controller`` ("head"/"mpc") seeing only ``modalities`` (the
        ensemble of ``ablate.tracker_checkpoint`` and ``ablate.tracker_ensemble`` when that is
        set)."""
        key = (controller, modalities)
        if key not in self._trackers:
            from dualctl.tracker.checkpoint import read_checkpoint_config
            from dualctl.tracker.jepa import load_tracker

            folder = self.config.ablate.tracker_checkpoint
            # The checkpoint's own settings, so arms differ only in what they ablate.
            run = dataclasses.replace(read_checkpoint_config(Path(folder)), controller=controller)
            lookahead_s = self.config.runtime.lookahead_s or None
            if self.config.ablate.tracker_ensemble:
                from dualctl.tracker.ensemble import load_ensemble

                folders = [folder, *self.config.ablate.tracker_ensemble]
                self._trackers[key] = load_ensemble(folders, modalities, run, lookahead_s)
            else:
                self._trackers[key] = load_tracker(folder, modalities, run, lookahead_s)
        return self._trackers[key]

    def planner(self) -> Planner:
        if self._planner is None:
            from dualctl.planner.diffusion_planner import load_planner

            # The checkpoint's own sampler settings (steps, guidance, seed), painted the way the
            # runtime paints plans for its tracker.
            self._planner = load_planner(
                self.config.ablate.planner_checkpoint, composite=self.config.planner.composite
            )
        return self._planner

    def baseline(self) -> BaselinePolicy:
        if self._baseline is None:
            self._baseline = BaselinePolicy.load(Path(self.config.ablate.baseline.checkpoint))
        return self._baseline

    def inverse(self) -> InverseDynamics:
        if self._inverse is None:
            net, config, norm, meta = load_baseline(Path(self.config.ablate.inverse_dynamics))
            self._inverse = InverseDynamics(net, norm, config.image_size, float(meta["gap_s"]))
        return self._inverse

    def expert(self, task: str, split: str, seed: int, camera: str = "scene") -> Episode:
        """The scripted expert's recorded rollout of this very episode, ``camera`` among its
        views (kept for a few jobs: the goal and oracle arms of one seed usually run close
        together)."""
        key = (task, split, seed, camera)
        if key not in self._experts:
            from dualctl.sim.config import with_cameras
            from dualctl.sim.experts import run_expert

            if len(self._experts) >= 8:
                self._experts.pop(next(iter(self._experts)))
            sim = with_cameras(dataclasses.replace(self.config.sim, split=split), (camera,))
            self._experts[key] = run_expert(task, seed, split, sim)
        return self._experts[key]


@dataclass
class Built:
    """What one arm runs for one episode (None where the arm has no such part)."""

    spec: ArmSpec
    camera: str = "scene"  # the view its plans imitate and its tracker reads
    tracker: Tracker | None = None
    plans: PlanClient | None = None
    inverse: InverseDynamics | None = None
    policy: BaselinePolicy | None = None


def plan_latency_s(spec: ArmSpec, config: Config) -> float:
    """Simulated planner latency (s): none for a goal image (nothing is computed), the
    runtime's planner latency plus the arm's injected delay otherwise."""
    if spec.reference == GOAL and spec.driver == HIERARCHY:
        return 0.0
    return config.runtime.plan_latency_s + spec.extra_latency_s


def reference_planner(spec: ArmSpec, models: Models, job: Job, camera: str) -> Planner:
    """The arm's source of plans; the expert's goal or future frames come from ``camera``, the
    one its tracker reads."""
    p = models.config.planner
    if spec.driver == HIERARCHY and spec.reference in (GOAL, ORACLE):
        expert = models.expert(job.task, job.split, job.seed, camera)
        kind = GoalPlanner if spec.reference == GOAL else OraclePlanner
        return kind(expert, p.horizon, p.horizon_s, camera)
    return models.planner()


def build(spec: ArmSpec, models: Models, job: Job, clock: VirtualClock) -> Built:
    """Instantiate the parts ``spec`` runs."""
    built = Built(spec, models.config.planner.camera)
    if spec.driver == SINGLE_RATE:
        built.policy = models.baseline()
        return built
    if spec.driver == OPEN_LOOP_PLAN:
        built.inverse = models.inverse()
    else:
        built.tracker = models.tracker(spec.controller, spec.modalities)
        built.camera = built.tracker.cameras[0]
    planner = reference_planner(spec, models, job, built.camera)
    built.plans = InProcessPlanClient(planner, clock, plan_latency_s(spec, models.config))
    return built


def _mean(values) -> float:
    values = [v for v in values if math.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _result(
    job: Job, status, telemetry: Telemetry, summary: RunSummary, wall_s: float, period_s: float
) -> EpisodeResult:
    latencies = [e["latency_s"] for e in telemetry.events if e["type"] == "plan"]
    compute = telemetry.array("compute_s")
    return EpisodeResult(
        task=job.task,
        arm=job.arm,
        split=job.split,
        seed=job.seed,
        success=bool(status.success),
        failure_reason="" if status.success else str(status.failure_reason or "unfinished"),
        duration_s=summary.duration_s,
        ticks=summary.ticks,
        plans=summary.plans,
        plan_latency_mean_s=_mean(latencies),
        plan_latency_max_s=max(latencies, default=float("nan")),
        tick_compute_mean_s=float(compute.mean()) if len(compute) else float("nan"),
        tick_compute_max_s=float(compute.max()) if len(compute) else float("nan"),
        overruns=int((compute > period_s).sum()),
        safety_events=int(sum(summary.interventions.values())),
        safety_kinds=";".join(
            f"{k}:{n}" for k, n in sorted(summary.interventions.items(), key=lambda kv: -kv[1])
        ),
        wall_s=wall_s,
    )


async def _drive(
    built: Built, body, clock, config: Config, telemetry: Telemetry, on_frame
) -> RunSummary:
    stop = partial(_episode_over, body)
    limit = config.ablate.episode_s
    runtime = config.runtime
    if built.policy is not None:
        return await run_single_rate(body, built.policy, clock, runtime, telemetry, should_stop=stop,
                                     max_duration_s=limit, on_frame=on_frame)  # fmt: skip
    if built.inverse is not None:
        return await run_open_loop_plans(body, built.plans, built.inverse, clock, runtime, telemetry,
                                         rate_hz=config.tracker.rate_hz, instruction=body.instruction,
                                         camera=built.camera, should_stop=stop,
                                         max_duration_s=limit, on_frame=on_frame)  # fmt: skip
    return await run_controller(body, built.tracker, built.plans, clock, runtime, telemetry,
                                rate_hz=config.tracker.rate_hz, instruction=body.instruction,
                                camera=built.camera, should_stop=stop, max_duration_s=limit,
                                on_frame=on_frame)  # fmt: skip


def _episode_over(body) -> bool:
    return bool(body.status().done)


def run_episode(job: Job, models: Models, videos: Path | None = None) -> EpisodeResult:
    """Run one job to its end (task done, failed, or ``ablate.episode_s``)."""
    from dualctl.sim.body import SimBody
    from dualctl.sim.config import with_cameras

    config = models.config
    spec = arm_spec(job.arm)
    clock = VirtualClock()
    sim = dataclasses.replace(config.sim, split=job.split)
    started = time.perf_counter()
    built = build(spec, models, job, clock)
    if built.tracker is not None:
        sim = with_cameras(sim, built.tracker.cameras)
    body = SimBody(job.task, job.seed, sim, clock.now)
    telemetry = Telemetry(deadline_tolerance_s=config.runtime.safety.deadline_tolerance_s)
    lookahead = built.tracker.lookahead_s if built.tracker is not None else 0.0
    recorder = FrameRecorder(built.camera, lookahead)
    on_frame = recorder if job.record_video and videos else None

    outcome = []

    async def episode() -> RunSummary:
        await body.connect()
        try:
            summary = await _drive(built, body, clock, config, telemetry, on_frame)
            outcome.append(body.status())
            return summary
        finally:
            await body.close()

    summary = clock.run(episode())
    result = _result(
        job,
        outcome[0],
        telemetry,
        summary,
        time.perf_counter() - started,
        1.0 / config.tracker.rate_hz,
    )
    if recorder.snapshots:
        write_rollout(videos, result, body.instruction, recorder, telemetry, config.sim.camera_hz)
    return result


def make_episode_fn(setup: dict) -> Callable[[Job], EpisodeResult]:
    """The runner's episode factory: ``setup`` holds the resolved config's path and the video
    folder."""
    torch.set_num_threads(1)
    # Offscreen rendering; must be set before mujoco is first imported in this process.
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    # Load the model stacks before any MuJoCo EGL context exists: importing triton (through
    # timm/torchvision) after one was created segfaults in a spawned worker.
    import dualctl.planner.diffusion_planner  # noqa: F401
    import dualctl.tracker.jepa  # noqa: F401

    # Each episode's first safety intervention of a kind is a warning in a demo; here they are
    # counted per episode in the CSV, and hundreds of episodes would bury the progress bar.
    logging.getLogger("dualctl.runtime.telemetry").setLevel(logging.ERROR)
    config = section_from_yaml(Config, Path(setup["config"]), "config")
    models = Models(config)
    videos = Path(setup["videos"]) if setup.get("videos") else None
    return partial(run_episode, models=models, videos=videos)
