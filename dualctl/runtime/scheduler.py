"""The dual-rate scheduler: one asyncio loop drives the body at the tracker's rate while plans
arrive from the planner process whenever they are ready.

Tasks on the loop:

- the control loop (every ``1/rate_hz`` s, paced by absolute deadlines): read the latest
  observation, take the reference for ``now + lookahead`` from the plan buffer, ``tracker.act``,
  the safety filter, ``body.act``, telemetry. Heavier work (encoding a new camera frame, a new
  plan's frames) is queued as jobs the control loop runs in its own slack, after a tick, only when
  they fit before the next deadline; so a 3 ms encode never makes a 5 ms tick late.
- the planner client: asks for a plan every ``replan_period_s`` or when the current plan is
  running out; failures (crash, hang, garbage) are logged, and the control loop keeps following
  the last valid plan until it is stale, then holds.
- the health check: a body fault is an e-stop.

The public entry point is :func:`run_controller`; ``dualctl demo`` and ``dualctl deploy`` both
use it, with a virtual or a real clock.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from dualctl.body import Body
from dualctl.runtime.clock import Clock
from dualctl.runtime.config import RuntimeConfig
from dualctl.runtime.plan_buffer import PlanBuffer
from dualctl.runtime.planner_process import PlanClient, PlanResult
from dualctl.runtime.safety import Intervention, SafetySupervisor, grip_force
from dualctl.runtime.telemetry import RunSummary, Telemetry
from dualctl.tracker.base import Tracker
from dualctl.types import PROPRIO_FIELDS, Action, Observation, Plan

log = logging.getLogger(__name__)

_WIDTH = PROPRIO_FIELDS.index("width")
#: Status line refresh period, s.
_STATUS_PERIOD_S = 0.25


@dataclass
class _Job:
    kind: str
    run: Callable[[], None]
    queued_at: float


class _Slack:
    """Background work done by the control loop between ticks, with a running estimate (s,
    wall clock) of what each kind of job costs."""

    def __init__(self):
        self.jobs: collections.deque[_Job] = collections.deque()
        self.cost: dict[str, float] = {}

    def add(self, kind: str, run: Callable[[], None], now: float) -> None:
        self.jobs.append(_Job(kind, run, now))

    def replace(self, kind: str, run: Callable[[], None], now: float) -> None:
        """Queue ``run``, dropping a queued job of the same kind (only the latest matters)."""
        self.jobs = collections.deque(j for j in self.jobs if j.kind != kind)
        self.add(kind, run, now)

    def run_one(self) -> None:
        job = self.jobs.popleft()
        start = time.perf_counter()
        job.run()
        spent = time.perf_counter() - start
        previous = self.cost.get(job.kind, spent)
        # Follow rises faster than falls (a job that no longer fits makes a tick late), but
        # not to a single spike, which would keep a rare job waiting until it is overdue.
        weight = 0.5 if spent > previous else 0.2
        self.cost[job.kind] = previous + weight * (spent - previous)


class Controller:
    """One run of the closed loop. Use :func:`run_controller` unless you need :meth:`estop`
    from outside (a signal handler, an operator button)."""

    def __init__(
        self,
        body: Body,
        tracker: Tracker,
        plans: PlanClient | None,
        clock: Clock,
        config: RuntimeConfig,
        telemetry: Telemetry,
        *,
        rate_hz: float,
        instruction: str,
        camera: str = "scene",
        should_stop: Callable[[], bool] | None = None,
        max_duration_s: float | None = None,
        on_frame: Callable[[float, Observation, Plan | None, float], None] | None = None,
    ):
        self.body, self.tracker, self.plans, self.clock = body, tracker, plans, clock
        self.config, self.telemetry = config, telemetry
        self.period_s = 1.0 / rate_hz
        self.instruction, self.camera = instruction, camera
        self.should_stop = should_stop or (lambda: False)
        self.max_duration_s = max_duration_s
        self.on_frame = on_frame
        has_arm = getattr(getattr(body, "spec", None), "has_arm", True)
        self.safety = SafetySupervisor(config.safety, self.period_s, has_arm)
        self.buffer = PlanBuffer(
            config.blend_s, config.safety.max_plan_age_s, config.plan_alignment
        )
        self.slack = _Slack()
        self.latest: Observation | None = None
        self.latent: np.ndarray | None = None
        self._image_stamp = -math.inf
        self._tracker_failed = False

    # --- public -----------------------------------------------------------------------------

    def estop(self, reason: str) -> None:
        """Latch an e-stop; the next tick puts the body in the safe state."""
        self.telemetry.intervention(self.safety.estop(reason, self.clock.now()))

    async def run(self) -> RunSummary:
        self.tracker.reset()
        await self.clock.prepare()
        start = self.clock.now()
        self.latest = await self.body.observe()
        self._warm_up(self.latest)
        helpers = [asyncio.create_task(self._health_loop(), name="health")]
        if self.plans is not None:
            helpers.append(asyncio.create_task(self._planner_loop(), name="planner"))
        try:
            await self._control_loop(start)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._stop_safely()
        return self.telemetry.summary()

    # --- the control loop -------------------------------------------------------------------

    def _warm_up(self, observation: Observation) -> None:
        """Encode one frame before the first tick: loads lazy kernels and seeds the cost
        estimate the slack scheduler needs."""
        self.slack.add("encode_frame", lambda: self._encode_frame(observation), self.clock.now())
        self.slack.run_one()

    async def _control_loop(self, start: float) -> None:
        deadline = start
        next_status = time.monotonic()  # wall clock: the status line is for a person
        while True:
            await self.clock.sleep_until(deadline)
            await self._tick(deadline)
            if self._should_end(start):
                return
            deadline += self.period_s
            deadline = self._skip_missed(deadline)
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + _STATUS_PERIOD_S
                now = self.clock.now()
                self.slack.replace("status", partial(self.telemetry.refresh_status, now), now)
            self._run_slack(deadline)

    def _should_end(self, start: float) -> bool:
        if self.should_stop():
            return True
        return self.max_duration_s is not None and self.clock.now() - start >= self.max_duration_s

    def _skip_missed(self, deadline: float) -> float:
        """Real time does not wait: when whole periods have passed, skip their ticks."""
        behind = self.clock.now() - deadline
        if behind <= self.period_s:
            return deadline
        skipped = int(behind // self.period_s)
        self.telemetry.skipped(skipped)
        return deadline + skipped * self.period_s

    async def _tick(self, deadline: float) -> None:
        started = time.perf_counter()
        now = self.clock.now()
        observation = await self.body.observe()
        self.latest = observation
        self._notice_frame(observation, now)
        reference, following = self._reference(now)
        notes: list[Intervention] = []
        proposal = None
        if following and self.latent is not None:
            proposal = self._tracker_act(observation, reference, now, notes)
        elif self.buffer.trajectory is not None:
            age = self.buffer.age(now)
            notes.append(Intervention(now, "stale_plan", f"plan {age:.2f} s old: hold"))
        action, safety_notes = self.safety.filter(proposal, observation, now, now - deadline)
        sent = await self.body.act(action)
        notes.extend(safety_notes)
        compute_s = time.perf_counter() - started
        self.telemetry.tick(self._tick_values(now, deadline, compute_s, observation, sent,
                                              following and proposal is not None), notes)  # fmt: skip

    def _reference(self, now: float) -> tuple[np.ndarray | None, bool]:
        if self.buffer.is_stale(now):
            return None, False
        return self.buffer.reference(self.buffer.position(now) + self.tracker.lookahead_s), True

    def _tracker_act(self, observation, reference, now, notes) -> Action | None:
        try:
            return self.tracker.act(observation, self.latent, reference)
        except Exception as error:  # a model fault must become a hold, never a crash
            if not self._tracker_failed:
                log.exception("tracker.act failed; holding")
                self._tracker_failed = True
            notes.append(Intervention(now, "tracker_error", f"{error!r}: hold"))
            return None

    def _tick_values(self, now, deadline, compute_s, observation, sent, following) -> dict:
        return {
            "t": now,
            "lateness_s": now - deadline,
            "compute_s": compute_s,
            "plan_age_s": min(self.buffer.age(now), 1e9),
            "grip_force_n": grip_force(observation),
            "wrist_force_n": float(np.linalg.norm(observation.wrench[:3])),
            "width_m": float(observation.proprio[_WIDTH]),
            "cmd_width_m": sent.gripper.width_m,
            "cmd_force_n": sent.gripper.force_n,
            "following": float(following),
        }

    def _notice_frame(self, observation: Observation, now: float) -> None:
        stamp = observation.stamps.get(f"image/{self.camera}", observation.timestamp)
        if self.camera not in observation.images or stamp <= self._image_stamp:
            return
        self._image_stamp = stamp
        self.slack.replace("encode_frame", lambda: self._encode_frame(observation), now)
        if self.on_frame is not None:
            reference_t = self.buffer.position(now) + self.tracker.lookahead_s
            self.on_frame(now, observation, self.buffer.plan, reference_t)

    def _encode_frame(self, observation: Observation) -> None:
        latent = self.tracker.encode_view(observation.images)
        if np.isfinite(latent).all():
            self.latent = latent
            self.buffer.align(latent[: self.tracker.latent_dim], self.clock.now())
        else:
            log.warning("tracker.encode gave a non-finite latent; keeping the previous one")

    def _run_slack(self, deadline: float) -> None:
        """Run queued jobs that fit before ``deadline`` (all of them on a virtual clock)."""
        margin = getattr(self.clock, "spin_s", None) or 0.0
        while self.slack.jobs:
            job = self.slack.jobs[0]
            if not self.clock.is_virtual:
                now = self.clock.now()
                fits = now + self.slack.cost.get(job.kind, 0.0) + margin < deadline
                overdue = now - job.queued_at > self.config.max_job_wait_s
                if not (fits or overdue):
                    return
            self.slack.run_one()

    async def _stop_safely(self) -> None:
        observation = self.latest
        now = self.clock.now()
        action = self.safety.hold(observation, now) if observation is not None else None
        if self.safety.estop_reason is not None and observation is not None:
            action, _ = self.safety.filter(None, observation, now)
        if action is not None:
            await self.body.act(action)

    # --- the planner client -----------------------------------------------------------------

    async def _planner_loop(self) -> None:
        """Request a plan every ``replan_period_s`` (or, with nothing in flight, as soon as the
        current plan runs out), with up to ``max_plans_in_flight`` requests outstanding: a
        planner slower than the replan period still delivers at the replan rate."""
        last_request = -math.inf
        in_flight: set[asyncio.Task] = set()
        try:
            while True:
                await self.clock.sleep_until(self._next_request_time(last_request, bool(in_flight)))
                if len(in_flight) >= self.config.max_plans_in_flight:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                await self.plans.prepare()
                if self.latest is None or self.camera not in self.latest.images:
                    await self.clock.sleep_until(self.clock.now() + self.period_s)
                    continue
                last_request = self.clock.now()
                task = asyncio.create_task(self._request(self.latest))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                await asyncio.sleep(0)  # let the request go out before deciding the next one
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _request(self, observation: Observation) -> None:
        self._accept(await self.plans.plan(observation, self.instruction))

    def _next_request_time(self, last_request: float, busy: bool) -> float:
        now = self.clock.now()
        periodic = last_request + self.config.replan_period_s
        if busy:
            return max(now, periodic)
        time_left = self.buffer.time_left(self.buffer.position(now) + self.tracker.lookahead_s)
        running_out = now + time_left - self.config.replan_margin_s
        return max(now, min(periodic, running_out))

    def _accept(self, result: PlanResult) -> None:
        if result.plan is None:
            log.warning("no plan at %.3f s: %s", result.arrived_at, result.error)
            self.telemetry.event(
                "plan_failed", result.arrived_at, error=result.error,
                requested_at=result.requested_at,
            )  # fmt: skip
            return
        plan = result.plan
        if plan.camera != self.camera:  # another view's frames mean nothing to this tracker
            self.telemetry.event(
                "plan_failed", result.arrived_at, requested_at=result.requested_at,
                error=f"wrong camera: the plan imitates {plan.camera!r}, the tracker reads "
                f"{self.camera!r}",
            )  # fmt: skip
            return
        latents: list[np.ndarray] = []
        # One frame per job on a real clock, so each fits in a tick's slack; one batch on a
        # virtual clock, where only the total matters.
        chunk = plan.horizon if self.clock.is_virtual else 1
        for i in range(0, plan.horizon, chunk):
            self.slack.add(
                "encode_plan_frame",
                lambda i=i: latents.append(self.tracker.encode(plan.frames[i : i + chunk])),
                self.clock.now(),
            )
        self.slack.add(
            "install_plan", lambda: self._install(plan, latents, result), self.clock.now()
        )

    def _install(self, plan: Plan, latents: list[np.ndarray], result: PlanResult) -> None:
        now = self.clock.now()
        stacked = np.concatenate(latents, axis=0)
        if not np.isfinite(stacked).all():
            self.telemetry.event("plan_failed", now, error="garbage: non-finite plan latents",
                                 requested_at=result.requested_at)  # fmt: skip
            return
        how = self.buffer.install(plan, stacked, now, self.tracker.lookahead_s)
        self.telemetry.event(
            "plan", now, how=how, requested_at=result.requested_at,
            conditioned_at=plan.conditioned_at, latency_s=now - result.requested_at,
            compute_s=result.compute_s,
        )  # fmt: skip

    # --- health -------------------------------------------------------------------------------

    async def _health_loop(self) -> None:
        period = self.config.safety.health_period_s
        while True:
            await self.clock.sleep_until(self.clock.now() + period)
            health = await self.body.health()
            if not health.ok and self.safety.estop_reason is None:
                self.estop("body fault: " + ", ".join(health.faults or ("unknown",)))


async def run_controller(
    body: Body,
    tracker: Tracker,
    plans: PlanClient | None,
    clock: Clock,
    config: RuntimeConfig,
    telemetry: Telemetry,
    *,
    rate_hz: float,
    instruction: str,
    camera: str = "scene",
    should_stop: Callable[[], bool] | None = None,
    max_duration_s: float | None = None,
    on_frame: Callable[[float, Observation, Plan | None, float], None] | None = None,
) -> RunSummary:
    """Run the closed loop on a connected ``body`` until ``should_stop()`` or
    ``max_duration_s`` (s), then leave the body holding (or in its e-stop state).

    Args:
        body: a connected body (sim or hardware).
        tracker: System 1.
        plans: where plans come from (a started :class:`ProcessPlanClient`, or None to hold).
        clock: the clock ``body`` and ``plans`` also use; run this coroutine with
            ``clock.run(...)`` so a virtual clock drives the event loop.
        config: the ``runtime`` config section.
        telemetry: collects the run's numbers; its summary is returned.
        rate_hz: control rate, Hz (``tracker.rate_hz``).
        instruction: the task instruction given to the planner.
        camera: the camera the tracker encodes and the planner imitates.
        on_frame: called with (now, observation, current plan, the plan time its reference is
            read at) on every new camera frame.
    """
    controller = Controller(
        body, tracker, plans, clock, config, telemetry, rate_hz=rate_hz,
        instruction=instruction, camera=camera, should_stop=should_stop,
        max_duration_s=max_duration_s, on_frame=on_frame,
    )  # fmt: skip
    return await controller.run()
