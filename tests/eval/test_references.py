"""The oracle's state alignment: monotone, and never past its window in one call."""

from __future__ import annotations

import numpy as np
import pytest

from dualctl.eval.references import StateAlignment
from dualctl.types import PROPRIO_DIM


def expert_descends_then_lifts() -> np.ndarray:
    """(60, PROPRIO_DIM) proprio at 20 Hz: the hand goes down from 0.15 m to 0.03 m over 1.5 s,
    closes for 0.5 s, then lifts back to 0.15 m closed over 1 s."""
    z = np.concatenate(
        [np.linspace(0.15, 0.03, 30), np.full(10, 0.03), np.linspace(0.03, 0.15, 20)]
    )
    width = np.concatenate([np.full(30, 0.085), np.linspace(0.085, 0.04, 10), np.full(20, 0.04)])
    proprio = np.zeros((len(z), PROPRIO_DIM), np.float32)
    proprio[:, 2], proprio[:, 4] = z, width
    return proprio


def robot_at(z: float, width: float) -> np.ndarray:
    proprio = np.zeros(PROPRIO_DIM, np.float32)
    proprio[2], proprio[4] = z, width
    return proprio


def test_a_lagging_robot_is_not_matched_to_a_later_phase_that_looks_alike():
    expert = expert_descends_then_lifts()
    whole_rest = StateAlignment(expert, step_s=0.05, window_s=0.0)
    windowed = StateAlignment(expert, step_s=0.05, window_s=1.0)
    for alignment in (whole_rest, windowed):
        alignment.step(robot_at(0.10, 0.085))  # on the way down, matched early
        alignment.last = 14  # the match ran a little ahead of a slow robot
    # The robot, still open, is back up at 0.14 m: the closest state past step 14 is the end of
    # the lift (closed, 0.15 m), 3 s of expert time on; the window keeps the match near.
    assert whole_rest.step(robot_at(0.14, 0.085)) >= 55
    assert windowed.step(robot_at(0.14, 0.085)) <= 14 + 20


def test_the_window_still_follows_a_robot_that_keeps_pace():
    expert = expert_descends_then_lifts()
    alignment = StateAlignment(expert, step_s=0.05, window_s=1.0)
    matches = np.array([alignment.step(pose) for pose in expert])
    assert np.all(np.abs(matches - np.arange(len(expert))) <= 1)  # ties where the hand rests
    assert matches[-1] == len(expert) - 1


def test_the_match_never_goes_back():
    alignment = StateAlignment(expert_descends_then_lifts(), step_s=0.05, window_s=1.0)
    ahead = alignment.step(robot_at(0.05, 0.085))
    assert alignment.step(robot_at(0.15, 0.085)) == ahead


@pytest.mark.parametrize(("field", "kwargs"), [("step_s", {"step_s": 0.0}),
                                                ("window_s", {"window_s": -1.0})])  # fmt: skip
def test_bad_timing_is_refused_by_name(field, kwargs):
    with pytest.raises(ValueError, match=field):
        StateAlignment(expert_descends_then_lifts(), **kwargs)
