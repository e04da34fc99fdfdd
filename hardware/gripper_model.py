"""A simple kinematic model of a Robotiq 2F gripper behind its register map, for the emulator.

Fingers ramp toward the requested position at the requested speed; closing on a virtual object
stops them at its width with gOBJ = 2 and a motor current that rises with the requested force.
Activation, the priority faults (0x05, 0x07), the 1 s communication watchdog (0x09) and
injected faults behave as the manual describes. Time is passed in (s), so tests can step it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dualctl.hardware.robotiq_protocol import (
    GRIPPER_SPECS,
    GSTA_ACTIVATING,
    GSTA_ACTIVE,
    GSTA_RESET,
    OBJ_AT_TARGET,
    OBJ_CONTACT_CLOSING,
    OBJ_MOVING,
    Calibration,
    GripperSpec,
    RobotiqRequest,
    RobotiqStatus,
    force_n,
    speed_mps,
)

#: gFLT codes that only a reactivation clears.
MAJOR_FAULTS = (0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F)
# Motor current (counts of ~10 mA) while the fingers travel, and when squeezing at full force.
_MOVING_CURRENT = 10
_FULL_FORCE_CURRENT = 80
# Time for the squeezing current to build up after contact (s).
_CURRENT_RISE_S = 0.05


@dataclass
class GripperParams:
    """What the emulated gripper is like.

    Attributes:
        spec: model ranges (stroke, speed, force).
        open_counts: gPO when fully open.
        closed_counts: gPO at the closed hard stop.
        activation_s: time from rACT rising to gSTA == 3 (a real one strokes ~2 s).
        object_width_m: a virtual object between the fingers (m), None for empty.
        watchdog_s: silence after which gFLT 0x09 is raised (1 s on the real gripper).
    """

    spec: GripperSpec = GRIPPER_SPECS["2F-85"]
    open_counts: int = 3
    closed_counts: int = 230
    activation_s: float = 0.05
    object_width_m: float | None = None
    watchdog_s: float = 1.0

    @property
    def calibration(self) -> Calibration:
        return Calibration(self.open_counts, self.closed_counts, self.spec.stroke_m)


class GripperModel:
    """The gripper's state, advanced lazily to the time of each register access."""

    def __init__(self, params: GripperParams, now: float):
        self.params = params
        self.request = RobotiqRequest(act=False, go=False, position=0, speed=0, force=0)
        self.position = float(params.open_counts)
        self.activation = GSTA_RESET
        self.object = OBJ_AT_TARGET
        self.fault = 0
        self.controller_fault = 0
        self._activation_done_at = 0.0
        self._contact_at: float | None = None
        self._last_update = now
        self._last_comm = now
        self._watchdog_pending = False

    # --- register access ----------------------------------------------------------------------
    def write(self, request: RobotiqRequest, now: float) -> None:
        """Apply an FC16 write of the 3 command registers."""
        self._communicate(now)
        previous = self.request
        self.request = request
        if not request.act:
            self._reset()
        elif not previous.act:
            self._start_activation(now)
        if self.fault in (0x05, 0x07):
            self.fault = 0
        if request.go and not request.act:
            self.fault = 0x07
        elif request.go and self.activation == GSTA_ACTIVATING:
            self.fault = 0x05
        if request.position != previous.position or (request.go and not previous.go):
            self._contact_at = None
            self.object = OBJ_MOVING if request.go else self.object

    def status(self, now: float) -> RobotiqStatus:
        """The FC04 status registers at time ``now`` (s)."""
        self._communicate(now)
        fault = self.fault
        if self._watchdog_pending and not fault:
            fault, self._watchdog_pending = 0x09, False
        return RobotiqStatus(
            activated=self.request.act,
            going=self.request.go and self.activation == GSTA_ACTIVE,
            activation=self.activation,
            object=self.object if self.activation == GSTA_ACTIVE else OBJ_MOVING,
            fault=fault,
            controller_fault=self.controller_fault,
            requested=self.request.position,
            position=int(round(self.position)),
            current=self._current(now),
        )

    # --- fault injection ----------------------------------------------------------------------
    def inject_fault(self, code: int, controller: bool = False) -> None:
        """Raise gFLT ``code`` (or kFLT when ``controller``); major faults stop the fingers."""
        if controller:
            self.controller_fault = code
        else:
            self.fault = code
        if code in MAJOR_FAULTS and not controller:
            self.object = OBJ_AT_TARGET

    def clear_fault(self) -> None:
        """End a minor or controller condition (cool-down done, controller recovered)."""
        if self.fault not in MAJOR_FAULTS:
            self.fault = 0
        self.controller_fault = 0

    # --- dynamics -----------------------------------------------------------------------------
    def _communicate(self, now: float) -> None:
        self._advance(now)
        silent = now - self._last_comm
        if self.activation == GSTA_ACTIVE and silent > self.params.watchdog_s:
            self._watchdog_pending = True
        self._last_comm = now

    def _reset(self) -> None:
        self.activation = GSTA_RESET
        self.fault = 0
        self.object = OBJ_AT_TARGET
        self._contact_at = None

    def _start_activation(self, now: float) -> None:
        self.fault = 0
        self.activation = GSTA_ACTIVATING
        self._activation_done_at = now + self.params.activation_s

    def _advance(self, now: float) -> None:
        dt, self._last_update = max(0.0, now - self._last_update), now
        if self.activation == GSTA_ACTIVATING and now >= self._activation_done_at:
            self.activation = GSTA_ACTIVE
            self.position = float(self.params.open_counts)
        moving = self.activation == GSTA_ACTIVE and self.request.go and self.object == OBJ_MOVING
        if not moving or self.fault in MAJOR_FAULTS:
            return
        p = self.params
        counts_per_m = (p.closed_counts - p.open_counts) / p.spec.stroke_m
        step = speed_mps(self.request.speed, p.spec) * counts_per_m * dt
        target = min(max(self.request.position, p.open_counts), p.closed_counts)
        contact = self._contact_counts()
        if target > self.position:
            previous = self.position
            self.position = min(previous + step, target)
            if contact is not None and previous <= contact <= self.position:
                self.position = contact
                self.object = OBJ_CONTACT_CLOSING
                self._contact_at = now
                return
        else:
            self.position = max(self.position - step, target)
        if self.position == target:
            self.object = OBJ_AT_TARGET

    def _contact_counts(self) -> float | None:
        width = self.params.object_width_m
        if width is None:
            return None
        return float(self.params.calibration.counts(width))

    def _current(self, now: float) -> int:
        if self.object == OBJ_MOVING and self.request.go:
            return _MOVING_CURRENT
        if self.object != OBJ_CONTACT_CLOSING or self._contact_at is None:
            return 0
        rise = min(1.0, (now - self._contact_at) / _CURRENT_RISE_S)
        spec = self.params.spec
        squeeze = force_n(self.request.force, spec) / spec.force_range[1]
        return int(
            round(_MOVING_CURRENT + rise * squeeze * (_FULL_FORCE_CURRENT - _MOVING_CURRENT))
        )
