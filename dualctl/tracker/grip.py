"""The grip-force reflex: System 1 sets how hard to squeeze from touch, not from the image.

Why a rule beside the learned head: the force an object needs (to hold it without slipping)
and the force that breaks it show in nothing the robot senses before the lift; they show only
in how the object moves between the fingers once it is loaded. Finding that force is a probe
over time: squeeze a little harder while the object slips, stop as soon as it is carried. A
head cloned from such demonstrations sees one instant and learns the average force, which
crushes light fragile objects and drops heavy slippery ones; a small explicit loop on the
tactile shear does it at once (the slip-reflex of tactile grasp control, Romano et al. 2011).

:class:`SlipProbe` is that loop, one step per tactile frame; :class:`GripReflex` wraps the
head's actions with it. The sim's touch teacher (``dualctl.sim.experts.TouchGrip``) runs the
same class in its first version (``settle=False``), the one its demonstrations were recorded
with.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from dualctl.types import (
    GRIPPER_FORCE_RANGE,
    GRIPPER_SPEED_RANGE,
    GRIPPER_STROKE_M,
    PROPRIO_FIELDS,
    Action,
    GripperCommand,
)

PROPRIO_X, PROPRIO_Y = PROPRIO_FIELDS.index("ee_x"), PROPRIO_FIELDS.index("ee_y")
PROPRIO_Z, PROPRIO_VZ = PROPRIO_FIELDS.index("ee_z"), PROPRIO_FIELDS.index("ee_vz")
PROPRIO_WIDTH = PROPRIO_FIELDS.index("width")
#: Force raise per step while slipping: at most this far above the hold force, so it stays
#: under the break force (>= 1.6 x hold in every sim split).
GROW = 1.25
#: Grip force kept once the object is carried, as a multiple of the force that carried it.
MARGIN = 1.1
#: Lift speed (m/s) while probing: slip of a few mm at most before the force is right.
PROBE_SPEED = 0.02
#: Once the probe's force is past HEAVY_GRIP_N (N, twice the gripper's least) the object is
#: heavy: it takes about ten raises, each after a stick-slip window, and at PROBE_SPEED the
#: fingers slid off the heaviest Fragile blocks meanwhile. ``GripReflex(heavy_probe_speed=)``
#: can lift slower from there (``tracker.heavy_probe_speed``).
HEAVY_GRIP_N = 2.0 * GRIPPER_FORCE_RANGE[0]
#: Vertical acceleration limit (m/s^2) when the lift resumes after probing (the touch
#: teacher's; the reflex limits a carried object's motion by CARRY_ACCEL on every axis).
RESUME_ACCEL = 0.8
#: While an object is carried, the arm's linear velocity changes by at most CARRY_ACCEL
#: (m/s^2, the scripted expert's own limit): the probe finds the force for a steady lift with
#: a 10 % margin, and a head's command can jump by 0.25 m/s from one tick to the next (a new
#: plan, a stale one), an acceleration that slides a heavy block down the pads (closed loop,
#: Fragile seed 3 with 1 s of plan delay: 2 cm of slide as the head swung from 0.15 m/s up
#: to 0.1 m/s down).
CARRY_ACCEL = 0.8
#: Nor does a hand carrying an object turn: the head's yaw rate is dropped. A turn twists the
#: object in the pads, and the torsion takes from the friction that holds it up (oracle bench,
#: the recipe's seed-1 and seed-2 trackers, Fragile and Slippery: 341 -> 363 of 400, drops
#: 34 -> 20). None of the sim's tasks turns what it carries.
CARRY_TURNS = False
#: Shear (N per finger) below which the object is not loaded yet (the table still carries it).
LOADED_SHEAR = 0.3
#: A carried object counts as set down once the head has asked to move down at more than
#: SET_DOWN_SPEED (m/s) for SET_DOWN_S (s) more than not, each time while the arm moved down
#: slower than a fifth of the asked speed, once it has been lifted LIFTED_M or carried
#: CARRIED_ACROSS_M: set down where it was picked it has gone nowhere. Until then the head
#: does not push it below the height it was picked at either (closed loop, Place seed 15 with
#: 1 s of plan delay: lifted 6 mm, the late plan's hand still coming down pressed the block
#: onto the table until the pads slid off it).
SET_DOWN_SPEED, SET_DOWN_S = 0.005, 0.3
#: Or once the wrist has been pushed up by more than SUPPORTED_WRIST_N (N, fz below minus it;
#: a held mass reads +m g) for as long, the object carried at least CARRIED_ACROSS_M (m)
#: across from where it was picked: the hand is pressing it onto a support. A head that
#: carries the object low (a 0.3-3 cm lift, oracle Place seeds 4010-4043) sets it on the pad
#: with the hand still coming down; the pads slide down the object, which keeps the arm's
#: descent from reading as blocked, while the wrist reads -20 to -60 N. Where it was picked,
#: the same push is a head still reaching down to grasp lower (oracle Lift seed 4038).
SUPPORTED_WRIST_N, CARRIED_ACROSS_M = 10.0, 0.05
#: Or once it is back within PICK_HEIGHT_TOLERANCE_M (m) of the height it was picked at, after
#: a lift of at least LIFTED_M (m): the support it stood on is there (the head, still
#: tracking, can bob on it for seconds without pushing steadily).
PICK_HEIGHT_TOLERANCE_M, LIFTED_M = 0.006, 0.03
#: A carried object the head has brought back down within SET_DOWN_BAND_M (m) of the height it
#: was picked at (after a lift of LIFTED_M) and stops moving there (down slower than
#: HOVER_SPEED, across slower than HOVER_XY_SPEED, m/s) for HOVER_S (s) more than not, is set
#: down by the reflex: straight down at LOWER_SPEED (m/s) until the support stops it. A head
#: that grasped lower on the object than its demonstrator stops that much short of the
#: support and hovers there, the object never touching down.
SET_DOWN_BAND_M, HOVER_S, LOWER_SPEED = 0.025, 0.3, 0.02
HOVER_SPEED, HOVER_XY_SPEED = 0.01, 0.02
#: After letting go the reflex lifts the open hand this far (m) at RETREAT_SPEED (m/s).
RETREAT_M, RETREAT_SPEED = 0.04, 0.05
#: Fingers closer than this (m) with less than MISSED_NORMAL_N (N) felt have closed on nothing.
MISSED_WIDTH_M, MISSED_NORMAL_N = 0.005, 0.5
#: After a missed grasp the hand stays open until the arm is back within this (m) of the height
#: it missed at, so the head's still-closing width output does not close it in the air.
REGRASP_BAND_M = 0.01
#: A closing hand whose pads feel nothing while the wrist is pushed back harder than
#: BLOCKED_WRIST_N (N) for BLOCKED_S (s) sits on top of something (fingertips on the object):
#: a blocked grasp, which opens and lifts clear like a miss and closes again only lower down.
BLOCKED_WRIST_N, BLOCKED_S = 30.0, 0.1
#: An open hand whose pads feel more than BUMP_TOUCH_N (N, normal + shear) while the wrist is
#: pushed back harder than BUMP_WRIST_N (N) is down on the object with its fingertips: it
#: rises at BUMP_BACKOFF_SPEED (m/s) while the head keeps steering it across. The rise is
#: fast because a stiff position servo moving at v presses with about its damping x v once
#: blocked (the sim stage: ~120 N at 12 cm/s), and only pulling its target back unloads it.
BUMP_TOUCH_N, BUMP_WRIST_N, BUMP_BACKOFF_SPEED = 1.0, 30.0, 0.2
#: After such a bump the open hand goes down no faster than BUMP_DESCENT_SPEED (m/s) until it
#: is BUMP_CLEAR_M (m) below the height it bumped at (its fingers are past the object's top)
#: or as far above it: a head steering across lands again, and every landing at its approach
#: speed adds a spike of force a fragile object may not take.
BUMP_DESCENT_SPEED, BUMP_CLEAR_M = 0.02, 0.01
#: A probe whose fingers have risen REGRIP_RISE_M (m) above where they landed without the
#: object being carried has slid up it: the reflex regrips once, opening REGRIP_OPEN_M (m)
#: wider than the fingers stand, going back down to the landing height at REGRIP_SPEED
#: (m/s) and closing there at the force the probe has reached. A grasp that has started
#: sliding does not take hold again in the sim however hard it squeezes (closed loop, Fragile
#: seed 12 with 1 s of delay: at 1.3x the holding force the pads' friction stayed at 0.4 of
#: the cone while they slid, and a raise to 1.6x or a pause did not help), while the same
#: force closed from rest lifts the object.
REGRIP_RISE_M, REGRIP_OPEN_M, REGRIP_SPEED = 0.02, 0.015, 0.05
#: The way back down ends after REGRIP_LOWER_S (s) wherever it is (something under the hand).
REGRIP_LOWER_S = 1.0
#: The reflex's probe calls an object carried only after this long (s) of per-tick touch
#: under the friction cone since its last raise (:class:`SlipProbe`, stick-slip): a sliding
#: heavy block's stick-slip cycle here is about 0.1 s.
STICK_SLIP_S = 0.15


def felt_forces(tactile: np.ndarray) -> tuple[float, float]:
    """Per-finger normal force and |shear along the finger| (N), averaged over both fingers,
    from a ``TACTILE_SHAPE`` taxel array."""
    normal = tactile[..., 0].sum(axis=(1, 2))
    shear = np.abs(tactile[..., 1].sum(axis=(1, 2)))
    # the mean of two, written out: np.mean costs more than the sums on this per-tick path
    return float(normal[0] + normal[1]) / 2, float(shear[0] + shear[1]) / 2


def _median(values: list[float]) -> float:
    """np.median of a short list, in Python (a tenth of the cost at a dozen values)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


