"""Finishing a grasp the head leaves hanging: a guarded descent onto the object, then a close.

In closed loop the head often brings the open hand over the block, centred to a few mm, and
stops there 1-4 cm above it, open, until the episode times out (the plan shows the grasp,
the head does not act on it): Fragile seeds 10 and 20, Slippery 3 and 7 of the runtime bench
(seeds 0-39, no delay). When the open hand has stood still, centred over the object the
grasp-pose reader sees, for :data:`STILL_S` (or has hovered there for :data:`HOVER_S`
without coming closer, whatever the head asks), this takes the arm and lowers it at
:data:`DESCENT_SPEED` until something stops it (the pads feel a touch; the wrist feels a
push, as from the palm on the object's top; or the arm stops going down: on every traced
seed the workspace's floor, the open fingers straddling the block; from there it rises
:data:`BACKOFF_M` first, so the fingertips leave the table), then asks the grip reflex to
close, and keeps asking while the reflex closes, probes and carries, i.e. until it lets go
(a set-down) or gives up (a missed or blocked grasp, after which the hand may try again).
It is the classic guarded move: no model of the object's height, only contact.

A hand the head has shut on nothing above the object (Slippery seed 6: closed 6 cm above
the block's centre and held there) counts as left hanging too: it opens in place first.
"""

from __future__ import annotations

import numpy as np

from dualctl.data.privileged import TOUCH
from dualctl.tracker.grip import MISSED_WIDTH_M
from dualctl.types import GRIPPER_STROKE_M, PROPRIO_FIELDS, Action, GripperCommand, Observation

_XY = [PROPRIO_FIELDS.index("ee_x"), PROPRIO_FIELDS.index("ee_y")]
_Z = PROPRIO_FIELDS.index("ee_z")
_WIDTH = PROPRIO_FIELDS.index("width")

#: The hand counts as centred over the object within CENTRED_M (m) of its estimated (x, y),
#: and as near it below NEAR_Z_M (m) of height.
CENTRED_M, NEAR_Z_M = 0.01, 0.1
#: The head holds the hand still when it asks for less than STILL_SPEED (m/s); after STILL_S
#: (s) of that, centred, near and open, the descent starts.
STILL_SPEED, STILL_S = 0.015, 0.3
#: Lowering speed (m/s): slow, since a stiff arm stopped at speed v presses with about its
#: damping x v before its target is pulled back.
DESCENT_SPEED = 0.05
#: Above FAST_ABOVE_Z_M (m) nothing on the table reaches the open hand yet (the sim's tallest
#: block stands 7 cm), so it goes down at FAST_DESCENT_SPEED (m/s) there. Oracle bench,
#: Slippery seed 4005: a descent from 11 cm took 1.8 of the episode's 8 s.
FAST_ABOVE_Z_M, FAST_DESCENT_SPEED = 0.08, 0.1
#: A wrist force above STOP_WRIST_N (N) stops the descent, once it has run SETTLE_S (s): the
#: wrist also reads the arm's own acceleration as the descent starts. So does an arm that
#: has gone down slower than a fifth of DESCENT_SPEED for BLOCKED_S (s): something holds it
#: (the workspace's floor, for one).
STOP_WRIST_N, SETTLE_S, BLOCKED_S = 8.0, 0.1, 0.1
#: An arm stopped by something other than touch or a push (the workspace's floor: the open
#: fingertips on the table) rises BACKOFF_M (m) before it closes, to about the height the
#: sim's expert grasps its blocks at (their centres, 2.2-3.1 cm). Oracle bench, Fragile
#: seeds 4006, 4014, 4029: tips shut on the table read its drag as the load, the reflex
#: called the block carried at too little force and it slid out; 4013: a tall block held 8 mm
#: below its centre slid 3 cm in the fingers. Fragile 42 -> 46/50 (3 mm: 43; 12 mm: 43).
BACKOFF_M = 0.008
#: Or: the open (or shut-on-nothing) hand has stayed centred over the object, below HOVER_Z_M
#: (m), for HOVER_S (s) without coming HOVER_DROP_M (m) closer, whatever the head asks. Closed
#: loop, Fragile seed 32 and Slippery 32: the head bobbed the open hand 8-12 cm over a centred
#: block at +-5 cm/s for the whole episode, never still long enough for STILL_S and mostly
#: above NEAR_Z_M. The grip reflex keeps a hand shut on nothing from going down, so such a
#: hand waits there while the head still asks to descend.
HOVER_Z_M, HOVER_S, HOVER_DROP_M = 0.15, 1.0, 0.015
#: An open hand is wider than OPEN_FRACTION of the stroke (a shut one: grip.MISSED_WIDTH_M).
OPEN_FRACTION = 0.6
#: A hand moved across faster than LEAVE_SPEED (m/s) by the head ends a descent: the head has
#: chosen to go elsewhere.
LEAVE_SPEED = 0.05
#: Descents per episode: after a miss the hand may try again, not forever.
ATTEMPTS = 2


