"""The grip-force reflex: the probe finds a force that holds without breaking, the wrapper owns
the grasp only while the head closes, and it runs in the tracker only with tactile input."""

import warnings

import numpy as np
import pytest
from dualctl.sim.config import SimConfig
from dualctl.sim.experts import Expert, run_blind
from dualctl.sim.tasks import sample_variation
from dualctl.sim.world import World

from dualctl.tracker.grip import (
    BUMP_BACKOFF_SPEED,
    BUMP_CLEAR_M,
    BUMP_DESCENT_SPEED,
    CARRIED_ACROSS_M,
    CARRY_ACCEL,
    GROW,
    HEAVY_GRIP_N,
    HOVER_S,
    LIFTED_M,
    LOWER_SPEED,
    MARGIN,
    PICK_HEIGHT_TOLERANCE_M,
    PROBE_SPEED,
    REGRIP_OPEN_M,
    REGRIP_RISE_M,
    REGRIP_SPEED,
    RETREAT_M,
    RETREAT_SPEED,
    SET_DOWN_BAND_M,
    SET_DOWN_S,
    SUPPORTED_WRIST_N,
    GripReflex,
    SlipProbe,
    _median,
    felt_forces,
)
from dualctl.tracker.jepa import JepaTracker
from dualctl.types import (
    GRIPPER_FORCE_RANGE,
    GRIPPER_STROKE_M,
    PROPRIO_DIM,
    PROPRIO_FIELDS,
    TACTILE_SHAPE,
    Action,
    GripperCommand,
)

from .test_model import small_config, trained_parts


def coulomb_touch(normal: float, weight: float, mu: float, lifting_for: int) -> float:
    """Shear (N per finger) on a slowly lifted object: it builds over a few steps after each
    change and saturates at the friction limit, or at half the weight once carried."""
    ceiling = min(mu * normal, weight / 2)
    return ceiling * min(1.0, 0.4 * (lifting_for + 1))


@pytest.mark.parametrize("weight,mu", [(6.0, 0.2), (15.0, 0.15), (40.0, 0.25), (2.0, 0.8)])
def test_slip_probe_ends_between_hold_and_break_force(weight, mu):
    hold = weight / (2 * mu)
    probe = SlipProbe()
    since_change, force = 0, probe.force
    for _ in range(200):
        probe.step(force, coulomb_touch(force, weight, mu, since_change))
        since_change = 0 if probe.force != force else since_change + 1
        force = probe.force
        if probe.carried:
            break
    assert probe.carried
    assert max(hold, 20.0) <= probe.force <= max(1.6 * hold, 1.6 * 20.0)


def steady_steps(probe: SlipProbe, ratio_of_normal, steps: int = 2) -> None:
    """``steps`` probe steps, each pressing with the probe's force and feeling a shear of
    ``ratio_of_normal(normal)``, repeated so the ratio counts as steady."""
    for _ in range(steps):
        normal = probe.force
        probe.step(normal, ratio_of_normal(normal))


def test_slip_probe_does_not_call_a_sliding_contact_carried_when_its_ratio_drifts_down():
    # measured in the sim: a pad sliding on a block at mu 0.175 reads 0.165 a few raises later
    probe = SlipProbe()
    steady_steps(probe, lambda n: 0.175 * n)
    for mu in (0.172, 0.168, 0.165, 0.160):
        steady_steps(probe, lambda n, mu=mu: mu * n)
    assert not probe.carried and probe.force > 2.5 * 20.0


def test_carried_probe_raises_once_more_when_the_object_slips_again():
    probe = SlipProbe()
    steady_steps(probe, lambda n: 0.2 * n)  # slipping: raise
    carried_at = probe.force
    steady_steps(probe, lambda n: 0.2 * carried_at / 1.25 / 2 * 2)  # weight held: carried
    assert probe.carried
    held = probe.force
    steady_steps(probe, lambda n: 0.1 * n)  # well inside the cone: nothing changes
    assert probe.force == held
    steady_steps(probe, lambda n: 0.2 * n, steps=6)  # on the cone again (a faster lift)
    assert probe.force == pytest.approx(held * 1.25)


def run_ticks(probe: SlipProbe, ratio_at, seconds: float, start: float = 0.0) -> float:
    """Feed ``probe`` 200 Hz ticks pressing with its force and feeling ``ratio_at(t)`` x the
    normal as shear, a probe step every 10 ticks (at the 20 Hz the reflex steps it) with that
    tick's reading; returns the time reached (s)."""
    t = start
    for tick in range(int(round(seconds * 200))):
        t = start + tick / 200
        normal = probe.force
        probe.feel(t, normal, ratio_at(t) * normal)
        if tick % 10 == 9:
            probe.step(normal, ratio_at(t) * normal)
    return t


def stick_slip(t: float) -> float:
    """Measured on a heavy sim block sliding down the pads: shear/normal jumps between the
    cone (0.198) and a third under it every 0.05 s."""
    return 0.198 if int(t / 0.05) % 2 == 0 else 0.12


