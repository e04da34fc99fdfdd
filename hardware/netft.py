"""ATI Net F/T driver: RDT streaming over UDP into a latest-value slot, with bias and loss counts.

UDP never blocks and never retries: a lost record is simply superseded by the next one, and the
slot's timestamp tells the reader how fresh the wrench is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import numpy as np
from dualctl.hardware.device_errors import DeviceError, LinkTimeout
from dualctl.hardware.netft_protocol import (
    CMD_SET_BIAS,
    CMD_START_REALTIME,
    CMD_STOP,
    RECORD_SIZE,
    NetFTCalibration,
    RdtRecord,
    pack_request,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WrenchSample:
    """One record in SI units.

    Attributes:
        wrench: (6,) float64 forces (N) and torques (N·m), software bias removed.
        status: the sensor's status word (0 healthy).
        rdt_sequence: the record's RDT sequence number.
        stamp: time.monotonic() at arrival (s).
    """

    wrench: np.ndarray
    status: int
    rdt_sequence: int
    stamp: float


class _RdtProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: NetFT):
        self.owner = owner

    def datagram_received(self, data: bytes, addr) -> None:
        self.owner._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        log.warning("Net F/T: UDP error: %s", exc)


class NetFT:
    """A Net F/T box at ``host:port`` streaming records at its configured rate."""

    def __init__(
        self,
        host: str,
        port: int,
        calibration: NetFTCalibration,
        mount: np.ndarray | None = None,
    ):
        """``mount``: the 3x3 rotation from the sensor's axes to the wrist axes the controller
        reads (``netft_protocol.mount_rotation``), applied to force and torque after the bias;
        None leaves the sensor's own axes."""
        self.host, self.port, self.calibration = host, port, calibration
        # force and torque turn alike: one 6x6 product per record (records come at up to 7 kHz)
        self._to_wrist = None if mount is None else np.kron(np.eye(2), np.asarray(mount, float))
        self.latest: WrenchSample | None = None
        self.received = 0
        self.lost = 0
        self.malformed = 0
        self._bias = np.zeros(6)
        self._transport: asyncio.DatagramTransport | None = None
        self._arrived = asyncio.Event()

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _RdtProtocol(self), remote_addr=(self.host, self.port)
        )

    async def close(self) -> None:
        if self._transport is not None:
            self.stop_streaming()
            self._transport.close()
            self._transport = None

    def start_streaming(self, samples: int = 0) -> None:
        """Ask for real-time streaming (``samples`` = 0: until stopped)."""
        self._send(pack_request(CMD_START_REALTIME, samples))

    def stop_streaming(self) -> None:
        self._send(pack_request(CMD_STOP))

    def device_bias(self) -> None:
        """The sensor's own bias command: it zeroes its output at the current load."""
        self._send(pack_request(CMD_SET_BIAS))

    async def software_bias(self, samples: int = 20, timeout_s: float = 1.0) -> np.ndarray:
        """Average the next ``samples`` records and subtract that from every later one.

        Returns the bias (N, N·m). The hand must be empty and still.
        """
        self._bias = np.zeros(6)
        total, taken = np.zeros(6), 0
        while taken < samples:
            total += (await self.next_sample(timeout_s)).wrench
            taken += 1
        self._bias = total / samples
        return self._bias.copy()

    def clear_bias(self) -> None:
        """Forget the software bias."""
        self._bias = np.zeros(6)

    async def next_sample(self, timeout_s: float = 0.1) -> WrenchSample:
        """Wait for the next record (bounded)."""
        self._arrived.clear()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # lands as a record arrives, and the reader task then never stops.
            async with asyncio.timeout(timeout_s):
                await self._arrived.wait()
        except TimeoutError:
            raise LinkTimeout(
                f"Net F/T at {self.host}:{self.port} sent no record in {timeout_s} s; check that "
                "it is powered, reachable and streaming (RDT on UDP port 49152)"
            ) from None
        return self.latest

    def _send(self, request: bytes) -> None:
        if self._transport is None:
            raise DeviceError(f"Net F/T at {self.host}:{self.port} is not connected")
        self._transport.sendto(request)

    def _on_datagram(self, data: bytes) -> None:
        # Buffered streaming packs several records in one datagram; real-time sends one.
        if len(data) % RECORD_SIZE:
            self.malformed += 1
            return
        for offset in range(0, len(data), RECORD_SIZE):
            self._on_record(RdtRecord.unpack(data[offset : offset + RECORD_SIZE]))
        self._arrived.set()

    def _on_record(self, record: RdtRecord) -> None:
        if self.latest is not None:
            gap = (record.rdt_sequence - self.latest.rdt_sequence) & 0xFFFFFFFF
            if gap == 0 or gap > 0x7FFFFFFF:  # a duplicate or a reordered older record
                return
            self.lost += gap - 1
        self.received += 1
        wrench = self.calibration.to_wrench(record.counts) - self._bias
        if self._to_wrist is not None:
            wrench = self._to_wrist @ wrench
        self.latest = WrenchSample(wrench, record.status, record.rdt_sequence, time.monotonic())