class GuardedDescent:
    """Watches the open hand; lowers it onto the object and closes it when the head stalls
    over the object. ``phase`` is "watching", "opening" (a hand shut on nothing),
    "descending", "backing off", "grasping" or "done" (an object
    has been carried: the object may have moved since the reader saw it, and a hand that
    comes back to where it stood must not close on the empty table)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.phase = "watching"
        self.attempts = 0
        self._still_s = 0.0
        self._descending_s = 0.0
        self._blocked_s = 0.0
        self._z: float | None = None
        self._backoff_z = 0.0
        self._hover_s, self._hover_z = 0.0, None
        self._carried = False
        self._time: float | None = None

    def __call__(
        self,
        action: Action,
        observation: Observation,
        object_xy: np.ndarray | None,
        reflex_state: str,
    ) -> Action:
        """``action`` lowered or closed as the descent's phase asks. ``object_xy`` is the
        object's estimated (x, y) (m) or None; ``reflex_state`` the grip reflex's state as of
        the last tick."""
        dt = 0.0 if self._time is None else max(observation.timestamp - self._time, 0.0)
        self._time = observation.timestamp
        if self.phase == "watching":
            return self._watch(action, observation, object_xy, reflex_state, dt)
        if self.phase == "opening":
            return self._open(action, observation)
        if self.phase == "descending":
            return self._descend(action, observation, dt)
        if self.phase == "backing off":
            return self._back_off(action, observation)
        if self.phase == "grasping":
            return self._grasp(action, reflex_state)
        return action

    def _watch(self, action, observation, object_xy, reflex_state, dt) -> Action:
        if reflex_state == "carrying":  # the head grasped by itself: nothing left to finish
            self.phase = "done"
            return action
        proprio = observation.proprio
        opened = (
            reflex_state == "open"
            and proprio[_WIDTH] > OPEN_FRACTION * GRIPPER_STROKE_M
            and action.gripper.width_m > OPEN_FRACTION * GRIPPER_STROKE_M
        )
        shut_on_nothing = (
            reflex_state == "closing"
            and proprio[_WIDTH] < MISSED_WIDTH_M
            and float(np.abs(observation.tactile).max()) <= TOUCH
        )
        centred = (  # the cheap tests first: this runs every tick while watching
            (opened or shut_on_nothing)
            and self.attempts < ATTEMPTS
            and object_xy is not None
            and float(np.hypot(*(object_xy - proprio[_XY]))) < CENTRED_M
        )
        ready = (
            centred
            and proprio[_Z] < NEAR_Z_M
            and float(np.linalg.norm(action.ee_velocity[:3])) < STILL_SPEED
        )
        self._still_s = self._still_s + dt if ready else 0.0
        hovering = self._hovering(centred and proprio[_Z] < HOVER_Z_M, proprio[_Z], dt)
        if self._still_s < STILL_S and not hovering:
            return action
        self.attempts += 1
        if shut_on_nothing:
            self.phase = "opening"
            return self._open(action, observation)
        return self._start_descent(action, observation)

    def _hovering(self, waiting: bool, z: float, dt: float) -> bool:
        """Whether the hand has been ``waiting`` (open or shut on nothing, centred over the
        object, below HOVER_Z_M) for HOVER_S without coming HOVER_DROP_M closer to it (a hand
        still coming down is watched afresh from there)."""
        if not waiting:
            self._hover_s, self._hover_z = 0.0, None
            return False
        if self._hover_z is None or z < self._hover_z - HOVER_DROP_M:
            self._hover_s, self._hover_z = 0.0, float(z)
            return False
        self._hover_s += dt
        return self._hover_s >= HOVER_S

    def _start_descent(self, action, observation) -> Action:
        self._hover_s, self._hover_z = 0.0, None
        self.phase, self._descending_s, self._blocked_s = "descending", 0.0, 0.0
        return self._descend(action, observation, 0.0)

    def _open(self, action, observation) -> Action:
        """Open a shut hand in place, then go down."""
        if observation.proprio[_WIDTH] > OPEN_FRACTION * GRIPPER_STROKE_M:
            return self._start_descent(action, observation)
        velocity = action.ee_velocity.copy()
        velocity[:3] = 0.0
        return Action(velocity, _gripper(action, GRIPPER_STROKE_M), action.timestamp)

    def _descend(self, action, observation, dt) -> Action:
        self._descending_s += dt
        z, last_z = float(observation.proprio[_Z]), self._z
        self._z = z
        settled = self._descending_s >= SETTLE_S
        speed = FAST_DESCENT_SPEED if z > FAST_ABOVE_Z_M else DESCENT_SPEED
        slow = settled and last_z is not None and (last_z - z) < 0.2 * DESCENT_SPEED * dt
        self._blocked_s = self._blocked_s + dt if slow else 0.0
        pushed = float(np.linalg.norm(observation.wrench[:3])) > STOP_WRIST_N
        touched = float(np.abs(observation.tactile).max()) > TOUCH
        stopped = touched or (settled and (pushed or self._blocked_s >= BLOCKED_S))
        if float(np.hypot(*action.ee_velocity[:2])) > LEAVE_SPEED:
            self.phase, self._still_s = "watching", 0.0
            return action
        if stopped and not (touched or pushed):
            self.phase, self._backoff_z = "backing off", z + BACKOFF_M
            return self._back_off(action, observation)
        if stopped:
            return self._start_grasp(action)
        velocity = action.ee_velocity.copy()
        velocity[2] = -speed
        return Action(velocity, _gripper(action, GRIPPER_STROKE_M), action.timestamp)

    def _back_off(self, action, observation) -> Action:
        """Rise BACKOFF_M off what stopped the descent, then close."""
        if float(observation.proprio[_Z]) >= self._backoff_z:
            return self._start_grasp(action)
        velocity = action.ee_velocity.copy()
        velocity[:3] = 0.0
        velocity[2] = DESCENT_SPEED
        return Action(velocity, _gripper(action, GRIPPER_STROKE_M), action.timestamp)

    def _start_grasp(self, action) -> Action:
        self.phase, self._carried = "grasping", False
        return self._grasp(action, "open")

    def _grasp(self, action, reflex_state) -> Action:
        """Close, and keep asking while the reflex closes, probes and carries."""
        self._carried = self._carried or reflex_state == "carrying"
        if reflex_state == "releasing":
            self.phase = "done" if self._carried else "watching"
            self._still_s = 0.0
            return action
        velocity = action.ee_velocity.copy()
        if reflex_state in ("open", "closing"):  # hold the arm until the fingers land
            velocity[:3] = 0.0
        return Action(velocity, _gripper(action, 0.0), action.timestamp)


def _gripper(action: Action, width_m: float) -> GripperCommand:
    """The head's gripper command with its width (m) replaced."""
    return GripperCommand(width_m, action.gripper.speed_mps, action.gripper.force_n)