def test_a_block_in_stick_slip_is_raised_not_called_carried():
    steady = SlipProbe()
    steady_steps(steady, lambda n: 0.198 * n)  # the cone, known from a steady slide
    for _ in range(2):
        steady_steps(steady, lambda n: 0.12 * n)  # a median caught in a stick phase
    assert steady.carried  # what the median alone concludes
    probe = SlipProbe(stick_slip_s=0.15)
    steady_steps(probe, lambda n: 0.198 * n)
    start = probe.force
    run_ticks(probe, stick_slip, 1.0)
    assert not probe.carried
    assert probe.force >= start * 1.25**3  # a raise every window or so


def test_a_probe_at_the_grippers_most_force_stops_probing():
    # Closed loop, Lift 25: at 235 N the block rose with the hand, its touch too unsteady for
    # the stick-slip test; with no raise left, probing on only kept the lift at 2 cm/s.
    probe = SlipProbe(start_force=GRIPPER_FORCE_RANGE[1] / GROW, stick_slip_s=0.15)
    steady_steps(probe, lambda n: 0.198 * n)  # the cone: one raise, to the most
    assert probe.force == GRIPPER_FORCE_RANGE[1] and not probe.carried
    run_ticks(probe, stick_slip, 1.0)
    assert probe.carried and probe.force == GRIPPER_FORCE_RANGE[1]


def test_a_carried_block_is_called_carried_once_a_window_of_ticks_agrees():
    probe = SlipProbe(stick_slip_s=0.15)
    steady_steps(probe, lambda n: 0.2 * n)  # slipping: one raise
    t = run_ticks(probe, lambda t: 0.1, 0.1)
    assert not probe.carried  # the median is under the cone, but only 0.1 s of ticks
    run_ticks(probe, lambda t: 0.1, 0.1, start=t + 0.005)
    assert probe.carried


def test_the_stick_slip_window_judges_the_latest_ticks_only():
    probe = SlipProbe(stick_slip_s=0.15)
    steady_steps(probe, lambda n: 0.198 * n)  # the cone
    force = probe.force
    for tick in range(1000):  # 5 s sliding with the fingers short of the force: no raise
        t = tick / 200
        probe.feel(t, 0.8 * force, stick_slip(t) * 0.8 * force)
    assert probe.force == force and not probe.carried
    for tick in range(40):  # then held for 0.2 s between two probe steps
        probe.feel(5.0 + tick / 200, force, 0.1 * force)
    run_ticks(probe, lambda t: 0.1, 0.1, start=5.2)  # judged on the held ticks alone
    assert probe.carried
    assert probe.force == pytest.approx(force * 1.1)  # no raise for the slide 5 s ago


def test_a_window_on_the_cone_teaches_the_probe_the_cone():
    # Oracle Fragile seed 4119 (hold 21.5 N, break 38.4 N): the first raise read the cone off
    # a shear still building (0.14); at 25 N the block was carried at 0.21, which the window
    # took for slip against 0.14, and, not learning the cone from it, every raise after too,
    # up to 39 N. Learning it, one raise shows the ratio falling: carried.
    probe = SlipProbe(stick_slip_s=0.15)
    steady_steps(probe, lambda n: 0.14 * n)  # a lagging shear read as the cone: one raise
    first_raise = probe.force
    weight_share = 0.21 * first_raise  # N per finger: the block is carried from here on

    def ratio(t: float) -> float:  # chattering at first (never steady), then steady
        if probe.force > first_raise:
            return weight_share / probe.force
        return 0.21 if int(t / 0.05) % 2 == 0 else 0.18

    run_ticks(probe, ratio, 1.0)
    assert probe.carried and probe.friction == pytest.approx(0.21)
    assert probe.force == pytest.approx(GRIPPER_FORCE_RANGE[0] * GROW**2 * MARGIN)


def test_a_carried_object_on_the_cone_while_the_hand_goes_down_is_not_raised():
    # Oracle Fragile seed 4115 (break 123 N): carried at 105 N, the head took the block back
    # down onto the table; the pads slid down it on the cone and the recheck raised to 131 N.
    probe = SlipProbe()
    steady_steps(probe, lambda n: 0.2 * n)  # slipping: raise
    carried_at = probe.force
    steady_steps(probe, lambda n: 0.2 * carried_at / GROW)  # the weight held: carried
    held = probe.force
    for _ in range(6):
        probe.step(held, 0.2 * held, lowering=True)
    assert probe.carried and probe.force == held
    steady_steps(probe, lambda n: 0.2 * n, steps=6)  # on the cone going up: it slips out
    assert probe.force == pytest.approx(held * GROW)


def test_the_reflex_tells_the_probe_when_the_hand_goes_down():
    reflex, t = GripReflex(period_s=0.05), 0.0
    reflex.probe = SlipProbe(start_force=40.0, stick_slip_s=0.15)
    reflex.probe.carried, reflex.probe.friction = True, 0.2
    reflex.landed_at, reflex.grasp_z = -1.0, 0.03  # landed and settled a second ago
    for vz, raised in ((-0.03, False), (0.03, True)):
        for _ in range(40):
            t += 0.005
            reflex(head_action(0.0, vz=vz), tactile(40, 8), t, proprio(0.06, vz))
        assert (reflex.probe.force > 40.0) == raised


