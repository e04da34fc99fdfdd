"""The Robotiq 2F-85 / 2F-140 Modbus register map, shared by the driver and the emulator.

Robot -> gripper: an FC16 write of 3 registers at 0x03E8, six bytes big-endian:
``[action request, reserved, reserved, rPR, rSP, rFR]``; the action request byte holds
rACT (bit 0), rGTO (bit 3), rATR (bit 4), rARD (bit 5).

Gripper -> robot: an FC04 read of 3 registers at 0x07D0, six bytes:
``[gripper status, reserved, fault status, gPR, gPO, gCU]``; the status byte holds gACT (bit 0),
gGTO (bit 3), gSTA (bits 4-5), gOBJ (bits 6-7); the fault byte holds gFLT (low nibble) and kFLT
(high nibble). Position bytes run from 0x00 (open) to 0xFF (closed); gCU is ~10 mA per count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualctl.types import (
    GRIPPER_FORCE_RANGE,
    GRIPPER_SPEED_RANGE,
    GRIPPER_STROKE_M,
    GripperCommand,
)

COMMAND_ADDRESS = 0x03E8
STATUS_ADDRESS = 0x07D0
REGISTER_COUNT = 3
DEFAULT_DEVICE_ID = 9

# action request bits
RACT, RGTO, RATR, RARD = 0x01, 0x08, 0x10, 0x20

# gSTA: activation state
GSTA_RESET, GSTA_ACTIVATING, GSTA_ACTIVE = 0, 1, 3
# gOBJ: object detection
OBJ_MOVING, OBJ_CONTACT_OPENING, OBJ_CONTACT_CLOSING, OBJ_AT_TARGET = 0, 1, 2, 3


@dataclass(frozen=True)
class GripperSpec:
    """Datasheet ranges of one gripper model (m, m/s, N)."""

    name: str
    stroke_m: float
    speed_range: tuple[float, float]
    force_range: tuple[float, float]


GRIPPER_SPECS = {
    "2F-85": GripperSpec("2F-85", GRIPPER_STROKE_M, GRIPPER_SPEED_RANGE, GRIPPER_FORCE_RANGE),
    "2F-140": GripperSpec("2F-140", 0.140, (0.030, 0.250), (10.0, 125.0)),
}


@dataclass(frozen=True)
class RobotiqRequest:
    """The six output bytes, as plain integers (each 0..255 or a bit)."""

    act: bool
    go: bool
    position: int
    speed: int
    force: int
    auto_release: bool = False
    release_open: bool = False

    def to_registers(self) -> list[int]:
        action = (RACT * self.act) | (RGTO * self.go)
        action |= (RATR * self.auto_release) | (RARD * self.release_open)
        return [action << 8, self.position & 0xFF, (self.speed << 8) | self.force]

    @classmethod
    def from_registers(cls, registers: list[int]) -> RobotiqRequest:
        action = registers[0] >> 8
        return cls(
            act=bool(action & RACT),
            go=bool(action & RGTO),
            position=registers[1] & 0xFF,
            speed=registers[2] >> 8,
            force=registers[2] & 0xFF,
            auto_release=bool(action & RATR),
            release_open=bool(action & RARD),
        )


@dataclass(frozen=True)
class RobotiqStatus:
    """The six input bytes, decoded.

    Attributes:
        activated: gACT.
        going: gGTO, the gripper is following the position request.
        activation: gSTA (0 reset, 1 activating, 3 activation complete).
        object: gOBJ (0 moving, 1 contact while opening, 2 contact while closing, 3 at target).
        fault: gFLT, the gripper's fault code (0 none).
        controller_fault: kFLT, the controller's fault code (0 none).
        requested: gPR, echo of the position request (counts).
        position: gPO, measured finger position (counts, 0 open .. 255 closed).
        current: gCU, motor current (counts, ~10 mA each).
    """

    activated: bool
    going: bool
    activation: int
    object: int
    fault: int
    controller_fault: int
    requested: int
    position: int
    current: int

    @property
    def ready(self) -> bool:
        return self.activation == GSTA_ACTIVE

    @property
    def holding_object(self) -> bool:
        return self.object in (OBJ_CONTACT_OPENING, OBJ_CONTACT_CLOSING)

    @property
    def current_a(self) -> float:
        return self.current * 0.010

    def to_registers(self) -> list[int]:
        status = int(self.activated) | (int(self.going) << 3)
        status |= (self.activation & 0x3) << 4 | (self.object & 0x3) << 6
        faults = (self.fault & 0x0F) | (self.controller_fault & 0x0F) << 4
        return [status << 8, (faults << 8) | self.requested, (self.position << 8) | self.current]

    @classmethod
    def from_registers(cls, registers: list[int]) -> RobotiqStatus:
        status, faults = registers[0] >> 8, registers[1] >> 8
        return cls(
            activated=bool(status & 0x01),
            going=bool(status & 0x08),
            activation=(status >> 4) & 0x3,
            object=(status >> 6) & 0x3,
            fault=faults & 0x0F,
            controller_fault=faults >> 4,
            requested=registers[1] & 0xFF,
            position=registers[2] >> 8,
            current=registers[2] & 0xFF,
        )


@dataclass(frozen=True)
class Calibration:
    """Maps position counts to finger opening in m.

    The 0..255 position byte spans more than the mechanical stroke: a 2F-85 reaches its hard
    stop near 230 counts and fully open near 3, varying unit to unit, so both ends are measured
    (:meth:`RobotiqGripper.calibrate`) rather than assumed.
    """

    open_counts: int
    closed_counts: int
    stroke_m: float

    def width_m(self, counts: int) -> float:
        span = self.closed_counts - self.open_counts
        fraction = (self.closed_counts - counts) / span
        return float(np.clip(fraction, 0.0, 1.0) * self.stroke_m)

    def counts(self, width_m: float) -> int:
        fraction = np.clip(width_m / self.stroke_m, 0.0, 1.0)
        span = self.closed_counts - self.open_counts
        return int(round(self.closed_counts - fraction * span))


def _to_byte(value: float, low: float, high: float) -> int:
    # Rounded down: speed and force are limits, and the byte must never mean more than asked.
    return int(np.floor(np.clip((value - low) / (high - low), 0.0, 1.0) * 255 + 1e-9))


def _from_byte(byte: int, low: float, high: float) -> float:
    return low + (high - low) * byte / 255


def encode_command(
    command: GripperCommand, spec: GripperSpec, calibration: Calibration
) -> tuple[RobotiqRequest, GripperCommand]:
    """The request bytes for ``command`` and the command they actually mean (quantised)."""
    position = calibration.counts(command.width_m)
    speed = _to_byte(command.speed_mps, *spec.speed_range)
    force = _to_byte(command.force_n, *spec.force_range)
    request = RobotiqRequest(act=True, go=True, position=position, speed=speed, force=force)
    sent = GripperCommand(
        width_m=calibration.width_m(position),
        speed_mps=_from_byte(speed, *spec.speed_range),
        force_n=_from_byte(force, *spec.force_range),
    )
    return request, sent


def speed_mps(byte: int, spec: GripperSpec) -> float:
    """Finger speed (m/s) meant by an rSP byte."""
    return _from_byte(byte, *spec.speed_range)


def force_n(byte: int, spec: GripperSpec) -> float:
    """Grip force (N) meant by an rFR byte."""
    return _from_byte(byte, *spec.force_range)