class SlipProbe:
    """Finds the grip force (N) that carries an object without slipping, from touch alone.

    Call :meth:`step` once per tactile frame while lifting slowly. The test is Coulomb's: a
    slipping contact sits on its friction cone, shear/normal = mu, the same from step to step
    whatever the squeeze; a carried object's ratio is weight / (2 normal), below mu. So while
    the ratio holds steady at the highest value seen (the estimate of mu) the probe raises the
    force by ``GROW``; when it has settled lower, the object is carried and the probe holds
    ``MARGIN`` x that force. Light objects that never slip are told apart by the first raise:
    their ratio falls with it.

    Once carried, a ratio back on the cone (the object slips again, e.g. as the lift speeds up)
    gets one more raise, at most ``recheck_raises`` times: the force was then short of what the
    motion needs, so one raise stays under the break force as the probing raises do. Not while
    the hand goes down (``step(lowering=True)``): then the pads slide down an object that
    something holds up (oracle Fragile seeds 4012 and 4115: a head taking the block back onto
    the table, raised past its break force).

    A heavy object often slides in stick-slip: the ratio jumps between the cone and a third
    below it every few hundredths of a second, so a median can catch a stick phase and call a
    sliding object carried (a closed-loop Fragile block slid 3 cm down the pads that way, at
    two thirds of its hold force). With ``stick_slip_s`` > 0 each tick's touch is also fed to
    :meth:`feel`, and an object is carried only when the last ``stick_slip_s`` of ratios, all
    felt since the last raise, stay under the cone (their ``PEAK_QUANTILE``); when they do not,
    the object still slides and gets a raise, and that peak is a reading of the cone (oracle
    Fragile seed 4119: the first raise read it off a shear still building, 0.14 against 0.21,
    and every window after looked like slip, raising a carried block to its break force).

    ``settle=False`` is the first version of the rule, which compared the ratio just before and
    just after a raise (``carried_exponent`` sets the test); the shear still lags the squeeze
    then, so it can call a slipping object carried. The touch teacher recorded
    ``data/sim_touch`` with it.
    """

    #: Relative change of shear/normal between steps below which it counts as steady.
    STEADY = 0.02
    #: Ratio to the highest steady shear/normal seen above which the contact still slips (one
    #: raise takes a carried object's ratio to 1/GROW = 0.8). A sliding contact's ratio drifts
    #: a few per cent below its peak as the squeeze grows (0.95 called such contacts carried at
    #: a third of the force they needed).
    SLIPPING = 0.85
    #: Quantile of the window's per-tick ratios that must sit under the cone for "carried".
    PEAK_QUANTILE = 0.75

    def __init__(
        self,
        start_force: float = GRIPPER_FORCE_RANGE[0],
        carried_exponent: float = -0.5,
        settle: bool = True,
        recheck_raises: int = 1,
        stick_slip_s: float = 0.0,
    ):
        self.force = float(start_force)
        self.recheck_raises = recheck_raises
        self.carried_exponent = carried_exponent
        self.settle = settle
        self.stick_slip_s = stick_slip_s
        self.carried = False
        self.friction: float | None = None
        self._previous: tuple[float, float] | None = None
        # (time s, shear/normal) of the last stick_slip_s since the last raise, and when the
        # first of them since that raise was felt
        self._felt_ratios: collections.deque = collections.deque()
        self._felt_since: float | None = None

    def regrip(self) -> None:
        """Forget the touch felt so far, keeping the force and the friction estimate: the
        fingers are about to close afresh."""
        self._previous, self._felt_since = None, None
        self._felt_ratios.clear()

    def feel(self, time_s: float, normal: float, shear: float) -> None:
        """Record one tick's felt normal and shear (N) at ``time_s`` (s), for the stick-slip
        test (only used with ``stick_slip_s`` > 0, and only while the fingers press)."""
        if self.stick_slip_s > 0 and not self.carried and normal > 0.5 * self.force:
            ratios = self._felt_ratios
            ratios.append((time_s, shear / normal))
            while ratios[0][0] < time_s - self.stick_slip_s:  # bounded however long it takes
                ratios.popleft()
            if self._felt_since is None:
                self._felt_since = time_s

    def step(self, normal: float, shear: float, lowering: bool = False) -> float:
        """One probe step from the felt normal and shear (N); the grip force to command.
        ``lowering``: the hand is moving down, so a carried object's touch on the cone is the
        pads sliding down an object something holds up, not the object slipping out."""
        if self.settle:
            self._step_coulomb(normal, shear, lowering)
        else:
            self._step_at_once(normal, shear)
        self.force = float(min(self.force, GRIPPER_FORCE_RANGE[1]))
        return self.force

    def _step_coulomb(self, normal: float, shear: float, lowering: bool = False) -> None:
        previous, self._previous = self._previous, (normal, shear)
        loaded = shear > LOADED_SHEAR and normal > 0.5 * self.force
        if not loaded or previous is None or previous[1] <= LOADED_SHEAR:
            return
        if previous[0] <= 0.0:
            return  # shear without pressure: a glancing touch, no cone to compare
        ratio, before = shear / normal, previous[1] / previous[0]
        steady = abs(ratio / before - 1.0) <= self.STEADY  # else the load is still changing
        if self.carried:
            if steady and not lowering:
                self._recheck(ratio)
            return
        peak = self._window_peak()
        window = None if peak is None else peak >= self.SLIPPING * self.friction
        if window:  # stick-slip: on the cone much of the time, whatever the median says
            self.friction = max(self.friction, peak)  # and that peak reads the cone
            self._raise(normal)
        elif not steady:
            return
        elif self.friction is None or ratio >= self.SLIPPING * self.friction:
            self.friction = max(self.friction or 0.0, ratio)
            self._raise(normal)
        elif window is not None or self.stick_slip_s <= 0:
            self.force, self.carried = self.force * MARGIN, True

    def _raise(self, normal: float) -> None:
        if self.force >= GRIPPER_FORCE_RANGE[1]:
            # Nothing left to raise: probing on would only keep the lift at the probe's pace
            # (closed loop, Lift seed 25: a block at 235 N rose with the hand at 2 cm/s to the
            # end of the episode, its touch too unsteady for the stick-slip test to settle).
            self.carried = True
            return
        if normal >= 0.9 * self.force:
            self.force *= GROW
            self._felt_ratios.clear()
            self._felt_since = None

    def _window_peak(self) -> float | None:
        """The ``PEAK_QUANTILE`` of the last ``stick_slip_s`` of per-tick ratios (at or above
        the cone: the ticks sat on it much of the time); None until that long has been felt
        since the last raise (or when the test is off, or the cone is not known yet)."""
        ratios = self._felt_ratios
        if self.stick_slip_s <= 0 or self.friction is None or not ratios:
            return None
        if ratios[-1][0] - self._felt_since < self.stick_slip_s:
            return None
        ordered = sorted(r for _, r in ratios)  # a few dozen floats: cheaper than numpy here
        return ordered[int(self.PEAK_QUANTILE * (len(ordered) - 1))]

    def _recheck(self, ratio: float) -> None:
        """A carried object that slips again (on the friction cone once more, e.g. when the
        lift speeds up) gets one more raise, at most ``recheck_raises`` times."""
        if self.friction is None or self.recheck_raises <= 0:
            return
        if ratio >= self.SLIPPING * self.friction:
            self.force *= GROW
            self.recheck_raises -= 1

    def _step_at_once(self, normal: float, shear: float) -> None:
        landed = normal >= 0.95 * self.force
        if self.carried or not landed:
            return
        previous, self._previous = self._previous, (normal, shear)
        if previous is None or shear <= LOADED_SHEAR:
            return
        (n0, s0), grew = previous, normal / previous[0]
        if grew > 1.1:
            if (shear / normal) / (s0 / n0) <= grew**self.carried_exponent:
                self.force, self.carried = normal * MARGIN, True
            else:
                self.force *= GROW  # still slipping
        elif shear / max(s0, 1e-3) <= 1.05:
            self.force *= GROW  # the load settled: test whether it is carried