def test_slip_probe_ignores_shear_felt_without_pressure():
    probe = SlipProbe()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a division by the zero normal would warn
        probe.step(0.0, 5.0)
        force = probe.step(probe.force, 5.0)
    assert force == probe.force and not probe.carried


def tactile(normal: float, shear: float) -> np.ndarray:
    taxels = np.zeros(TACTILE_SHAPE, np.float32)
    taxels[..., 0] = normal / 16
    taxels[..., 1] = shear / 16
    return taxels


def head_action(width: float, vz: float = 0.1, force: float = 80.0) -> Action:
    return Action(np.array([0.05, 0.0, vz, 0.0], np.float32), GripperCommand(width, 0.05, force))


def test_reflex_passes_an_open_gripper_through_and_owns_the_grasp_when_closing():
    reflex = GripReflex(period_s=0.05)
    opened = head_action(GRIPPER_STROKE_M)
    assert reflex(opened, tactile(0, 0), 0.0) is opened
    closing = reflex(head_action(0.01, vz=0.1), tactile(0, 0), 0.005)
    assert closing.gripper.width_m == 0.0 and closing.gripper.force_n == 20.0
    assert closing.ee_velocity[2] <= 0.0  # no lift before the fingers press
    # The head's width wanders to 0.6 stroke: with hysteresis the reflex keeps the grasp.
    kept = reflex(head_action(0.6 * GRIPPER_STROKE_M), tactile(20, 0), 0.06)
    assert reflex.state == "probing" and kept.gripper.width_m == 0.0
    t = 0.06
    while t < 0.06 + GripReflex.SETTLE_S + 0.01:
        t += 0.005
        lifted = reflex(head_action(0.0, vz=0.2), tactile(20, 0), t)
    assert lifted.ee_velocity[2] == pytest.approx(PROBE_SPEED)
    assert np.all(lifted.ee_velocity[[0, 1, 3]] == 0.0)  # the arm holds still while probing
    reflex(opened, tactile(0, 0), t + 0.005)
    assert reflex.state == "open" and reflex.probe is None


def test_reflex_lifts_a_heavy_object_slower_while_probing():
    reflex = GripReflex(period_s=0.05, heavy_probe_speed=0.015)
    reflex(head_action(0.01), tactile(0, 0), 0.0)
    t = 0.0
    while t < GripReflex.SETTLE_S + 0.02:  # pressed: landed, then settled
        t += 0.005
        light = reflex(head_action(0.0, vz=0.2), tactile(20, 0), t)
    assert reflex.state == "probing" and light.ee_velocity[2] == pytest.approx(PROBE_SPEED)
    reflex.probe.force = HEAVY_GRIP_N + 5.0  # as after a few raises on a heavy object
    heavy = reflex(head_action(0.0, vz=0.2), tactile(45, 0), t + 0.005)
    assert reflex.state == "probing" and heavy.ee_velocity[2] == pytest.approx(0.015)
    default = GripReflex(period_s=0.05)
    assert default.heavy_probe_speed == PROBE_SPEED  # the same lift unless asked


def test_the_heavy_probing_lift_is_a_run_time_choice_named_in_errors():
    from dualctl.config import load_config
    from dualctl.errors import ConfigError
    from dualctl.runtime.factories import load_runtime_tracker

    tracker = load_runtime_tracker(load_config(["tracker.heavy_probe_speed=0.015"]))
    assert tracker.grip_reflex.heavy_probe_speed == 0.015
    assert load_runtime_tracker(load_config([])).grip_reflex.heavy_probe_speed == PROBE_SPEED
    with pytest.raises(ConfigError, match="tracker.heavy_probe_speed"):
        load_config(["tracker.heavy_probe_speed=0"])


def test_reflex_stops_the_arm_once_the_fingers_press_not_at_the_next_probe_step():
    reflex = GripReflex(period_s=0.05)
    reflex(head_action(0.0, vz=-0.05), tactile(0, 0), 0.0)  # a probe step: nothing felt yet
    moving = reflex(head_action(0.0, vz=-0.05), tactile(5, 0), 0.005)
    assert reflex.state == "closing" and moving.ee_velocity[0] == pytest.approx(0.05)
    t = 0.005
    while reflex.state == "closing":
        t += 0.005
        pressed = reflex(head_action(0.0, vz=-0.05), tactile(40, 0), t)
    # Within the touch-averaging window, well before the next probe step at 0.05 s.
    assert t <= 0.005 + GripReflex.AVERAGE_S + 0.005 < 0.05
    assert np.all(pressed.ee_velocity == 0.0)


def test_reflex_with_the_expert_arm_lifts_a_fragile_block_the_minimum_force_drops():
    task, seed = "Fragile", 1000
    variation = sample_variation(task, seed, "train")
    world = World(task, variation, SimConfig())
    expert, reflex = Expert(task, world), GripReflex(period_s=0.05)
    try:
        status = run_blind(world, lambda: reflex(expert.act(), world.tactile(), world.time), 0.005)
    finally:
        world.close()
    assert status.success, status.failure_reason
    assert variation.hold_force < reflex.probe.force < variation.break_force
    world = World(task, variation, SimConfig())
    try:
        weak = run_blind(world, Expert(task, world, grip_force=20.0).act)
    finally:
        world.close()
    assert not weak.success


