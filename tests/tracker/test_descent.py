"""The guarded descent: an open hand the head holds still over the object goes down until
something stops it, then closes, and stays closed while the grip reflex holds; it leaves the
head alone otherwise, and the tracker wires it in only when asked."""

import numpy as np
import pytest

from dualctl.data.dataset import EpisodeStore
from dualctl.tracker import descent as d
from dualctl.tracker.config import RUN_KEYS, GraspPoseConfig
from dualctl.tracker.descent import GuardedDescent
from dualctl.tracker.frame_reader import ReaderConfig
from dualctl.tracker.grasp_pose import GraspPoseNet, save_grasp_pose
from dualctl.tracker.jepa import JepaTracker
from dualctl.types import (
    GRIPPER_STROKE_M,
    PROPRIO_DIM,
    PROPRIO_FIELDS,
    TACTILE_SHAPE,
    Action,
    GripperCommand,
    Observation,
)

from .test_model import trained_parts

X, Y, Z, WIDTH = (PROPRIO_FIELDS.index(k) for k in ("ee_x", "ee_y", "ee_z", "width"))
TICK = 0.005
OBJECT = np.array([0.03, 0.04])


def observe(t, xy=(0.03, 0.04), z=0.06, width=GRIPPER_STROKE_M, wrist=0.0, touch=0.0):
    proprio = np.zeros(PROPRIO_DIM, np.float32)
    proprio[[X, Y]], proprio[Z], proprio[WIDTH] = xy, z, width
    tactile = np.zeros(TACTILE_SHAPE, np.float32)
    tactile[0, 0, 0, 0] = touch
    wrench = np.array([0.0, 0.0, -wrist, 0, 0, 0], np.float32)
    return Observation(t, {}, proprio, wrench, tactile)


def head(velocity=(0.0, 0.0, 0.0), width=GRIPPER_STROKE_M) -> Action:
    return Action(np.array([*velocity, 0.0]), GripperCommand(width, 0.1, 20.0))


def hover(descent, seconds, start=0.0, z=0.06, **kwargs) -> tuple[Action, float]:
    """Run ``seconds`` of ticks of a still head over the object; the last action and time."""
    t, action = start, None
    for _ in range(round(seconds / TICK)):
        action = descent(head(**kwargs), observe(t, z=z), OBJECT, "open")
        t += TICK
    return action, t


def test_a_still_open_hand_over_the_object_goes_down_after_a_while():
    descent = GuardedDescent()
    action, _ = hover(descent, d.STILL_S - 0.05)
    assert descent.phase == "watching" and action.ee_velocity[2] == 0.0
    action, _ = hover(descent, 0.1, start=d.STILL_S - 0.05)
    assert descent.phase == "descending"
    assert action.ee_velocity[2] == pytest.approx(-d.DESCENT_SPEED)
    assert action.gripper.width_m == GRIPPER_STROKE_M


@pytest.mark.parametrize(
    "case",
    [dict(xy=(0.05, 0.04)), dict(z=0.15), dict(velocity=(0.0, 0.0, -0.05)), dict(closing=True)],
    ids=["off-centre", "high-up", "head-moving", "head-closing"],
)
def test_the_head_keeps_the_arm_unless_it_is_still_open_centred_and_near(case):
    descent = GuardedDescent()
    velocity = case.get("velocity", (0.0, 0.0, 0.0))
    width = 0.0 if case.get("closing") else GRIPPER_STROKE_M
    for i in range(round(2 * d.STILL_S / TICK)):
        obs = observe(i * TICK, xy=case.get("xy", (0.03, 0.04)), z=case.get("z", 0.06))
        action = descent(head(velocity, width), obs, OBJECT, "open")
    assert descent.phase == "watching"
    np.testing.assert_allclose(action.ee_velocity[:3], velocity, atol=1e-7)


def bob(descent, seconds, amplitude_m, start=0.0, z=0.12) -> tuple[Action, float]:
    """``seconds`` of an open hand centred over the object while the head bobs it up and down
    by ``amplitude_m`` at 5 cm/s (never still); the last action and time."""
    t, action = start, None
    for _ in range(round(seconds / TICK)):
        phase = (t % (4 * amplitude_m / 0.05)) / (4 * amplitude_m / 0.05)
        height = z + amplitude_m * (1 - abs(4 * phase - 2))
        vz = 0.05 if phase < 0.5 else -0.05
        action = descent(head((0.0, 0.0, vz)), observe(t, z=height), OBJECT, "open")
        t += TICK
    return action, t


