"""The closed loop on the virtual clock with test-only body/tracker/planner (runtime_fakes)."""

import numpy as np
import pytest
from runtime_fakes import FakeTracker, TargetPlanner, run_virtual

from dualctl.runtime.config import RuntimeConfig, SafetyConfig
from dualctl.runtime.planner_process import InProcessPlanClient
from dualctl.types import GRIPPER_FORCE_RANGE, GRIPPER_STROKE_M

FAR_APART = ((0.1, 0.0, 0.02), (-0.1, 0.05, 0.06))


def in_process(latency_s=0.3, **planner_kwargs):
    return lambda clock: InProcessPlanClient(TargetPlanner(**planner_kwargs), clock, latency_s)


@pytest.mark.parametrize("alignment", ["clock", "latent"])
def test_closed_loop_follows_the_plan_to_its_target(alignment):
    config = RuntimeConfig(plan_alignment=alignment)
    summary, telemetry, body, _ = run_virtual(in_process(), duration_s=3.0, config=config)
    assert summary.plans >= 5 and summary.planner_failures == {}
    assert body.position[0] == pytest.approx(0.1, abs=0.005)
    assert body.width < 0.04  # the gripper closed on the object
    assert summary.following_fraction > 0.85  # only the wait for the first plan holds
    assert summary.interventions == {}
    hows = {e["how"] for e in telemetry.events if e["type"] == "plan"}
    assert hows == ({"swapped"} if alignment == "latent" else {"swapped", "stitched"})


@pytest.mark.parametrize("blend_s", [0.25, 0.0])
def test_late_plans_are_stitched_without_jumping_the_reference(blend_s):
    config = RuntimeConfig(blend_s=blend_s, plan_alignment="clock")
    summary, telemetry, _, tracker = run_virtual(
        in_process(latency_s=0.4, targets=FAR_APART), duration_s=3.0, config=config
    )
    hows = [e["how"] for e in telemetry.events if e["type"] == "plan"]
    assert hows[0] == "swapped" and hows.count("stitched") >= 3
    steps = np.abs(np.diff(np.array(tracker.references)[:, 0])).max()
    jump = 400 * 0.2  # red-channel distance between the two targets
    if blend_s > 0:
        assert steps < 0.1 * jump
    else:
        assert steps > 0.9 * jump  # the control: a blind swap jumps


def test_the_loop_holds_when_plans_go_stale_and_resumes_on_a_fresh_one():
    # Plans valid 1 s, one requested every 0.5 s (sooner when running out); calls 2-4 come
    # back as garbage, so the first plan goes stale at 1.0 s until call 5's plan lands.
    summary, telemetry, body, _ = run_virtual(
        in_process(mode="garbage", fail_call=2, bad=3, valid_s=1.0), duration_s=3.0
    )
    assert summary.planner_failures == {"garbage": 3}
    t, following = telemetry.array("t"), telemetry.array("following")
    recovered = [e["t"] for e in telemetry.events if e["type"] == "plan"][1]
    assert recovered > 1.5
    held = (t > 1.05) & (t < recovered)
    assert following[held].max() == 0.0 and summary.interventions["stale_plan"] > 100
    assert following[(t > 0.35) & (t < 0.95)].min() == 1.0  # the last valid plan is followed
    assert following[t > recovered + 0.01].min() == 1.0
    velocities = np.array([a.ee_velocity for a in body.sent])
    assert not velocities[1 : len(t)][held[1:]].any()


def test_plans_of_another_camera_than_the_trackers_are_refused_and_the_arm_holds():
    summary, telemetry, body, _ = run_virtual(
        in_process(camera="overhead"),
        duration_s=1.5,
        body_kwargs={"cameras": ("scene", "overhead")},
    )
    assert summary.plans == 0 and summary.planner_failures["wrong camera"] >= 2
    assert "the tracker reads 'scene'" in next(
        e["error"] for e in telemetry.events if e["type"] == "plan_failed"
    )
    assert not np.array([a.ee_velocity for a in body.sent]).any()  # never followed a plan