def test_tracker_runs_the_reflex_only_with_tactile(synthetic_dataset):
    from dualctl.data.dataset import EpisodeStore

    _, net = trained_parts(EpisodeStore.load(synthetic_dataset))
    assert JepaTracker(net, small_config()).grip_reflex is not None
    assert JepaTracker(net, small_config("tracker.grip_reflex=false")).grip_reflex is None
    assert JepaTracker(net, small_config("tracker.drop_tactile=true")).grip_reflex is None


def carrying_reflex(picked_at_z: float = 0.03) -> GripReflex:
    reflex = GripReflex(period_s=0.05)
    reflex(head_action(0.0), tactile(20, 0), 0.0, proprio(picked_at_z, 0.0))
    assert reflex.grasp_z == pytest.approx(picked_at_z)  # the fingers pressed at once: landed here
    reflex.probe.carried = True  # as after a probe that found the holding force
    assert reflex.state == "carrying"
    return reflex


def still(width: float = 0.01) -> Action:
    return Action(np.zeros(4, np.float32), GripperCommand(width, 0.05, 80.0))


def proprio(z: float, vz: float) -> np.ndarray:
    state = np.zeros(PROPRIO_DIM, np.float32)
    state[PROPRIO_FIELDS.index("ee_z")], state[PROPRIO_FIELDS.index("ee_vz")] = z, vz
    return state


def test_a_carrying_hand_does_not_turn_and_an_open_one_does():
    turning = Action(np.array([0.0, 0.0, 0.05, 0.3], np.float32), GripperCommand(0.0, 0.05, 80.0))
    reflex = carrying_reflex()
    carried = reflex(turning, tactile(20, 1), 0.005, proprio(0.05, 0.05))
    assert reflex.state == "carrying" and carried.ee_velocity[3] == 0.0
    opened = Action(turning.ee_velocity, GripperCommand(GRIPPER_STROKE_M, 0.05, 80.0))
    assert GripReflex(period_s=0.05)(opened, tactile(0, 0), 0.0).ee_velocity[3] == 0.3


def test_reflex_lets_go_of_an_object_held_down_on_a_support_and_lifts_clear():
    reflex, t = carrying_reflex(), 0.0
    reflex(head_action(0.01, vz=0.05), tactile(20, 1), t, proprio(0.07, 0.05))  # lifted 4 cm
    while reflex.state == "carrying" and t < 2.0:
        t += 0.005
        action = reflex(head_action(0.01, vz=-0.05), tactile(20, 1), t, proprio(0.05, 0.0))
    assert SET_DOWN_S <= t <= SET_DOWN_S + 0.02
    assert reflex.state == "releasing" and action.gripper.width_m == GRIPPER_STROKE_M
    assert np.allclose(action.ee_velocity, [0.0, 0.0, RETREAT_SPEED, 0.0])
    still = reflex(head_action(0.01, vz=-0.05), tactile(0, 0), t + 0.1, proprio(0.07, 0.05))
    assert still.gripper.width_m == GRIPPER_STROKE_M  # 2 cm up: not clear yet
    back = reflex(head_action(0.09, vz=-0.05), tactile(0, 0), t + 0.2, proprio(0.05 + RETREAT_M, 0))
    assert reflex.state == "open" and back.ee_velocity[2] == pytest.approx(-0.05)


def test_reflex_keeps_an_object_pushed_down_where_it_was_picked():
    reflex = carrying_reflex(picked_at_z=0.03)
    reflex(head_action(0.01, vz=0.05), tactile(20, 1), 0.0, proprio(0.036, 0.05))  # 6 mm up
    for step in range(1, 400):  # a late plan's hand still coming down: the arm is blocked
        action = reflex(head_action(0.01, vz=-0.05), tactile(20, 1), step * 0.005,
                        proprio(0.03, 0.0))  # fmt: skip
    assert reflex.state == "carrying"
    assert action.ee_velocity[2] == 0.0  # not pressed into the table it still stands on
    above = reflex(head_action(0.01, vz=-0.05), tactile(20, 1), 2.0, proprio(0.034, 0.0))
    assert above.ee_velocity[2] < 0.0  # above the pick height the head may lower it


@pytest.mark.parametrize("measured_vz", [-0.05, None])
def test_reflex_keeps_an_object_lowered_in_free_space_or_without_proprio(measured_vz):
    reflex = carrying_reflex()
    for step in range(1, 400):
        state = None if measured_vz is None else proprio(0.1, measured_vz)
        action = reflex(head_action(0.01, vz=-0.05), tactile(20, 1), step * 0.005, state)
    assert reflex.state == "carrying" and action.gripper.width_m == 0.0


