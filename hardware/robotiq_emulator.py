"""A Robotiq 2F gripper emulator on pymodbus's server, speaking the real register map.

Reachable over Modbus TCP, RTU frames over TCP (a serial gateway) or RTU over a pseudo-terminal
(:class:`~dualctl.hardware.serial_line.NullModem`, optionally with 115200-baud wire time).
Link faults can be injected on the wire (drop replies, corrupt their CRC, delay them,
disconnect, go offline) and gripper faults in the model (any gFLT / kFLT code).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

from dualctl.hardware.gripper_model import GripperModel, GripperParams
from dualctl.hardware.robotiq_protocol import (
    COMMAND_ADDRESS,
    DEFAULT_DEVICE_ID,
    REGISTER_COUNT,
    STATUS_ADDRESS,
    RobotiqRequest,
)
from dualctl.hardware.serial_line import NullModem
from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

log = logging.getLogger(__name__)


@dataclass
class WireFaults:
    """Faults applied to the emulator's replies; counters count down as they are used.

    Attributes:
        drop_replies: the next N replies are never sent.
        corrupt_crc: the next N replies go out with a wrong CRC (RTU framing only).
        delay_s: every reply waits this long first (s).
    """

    drop_replies: int = 0
    corrupt_crc: int = 0
    delay_s: float = 0.0


class RobotiqEmulator:
    """The gripper model behind a pymodbus server.

    Args:
        transport: "tcp", "rtu_over_tcp" or "rtu" (a pty pair; the driver opens
            :attr:`serial_port`).
        params: the gripper model.
        device_id: Modbus unit id.
        host, port: TCP bind address (port 0 picks a free port; see :attr:`port`).
        baudrate: for "rtu", the modelled line speed (None: no wire time).
    """

    def __init__(
        self,
        transport: str = "tcp",
        params: GripperParams | None = None,
        device_id: int = DEFAULT_DEVICE_ID,
        host: str = "127.0.0.1",
        port: int = 0,
        baudrate: int | None = None,
    ):
        self.transport, self.device_id, self.host = transport, device_id, host
        self.port, self.baudrate = port, baudrate
        self.params = params or GripperParams()
        self.model = GripperModel(self.params, time.monotonic())
        self.faults = WireFaults()
        self.requests = 0
        #: raw bytes of the latest requests as they arrived (for byte-level tests)
        self.received: deque[bytes] = deque(maxlen=32)
        self.serial_port = ""
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._line: NullModem | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> RobotiqEmulator:
        if self.transport == "rtu":
            self._line = NullModem(self.baudrate)
            self._line.start()
            self.serial_port = self._line.b_path
        await self._listen()
        log.info("Robotiq emulator serving %s", self.address)
        return self

    async def stop(self) -> None:
        await self._shutdown()
        if self._line is not None:
            self._line.close()
            self._line = None

    async def __aenter__(self) -> RobotiqEmulator:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    @property
    def line(self) -> NullModem | None:
        """The pty null modem of the "rtu" transport (None otherwise)."""
        return self._line

    @property
    def last_received(self) -> bytes:
        return self.received[-1] if self.received else b""

    @property
    def address(self) -> str:
        if self.transport == "rtu":
            return f"rtu://{self.serial_port}"
        return f"{self.transport}://{self.host}:{self.port}"

    # --- injected link faults -----------------------------------------------------------------
    def disconnect(self) -> None:
        """Close every client connection now (a cable pulled and put back)."""
        if self._server is None:
            return
        for connection in list(self._server.active_connections.values()):
            connection.close()

    async def go_offline(self) -> None:
        """Stop answering and refuse connections (the gripper powered off)."""
        await self._shutdown()

    async def go_online(self) -> None:
        """Listen again on the same address (powered back on; state kept)."""
        if self._server is None:
            await self._listen()

    # --- pymodbus server ----------------------------------------------------------------------
    def _device(self) -> SimDevice:
        def registers(address: int) -> list[SimData]:
            return [SimData(address, count=REGISTER_COUNT, values=0, datatype=DataType.REGISTERS)]

        # (coils, discrete inputs, holding registers, input registers): the gripper's command
        # registers are holding registers, its status registers input registers.
        # pymodbus wants every block non-empty; the gripper has no bits, so one unused bit each.
        unused_bits = [SimData(0, values=False, datatype=DataType.BITS)]
        blocks = (
            unused_bits,
            list(unused_bits),
            registers(COMMAND_ADDRESS),
            registers(STATUS_ADDRESS),
        )
        return SimDevice(self.device_id, simdata=blocks, action=self._on_access)

    async def _listen(self) -> None:
        device = self._device()
        if self.transport == "rtu":
            self._server = ModbusSerialServer(
                device, framer=FramerType.RTU, port=self._line.a_path,
                baudrate=self.baudrate or 115200, trace_packet=self._on_packet,
            )  # fmt: skip
        else:
            framer = FramerType.SOCKET if self.transport == "tcp" else FramerType.RTU
            self._server = ModbusTcpServer(
                device, framer=framer, address=(self.host, self.port),
                trace_packet=self._on_packet,
            )  # fmt: skip
        await self._server.serve_forever(background=True)
        if self.transport != "rtu" and self.port == 0:
            self.port = self._server.transport.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # also closes every client connection

    async def _on_access(self, function, start, address, count, registers, values):
        """pymodbus calls this on every register access, before answering."""
        self.requests += 1
        now = time.monotonic()
        if function == 0x10 and address == COMMAND_ADDRESS and values:
            merged = registers[:REGISTER_COUNT]
            merged[address - start : address - start + len(values)] = values
            self.model.write(RobotiqRequest.from_registers(merged), now)
        elif function == 0x04 and start == STATUS_ADDRESS:
            registers[:REGISTER_COUNT] = self.model.status(now).to_registers()
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        return None

    def _on_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self.received.append(data)
            return data
        if self.faults.drop_replies > 0:
            self.faults.drop_replies -= 1
            return b""
        if self.faults.corrupt_crc > 0 and self.transport != "tcp":
            self.faults.corrupt_crc -= 1
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data
