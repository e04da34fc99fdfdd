"""Clocks: one time base for every timestamp, and the way the runtime waits for a deadline.

:class:`RealClock` paces by absolute deadlines on the monotonic clock. asyncio's timer is not
precise enough for a 200 Hz-1 kHz loop on its own: the selector's timeout is rounded up to whole
milliseconds (epoll) and the process may wake late, so the last part of each wait is a busy spin.

:class:`VirtualClock` makes time jump: it runs the same coroutines on an event loop whose
``time()`` is virtual and whose selector, instead of blocking, advances virtual time to the next
timer. A run is then deterministic (ordering depends only on the scheduled times) and as fast as
the computation allows.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
import os
import selectors
import time
from collections.abc import Coroutine
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class Clock(abc.ABC):
    """A time base (s) and a way to wait for an absolute time on it."""

    #: True when time only moves as the event loop waits (compute is free).
    is_virtual: bool = False

    @abc.abstractmethod
    def now(self) -> float:
        """Current time, s."""

    @abc.abstractmethod
    async def sleep_until(self, deadline: float) -> None:
        """Return at (or as soon as possible after) ``deadline``, s."""

    @abc.abstractmethod
    def run(self, main: Coroutine[Any, Any, Any]) -> Any:
        """Run ``main`` to completion on an event loop driven by this clock."""

    async def prepare(self) -> None:
        """Get ready to keep deadlines (called before a control loop starts)."""
        return None  # optional hook


class RealClock(Clock):
    """Wall-clock time (``time.monotonic``, the clock asyncio uses) with precise waits.

    Args:
        spin_s: the last ``spin_s`` (s) of every wait are spent spinning; ``None`` measures
            asyncio's timer overshoot at the first wait and uses its p99 (see :meth:`calibrate`).
        realtime_priority: 1-99 asks the kernel for SCHED_FIFO at this priority for the thread
            that runs the loop (needs root or CAP_SYS_NICE; without it a warning, and normal
            scheduling); 0 keeps normal scheduling. On a machine whose cores are shared (the
            planner process, other jobs), this is what stops the kernel from preempting a
            tick for milliseconds; the loop sleeps most of each period, so it cannot starve
            the others (and the kernel's RT throttling caps it at 95 % of a core anyway).
    """

    def __init__(self, spin_s: float | None = None, realtime_priority: int = 0):
        self.spin_s = spin_s
        self.realtime_priority = realtime_priority
        self._priority_applied = False

    def now(self) -> float:
        return time.monotonic()

    async def prepare(self) -> None:
        if self.realtime_priority > 0 and not self._priority_applied:
            self._priority_applied = True
            self._enter_realtime()
        if self.spin_s is None:
            calibration = await self.calibrate()
            self.spin_s = calibration["spin_s"]
            log.info("asyncio timer overshoot p50 %.3f ms, p99 %.3f ms: spinning the last %.3f ms",
                     calibration["overshoot_p50_s"] * 1e3, calibration["overshoot_p99_s"] * 1e3,
                     self.spin_s * 1e3)  # fmt: skip

    def _enter_realtime(self) -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.realtime_priority))
            log.info("control loop runs SCHED_FIFO at priority %d", self.realtime_priority)
        except (AttributeError, OSError) as error:
            log.warning("no real-time priority for the control loop (%s): deadlines may slip "
                        "when the cores are busy; run with CAP_SYS_NICE or set "
                        "runtime.realtime_priority=0", error)  # fmt: skip

    async def sleep_until(self, deadline: float) -> None:
        if self.spin_s is None:
            await self.prepare()
        # Sleep whole milliseconds only: the selector rounds a timeout up to the next ms, so
        # a 0.3 ms sleep would wake ~1 ms later, past the deadline. Always yield once, so other
        # tasks (plan replies, health) run even when the whole period is spin; then spin
        # without yielding: those tasks are short.
        sleep_ms = math.floor((deadline - time.monotonic() - self.spin_s) * 1e3)
        await asyncio.sleep(max(0, sleep_ms) * 1e-3)
        while time.monotonic() < deadline:
            pass

    async def calibrate(self, samples: int = 40, wait_s: float = 0.002) -> dict[str, float]:
        """Measure how late ``asyncio.sleep`` wakes (s) and pick a spin margin from its p99."""
        overshoot = []
        for _ in range(samples):
            start = time.monotonic()
            await asyncio.sleep(wait_s)
            overshoot.append(time.monotonic() - start - wait_s)
        p50, p99 = np.percentile(overshoot, [50, 99])
        # 0.2 ms on top of the p99 covers the rest of the tail; never spin more than 2 ms.
        spin_s = float(min(max(p99 + 2e-4, 5e-4), 2e-3))
        return {"overshoot_p50_s": float(p50), "overshoot_p99_s": float(p99), "spin_s": spin_s}

    def run(self, main: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run(main)


class VirtualClock(Clock):
    """Deterministic time that advances only when every task is waiting.

    Args:
        start: initial time, s.
    """

    is_virtual = True

    def __init__(self, start: float = 0.0):
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward (only the event loop should need this)."""
        self._now += max(0.0, seconds)

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - self._now))

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return _VirtualTimeLoop(self)

    def run(self, main: Coroutine[Any, Any, Any]) -> Any:
        with asyncio.Runner(loop_factory=self.new_event_loop) as runner:
            return runner.run(main)


class _VirtualSelector(selectors.BaseSelector):
    """Polls real file descriptors without blocking; when none is ready, it advances virtual
    time by the loop's timeout (the time to its next timer) instead of sleeping."""

    def __init__(self, clock: VirtualClock):
        self._clock = clock
        self._real = selectors.DefaultSelector()

    def register(self, fileobj, events, data=None):
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj):
        return self._real.unregister(fileobj)

    def modify(self, fileobj, events, data=None):
        return self._real.modify(fileobj, events, data)

    def select(self, timeout=None):
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # Nothing is scheduled: only real I/O (e.g. a thread's wake-up) can move us on.
            return self._real.select(None)
        self._clock.advance(timeout)
        return []

    def close(self):
        self._real.close()

    def get_map(self):
        return self._real.get_map()


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock):
        self._virtual_clock = clock
        super().__init__(selector=_VirtualSelector(clock))

    def time(self) -> float:
        return self._virtual_clock.now()