def test_reflex_lets_go_where_the_object_was_picked_from_only_after_a_lift():
    reflex = carrying_reflex(picked_at_z=0.03)
    for step in range(1, 200):  # still just above the pick height, never lifted: keep holding
        reflex(still(), tactile(20, 1), step * 0.005, proprio(0.032, 0.0))
    assert reflex.state == "carrying"
    reflex(head_action(0.01, vz=0.05), tactile(20, 1), 1.0, proprio(0.07, 0.05))  # carried up
    t = 1.0
    while reflex.state == "carrying" and t < 3.0:
        t += 0.005
        action = reflex(still(), tactile(20, 1), t, proprio(0.034, 0.0))
    assert reflex.state == "releasing" and t - 1.0 == pytest.approx(SET_DOWN_S, abs=0.01)
    assert action.gripper.width_m == GRIPPER_STROKE_M


def placed_at(x: float, z: float, vz: float) -> np.ndarray:
    state = proprio(z, vz)
    state[PROPRIO_FIELDS.index("ee_x")] = x
    return state


@pytest.mark.parametrize(
    "across, fz, lets_go",
    [
        (CARRIED_ACROSS_M, -2 * SUPPORTED_WRIST_N, True),
        (CARRIED_ACROSS_M, 3.5, False),  # the weight it holds (+m g)
        (CARRIED_ACROSS_M, -0.5 * SUPPORTED_WRIST_N, False),  # a jolt, not a push
        (0.5 * CARRIED_ACROSS_M, -2 * SUPPORTED_WRIST_N, False),  # where it was picked
    ],
)
def test_reflex_lets_go_of_an_object_carried_across_once_the_wrist_is_pushed_up(
    across, fz, lets_go
):
    # Oracle Place 4043: carried 3 cm high onto the pad, the hand still coming down slid its
    # pads down the block (the arm never read as blocked) with the wrist at -20 to -40 N;
    # Lift 4038: the head reaching lower over the block it had just picked pushed as hard.
    reflex, t = carrying_reflex(picked_at_z=0.04), 0.0
    reflex(hovering_head(), tactile(30, 2), t, placed_at(across, 0.045, 0.0), wrist(3.5))
    while reflex.state == "carrying" and t < 1.0:
        t += 0.005
        reflex(head_action(0.01, vz=-0.004), tactile(30, 2), t, placed_at(across, 0.031, -0.004),
               wrist(fz))  # fmt: skip
    if lets_go:
        assert reflex.state == "releasing" and t == pytest.approx(SET_DOWN_S, abs=0.01)
    else:
        assert reflex.state == "carrying"


def test_a_carrying_hand_opens_only_once_the_head_has_asked_for_it_a_while():
    reflex = carrying_reflex()
    opened = head_action(GRIPPER_STROKE_M)
    blip = reflex(opened, tactile(20, 1), 0.005, proprio(0.05, 0.0))  # one tick over the band
    assert reflex.state == "carrying" and blip.gripper.width_m == 0.0
    reflex(head_action(0.01), tactile(20, 1), 0.01, proprio(0.05, 0.0))  # closed again
    t = 0.01
    while reflex.state == "carrying" and t < 1.0:
        t += 0.005
        action = reflex(opened, tactile(20, 1), t, proprio(0.05, 0.0))
    assert t - 0.01 == pytest.approx(GripReflex.OPEN_HOLD_S, abs=1e-6)  # counted anew
    assert reflex.state == "open" and action.gripper.width_m == GRIPPER_STROKE_M


def hovering_head(vx: float = 0.0) -> Action:
    """A head holding a carried object still (closed, no vertical motion)."""
    return Action(np.array([vx, 0.0, 0.0, 0.0], np.float32), GripperCommand(0.01, 0.05, 80.0))


def lifted_reflex(picked_at_z: float = 0.03) -> GripReflex:
    reflex = carrying_reflex(picked_at_z)
    lifted_to = picked_at_z + LIFTED_M + 0.01
    reflex(head_action(0.01, vz=0.05), tactile(20, 1), 0.5, proprio(lifted_to, 0.05))
    reflex(hovering_head(), tactile(20, 1), 0.995, proprio(lifted_to, 0.0))  # the lift is over
    return reflex


def test_reflex_sets_down_an_object_the_head_holds_still_just_above_its_pick_height():
    reflex, t, z = lifted_reflex(picked_at_z=0.03), 1.0, 0.03 + SET_DOWN_BAND_M - 0.005
    action = reflex(hovering_head(), tactile(20, 1), t, proprio(z, 0.0))
    assert action.ee_velocity[2] == 0.0  # the head's command, until it has hovered HOVER_S
    while not reflex.lowering and t < 2.0:
        t += 0.005
        action = reflex(hovering_head(), tactile(20, 1), t, proprio(z, 0.0))
    assert t - 1.0 == pytest.approx(HOVER_S, abs=0.01)
    np.testing.assert_allclose(action.ee_velocity, (0.0, 0.0, -LOWER_SPEED, 0.0))
    while reflex.state == "carrying" and t < 3.0:  # straight down until the support stops it
        assert action.ee_velocity[0] == 0.0  # the head's drift ignored
        t, vz = t + 0.005, -LOWER_SPEED if z > 0.03 else 0.0
        z += vz * 0.005
        action = reflex(hovering_head(vx=0.01), tactile(20, 1), t, proprio(z, vz))
    assert reflex.state == "releasing" and z <= 0.03 + PICK_HEIGHT_TOLERANCE_M
    assert action.gripper.width_m == GRIPPER_STROKE_M and action.ee_velocity[2] > 0


