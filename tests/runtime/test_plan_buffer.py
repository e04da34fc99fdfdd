import numpy as np
import pytest

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
