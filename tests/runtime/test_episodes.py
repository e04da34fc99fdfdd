"""Episodes one after another on fresh virtual clocks, sharing one planner process."""

import numpy as np
from runtime_fakes import FACTORY_FILE, FakeBody, FakeTracker

from dualctl.runtime.config import RuntimeConfig
from dualctl.runtime.episodes import on_fresh_virtual_clocks
from dualctl.runtime.planner_process import PlannerSpec, ProcessPlanClient
from dualctl.runtime.scheduler import run_controller
from dualctl.runtime.telemetry import Telemetry


def test_each_episode_starts_at_zero_and_replays_whatever_ran_before_it():
    spec = PlannerSpec(f"{FACTORY_FILE}:make_planner", {"targets": ((0.1, 0.0, 0.02),)})
    plans = ProcessPlanClient(spec, clock=None, latency_s=0.3, timeout_s=1.0, restart_s=0.5)

    async def episode(duration_s, clock):
        start = clock.now()
        body, telemetry = FakeBody(clock.now), Telemetry()
        summary = await run_controller(
            body, FakeTracker(), plans, clock, RuntimeConfig(), telemetry,
            rate_hz=200.0, instruction="reach", max_duration_s=duration_s,
        )  # fmt: skip
        return start, summary, [a.to_array() for a in body.sent]

    runs = list(on_fresh_virtual_clocks(plans, [1.3, 1.0, 1.0], episode))
    assert [start for start, _, _ in runs] == [0.0, 0.0, 0.0]
    (_, _, _), (_, second, sent_b), (_, third, sent_c) = runs
    assert second.plans > 0 and third.plans == second.plans  # the shared process still plans
    assert len(sent_b) > 150
    np.testing.assert_array_equal(sent_b, sent_c)
    assert not plans.process.is_alive()  # closed at the end