def test_an_open_hand_bobbing_over_the_object_goes_down_after_a_while():
    # Closed loop, Fragile 32: the head bobbed the open hand 8-12 cm over the block.
    descent = GuardedDescent()
    bob(descent, d.HOVER_S - 0.05, amplitude_m=0.02)
    assert descent.phase == "watching"
    action, _ = bob(descent, 0.1, amplitude_m=0.02, start=d.HOVER_S - 0.05)
    assert descent.phase == "descending"
    assert action.ee_velocity[2] == pytest.approx(-d.FAST_DESCENT_SPEED), "high up: fast"


def test_a_high_hand_goes_down_fast_until_something_could_reach_it():
    descent, t = GuardedDescent(), 0.0
    for _ in range(round((d.STILL_S + 0.01) / TICK)):
        action = descent(head(), observe(t, z=0.09), OBJECT, "open")
        t += TICK
    assert descent.phase == "descending"
    assert action.ee_velocity[2] == pytest.approx(-d.FAST_DESCENT_SPEED)
    action = descent(head(), observe(t, z=d.FAST_ABOVE_Z_M - 0.001), OBJECT, "open")
    assert action.ee_velocity[2] == pytest.approx(-d.DESCENT_SPEED)


def test_a_hand_creeping_down_slower_than_the_hover_drop_goes_down_after_a_while():
    # Oracle bench, Slippery 4005: the head crept the open hand down ~0.8 cm/s from 12 cm.
    descent, t = GuardedDescent(), 0.0
    creep = 0.8 * d.HOVER_DROP_M / d.HOVER_S
    while descent.phase == "watching" and t < 3 * d.HOVER_S:
        descent(head((0.0, 0.0, -creep)), observe(t, z=0.12 - creep * t), OBJECT, "open")
        t += TICK
    assert descent.phase == "descending"
    assert t == pytest.approx(d.HOVER_S, abs=2 * TICK)


def test_a_hand_coming_down_over_the_object_or_too_high_is_left_to_the_head():
    descent, t = GuardedDescent(), 0.0
    for _ in range(round(2 * d.HOVER_S / TICK)):  # coming down at 2 cm/s, centred
        descent(head((0.0, 0.0, -0.02)), observe(t, z=0.14 - 0.02 * t), OBJECT, "open")
        t += TICK
    assert descent.phase == "watching"
    bob(descent, 2 * d.HOVER_S, amplitude_m=0.02, z=d.HOVER_Z_M)  # bobbing, but high up
    assert descent.phase == "watching"


def test_once_the_head_has_carried_the_object_by_itself_the_descent_is_over():
    descent = GuardedDescent()
    descent(head(), observe(0.0), OBJECT, "carrying")
    hover(descent, 2 * d.STILL_S, start=TICK)
    assert descent.phase == "done"


def shut_hover(descent, touch=0.0) -> float:
    """A hand the head keeps shut and still over the object, the reflex closing; the end time."""
    t = 0.0
    for _ in range(round((d.STILL_S + 0.01) / TICK)):
        descent(head(width=0.0), observe(t, width=0.0, touch=touch), OBJECT, "closing")
        t += TICK
    return t


def test_a_hand_shut_on_nothing_over_the_object_opens_in_place_then_goes_down():
    descent = GuardedDescent()
    t = shut_hover(descent)
    assert descent.phase == "opening"
    action = descent(head(width=0.0), observe(t, width=0.03), OBJECT, "open")
    assert action.gripper.width_m == GRIPPER_STROKE_M and not action.ee_velocity[:3].any()
    action = descent(head(width=0.0), observe(t + TICK), OBJECT, "open")  # open now
    assert descent.phase == "descending"
    assert action.ee_velocity[2] == pytest.approx(-d.DESCENT_SPEED)


def test_a_shut_hand_that_feels_something_is_left_to_the_reflex():
    descent = GuardedDescent()
    shut_hover(descent, touch=5.0)
    assert descent.phase == "watching"


def test_no_estimate_of_the_object_no_descent():
    descent = GuardedDescent()
    for i in range(round(2 * d.STILL_S / TICK)):
        descent(head(), observe(i * TICK), None, "open")
    assert descent.phase == "watching"


def descending() -> tuple[GuardedDescent, float]:
    descent = GuardedDescent()
    _, t = hover(descent, d.STILL_S + 0.01)
    assert descent.phase == "descending"
    return descent, t


