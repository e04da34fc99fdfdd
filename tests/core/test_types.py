import numpy as np
import pytest

from dualctl.types import (
    ACTION_DIM,
    GRIPPER_FORCE_RANGE,
    GRIPPER_STROKE_M,
    PROPRIO_DIM,
    TACTILE_SHAPE,
    Action,
    GripperCommand,
    Observation,
    Plan,
)


def make_observation(t=1.5):
    rng = np.random.default_rng(0)
    return Observation(
        timestamp=t,
        images={"scene": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)},
        proprio=rng.normal(size=PROPRIO_DIM),
        wrench=rng.normal(size=6),
        tactile=rng.random(TACTILE_SHAPE),
        stamps={"image/scene": t - 0.03, "proprio": t, "wrench": t, "tactile": t - 0.001},
    )


def test_action_round_trips_through_flat_vector():
    action = Action(np.array([0.1, -0.2, 0.05, 0.3]), GripperCommand(0.04, 0.1, 60.0), 2.0)
    vector = action.to_array()
    assert vector.shape == (ACTION_DIM,) and vector.dtype == np.float32
    again = Action.from_array(vector, timestamp=2.0)
    np.testing.assert_allclose(again.to_array(), vector)
    assert again.gripper == GripperCommand(
        pytest.approx(0.04), pytest.approx(0.1), pytest.approx(60.0)
    )


def test_action_rejects_wrong_shape_and_detects_nan():
    with pytest.raises(ValueError, match="ee_velocity"):
        Action(np.zeros(3), GripperCommand(0.0, 0.1, 50.0))
    bad = Action(np.array([np.nan, 0, 0, 0]), GripperCommand(0.0, 0.1, 50.0))
    assert not bad.is_finite()


def test_gripper_command_clips_to_device_range():
    clipped = GripperCommand(0.2, 5.0, 1000.0).clipped()
    assert clipped.width_m == GRIPPER_STROKE_M
    assert clipped.force_n == GRIPPER_FORCE_RANGE[1]
    assert clipped.speed_mps == 0.15


def test_gripper_command_clipping_keeps_nan_for_the_supervisor_to_reject():
    clipped = GripperCommand(np.nan, 0.01, np.nan).clipped()
    assert np.isnan(clipped.width_m) and np.isnan(clipped.force_n)
    assert clipped.speed_mps == 0.02
    low = GripperCommand(-0.1, 0.1, 0.0).clipped()
    assert low.width_m == 0.0 and low.force_n == GRIPPER_FORCE_RANGE[0]


def test_observation_round_trips_through_arrays():
    obs = make_observation()
    again = Observation.from_arrays(obs.to_arrays())
    assert again.timestamp == obs.timestamp and again.stamps == obs.stamps
    np.testing.assert_array_equal(again.images["scene"], obs.images["scene"])
    np.testing.assert_array_equal(again.tactile, obs.tactile)
    assert again.age(2.0) == pytest.approx(2.0 - 1.47)


def test_observation_rejects_bad_image():
    with pytest.raises(ValueError, match="images"):
        Observation(0.0, {"scene": np.zeros((8, 8), np.uint8)}, np.zeros(PROPRIO_DIM),
                    np.zeros(6), np.zeros(TACTILE_SHAPE))  # fmt: skip


def test_plan_round_trips_and_knows_staleness():
    frames = np.zeros((8, 64, 64, 3), np.uint8)
    plan = Plan(frames, times=1.0 + 0.25 * np.arange(8), conditioned_at=1.0, valid_until=3.0,
                instruction="lift the block")  # fmt: skip
    again = Plan.from_arrays(plan.to_arrays())
    assert again.instruction == "lift the block" and again.horizon == 8
    np.testing.assert_array_equal(again.times, plan.times)
    assert not again.is_stale(2.9) and again.is_stale(3.1)


def test_plan_rejects_unordered_times():
    with pytest.raises(ValueError, match="increasing"):
        Plan(np.zeros((2, 4, 4, 3), np.uint8), times=[1.0, 0.5], conditioned_at=0, valid_until=2)