def test_force_over_the_limit_releases_within_one_tick():
    config = RuntimeConfig(safety=SafetyConfig(max_grip_force_n=100.0))
    summary, telemetry, _, _ = run_virtual(
        in_process(), duration_s=2.0, config=config, body_kwargs={"spike_at": 1.5, "spike_n": 80.0}
    )
    force = telemetry.array("grip_force_n")
    first = int(np.flatnonzero(force > 100.0)[0])
    # The very tick that observes the force sends the release.
    assert telemetry.array("cmd_width_m")[first] > telemetry.array("width_m")[first]
    assert telemetry.array("cmd_force_n")[first] == GRIPPER_FORCE_RANGE[0]
    assert telemetry.array("cmd_force_n")[first - 1] > GRIPPER_FORCE_RANGE[0]
    assert summary.interventions["grip_force"] >= 1


def test_nan_actions_are_rejected():
    summary, telemetry, body, _ = run_virtual(
        in_process(), duration_s=1.5, tracker=FakeTracker(nan_after=20)
    )
    assert summary.interventions["nan_action"] > 50
    assert all(a.is_finite() for a in body.sent)
    assert not np.array([a.ee_velocity for a in body.sent[-50:]]).any()


@pytest.mark.parametrize("mode", ["hold", "open"])
def test_a_body_fault_estops_into_the_configured_safe_state(mode):
    config = RuntimeConfig(safety=SafetyConfig(estop_mode=mode))
    summary, telemetry, body, _ = run_virtual(
        in_process(), duration_s=2.0, config=config, body_kwargs={"fault_at": 1.0}
    )
    assert summary.interventions["estop"] == 1
    after = [a for a in body.sent if a.timestamp > 1.2]
    assert after and not np.array([a.ee_velocity for a in after]).any()
    widths = {round(a.gripper.width_m, 6) for a in after}
    if mode == "open":
        assert widths == {GRIPPER_STROKE_M}
    else:
        before = [a for a in body.sent if a.timestamp < 1.0][-1]
        assert widths == {round(before.gripper.width_m, 6)}


def test_stale_sensor_streams_hold_the_arm():
    summary, telemetry, body, _ = run_virtual(
        in_process(), duration_s=2.0, body_kwargs={"freeze_at": 1.0}
    )
    assert summary.interventions["stale_observation"] > 100
    assert not np.array([a.ee_velocity for a in body.sent if a.timestamp > 1.1]).any()


def test_a_virtual_run_replays_exactly_from_its_seed():
    runs = [
        run_virtual(in_process(targets=FAR_APART), duration_s=2.0, body_kwargs={"seed": 7})
        for _ in range(2)
    ]
    (_, tel_a, body_a, _), (_, tel_b, body_b, _) = runs
    np.testing.assert_array_equal(
        [a.to_array() for a in body_a.sent], [a.to_array() for a in body_b.sent]
    )
    for column in ("t", "grip_force_n", "plan_age_s", "cmd_width_m"):
        np.testing.assert_array_equal(tel_a.array(column), tel_b.array(column))
    other = run_virtual(in_process(targets=FAR_APART), duration_s=2.0, body_kwargs={"seed": 8})
    assert not np.array_equal(tel_a.array("t"), []) and other[2].rng is not body_a.rng


@pytest.mark.parametrize("in_flight", [3, 1])
def test_a_slow_planner_is_pipelined_so_plans_keep_arriving_at_the_replan_rate(in_flight):
    # 1.3 s latency (e.g. a 1 s injected delay), plans valid 2 s, one requested every 0.5 s.
    config = RuntimeConfig(max_plans_in_flight=in_flight)
    summary, telemetry, _, _ = run_virtual(
        in_process(latency_s=1.3, valid_s=2.0), duration_s=5.0, config=config
    )
    arrivals = np.array([e["t"] for e in telemetry.events if e["type"] == "plan"])
    t, following = telemetry.array("t"), telemetry.array("following")
    if in_flight > 1:
        np.testing.assert_allclose(np.diff(arrivals), 0.5, atol=0.011)
        assert following[t > arrivals[0] + 0.01].min() == 1.0  # never stale again
    else:
        assert np.diff(arrivals).min() > 1.2  # one at a time: the plan runs out in between
        assert following[t > arrivals[0] + 0.01].min() == 0.0