class GripReflex:
    """Wraps the head's actions with the grasp the touch teacher makes.

    While the head closes the gripper, the reflex closes fully (force-limited) with the grip
    force of a :class:`SlipProbe` stepped every ``period_s`` (s) on the fingertips' touch. Once
    the fingers press with the probe's force it owns the arm: still for ``SETTLE_S``, then a
    straight lift at ``PROBE_SPEED`` until the object is carried (the probe needs a steady
    load; the head's own small motions would read as slip), then a ramp back to the head's
    motion. When the head opens the gripper the probe starts afresh.

    Letting go is the other event touch and motion tell at once: when the head lowers a carried
    object and the arm stops although the head still asks to go down (:data:`SET_DOWN_S`),
    or the wrist is pushed up (:data:`SUPPORTED_WRIST_N`), something carries the object; so
    it does when the head brings the object back to the
    height it was picked from (the support it stood on). When the head stops short of that
    height (within :data:`SET_DOWN_BAND_M`, hovering) the reflex owns the arm and lowers it
    straight down until the support stops it. The reflex then opens the hand and lifts it clear
    (:data:`RETREAT_M`) before the head has the arm again. A head cloned from
    demonstrations is slow to make that decision itself: its width output drifts towards
    "open" without crossing the hysteresis band, and the hand stays closed on a placed object.

    With ``regrasp`` a missed grasp is the third such event: fingers closed on nothing (no
    touch, :data:`MISSED_WIDTH_M`). The reflex opens and lifts clear as after a set-down, and
    keeps the hand open until the arm is back down near the height it missed at
    (:data:`REGRASP_BAND_M`) or the head opens by itself, so the head gets another try instead
    of holding a closed hand over the object until the episode ends. A blocked grasp is the
    fourth: the hand closes with its fingertips on top of the object (the pads feel nothing
    while the wrist is pushed back, :data:`BLOCKED_WRIST_N`); it opens and lifts clear the same
    way, and closes again only lower than where it was blocked (or once the head has opened).

    Fingers that slide up an object that stays put (:data:`REGRIP_RISE_M` above where they
    landed, not carried) regrip once: open a little, go back down, close from rest at the
    probe's force (``regripping`` says which step), the head's "open" ignored meanwhile.

    The open/closed decision has hysteresis, since the head's width output is a regression
    that wanders between the two. Landing is checked every tick on the touch averaged over the
    last ``AVERAGE_S``; each probe step sees the median touch over the probe period: a
    contact sliding along the pads chatters (readings that drop to zero or jump to twice the
    squeeze a few times a second), and one such reading in a short average made the probe
    see an unsteady load for step after step (stalling its raises while the fingers slid off)
    or a sudden drop of shear (calling a sliding object carried).
    """

    #: Head width commands (fraction of the stroke) below which it means "close", above which
    #: "open"; in between the last decision holds.
    CLOSE_BELOW, OPEN_ABOVE = 0.5, 0.75
    #: A hand carrying something opens only once the head has asked for it this long (s): its
    #: width output blips over the band for a tick or two (Place, oracle seed 4022: one tick
    #: at 0.069 m with the block 7 mm over the pad; the reflex let go, the next tick grasped
    #: the block again on the pad, and no set-down was ever seen).
    OPEN_HOLD_S = 0.1
    #: Time (s) the arm stays still once the fingers press, before the probing lift.
    SETTLE_S = 0.2
    #: Touch is averaged over this long (s) before each probe step.
    AVERAGE_S = 0.015

    def __init__(
        self, period_s: float, regrasp: bool = False, heavy_probe_speed: float = PROBE_SPEED
    ):
        self.period_s = period_s
        self.regrasp = regrasp
        self.heavy_probe_speed = heavy_probe_speed
        self.reset()

    def reset(self) -> None:
        self.probe: SlipProbe | None = None
        self.landed_at: float | None = None
        self.released_at_z: float | None = None
        self._pushing_s = 0.0
        self._forget_grasp()
        self._step_time = -np.inf
        self._felt: collections.deque = collections.deque()
        self._linear = np.zeros(3, np.float32)  # the last commanded linear velocity (m/s)
        self._time: float | None = None
        self.missed_at_z: float | None = None
        self.blocked_at_z: float | None = None
        self._blocked_s = 0.0
        self.bumped_at_z: float | None = None
        self._opening_s = 0.0

    def _forget_grasp(self) -> None:
        self.grasp_z: float | None = None
        self._grasp_xy: tuple[float, float] | None = None
        self._lifted = self._carried_across = False
        self.lowering = False
        self._hover_s = 0.0
        self.regripping: str | None = None  # "opening" or "lowering"
        self._regripped = False
        self._regrip_width, self._lowering_s = 0.0, 0.0

    @property
    def state(self) -> str:
        """ "open", "closing", "probing", "carrying" or "releasing"."""
        if self.released_at_z is not None:
            return "releasing"
        if self.probe is None:
            return "open"
        if self.probe.carried:
            return "carrying"
        return "closing" if self.landed_at is None else "probing"

    def _closing(self, width_m: float, proprio: np.ndarray | None = None, dt: float = 0.0) -> bool:
        if self.blocked_at_z is not None:
            lower = proprio is not None and proprio[PROPRIO_Z] < self.blocked_at_z - REGRASP_BAND_M
            if width_m > self.OPEN_ABOVE * GRIPPER_STROKE_M or lower:
                self.blocked_at_z = None
            else:
                return False
        if self.missed_at_z is not None:
            if width_m > self.OPEN_ABOVE * GRIPPER_STROKE_M:
                self.missed_at_z = None  # the head opened: its next close is a new attempt
            elif proprio is None or proprio[PROPRIO_Z] > self.missed_at_z + REGRASP_BAND_M:
                return False
            else:
                self.missed_at_z = None
        if self.probe is None:
            return width_m < self.CLOSE_BELOW * GRIPPER_STROKE_M
        if self.regripping is not None or self._reclosing(proprio):
            return True  # the head sees the hand open and would follow: the regrip goes on
        if width_m <= self.OPEN_ABOVE * GRIPPER_STROKE_M:
            self._opening_s = 0.0
            return True
        self._opening_s += dt
        return self.probe.carried and self._opening_s < self.OPEN_HOLD_S

    def _step_probe(
        self, tactile: np.ndarray, time_s: float, proprio: np.ndarray | None = None
    ) -> None:
        self._felt.append((time_s, *felt_forces(tactile)))
        while self._felt[0][0] < time_s - self.period_s:
            self._felt.popleft()
        if self.landed_at is None:  # checked every tick: the arm stops at once on contact
            recent = [f[1] for f in self._felt if f[0] >= time_s - self.AVERAGE_S]
            if sum(recent) / len(recent) >= 0.9 * self.probe.force:
                self.landed_at = time_s
        settled = self.landed_at is not None and time_s - self.landed_at >= self.SETTLE_S
        if settled:
            self.probe.feel(*self._felt[-1])
        if time_s - self._step_time < self.period_s:
            return
        normal = _median([f[1] for f in self._felt])
        shear = _median([f[2] for f in self._felt])
        if settled:
            lowering = proprio is not None and proprio[PROPRIO_VZ] < -SET_DOWN_SPEED
            self.probe.step(normal, shear, lowering)
        self._step_time = time_s

    def _velocity(
        self, head: np.ndarray, time_s: float, dt: float, proprio: np.ndarray | None
    ) -> np.ndarray:
        velocity = head.copy()
        if self.lowering:
            velocity[:] = 0.0
            velocity[2] = -LOWER_SPEED
        elif self.probe.carried:
            if self._pressing_where_picked(velocity, proprio):
                velocity[2] = 0.0
            if not CARRY_TURNS:
                velocity[3] = 0.0
            step = CARRY_ACCEL * dt
            linear = velocity[:3]
            np.minimum(linear, self._linear + step, out=linear)
            np.maximum(linear, self._linear - step, out=linear)
        elif self.landed_at is None:
            velocity[2] = min(velocity[2], 0.0)
            if self._reclosing(proprio):  # closing afresh where it landed: hold the arm
                velocity[:] = 0.0
            elif self._shut_on_nothing(proprio):
                # Lower, the fingertips land on the object's top (closed loop: Slippery seed 36
                # crushed at 62 N from a 3 cm/s touch, Slippery 33 hung there at 56 N); over
                # the object the guarded descent opens the hand in place and goes down open.
                velocity[2] = 0.0
        else:
            velocity[:] = 0.0
            if time_s - self.landed_at >= self.SETTLE_S:
                heavy = self.probe.force > HEAVY_GRIP_N
                velocity[2] = self.heavy_probe_speed if heavy else PROBE_SPEED
        return velocity

    def _set_down(
        self, head: np.ndarray, proprio: np.ndarray | None, wrench: np.ndarray | None, dt: float
    ) -> bool:
        """Whether the carried object has been set down for SET_DOWN_S: held down on a
        support (the arm blocked, or the wrist pushed up), or brought back to the height it
        was picked from. Time in any counts up, time in none counts down (the head's command
        flickers)."""
        if proprio is None:
            return False
        z = float(proprio[PROPRIO_Z])
        if self.grasp_z is not None and z >= self.grasp_z + LIFTED_M:
            self._lifted = True
        if self._grasp_xy is not None and not self._carried_across:
            x, y = self._grasp_xy
            across = math.hypot(proprio[PROPRIO_X] - x, proprio[PROPRIO_Y] - y)
            self._carried_across = across >= CARRIED_ACROSS_M
        self.lowering = self.lowering or self._hovering_near_support(head, z, dt)
        if self.lowering:  # the reflex's own descent is what pushes
            head = np.array([0.0, 0.0, -LOWER_SPEED, 0.0])
        moved = self._lifted or self._carried_across  # else it is still where it was picked
        blocked = moved and head[2] < -SET_DOWN_SPEED and proprio[PROPRIO_VZ] > 0.2 * head[2]
        pressed = self._carried_across and wrench is not None and wrench[2] < -SUPPORTED_WRIST_N
        back_down = self._lifted and z <= self.grasp_z + PICK_HEIGHT_TOLERANCE_M
        supported = blocked or pressed or back_down
        self._pushing_s = max(0.0, self._pushing_s + (dt if supported else -dt))
        return self._pushing_s >= SET_DOWN_S

    def _pressing_where_picked(self, velocity: np.ndarray, proprio: np.ndarray | None) -> bool:
        """Whether the head pushes an object that has not yet been lifted or carried across
        below the height it was picked at: into the support it still stands on."""
        if proprio is None or self.grasp_z is None or self._lifted or self._carried_across:
            return False
        return velocity[2] < 0.0 and float(proprio[PROPRIO_Z]) <= self.grasp_z

    def _hovering_near_support(self, head: np.ndarray, z: float, dt: float) -> bool:
        """Whether the head has stopped lowering the object just above its pick height for
        HOVER_S (time stopped there counts up, time going down or out of the band counts
        down)."""
        near = self._lifted and z <= self.grasp_z + SET_DOWN_BAND_M
        # no longer going down (or going back up), nor still carrying it across
        stopped = near and head[2] > -HOVER_SPEED and np.hypot(head[0], head[1]) < HOVER_XY_SPEED
        self._hover_s = max(0.0, self._hover_s + (dt if stopped else -dt))
        return self._hover_s >= HOVER_S

    @staticmethod
    def _shut(proprio: np.ndarray) -> bool:
        """Whether the fingers stand closer than MISSED_WIDTH_M: nothing is between them."""
        return bool(proprio[PROPRIO_WIDTH] < MISSED_WIDTH_M)

    def _shut_on_nothing(self, proprio: np.ndarray | None) -> bool:
        """Whether the fingers have shut with nothing felt between them."""
        return proprio is not None and self._shut(proprio) and self._felt[-1][1] < MISSED_NORMAL_N

    def _missed(self, proprio: np.ndarray | None) -> bool:
        """Whether the fingers have closed on nothing (``regrasp`` only), by the touch this
        tick's probe step has just read."""
        if not self.regrasp or proprio is None or self.state != "closing":
            return False
        return self._shut_on_nothing(proprio)

    def _blocked(self, wrench: np.ndarray | None, dt: float) -> bool:
        """Whether the closing hand has been held up by its fingertips for BLOCKED_S
        (``regrasp`` only, with the wrist ``wrench``)."""
        pushed = (
            self.regrasp
            and wrench is not None
            and self.state == "closing"
            and self._felt[-1][1] < MISSED_NORMAL_N
            and float(np.linalg.norm(wrench[:3])) > BLOCKED_WRIST_N
        )
        self._blocked_s = self._blocked_s + dt if pushed else 0.0
        return self._blocked_s >= BLOCKED_S

    @staticmethod
    def _landed_on_top(tactile: np.ndarray, wrench: np.ndarray | None) -> bool:
        """Whether the open hand is down on the object with its fingertips: the wrist is
        pushed back and the pads touch it (a stiff arm crushes a fragile object within a few
        ticks of that first touch). The wrist is checked first: it is quiet on most ticks."""
        if wrench is None or float(np.linalg.norm(wrench[:3])) <= BUMP_WRIST_N:
            return False
        normal, shear = felt_forces(tactile)
        return normal + shear > BUMP_TOUCH_N

    def _bump_velocity(
        self,
        head: np.ndarray,
        tactile: np.ndarray,
        wrench: np.ndarray | None,
        proprio: np.ndarray | None,
    ) -> np.ndarray | None:
        """The open hand's velocity while it is down on the object's top (rising) or has just
        been (descending gently); None when the head's own command stands."""
        z = None if proprio is None else float(proprio[PROPRIO_Z])
        if self._landed_on_top(tactile, wrench):
            if z is not None:
                self.bumped_at_z = z if self.bumped_at_z is None else max(self.bumped_at_z, z)
            velocity = head.copy()
            velocity[2] = BUMP_BACKOFF_SPEED
            return velocity
        if self.bumped_at_z is None or z is None:
            return None
        if abs(z - self.bumped_at_z) > BUMP_CLEAR_M:
            self.bumped_at_z = None
            return None
        velocity = head.copy()
        velocity[2] = max(velocity[2], -BUMP_DESCENT_SPEED)
        return velocity

    def _slid_up(self, proprio: np.ndarray | None) -> bool:
        """Whether the probing fingers have risen REGRIP_RISE_M above where they landed with
        the object not carried (once per grasp), something still between them (fingers shut
        on nothing landed with their tips on the object's top: there is nothing to regrip)."""
        if self._regripped or proprio is None or self.grasp_z is None:
            return False
        probing = self.landed_at is not None and not self.probe.carried
        risen = proprio[PROPRIO_Z] >= self.grasp_z + REGRIP_RISE_M
        return probing and risen and not self._shut(proprio)

    def _reclosing(self, proprio: np.ndarray | None) -> bool:
        """Whether the fingers are closing again after a regrip and have not shut on nothing
        (then the head has the hand again)."""
        if not self._regripped or self.landed_at is not None or proprio is None:
            return False
        return not self._shut(proprio)

    def _regrip(self, action: Action, proprio: np.ndarray, dt: float) -> Action | None:
        """Open a little, go back down to the landing height; None once there (the reflex
        then closes as at first, the probe keeping its force)."""
        velocity = np.zeros(4, np.float32)
        if self.regripping == "opening" and proprio[PROPRIO_WIDTH] >= self._regrip_width - 0.002:
            self.regripping, self._lowering_s = "lowering", 0.0
        if self.regripping == "lowering":
            self._lowering_s += dt
            back = proprio[PROPRIO_Z] <= self.grasp_z + 0.001
            if back or self._lowering_s >= REGRIP_LOWER_S:
                self.regripping, self.landed_at = None, None  # the next ticks close and land
                self.probe.regrip()
                return None
            velocity[2] = -REGRIP_SPEED
        self._linear = velocity[:3].copy()
        gripper = GripperCommand(self._regrip_width, GRIPPER_SPEED_RANGE[1], self.probe.force)
        return Action(velocity, gripper, action.timestamp)

    def _retreat(self, action: Action, proprio: np.ndarray | None) -> Action | None:
        """Open and lift clear after a set-down or a missed grasp; None once clear (the head
        acts again)."""
        if proprio is None or proprio[PROPRIO_Z] >= self.released_at_z + RETREAT_M:
            self.released_at_z = None
            return None
        velocity = np.array([0.0, 0.0, RETREAT_SPEED, 0.0], np.float32)
        gripper = GripperCommand(GRIPPER_STROKE_M, action.gripper.speed_mps, GRIPPER_FORCE_RANGE[0])
        return Action(velocity, gripper, action.timestamp)

    def __call__(
        self,
        action: Action,
        tactile: np.ndarray,
        time_s: float,
        proprio: np.ndarray | None = None,
        wrench: np.ndarray | None = None,
    ) -> Action:
        """The head's ``action`` with the grasp set by touch; ``tactile`` the current taxels,
        ``time_s`` the observation time (s), ``proprio`` the current proprio vector (without
        it a set-down is never detected), ``wrench`` the wrist wrench (N, N·m; without it a
        blocked grasp is never detected)."""
        dt = 0.0 if self._time is None else max(time_s - self._time, 0.0)
        self._time = time_s
        if self.released_at_z is not None:
            retreat = self._retreat(action, proprio)
            if retreat is not None:
                return retreat
        if self.state == "carrying" and self._set_down(action.ee_velocity, proprio, wrench, dt):
            self.released_at_z = float(proprio[PROPRIO_Z])
            self.probe, self.landed_at, self._pushing_s = None, None, 0.0
            self._forget_grasp()
            return self._retreat(action, proprio)
        if not self._closing(action.gripper.width_m, proprio, dt):
            self.probe, self.landed_at = None, None
            self._forget_grasp()
            self._linear = action.ee_velocity[:3].copy()
            bump = self._bump_velocity(action.ee_velocity, tactile, wrench, proprio)
            if bump is not None:
                return Action(bump, action.gripper, action.timestamp)
            if self.missed_at_z is not None or self.blocked_at_z is not None:  # kept open
                gripper = GripperCommand(GRIPPER_STROKE_M, action.gripper.speed_mps,
                                         action.gripper.force_n)  # fmt: skip
                return Action(action.ee_velocity, gripper, action.timestamp)
            return action
        if self.probe is None:
            self.probe, self._step_time = SlipProbe(stick_slip_s=STICK_SLIP_S), -np.inf
            self._opening_s = 0.0
        landed = self.landed_at is not None
        self._step_probe(tactile, time_s, proprio)
        if self._missed(proprio):
            self.missed_at_z = self.released_at_z = float(proprio[PROPRIO_Z])
            self.probe, self.landed_at = None, None
            return self._retreat(action, proprio)
        if self._blocked(wrench, dt) and proprio is not None:
            self.blocked_at_z = self.released_at_z = float(proprio[PROPRIO_Z])
            self.probe, self.landed_at, self._blocked_s = None, None, 0.0
            return self._retreat(action, proprio)
        if not landed and self.landed_at is not None and proprio is not None:
            self.grasp_z = float(proprio[PROPRIO_Z])
            self._grasp_xy = (float(proprio[PROPRIO_X]), float(proprio[PROPRIO_Y]))
        if self._slid_up(proprio):
            self.regripping, self._regripped = "opening", True
            self._regrip_width = min(float(proprio[PROPRIO_WIDTH]) + REGRIP_OPEN_M,
                                     GRIPPER_STROKE_M)  # fmt: skip
        if self.regripping is not None:
            regrip = self._regrip(action, proprio, dt)
            if regrip is not None:
                return regrip
        velocity = self._velocity(action.ee_velocity, time_s, dt, proprio)
        self._linear = velocity[:3].copy()
        gripper = GripperCommand(0.0, action.gripper.speed_mps, self.probe.force)
        return Action(velocity, gripper, action.timestamp)
