"""The two controllers the ablation compares the hierarchy with, driving a body on the runtime's
clock, through the runtime's safety supervisor, recorded by the runtime's telemetry (so loop
statistics mean the same for every arm):

- :func:`run_open_loop_plans` (the ``planner-only`` arm): plans arrive at the planner's rate;
  each one is turned by an inverse-dynamics model into one action per pair of consecutive
  frames (the observation's frame, then the planned ones), and those actions are played back
  on the plan's own timeline, whatever the sensors say, until the next plan arrives.
- :func:`run_single_rate` (the ``baseline`` arm): observe -> policy -> act at one rate (10 Hz).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from dualctl.body import Body
from dualctl.eval.baseline import BaselinePolicy, ChunkPolicyNet, Normaliser, frames_to_input
from dualctl.runtime.clock import Clock
from dualctl.runtime.config import RuntimeConfig
from dualctl.runtime.planner_process import PlanClient
from dualctl.runtime.safety import SafetySupervisor, grip_force
from dualctl.runtime.telemetry import RunSummary, Telemetry
from dualctl.types import PROPRIO_FIELDS, Action, Observation, Plan

_WIDTH = PROPRIO_FIELDS.index("width")


class InverseDynamics:
    """(frame, next frame) pairs -> the mean command between them.

    Args:
        gap_s: the time between the frames of the training pairs, s; ee velocities are rescaled
            when a plan's frames are spaced differently (same displacement, other duration).
    """

    def __init__(self, net: ChunkPolicyNet, norm: Normaliser, image_size: int, gap_s: float):
        self.net, self.norm, self.image_size, self.gap_s = net, norm, image_size, gap_s

    @torch.no_grad()
    def actions(self, first: np.ndarray, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
        """(K, ACTION_DIM) commands and (K + 1,) knot times (s): command k holds from knot k
        to knot k + 1; knot 0 is when the plan was conditioned."""
        frames = np.concatenate([first[None], plan.frames])
        pairs = torch.from_numpy(np.stack([frames[:-1], frames[1:]], axis=1))
        proprio = torch.zeros(len(pairs), len(self.norm.proprio_mean))
        out = self.net(frames_to_input(pairs, self.image_size), proprio)[:, 0].numpy()
        actions = out * self.norm.action_std + self.norm.action_mean
        knots = np.concatenate([[plan.conditioned_at], plan.times])
        actions[:, :4] *= (self.gap_s / np.diff(knots))[:, None]
        return actions.astype(np.float32), knots


@dataclass
class _Schedule:
    actions: np.ndarray
    knots: np.ndarray
    plan: Plan

    def at(self, t: float) -> np.ndarray | None:
        if t < self.knots[0] or t >= self.knots[-1]:
            return None
        return self.actions[int(np.searchsorted(self.knots, t, side="right")) - 1]


def _tick_values(now, deadline, compute_s, observation, sent, following) -> dict:
    return {
        "t": now,
        "lateness_s": now - deadline,
        "compute_s": compute_s,
        "plan_age_s": 0.0,
        "grip_force_n": grip_force(observation),
        "wrist_force_n": float(np.linalg.norm(observation.wrench[:3])),
        "width_m": float(observation.proprio[_WIDTH]),
        "cmd_width_m": sent.gripper.width_m,
        "cmd_force_n": sent.gripper.force_n,
        "following": float(following),
    }


async def _loop(
    body: Body,
    clock: Clock,
    config: RuntimeConfig,
    telemetry: Telemetry,
    rate_hz: float,
    propose: Callable[[Observation, float], Action | None],
    should_stop: Callable[[], bool],
    max_duration_s: float | None,
    on_frame: Callable[[float, Observation, Plan | None], None] | None,
    latest: list,
    plan: Callable[[], Plan | None] = lambda: None,
) -> None:
    period = 1.0 / rate_hz
    safety = SafetySupervisor(
        config.safety, period, getattr(getattr(body, "spec", None), "has_arm", True)
    )
    start = deadline = clock.now()
    tick = 0
    observation = None
    try:
        while True:
            await clock.sleep_until(deadline)
            started = time.perf_counter()
            now = clock.now()
            observation = await body.observe()
            latest[0] = observation
            if on_frame is not None:
                on_frame(now, observation, plan())
            proposal = propose(observation, now)
            action, notes = safety.filter(proposal, observation, now, now - deadline)
            sent = await body.act(action)
            values = _tick_values(
                now,
                deadline,
                time.perf_counter() - started,
                observation,
                sent,
                proposal is not None,
            )
            telemetry.tick(values, notes)
            if should_stop() or (
                max_duration_s is not None and clock.now() - start >= max_duration_s - 1e-9
            ):
                return
            tick += 1
            deadline = start + tick * period  # no drift from summing periods
    finally:
        if observation is not None:
            await body.act(safety.hold(observation, clock.now()))


async def run_open_loop_plans(
    body: Body,
    plans: PlanClient,
    inverse: InverseDynamics,
    clock: Clock,
    config: RuntimeConfig,
    telemetry: Telemetry,
    *,
    rate_hz: float,
    instruction: str,
    camera: str = "scene",
    should_stop: Callable[[], bool] = lambda: False,
    max_duration_s: float | None = None,
    on_frame: Callable[[float, Observation, Plan | None], None] | None = None,
) -> RunSummary:
    """The ``planner-only`` arm: see the module doc. ``rate_hz`` only sets how often the
    played-back command is sent; it never depends on the observations."""
    latest: list[Observation | None] = [await body.observe()]
    current: list[_Schedule | None] = [None]

    async def planner_loop() -> None:
        last_request = -math.inf
        while True:
            await clock.sleep_until(max(clock.now(), last_request + config.replan_period_s))
            observation = latest[0]
            last_request = clock.now()
            result = await plans.plan(observation, instruction)
            if result.plan is None:
                telemetry.event(
                    "plan_failed",
                    result.arrived_at,
                    error=result.error,
                    requested_at=result.requested_at,
                )
                continue
            actions, knots = inverse.actions(observation.images[camera], result.plan)
            current[0] = _Schedule(actions, knots, result.plan)
            telemetry.event("plan", clock.now(), how="replace", requested_at=result.requested_at,
                            conditioned_at=result.plan.conditioned_at,
                            latency_s=clock.now() - result.requested_at, compute_s=result.compute_s)  # fmt: skip

    def propose(observation: Observation, now: float) -> Action | None:
        schedule = current[0]
        vector = schedule.at(now) if schedule is not None else None
        if vector is None:
            return None
        action = Action.from_array(vector, timestamp=now)
        return Action(action.ee_velocity, action.gripper.clipped(), now)

    planner = asyncio.create_task(planner_loop(), name="planner")
    try:
        await _loop(
            body,
            clock,
            config,
            telemetry,
            rate_hz,
            propose,
            should_stop,
            max_duration_s,
            on_frame,
            latest,
            plan=lambda: current[0].plan if current[0] is not None else None,
        )
    finally:
        planner.cancel()
        await asyncio.gather(planner, return_exceptions=True)
    return telemetry.summary()


async def run_single_rate(
    body: Body,
    policy: BaselinePolicy,
    clock: Clock,
    config: RuntimeConfig,
    telemetry: Telemetry,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    max_duration_s: float | None = None,
    on_frame: Callable[[float, Observation, Plan | None], None] | None = None,
) -> RunSummary:
    """The ``baseline`` arm: the policy's command every ``1 / policy.config.rate_hz`` s."""
    policy.reset()

    def propose(observation: Observation, now: float) -> Action:
        action = policy.act(observation)
        return Action(action.ee_velocity, action.gripper.clipped(), now)

    latest: list[Observation | None] = [None]
    await _loop(
        body,
        clock,
        config,
        telemetry,
        policy.config.rate_hz,
        propose,
        should_stop,
        max_duration_s,
        on_frame,
        latest,
    )
    return telemetry.summary()