@pytest.mark.parametrize(
    "height_above_pick, head",
    [
        (SET_DOWN_BAND_M + 0.005, hovering_head()),  # held still, but higher than the band
        (SET_DOWN_BAND_M - 0.005, hovering_head(vx=0.05)),  # still carrying it across
        (SET_DOWN_BAND_M - 0.005, head_action(0.01, vz=-0.03)),  # still lowering it itself
    ],
)
def test_reflex_leaves_the_arm_to_a_head_still_moving_or_above_the_band(height_above_pick, head):
    reflex = lifted_reflex(picked_at_z=0.03)
    z, vz = 0.03 + height_above_pick, float(head.ee_velocity[2])  # the arm moves as asked
    for step in range(1, 200):
        action = reflex(head, tactile(20, 1), 1.0 + step * 0.005, proprio(z, vz))
    assert not reflex.lowering and reflex.state == "carrying"
    assert action.ee_velocity[2] == pytest.approx(head.ee_velocity[2])


def test_a_carried_object_is_moved_with_limited_acceleration_an_open_hand_is_not():
    reflex = carrying_reflex(picked_at_z=0.03)
    up, down = head_action(0.01, vz=0.15), head_action(0.01, vz=-0.1)
    vz = [float(reflex(up, tactile(20, 1), 0.5, proprio(0.1, 0.15)).ee_velocity[2])]
    assert vz[0] == pytest.approx(0.15)  # after a long gap, the head's command as asked
    for k in range(1, 80):  # the head swings down; the arm moves as commanded
        action = reflex(down, tactile(20, 1), 0.5 + k * 0.005, proprio(0.1, vz[-1]))
        vz.append(float(action.ee_velocity[2]))
    assert reflex.state == "carrying"
    assert np.diff(vz).min() >= -CARRY_ACCEL * 0.005 - 1e-6  # 0.8 m/s^2, not the head's jump
    assert vz[-1] == pytest.approx(-0.1)  # and the head's command once reached
    opened = GripReflex(period_s=0.05)
    opened(head_action(GRIPPER_STROKE_M, vz=0.15), tactile(0, 0), 0.0)
    swung = opened(head_action(GRIPPER_STROKE_M, vz=-0.1), tactile(0, 0), 0.005)
    assert swung.ee_velocity[2] == pytest.approx(-0.1)


def test_reflex_never_sets_down_an_object_it_has_not_lifted():
    reflex = carrying_reflex(picked_at_z=0.03)
    for step in range(1, 200):  # just after the probe, below LIFTED_M: the head is still lifting
        reflex(hovering_head(), tactile(20, 1), step * 0.005, proprio(0.03 + 0.01, 0.0))
    assert not reflex.lowering and reflex.state == "carrying"


def at(z: float, width: float) -> np.ndarray:
    state = proprio(z, 0.0)
    state[PROPRIO_FIELDS.index("width")] = width
    return state


@pytest.mark.parametrize("regrasp", [True, False])
def test_regrasp_reopens_after_closing_on_nothing_and_closes_again_back_down(regrasp):
    reflex, closing = GripReflex(period_s=0.05, regrasp=regrasp), head_action(0.01, vz=-0.02)
    reflex(closing, tactile(0, 0), 0.0, at(0.03, 0.04))  # closing, fingers still apart
    missed = reflex(closing, tactile(0, 0), 0.01, at(0.03, 0.0))  # shut on nothing
    if not regrasp:
        assert missed.gripper.width_m == 0.0 and reflex.state == "closing"
        return
    assert missed.gripper.width_m == GRIPPER_STROKE_M and missed.ee_velocity[2] > 0
    up = reflex(closing, tactile(0, 0), 0.02, at(0.05, 0.0))
    assert up.gripper.width_m == GRIPPER_STROKE_M and up.ee_velocity[2] > 0  # still lifting
    clear = reflex(closing, tactile(0, 0), 0.03, at(0.08, 0.085))
    assert clear.gripper.width_m == GRIPPER_STROKE_M  # the head says close: kept open up here
    assert clear.ee_velocity[2] == pytest.approx(-0.02)  # and the head has the arm again
    back = reflex(closing, tactile(0, 0), 0.04, at(0.035, 0.085))
    assert back.gripper.width_m == 0.0 and reflex.state == "closing"  # a new attempt


def test_regrasp_does_not_take_a_firm_grasp_on_a_thin_object_for_a_miss():
    reflex, closing = GripReflex(period_s=0.05, regrasp=True), head_action(0.01, vz=-0.02)
    reflex(closing, tactile(0, 0), 0.0, at(0.03, 0.04))
    held = reflex(closing, tactile(20, 0), 0.01, at(0.03, 0.003))
    assert held.gripper.width_m == 0.0 and reflex.state != "open"


