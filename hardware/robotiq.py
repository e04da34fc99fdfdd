"""Robotiq 2F-85 / 2F-140 driver: activation, calibrated width, position/speed/force commands,
object detection and decoded faults, over Modbus RTU, Modbus TCP or an RTU-over-TCP gateway.

Every call is bounded by the link's timing (:class:`~dualctl.hardware.config.LinkTiming`); a
dead link raises :class:`~dualctl.hardware.robotiq_faults.LinkError` and reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from dualctl.hardware.config import RobotiqConfig
from dualctl.hardware.device_errors import DeviceError
from dualctl.hardware.modbus_link import Endpoint, ModbusLink
from dualctl.hardware.robotiq_faults import GripperFault, decode_fault
from dualctl.hardware.robotiq_protocol import (
    COMMAND_ADDRESS,
    GRIPPER_SPECS,
    OBJ_MOVING,
    REGISTER_COUNT,
    STATUS_ADDRESS,
    Calibration,
    GripperSpec,
    RobotiqRequest,
    RobotiqStatus,
    encode_command,
)

from dualctl.types import GripperCommand

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GripperState:
    """One status reading in SI units.

    Attributes:
        width_m: finger opening (m).
        requested_width_m: the position request the gripper is following (m).
        object_detected: the fingers stopped on an object (gOBJ 1 or 2).
        moving: the fingers are travelling (gOBJ 0 with gGTO set).
        current_a: motor current (A).
        fault: the decoded fault, if any.
        raw: the registers as decoded.
        stamp: time.monotonic() when the reply arrived (s).
    """

    width_m: float
    requested_width_m: float
    object_detected: bool
    moving: bool
    current_a: float
    fault: GripperFault | None
    raw: RobotiqStatus
    stamp: float


class RobotiqGripper:
    """A Robotiq 2F gripper on one Modbus link (one device id)."""

    def __init__(
        self,
        link: ModbusLink,
        spec: GripperSpec = GRIPPER_SPECS["2F-85"],
        calibration: Calibration | None = None,
        activation_timeout_s: float = 10.0,
        poll_s: float = 0.01,
    ):
        self.link, self.spec = link, spec
        self.calibration = calibration or Calibration(3, 230, spec.stroke_m)
        self.activation_timeout_s = activation_timeout_s
        self.poll_s = poll_s
        self.last_state: GripperState | None = None

    @classmethod
    def from_config(cls, config: RobotiqConfig) -> RobotiqGripper:
        endpoint = Endpoint(
            transport=config.transport, host=config.host, port=config.port,
            serial_port=config.serial_port, baudrate=config.baudrate,
        )  # fmt: skip
        link = ModbusLink(endpoint, config.device_id, config.timing, name="robotiq")
        spec = GRIPPER_SPECS[config.model]
        calibration = Calibration(config.open_counts, config.closed_counts, spec.stroke_m)
        return cls(link, spec, calibration, config.activation_timeout_s, 1.0 / config.poll_hz)

    async def connect(self) -> None:
        await self.link.connect()

    async def close(self) -> None:
        await self.link.close()

    # --- the two registers blocks -------------------------------------------------------------
    async def read_status(self) -> GripperState:
        """FC04 of the 3 status registers, decoded; does not raise on a gripper fault."""
        registers = await self.link.read_input_registers(STATUS_ADDRESS, REGISTER_COUNT)
        raw = RobotiqStatus.from_registers(registers)
        state = GripperState(
            width_m=self.calibration.width_m(raw.position),
            requested_width_m=self.calibration.width_m(raw.requested),
            object_detected=raw.holding_object,
            moving=raw.going and raw.object == OBJ_MOVING,
            current_a=raw.current_a,
            fault=decode_fault(raw.fault, raw.controller_fault),
            raw=raw,
            stamp=time.monotonic(),
        )
        if state.fault is not None and (self.last_state is None or self.last_state.fault is None):
            log.error("%s", state.fault)
        self.last_state = state
        return state

    async def write_request(self, request: RobotiqRequest) -> None:
        """FC16 of the 3 command registers."""
        await self.link.write_registers(COMMAND_ADDRESS, request.to_registers())

    # --- operations ---------------------------------------------------------------------------
    async def activate(self) -> GripperState:
        """Reset then activate (rACT 0 -> 1) and wait for gSTA == 3; also clears major faults."""
        await self.write_request(RobotiqRequest(act=False, go=False, position=0, speed=0, force=0))
        await self.write_request(RobotiqRequest(act=True, go=False, position=0, speed=0, force=0))
        deadline = time.monotonic() + self.activation_timeout_s
        while True:
            state = await self.read_status()
            if state.fault is not None and state.fault.needs_reset:
                raise state.fault
            if state.raw.ready:
                log.info("Robotiq %s activated", self.spec.name)
                return state
            if time.monotonic() > deadline:
                raise DeviceError(
                    f"Robotiq gripper did not finish activating within "
                    f"{self.activation_timeout_s} s (gSTA={state.raw.activation}); check that "
                    "nothing blocks the fingers and raise hardware.gripper.activation_timeout_s"
                )
            await asyncio.sleep(self.poll_s)

    async def command(self, command: GripperCommand) -> GripperCommand:
        """Send a position/speed/force request; return the command the bytes actually mean."""
        request, sent = encode_command(command, self.spec, self.calibration)
        await self.write_request(request)
        return sent

    async def stop(self) -> None:
        """Stop the fingers where they are (rGTO = 0), keeping the gripper activated."""
        position = self.last_state.raw.position if self.last_state else 0
        await self.write_request(
            RobotiqRequest(act=True, go=False, position=position, speed=0, force=0)
        )

    async def move(self, command: GripperCommand, timeout_s: float = 5.0) -> GripperState:
        """Command and wait until the fingers stop (at the target or on an object).

        Raises the gripper's fault if one appears, :class:`DeviceError` after ``timeout_s``.
        """
        request, _ = encode_command(command, self.spec, self.calibration)
        await self.write_request(request)
        return await self._wait_settled(request.position, timeout_s)

    async def calibrate(self, timeout_s: float = 10.0) -> Calibration:
        """Measure the open and closed position counts (hand must be empty) and use them."""
        counts = []
        for position in (0x00, 0xFF):
            # full speed, least force: a quick stroke that would not hurt a forgotten object
            await self.write_request(RobotiqRequest(True, True, position, speed=0xFF, force=0))
            state = await self._wait_settled(position, timeout_s)
            if state.object_detected:
                raise DeviceError(
                    "Robotiq calibration stopped on an object; empty the gripper and calibrate again"
                )
            counts.append(state.raw.position)
        if counts[1] - counts[0] < 10:
            raise DeviceError(f"Robotiq calibration measured too short a stroke: {counts} counts")
        self.calibration = Calibration(counts[0], counts[1], self.spec.stroke_m)
        log.info("Robotiq calibrated: open=%d closed=%d counts", *counts)
        return self.calibration

    async def _wait_settled(self, position: int, timeout_s: float) -> GripperState:
        """Poll until the gripper has taken ``position`` and its fingers stopped."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = await self.read_status()
            if state.fault is not None:
                raise state.fault
            if state.raw.requested == position and state.raw.object != OBJ_MOVING:
                return state
            if time.monotonic() > deadline:
                raise DeviceError(
                    f"Robotiq gripper still moving {timeout_s} s after a request for position "
                    f"{position} (at {state.raw.position})"
                )
            await asyncio.sleep(self.poll_s)
