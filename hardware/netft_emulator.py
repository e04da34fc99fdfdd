"""A Net F/T emulator: answers RDT requests on UDP with a configurable signal and packet loss."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import numpy as np
from dualctl.hardware.netft_protocol import (
    CMD_SET_BIAS,
    CMD_START_BUFFERED,
    CMD_START_REALTIME,
    CMD_STOP,
    NetFTCalibration,
    RdtRecord,
    unpack_request,
)

log = logging.getLogger(__name__)

DEFAULT_CALIBRATION = NetFTCalibration(1_000_000.0, 1_000_000.0)


def constant_signal(wrench) -> Callable[[float], np.ndarray]:
    """A fixed load: (6,) N and N·m at every time."""
    value = np.asarray(wrench, np.float64)
    return lambda t: value


class NetFTEmulator:
    """Streams ``signal(t)`` (N, N·m at time t, s) as RDT records to whoever asked.

    Args:
        calibration: counts per N / per N·m the emulated sensor uses.
        signal: the load over time; a constant zero by default.
        rate_hz: records per second while streaming (a real box: up to 7000).
        loss: probability that a record is lost on the way (its sequence number is used up).
        seed: for the loss pattern.
    """

    def __init__(
        self,
        calibration: NetFTCalibration = DEFAULT_CALIBRATION,
        signal: Callable[[float], np.ndarray] | None = None,
        rate_hz: float = 500.0,
        loss: float = 0.0,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.calibration = calibration
        self.signal = signal or constant_signal(np.zeros(6))
        self.rate_hz, self.loss = rate_hz, loss
        self.host, self.port = host, port
        self.sent = 0
        self.dropped = 0
        #: sequence numbers of the records lost on purpose
        self.dropped_sequences: list[int] = []
        self.status = 0
        self._rng = np.random.default_rng(seed)
        self._bias_counts = np.zeros(6, np.int64)
        self._sequence = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._stream: asyncio.Task | None = None
        self._t0 = time.monotonic()

    async def start(self) -> NetFTEmulator:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Server(self), local_addr=(self.host, self.port)
        )
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    async def stop(self) -> None:
        await self._stop_stream()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> NetFTEmulator:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def _counts_now(self) -> np.ndarray:
        raw = self.calibration.to_counts(self.signal(time.monotonic() - self._t0))
        return np.asarray(raw, np.int64) - self._bias_counts

    def _on_request(self, data: bytes, addr) -> None:
        request = unpack_request(data)
        if request is None:
            return
        command, samples = request
        if command in (CMD_START_REALTIME, CMD_START_BUFFERED):
            self._restart_stream(addr, samples)
        elif command == CMD_STOP:
            if self._stream is not None:
                self._stream.cancel()
        elif command == CMD_SET_BIAS:
            self._bias_counts = self._bias_counts + self._counts_now()

    def _restart_stream(self, addr, samples: int) -> None:
        if self._stream is not None:
            self._stream.cancel()
        self._stream = asyncio.create_task(self._run_stream(addr, samples), name="netft stream")

    async def _stop_stream(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            try:
                await self._stream
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():
                    raise
            self._stream = None

    async def _run_stream(self, addr, samples: int) -> None:
        period = 1.0 / self.rate_hz
        deadline = time.monotonic()
        count = 0
        while samples == 0 or count < samples:
            self._sequence = (self._sequence + 1) & 0xFFFFFFFF
            count += 1
            if self._rng.random() < self.loss:
                self.dropped += 1
                self.dropped_sequences.append(self._sequence)
            else:
                record = RdtRecord(self._sequence, self._sequence, self.status,
                                   tuple(int(c) for c in self._counts_now()))  # fmt: skip
                self._transport.sendto(record.pack(), addr)
                self.sent += 1
            deadline += period
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))


class _Server(asyncio.DatagramProtocol):
    def __init__(self, owner: NetFTEmulator):
        self.owner = owner

    def datagram_received(self, data: bytes, addr) -> None:
        self.owner._on_request(data, addr)