def test_regrasp_lifts_off_a_grasp_blocked_on_fingertips_and_closes_again_only_lower():
    reflex, closing = GripReflex(period_s=0.05, regrasp=True), head_action(0.01, vz=-0.02)
    on_top = np.array([0.0, 0.0, -160.0, 0, 0, 0], np.float32)  # the arm presses on fingertips
    reflex(closing, tactile(0, 0), 0.0, at(0.05, 0.04), on_top)
    still = reflex(closing, tactile(0, 0), 0.05, at(0.05, 0.03), on_top)
    assert still.gripper.width_m == 0.0 and reflex.state == "closing"  # not yet BLOCKED_S
    lifted = reflex(closing, tactile(0, 0), 0.11, at(0.05, 0.03), on_top)
    assert lifted.gripper.width_m == GRIPPER_STROKE_M and lifted.ee_velocity[2] > 0
    clear = reflex(closing, tactile(0, 0), 0.5, at(0.095, 0.085))
    assert clear.gripper.width_m == GRIPPER_STROKE_M and clear.ee_velocity[2] < 0
    same_height = reflex(closing, tactile(0, 0), 0.9, at(0.05, 0.085))
    assert same_height.gripper.width_m == GRIPPER_STROKE_M  # where it was blocked: still open
    lower = reflex(closing, tactile(0, 0), 1.0, at(0.035, 0.085))
    assert lower.gripper.width_m == 0.0 and reflex.state == "closing"  # a new attempt


def test_a_grasp_pressing_on_its_pads_is_not_blocked():
    reflex, closing = GripReflex(period_s=0.05, regrasp=True), head_action(0.01, vz=-0.02)
    pressing = np.array([0.0, 0.0, -60.0, 0, 0, 0], np.float32)
    for step in range(10):
        held = reflex(closing, tactile(20, 0), 0.05 * step, at(0.03, 0.03), pressing)
    assert held.gripper.width_m == 0.0 and reflex.state != "open"


def descending_open_hand() -> Action:
    velocity = np.array([0.02, -0.01, -0.1, 0.1], np.float32)
    return Action(velocity, GripperCommand(GRIPPER_STROKE_M, 0.05, 40.0))


def wrist(fz: float) -> np.ndarray:
    wrench = np.zeros(6, np.float32)
    wrench[2] = fz
    return wrench


def test_an_open_hand_come_down_on_the_object_rises_while_the_head_steers_across():
    reflex, head = GripReflex(period_s=0.05), descending_open_hand()
    action = reflex(head, tactile(2, 50), 0.0, proprio(0.07, -0.1), wrist(-100.0))
    np.testing.assert_allclose(action.ee_velocity, [0.02, -0.01, BUMP_BACKOFF_SPEED, 0.1])
    assert action.gripper.width_m == GRIPPER_STROKE_M and reflex.state == "open"
    off = reflex(head, tactile(0, 0), 0.005, proprio(0.07, 0.0), wrist(-5.0))
    # off the object the head steers again, but comes down gently until past the top
    np.testing.assert_allclose(off.ee_velocity, [0.02, -0.01, -BUMP_DESCENT_SPEED, 0.1])
    past = reflex(head, tactile(0, 0), 0.5, proprio(0.07 - 1.5 * BUMP_CLEAR_M, -0.02), wrist(0.0))
    assert past is head
    again = reflex(head, tactile(0, 0), 0.6, proprio(0.07, -0.1), wrist(0.0))
    assert again is head  # the bump is forgotten once the hand was clear of it


def test_an_open_hand_raised_well_above_a_bump_descends_at_the_heads_speed():
    reflex, head = GripReflex(period_s=0.05), descending_open_hand()
    reflex(head, tactile(2, 50), 0.0, proprio(0.07, -0.1), wrist(-100.0))
    assert (
        reflex(head, tactile(0, 0), 0.5, proprio(0.07 + 1.5 * BUMP_CLEAR_M, 0.0), wrist(0.0))
        is head
    )


@pytest.mark.parametrize(
    "touch, fz",
    [((2, 1), -5.0), ((0, 0), -100.0)],  # brushing the block's side; pushed with no touch
)
def test_an_open_hand_keeps_descending_without_both_touch_and_a_pushed_wrist(touch, fz):
    reflex, head = GripReflex(period_s=0.05), descending_open_hand()
    assert reflex(head, tactile(*touch), 0.0, proprio(0.07, -0.1), wrist(fz)) is head


