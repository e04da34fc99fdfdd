"""One Modbus connection with disciplined async I/O: a lock, bounded waits, bounded retries,
then drop the link and reconnect in the background with capped exponential backoff.

pymodbus's own retries and auto-reconnect are switched off (``retries=0``,
``reconnect_delay=0``) so this module alone decides when a link is dead: the caller gets a typed
:class:`~dualctl.hardware.robotiq_faults.LinkError` within
``timeout_s * (retries + 1)`` seconds, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dualctl.hardware.config import LinkTiming
from dualctl.hardware.device_errors import CrcError, Disconnected, LinkTimeout, ProtocolError
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerRTU

log = logging.getLogger(__name__)

# Extra time granted beyond pymodbus's own reply timeout before this layer cancels the call;
# pymodbus normally gives up first, this only guards against a stuck transport.
_HARD_MARGIN_S = 0.02


@dataclass(frozen=True)
class Endpoint:
    """Where a Modbus device is and how its frames look.

    Attributes:
        transport: "tcp" (MBAP framing), "rtu_over_tcp" (RTU frames over a TCP socket) or
            "rtu" (RTU frames over a serial port).
        host: TCP host.
        port: TCP port.
        serial_port: serial device path.
        baudrate: serial bits/s (8N1).
    """

    transport: str
    host: str = "127.0.0.1"
    port: int = 502
    serial_port: str = ""
    baudrate: int = 115200

    @property
    def rtu_framed(self) -> bool:
        return self.transport in ("rtu", "rtu_over_tcp")

    def __str__(self) -> str:
        where = self.serial_port if self.transport == "rtu" else f"{self.host}:{self.port}"
        return f"{self.transport}://{where}"


@dataclass
class LinkStats:
    """Counters for logs, health and benches."""

    requests: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    drops: int = 0
    reconnects: int = 0


def _rtu_reply_size(request: bytes, reply: bytes) -> int | None:
    """Expected length of the RTU reply to ``request`` (FC04 / FC16 / exception), if known."""
    if len(reply) < 2:
        return None
    function = request[1]
    if reply[1] == function | 0x80:
        return 5
    if reply[1] != function:
        return None
    if function in (0x03, 0x04):
        return 5 + 2 * int.from_bytes(request[4:6], "big")
    if function == 0x10:
        return 8
    return None


class ModbusLink:
    """A Modbus client connection to one device (``device_id``) that never blocks for long."""

    def __init__(self, endpoint: Endpoint, device_id: int, timing: LinkTiming, name: str):
        self.endpoint, self.device_id, self.timing, self.name = endpoint, device_id, timing, name
        self.stats = LinkStats()
        self.last_error: Exception | None = None
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._lock = asyncio.Lock()
        self._reconnect_task: asyncio.Task | None = None
        self._closed = False
        self._last_request = b""
        self._crc_seen = False
        self._listeners: list[Callable[[bool], None]] = []
        self._up = False

    # --- connection ---------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Up and announced: the client's socket opens inside ``connect`` before the listeners
        hear of it, and a caller must not see the link up while they still think it down."""
        return self._up and self._client is not None and self._client.connected

    def on_state_change(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(connected)`` whenever the link goes up or down."""
        self._listeners.append(listener)

    async def connect(self) -> None:
        """Open the link; raise :class:`Disconnected` if it cannot within the connect timeout."""
        self._closed = False
        deadline = asyncio.get_running_loop().time() + self.timing.connect_timeout_s
        delay = self.timing.backoff_min_s
        while not await self._open():
            if asyncio.get_running_loop().time() + delay > deadline:
                raise Disconnected(
                    f"{self.name}: cannot open {self.endpoint} within "
                    f"{self.timing.connect_timeout_s} s; check the cable/address and that the "
                    "device is powered"
                )
            await asyncio.sleep(delay)
            delay = min(2 * delay, self.timing.backoff_max_s)

    async def close(self) -> None:
        """Stop reconnecting and close the link. Safe to call twice."""
        self._closed = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect_task
            self._reconnect_task = None
        self._close_client()

    def _make_client(self):
        common = dict(
            timeout=self.timing.timeout_s,
            retries=0,
            reconnect_delay=0,
            name=self.name,
            trace_packet=self._trace_packet,
            trace_connect=self._trace_connect,
        )
        ep = self.endpoint
        if ep.transport == "rtu":
            return AsyncModbusSerialClient(
                ep.serial_port, framer=FramerType.RTU, baudrate=ep.baudrate,
                bytesize=8, parity="N", stopbits=1, **common,
            )  # fmt: skip
        framer = FramerType.RTU if ep.rtu_framed else FramerType.SOCKET
        return AsyncModbusTcpClient(ep.host, port=ep.port, framer=framer, **common)

    async def _open(self) -> bool:
        self._close_client()
        client = self._make_client()
        self._client = client
        try:
            async with asyncio.timeout(self.timing.connect_timeout_s):
                ok = await client.connect()
        except (TimeoutError, OSError) as error:
            log.debug("%s: connect to %s failed: %s", self.name, self.endpoint, error)
            ok = False
        if not ok:
            self._close_client()
            return False
        log.info("%s: connected to %s", self.name, self.endpoint)
        self._up = True
        self._notify(True)
        return True

    def _close_client(self) -> None:
        self._up = False
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _trace_connect(self, connected: bool) -> None:
        if not connected and self._client is not None and not self._closed:
            asyncio.get_running_loop().call_soon(self._drop, "the device closed the link")

    def _drop(self, reason: str) -> None:
        """Close the link and start reconnecting in the background (once)."""
        if self._closed or (self._reconnect_task is not None and not self._reconnect_task.done()):
            return
        log.warning("%s: dropping link to %s: %s", self.name, self.endpoint, reason)
        self.stats.drops += 1
        self._close_client()
        self._notify(False)
        self._reconnect_task = asyncio.create_task(self._reconnect(), name=f"{self.name} reconnect")

    async def _reconnect(self) -> None:
        delay = self.timing.backoff_min_s
        while not self._closed:
            await asyncio.sleep(delay)
            if await self._open():
                self.stats.reconnects += 1
                return
            delay = min(2 * delay, self.timing.backoff_max_s)

    def _notify(self, connected: bool) -> None:
        for listener in self._listeners:
            listener(connected)

    # --- requests -----------------------------------------------------------------------------
    async def read_input_registers(self, address: int, count: int) -> list[int]:
        """FC04: ``count`` input registers from ``address``."""
        response = await self._request(
            lambda c: c.read_input_registers(address, count=count, device_id=self.device_id)
        )
        if len(response.registers) != count:
            raise ProtocolError(f"{self.name}: asked {count} registers, got {response.registers}")
        return list(response.registers)

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        """FC03: ``count`` holding registers from ``address``."""
        response = await self._request(
            lambda c: c.read_holding_registers(address, count=count, device_id=self.device_id)
        )
        return list(response.registers)

    async def write_registers(self, address: int, values: list[int]) -> None:
        """FC16: write ``values`` from ``address``."""
        await self._request(lambda c: c.write_registers(address, values, device_id=self.device_id))

    async def _request(self, call: Callable[[object], Awaitable]):
        async with self._lock:
            if not self.connected:
                self._drop("not connected")
                raise Disconnected(f"{self.name}: link to {self.endpoint} is down; reconnecting")
            self.stats.requests += 1
            crc_failures = 0
            for attempt in range(self.timing.retries + 1):
                self._crc_seen = False
                try:
                    # asyncio.timeout: 3.11's wait_for can swallow a cancellation
                    async with asyncio.timeout(self.timing.timeout_s + _HARD_MARGIN_S):
                        response = await call(self._client)
                except (TimeoutError, ModbusIOException) as error:
                    self.stats.timeouts += 1
                    crc_failures += self._crc_seen
                    log.debug("%s: attempt %d failed: %s", self.name, attempt + 1, error)
                    continue
                except ConnectionException as error:
                    self._drop(str(error))
                    raise Disconnected(f"{self.name}: {error}") from error
                if response.isError():
                    raise ProtocolError(
                        f"{self.name}: device {self.device_id} answered with Modbus exception "
                        f"{getattr(response, 'exception_code', '?')} to FC{response.function_code & 0x7F}"
                    )
                self.last_error = None
                return response
            error = self._failure(crc_failures)
            self.last_error = error
            self._drop(str(error))
            raise error

    def _failure(self, crc_failures: int):
        attempts = self.timing.retries + 1
        if crc_failures:
            return CrcError(
                f"{self.name}: {crc_failures} of {attempts} replies from {self.endpoint} had a "
                "bad CRC; check the baud rate, termination and cable shielding"
            )
        return LinkTimeout(
            f"{self.name}: no reply from device {self.device_id} at {self.endpoint} in "
            f"{attempts} attempts of {self.timing.timeout_s} s; check power, id and wiring"
        )

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """Notice replies whose CRC is wrong (pymodbus drops them silently as garbage)."""
        if not self.endpoint.rtu_framed:
            return data
        if sending:
            self._last_request = data
            return data
        size = _rtu_reply_size(self._last_request, data)
        if size is not None and len(data) >= size:
            crc = int.from_bytes(data[size - 2 : size], "big")
            if not FramerRTU.check_CRC(data[: size - 2], crc):
                self._crc_seen = True
                self.stats.crc_errors += 1
        return data
