"""The planner in a real separate process (spawn), on the virtual clock: faults, then recovery."""

import os

import numpy as np
import pytest
from runtime_fakes import FACTORY_FILE, FakeBody, run_virtual

from dualctl.runtime.clock import VirtualClock
from dualctl.runtime.planner_process import (
    PlannerProcessError,
    PlannerSpec,
    ProcessPlanClient,
    load_factory,
)

FAR_APART = ((0.1, 0.0, 0.02), (-0.1, 0.05, 0.06))


def process_client(virtual_patience_s=1.0, **planner_kwargs):
    spec = PlannerSpec(f"{FACTORY_FILE}:make_planner", planner_kwargs)
    return lambda clock: ProcessPlanClient(
        spec, clock, latency_s=0.3, timeout_s=1.0, restart_s=0.5,
        virtual_patience_s=virtual_patience_s,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "failure"),
    [("crash_once", "crashed"), ("hang_once", "hung"), ("garbage", "garbage"), ("raise", "error")],
)
def test_planner_faults_hold_safely_then_recover(tmp_path, mode, failure):
    # Plans are valid 0.9 s; the second call fails, so the first plan goes stale mid-outage.
    plans = process_client(mode=mode, marker=str(tmp_path / "marker"), fail_call=2, bad=2,
                           valid_s=0.9)  # fmt: skip
    summary, telemetry, body, _ = run_virtual(plans, duration_s=3.5)
    assert set(summary.planner_failures) == {failure}
    t, following = telemetry.array("t"), telemetry.array("following")
    failed_at = min(e["t"] for e in telemetry.events if e["type"] == "plan_failed")
    recovered = min(e["t"] for e in telemetry.events if e["type"] == "plan" and e["t"] > failed_at)
    assert following[(t > 0.35) & (t < 0.65)].min() == 1.0  # followed the first plan
    outage = (t > 0.95) & (t < recovered)
    assert outage.any() and following[outage].max() == 0.0  # held while stale
    velocities = np.array([a.ee_velocity for a in body.sent[: len(t)]])
    assert not velocities[outage].any()
    assert following[t > recovered + 0.01].min() == 1.0  # and came back
    assert body.position[0] == pytest.approx(0.1, abs=0.01)


def test_a_virtual_run_with_the_planner_process_replays_exactly():
    runs = [run_virtual(process_client(targets=FAR_APART), duration_s=2.0) for _ in range(2)]
    (_, tel_a, body_a, _), (_, tel_b, body_b, _) = runs
    assert len(body_a.sent) == len(body_b.sent) > 300
    np.testing.assert_array_equal(
        [a.to_array() for a in body_a.sent], [a.to_array() for a in body_b.sent]
    )
    events = [[(e["type"], e["t"], e.get("how")) for e in tel.events] for tel in (tel_a, tel_b)]
    assert events[0] == events[1]


def test_on_the_virtual_clock_a_plan_slower_than_the_timeout_in_wall_time_is_not_hung():
    # As on a loaded machine: each plan takes 1.3 s of wall time, the timeout is 1 s.
    slow = process_client(virtual_patience_s=30.0, targets=FAR_APART, compute_s=1.3)
    summary, telemetry, _, _ = run_virtual(slow, duration_s=0.6)
    assert summary.planner_failures == {}
    t, following = telemetry.array("t"), telemetry.array("following")
    assert following[t > 0.35].min() == 1.0


def test_a_factory_that_fails_to_load_is_a_clear_error(tmp_path):
    clock = VirtualClock()
    spec = PlannerSpec(f"{FACTORY_FILE}:no_such_factory")
    client = ProcessPlanClient(spec, clock, startup_timeout_s=30.0)

    async def main():
        try:
            await client.start()
        finally:
            await client.close()

    with pytest.raises(PlannerProcessError, match="no_such_factory"):
        clock.run(main())
    with pytest.raises(PlannerProcessError, match="module:function"):
        load_factory("not-a-factory")


def test_no_process_is_left_behind():
    clock = VirtualClock()
    client = process_client()(clock)

    async def main():
        await client.start()
        pid = client.process.pid
        body = FakeBody(clock.now)
        result = await client.plan(await body.observe(), "reach")
        await client.close()
        return pid, result

    pid, result = clock.run(main())
    assert result.plan is not None and result.plan.horizon == 8
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
