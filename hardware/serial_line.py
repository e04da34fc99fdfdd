"""A null-modem cable between two pseudo-terminals, optionally as slow as a real RS-485 line.

Each end is a real tty path (``/dev/pts/N``) that pyserial opens exactly like ``/dev/ttyUSB0``,
so the driver and the emulator both run their real serial code. With ``baudrate`` set, every
byte takes 10 bit times (start + 8 data + stop) and bytes queue behind each other per direction,
which is what bounds a Modbus RTU round trip on the real gripper.
"""

from __future__ import annotations

import asyncio
import os
import pty
import tty

_CHUNK = 4096


class _End:
    def __init__(self):
        self.master, self.slave = pty.openpty()
        # Raw mode: no echo, no line editing, no CR/LF translation; pyserial sets this too
        # but bytes can arrive before it opens the port.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.line_free_at = 0.0

    def close(self) -> None:
        for fd in (self.master, self.slave):
            os.close(fd)


class NullModem:
    """Two tty paths whose bytes cross over, with optional wire-time modelling.

    Attributes:
        a_path, b_path: the two ends' device paths.
        bytes_carried: total bytes moved in both directions.
    """

    def __init__(self, baudrate: int | None = None):
        self.baudrate = baudrate
        self._a, self._b = _End(), _End()
        self.a_path, self.b_path = self._a.path, self._b.path
        self.bytes_carried = 0
        #: how late timed deliveries were, in total (s): asyncio's timer wakes up to ~1 ms late
        self.lateness_s = 0.0
        self.deliveries = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._a.master, self._forward, self._a, self._b)
        self._loop.add_reader(self._b.master, self._forward, self._b, self._a)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._a.master)
            self._loop.remove_reader(self._b.master)
            self._loop = None
        self._a.close()
        self._b.close()

    def _forward(self, source: _End, sink: _End) -> None:
        try:
            data = os.read(source.master, _CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: nobody has the far side open right now; nothing to carry
            return
        self.bytes_carried += len(data)
        if not self.baudrate:
            self._write(sink, data)
            return
        now = self._loop.time()
        start = max(now, source.line_free_at)
        source.line_free_at = start + len(data) * 10 / self.baudrate
        self._loop.call_at(source.line_free_at, self._deliver, sink, data, source.line_free_at)

    def _deliver(self, sink: _End, data: bytes, due: float) -> None:
        self.lateness_s += max(0.0, self._loop.time() - due)
        self.deliveries += 1
        self._write(sink, data)

    @staticmethod
    def _write(sink: _End, data: bytes) -> None:
        try:
            os.write(sink.master, data)
        except OSError:  # the far side closed its tty; a real cable would lose the bytes too
            return
