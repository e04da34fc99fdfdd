import numpy as np
import pytest

from dualctl.errors import ConfigError
from dualctl.runtime.plan_buffer import PlanBuffer, validate_plan
from dualctl.types import PROPRIO_DIM, TACTILE_SHAPE, Observation, Plan


def make_plan(conditioned_at, value, horizon=8, dt=0.25, valid_s=2.5, size=4):
    times = conditioned_at + dt * np.arange(1, horizon + 1)
    frames = np.zeros((horizon, size, size, 3), np.uint8)
    return Plan(frames, times, conditioned_at, conditioned_at + valid_s), np.full(
        (horizon, 2), value, np.float32
    )


def test_a_late_plan_is_stitched_onto_the_reference_being_followed():
    buffer = PlanBuffer(blend_s=0.25, max_age_s=4.0)
    old, old_latents = make_plan(0.0, 0.0)
    old_latents[:, 0] = np.linspace(0.0, 1.0, 8)  # the old reference keeps moving
    assert buffer.install(old, old_latents, now=0.3, lookahead_s=0.1) == "swapped"
    before = buffer.reference(0.8 + 0.1)

    new, new_latents = make_plan(0.5, 5.0)  # conditioned at 0.5, arrives late at 0.8
    assert buffer.install(new, new_latents, now=0.8, lookahead_s=0.1) == "stitched"
    # The target the tracker is heading for does not jump ...
    np.testing.assert_allclose(buffer.reference(0.9), before, atol=1e-6)
    # ... it blends smoothly (no step bigger than the blend's own slope) ...
    refs = np.array([buffer.reference(t)[1] for t in np.arange(0.9, 1.2, 0.005)])
    assert np.abs(np.diff(refs)).max() < 5.0 * 1.5 * 0.005 / 0.25 + 1e-3
    # ... and ends on the new plan.
    np.testing.assert_allclose(buffer.reference(1.2), [5.0, 5.0], atol=1e-6)
    np.testing.assert_allclose(buffer.reference(2.5), [5.0, 5.0], atol=1e-6)


def test_without_a_valid_plan_the_new_one_is_swapped_in_and_old_plans_are_dropped():
    buffer = PlanBuffer(blend_s=0.25, max_age_s=4.0)
    first, latents = make_plan(0.0, 1.0, valid_s=1.0)
    buffer.install(first, latents, now=0.3, lookahead_s=0.1)
    assert buffer.is_stale(1.5)
    second, latents2 = make_plan(1.2, 2.0)
    assert buffer.install(second, latents2, now=1.5, lookahead_s=0.1) == "swapped"
    np.testing.assert_allclose(buffer.reference(1.6), [2.0, 2.0])
    assert buffer.install(first, latents, now=1.6, lookahead_s=0.1) == "dropped"


def test_plans_go_stale_at_valid_until_and_at_the_age_limit():
    buffer = PlanBuffer(blend_s=0.25, max_age_s=1.0)
    assert buffer.is_stale(0.0) and buffer.reference(0.0) is None
    plan, latents = make_plan(0.0, 1.0, valid_s=2.0)
    buffer.install(plan, latents, now=0.2, lookahead_s=0.1)
    assert not buffer.is_stale(0.9)
    assert buffer.is_stale(1.1)  # older than max_age_s although valid_until is 2.0


def test_validate_plan_names_what_is_wrong():
    observation = Observation(
        1.0, {"scene": np.zeros((4, 4, 3), np.uint8)}, np.zeros(PROPRIO_DIM), np.zeros(6),
        np.zeros(TACTILE_SHAPE),
    )  # fmt: skip
    good, _ = make_plan(1.0, 0.0)
    assert validate_plan(good, observation) is None
    other_time, _ = make_plan(0.5, 0.0)
    assert "conditioned_at" in validate_plan(other_time, observation)
    wrong_size, _ = make_plan(1.0, 0.0, size=8)
    assert "camera gives" in validate_plan(wrong_size, observation)
    assert "expected a Plan" in validate_plan({"frames": 1}, observation)
    expired, _ = make_plan(1.0, 0.0, valid_s=-1.0)
    assert "valid_until" in validate_plan(expired, observation)


@pytest.mark.parametrize("blend_s", [0.0, 0.5])
def test_stitching_keeps_the_new_plans_tail(blend_s):
    buffer = PlanBuffer(blend_s=blend_s, max_age_s=4.0)
    a, la = make_plan(0.0, 0.0)
    buffer.install(a, la, now=0.3, lookahead_s=0.1)
    b, lb = make_plan(0.4, 3.0)
    buffer.install(b, lb, now=0.6, lookahead_s=0.1)
    assert buffer.time_left(0.6) == pytest.approx(b.times[-1] - 0.6)
    np.testing.assert_allclose(buffer.reference(b.times[-1]), [3.0, 3.0])


def ramp_plan(conditioned_at):
    """A plan whose latent's first value is its own time after conditioning (0.25 .. 2 s)."""
    plan, latents = make_plan(conditioned_at, 0.0)
    latents[:, 0] = plan.times - conditioned_at
    return plan, latents


def test_clock_alignment_places_the_robot_at_now_whatever_it_sees():
    buffer = PlanBuffer(blend_s=0.25, max_age_s=4.0)
    buffer.install(*ramp_plan(0.0), now=0.3, lookahead_s=0.5)
    buffer.align(np.array([0.25, 0.0], np.float32), now=1.3)  # ignored by the clock
    assert buffer.position(1.3) == 1.3


def test_latent_alignment_follows_a_lagging_robot_and_never_goes_back():
    buffer = PlanBuffer(blend_s=0.25, max_age_s=4.0, alignment="latent")
    plan, latents = ramp_plan(0.0)
    assert buffer.install(plan, latents, now=1.3, lookahead_s=0.5) == "swapped"
    assert buffer.position(1.3) == 0.0  # where the plan starts: the robot's view at 0 s
    buffer.align(np.array([0.5, 0.0], np.float32), now=1.3)  # it has done 0.5 s of the plan
    assert buffer.position(1.3) == pytest.approx(0.5)
    np.testing.assert_allclose(buffer.reference(buffer.position(1.3) + 0.5), [1.0, 0.0])
    buffer.align(np.array([0.1, 0.0], np.float32), now=1.4)  # looks earlier: stays put
    assert buffer.position(1.4) == pytest.approx(0.5)
    buffer.align(np.array([1.9, 0.0], np.float32), now=1.45)  # looks later than the clock
    assert buffer.position(1.45) == pytest.approx(1.45)
    later, later_latents = ramp_plan(1.0)  # a new plan starts where the robot was at 1 s
    buffer.install(later, later_latents, now=2.3, lookahead_s=0.5)
    assert buffer.position(2.3) == 1.0
    np.testing.assert_allclose(buffer.reference(1.0 + 0.5), [0.5, 0.0])


def test_plan_alignment_must_be_clock_or_latent():
    with pytest.raises(ConfigError, match="plan_alignment"):
        PlanBuffer(blend_s=0.25, max_age_s=4.0, alignment="state")


def test_latents_at_many_times_match_one_at_a_time():
    plan, latents = ramp_plan(0.0)
    latents[:, 1] = np.cos(plan.times)
    buffer = PlanBuffer(blend_s=0.25, max_age_s=4.0)
    buffer.install(plan, latents, now=0.3, lookahead_s=0.5)
    ts = np.array([-1.0, 0.25, 0.3, 1.01, 1.99, 2.0, 5.0])
    expected = np.stack([buffer.trajectory.at(t) for t in ts])
    np.testing.assert_allclose(buffer.trajectory.at_many(ts), expected, atol=1e-6)