def test_felt_forces_and_the_probe_median_match_numpy_exactly():
    """The per-tick path writes the two means and the median out in Python for speed; the
    reflex's decisions must not move by a bit."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        tactile = rng.normal(scale=20.0, size=TACTILE_SHAPE).astype(np.float32)
        normal, shear = felt_forces(tactile)
        assert normal == float(tactile[..., 0].sum(axis=(1, 2)).mean())
        assert shear == float(np.abs(tactile[..., 1].sum(axis=(1, 2))).mean())
        values = [float(v) for v in rng.normal(size=rng.integers(1, 14))]
        assert _median(values) == float(np.median(values))


def _hand(z: float, width: float = 0.045) -> np.ndarray:
    state = proprio(z, 0.0)
    state[PROPRIO_FIELDS.index("width")] = width
    return state


def test_fingers_sliding_up_an_object_regrip_it_once_at_the_probe_force_where_they_landed():
    reflex, t, landed_z = GripReflex(period_s=0.05), 0.0, 0.03
    reflex(head_action(0.0), tactile(20, 0), t, _hand(landed_z))  # pressed at once: landed here
    for _ in range(100):  # 0.5 s on the cone, the hand rising: the probe raises the force
        t += 0.005
        reflex(head_action(0.0), tactile(reflex.probe.force, 0.25 * reflex.probe.force), t,
               _hand(landed_z + 0.01))  # fmt: skip
    force = reflex.probe.force
    assert reflex.state == "probing" and force > 20.0 and reflex.regripping is None
    t += 0.005  # the fingers have slid REGRIP_RISE_M up an object that stays put
    action = reflex(head_action(0.0), tactile(force, 0.25 * force), t,
                    _hand(landed_z + REGRIP_RISE_M))  # fmt: skip
    force = reflex.probe.force  # kept through the regrip (it may just have been raised)
    assert reflex.regripping == "opening" and action.gripper.width_m > 0.045
    assert action.gripper.force_n == force and not action.ee_velocity.any()
    t += 0.005
    opened = _hand(landed_z + REGRIP_RISE_M, width=0.045 + REGRIP_OPEN_M)
    action = reflex(head_action(GRIPPER_STROKE_M), tactile(0, 0), t, opened)  # the head opens
    assert reflex.regripping == "lowering" and action.ee_velocity[2] == -REGRIP_SPEED
    t += 0.005
    back = _hand(landed_z + 0.0005, width=0.045 + REGRIP_OPEN_M)
    action = reflex(head_action(GRIPPER_STROKE_M), tactile(0, 0), t, back)
    assert reflex.state == "closing" and action.gripper.width_m == 0.0
    assert action.gripper.force_n == force  # closed from rest at the force already found
    for _ in range(4):  # the fingers press again (landing reads the last 15 ms of touch)
        t += 0.005
        reflex(head_action(0.0), tactile(force, 0), t, _hand(landed_z + 0.0005))
    assert reflex.state == "probing" and reflex.grasp_z == pytest.approx(landed_z + 0.0005)
    for _ in range(5):  # sliding up again: no second regrip
        t += 0.005
        reflex(head_action(0.0), tactile(force, 0.25 * force), t, _hand(landed_z + 0.05))
    assert reflex.regripping is None and reflex.state == "probing"


def test_shut_fingers_risen_off_the_objects_top_are_not_regripped():
    # Closed loop, Slippery 33: the hand shut in the air and landed with its tips on the block.
    reflex, t = GripReflex(period_s=0.05), 0.0
    reflex(head_action(0.0), tactile(30, 0), t, _hand(0.078, width=0.001))
    assert reflex.state == "probing"
    for _ in range(10):
        t += 0.005
        action = reflex(head_action(0.0), tactile(0, 0), t, _hand(0.085 + REGRIP_RISE_M, 0.001))
    assert reflex.regripping is None and action.gripper.width_m == 0.0


def test_a_regrip_whose_fingers_shut_on_nothing_gives_the_arm_back_to_the_head():
    reflex, t, landed_z = GripReflex(period_s=0.05), 0.0, 0.03
    reflex(head_action(0.0), tactile(20, 0), t, _hand(landed_z))
    t += 0.005
    reflex(head_action(0.0), tactile(20, 5), t, _hand(landed_z + REGRIP_RISE_M))
    assert reflex.regripping == "opening"
    for hand in (_hand(landed_z + REGRIP_RISE_M, 0.06), _hand(landed_z, 0.06)):  # open, back down
        t += 0.005
        reflex(head_action(0.0), tactile(0, 0), t, hand)
    assert reflex.state == "closing"
    t += 0.005
    still = reflex(head_action(0.0, vz=-0.03), tactile(0, 0), t, _hand(landed_z, 0.02))
    assert not still.ee_velocity.any()  # re-closing from rest: the arm held
    t += 0.005
    shut = reflex(head_action(0.0, vz=-0.03), tactile(0, 0), t, _hand(landed_z, 0.001))
    assert shut.ee_velocity[0] == pytest.approx(0.05)  # shut on nothing: the head's again,
    assert shut.ee_velocity[2] == 0.0  # but not down onto the object's top


@pytest.mark.parametrize("touch, width", [(0.0, 0.001), (20.0, 0.001), (0.0, 0.03)])
def test_a_hand_shut_on_nothing_does_not_go_down(touch, width):
    reflex = GripReflex(period_s=0.05)
    reflex(head_action(0.0, vz=-0.05), tactile(0, 0), 0.0, _hand(0.1, 0.06))  # closing
    action = reflex(head_action(0.0, vz=-0.05), tactile(touch, 0), 0.005, _hand(0.1, width))
    if touch == 0.0 and width < 0.005:
        assert reflex.state == "closing" and action.ee_velocity[2] == 0.0
    else:  # something between the fingers, or still closing: down as the head asks
        assert action.ee_velocity[2] == pytest.approx(-0.05)


def test_a_carried_object_rising_with_the_hand_is_not_regripped():
    reflex = carrying_reflex(picked_at_z=0.03)
    action = reflex(head_action(0.0, vz=0.05), tactile(20, 5), 0.5, _hand(0.03 + 0.05))
    assert reflex.regripping is None and reflex.state == "carrying"
    assert action.gripper.width_m == 0.0
