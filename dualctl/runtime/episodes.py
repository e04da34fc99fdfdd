"""Episodes run one after another on the virtual clock, each on a fresh clock from 0 s.

An episode's outcome must not depend on what ran before it. On one shared virtual clock,
episode k starts at whatever time episode k-1 ended, and the float time base then changes
which of two events due at the same instant (a control tick, a camera frame, a plan's
arrival) runs first; the closed loop amplifies that (Place seed 0 succeeded when run first and
timed out after two Lift episodes). The planner process is slow to start, so it is shared:
a :class:`ProcessPlanClient` on the virtual clock holds no event-loop state between
requests and takes each episode's clock in turn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

from dualctl.runtime.clock import VirtualClock
from dualctl.runtime.planner_process import ProcessPlanClient

Job = TypeVar("Job")
Result = TypeVar("Result")


def on_fresh_virtual_clocks(
    plans: ProcessPlanClient | None,
    jobs: Iterable[Job],
    episode: Callable[[Job, VirtualClock], Awaitable[Result]],
) -> Iterator[Result]:
    """Start ``plans`` (if any), then for each job run ``episode(job, clock)`` on a new
    :class:`VirtualClock` that ``plans`` also uses, yielding its result; close ``plans`` at
    the end (or when the iteration is abandoned)."""
    try:
        if plans is not None:
            _run_on_fresh_clock(plans, plans.start)
        for job in jobs:
            clock = VirtualClock()
            if plans is not None:
                plans.clock = clock
            yield clock.run(episode(job, clock))
    finally:
        if plans is not None:
            _run_on_fresh_clock(plans, plans.close)


def _run_on_fresh_clock(plans: ProcessPlanClient, step: Callable[[], Awaitable[None]]) -> None:
    clock = VirtualClock()
    plans.clock = clock
    clock.run(step())