def test_a_push_on_the_wrist_stops_the_descent_and_closes_the_hand_in_place():
    descent, t = descending()
    z = 0.06
    for _ in range(round(d.SETTLE_S / TICK) + 2):  # going down freely
        z -= d.DESCENT_SPEED * TICK
        t += TICK
        action = descent(head(), observe(t, z=z), OBJECT, "open")
    assert descent.phase == "descending"
    action = descent(head(), observe(t + TICK, z=z, wrist=2 * d.STOP_WRIST_N), OBJECT, "open")
    assert descent.phase == "grasping"
    assert action.gripper.width_m == 0.0 and not action.ee_velocity[:3].any()


def test_an_arm_that_stops_going_down_rises_off_the_floor_then_closes():
    descent, t = descending()
    for _ in range(round((d.SETTLE_S + d.BLOCKED_S) / TICK) + 2):  # held at the floor
        t += TICK
        action = descent(head(), observe(t, z=0.02), OBJECT, "open")
    assert descent.phase == "backing off"
    assert action.ee_velocity[2] == pytest.approx(d.DESCENT_SPEED)
    assert action.gripper.width_m == GRIPPER_STROKE_M, "still open: the tips are on the table"
    action = descent(head(), observe(t + TICK, z=0.02 + d.BACKOFF_M / 2), OBJECT, "open")
    assert descent.phase == "backing off" and action.ee_velocity[2] > 0.0
    action = descent(head(), observe(t + 2 * TICK, z=0.02 + d.BACKOFF_M), OBJECT, "open")
    assert descent.phase == "grasping"
    assert action.gripper.width_m == 0.0 and not action.ee_velocity[:3].any()


def test_a_touch_stops_the_descent_at_once():
    descent, t = descending()
    descent(head(), observe(t + TICK, z=0.05, touch=1.0), OBJECT, "open")
    assert descent.phase == "grasping"


def test_the_head_moving_away_ends_the_descent():
    descent, t = descending()
    action = descent(head((0.1, 0.0, 0.0)), observe(t + TICK), OBJECT, "open")
    assert descent.phase == "watching"
    assert action.ee_velocity[0] == pytest.approx(0.1)


def grasping() -> tuple[GuardedDescent, float]:
    descent, t = descending()
    descent(head(), observe(t + TICK, touch=1.0), OBJECT, "open")
    assert descent.phase == "grasping"
    return descent, t + TICK


def test_the_hand_stays_closed_while_the_reflex_holds_then_the_head_has_it_again():
    descent, t = grasping()
    for state in ("closing", "probing", "carrying", "carrying"):
        t += TICK
        action = descent(head((0.0, 0.0, 0.03), width=GRIPPER_STROKE_M), observe(t), OBJECT, state)
        assert action.gripper.width_m == 0.0, state
    assert action.ee_velocity[2] == pytest.approx(0.03), "the head moves the closed hand"
    action = descent(head(width=GRIPPER_STROKE_M), observe(t + TICK), OBJECT, "releasing")
    assert descent.phase == "done" and action.gripper.width_m == GRIPPER_STROKE_M
    hover(descent, 2 * d.STILL_S, start=t + 2 * TICK)
    assert descent.phase == "done", "one placed object, one descent"


def test_a_missed_grasp_may_try_again_but_not_forever():
    t = 0.0
    descent = GuardedDescent()
    for attempt in range(d.ATTEMPTS):
        _, t = hover(descent, d.STILL_S + 0.01, start=t)
        assert descent.phase == "descending", attempt
        descent(head(), observe(t, touch=1.0), OBJECT, "open")
        descent(head(), observe(t + TICK, touch=1.0), OBJECT, "closing")
        descent(head(), observe(t + 2 * TICK), OBJECT, "releasing")  # the reflex gave up
        assert descent.phase == "watching"
        t += 3 * TICK
    hover(descent, 2 * d.STILL_S, start=t)
    assert descent.phase == "watching" and descent.attempts == d.ATTEMPTS


def test_the_tracker_runs_the_descent_by_default_with_a_grasp_pose_reader(
    tmp_path, synthetic_dataset
):
    assert "guarded_descent" in RUN_KEYS
    config, net = trained_parts(EpisodeStore.load(synthetic_dataset))
    assert config.guarded_descent and JepaTracker(net, config).descent is None, "no reader"
    save_grasp_pose(tmp_path / "reader", GraspPoseNet(ReaderConfig(image_size=32)).eval())
    config.grasp_pose = GraspPoseConfig(checkpoint=str(tmp_path / "reader"))
    config.guarded_descent = False
    assert JepaTracker(net, config).descent is None
    config.guarded_descent = True
    tracker = JepaTracker(net, config)
    assert isinstance(tracker.descent, GuardedDescent)
    tracker.descent.phase = "grasping"
    tracker.reset()
    assert tracker.descent.phase == "watching"
