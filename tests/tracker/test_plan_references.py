from types import SimpleNamespace

import numpy as np

from dualctl.data.dataset import REFERENCE_CAMERA
from dualctl.tracker.plan_references import plan_starts, shown_frames, with_planner_references

from .conftest import RATE_HZ, synthetic_episode

TIMES = np.arange(41) / RATE_HZ  # 0 .. 2 s


def labelled_plans(count: int, frames: int = 8) -> np.ndarray:
    """(count, frames, 1, 1, 3) plans whose pixels read 10 * plan + frame."""
    values = 10 * np.arange(count)[:, None] + np.arange(frames)[None, :]
    return np.broadcast_to(values[..., None, None, None], (count, frames, 1, 1, 3)).astype(np.uint8)


def test_plans_start_at_the_first_step_then_every_period_from_the_phase():
    np.testing.assert_array_equal(plan_starts(TIMES, 0.5, 0.2), [0, 4, 14, 24, 34])
    np.testing.assert_array_equal(plan_starts(TIMES, 0.5, 0.0), [0, 10, 20, 30, 40])


def test_each_step_sees_the_latest_arrived_plan_at_now_plus_lookahead():
    starts = plan_starts(TIMES, 0.5, 0.2)  # plans conditioned at 0, 0.2, 0.7, 1.2, 1.7 s
    shown = shown_frames(TIMES, starts, labelled_plans(len(starts)), 0.25, 0.3, 0.5)[:, 0, 0, 0]
    # t = 0: nothing has arrived, the first plan stands in; 0.5 s ahead is its frame 1 (0.5 s).
    assert shown[0] == 1
    # t = 0.45: the plan from 0.2 s arrives at 0.5 s, so still plan 0; 0.95 s -> frame 3 (1 s).
    assert shown[9] == 3
    # t = 0.5: the 0.2 s plan has arrived; 0.8 s after it -> frame 2 (0.75 s).
    assert shown[10] == 12
    # t = 2.0: the 1.7 s plan; 0.8 s after it -> frame 2.
    assert shown[40] == 42


def test_a_copy_keeps_the_labels_and_records_the_planner_frames_as_its_reference():
    episode = synthetic_episode(0, steps=30)
    episode.images["wrist"] = 255 - episode.images["scene"]
    episode.meta["instruction"] = "lift the red block"
    asked = []

    def imagine(frames, proprio, instructions):
        asked.append(instructions)
        return np.repeat(frames[:, None], 8, axis=1) // 2  # a recognisable "plan"

    planner = SimpleNamespace(
        config=SimpleNamespace(camera="scene", horizon=8, horizon_s=2.0), imagine=imagine
    )
    copy = with_planner_references(episode, planner, np.random.default_rng(0), 0.5, 0.3, 0.5)
    np.testing.assert_array_equal(copy.action, episode.action)
    np.testing.assert_array_equal(copy.images["scene"], episode.images["scene"])
    np.testing.assert_array_equal(copy.images["wrist"], episode.images["wrist"])
    reference = copy.images[REFERENCE_CAMERA]
    assert reference.shape == episode.images["scene"].shape
    assert reference.max() <= episode.images["scene"].max() // 2
    assert asked[0] == ["lift the red block"] * len(asked[0])
    assert "planner" in copy.meta["reference_source"]
    assert copy.meta["reference_camera"] == "scene"  # the planner's, checked at training
    copy.validate()
