"""Telemetry: per-tick timing and traces, plan events and interventions; a JSONL log when
asked, a live status line, and the run's summary.

Everything is kept in memory as plain lists of floats (a 30 s run at 200 Hz is 6000 ticks), so
the summary and the demo's force traces come from the same numbers.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dualctl.runtime.safety import Intervention

log = logging.getLogger(__name__)

#: Per-tick columns: time (s), lateness (s), compute (s, wall clock), plan age (s), measured
#: grip force (N), wrist force magnitude (N), measured width (m), commanded width (m),
#: commanded force (N), and whether the tick followed a plan (1) or held (0).
TICK_FIELDS = (
    "t", "lateness_s", "compute_s", "plan_age_s", "grip_force_n", "wrist_force_n",
    "width_m", "cmd_width_m", "cmd_force_n", "following",
)  # fmt: skip


@dataclass
class RunSummary:
    """What a run did and how well it kept time. Times in s unless the name says otherwise.
    ``deadline_misses`` counts late ticks and skipped ones; ``on_time_fraction`` is over both."""

    ticks: int = 0
    duration_s: float = 0.0
    loop_rate_hz: float = 0.0
    on_time_fraction: float = 1.0
    lateness_p50_ms: float = 0.0
    lateness_p99_ms: float = 0.0
    lateness_max_ms: float = 0.0
    compute_p50_ms: float = 0.0
    compute_p99_ms: float = 0.0
    deadline_misses: int = 0
    skipped_ticks: int = 0
    plans: int = 0
    plan_latency_p50_s: float = float("nan")
    plan_latency_p99_s: float = float("nan")
    plan_compute_p50_s: float = float("nan")
    planner_failures: dict[str, int] = field(default_factory=dict)
    interventions: dict[str, int] = field(default_factory=dict)
    following_fraction: float = 0.0
    outcome: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class Telemetry:
    """Collects a run's numbers.

    Args:
        jsonl_path: write every tick and event as one JSON line here (None = don't).
        deadline_tolerance_s: lateness above this (s) counts as a deadline miss.
        status_line: show a live rich status line (update it with :meth:`refresh_status`).
    """

    def __init__(
        self,
        jsonl_path: str | Path | None = None,
        deadline_tolerance_s: float = 0.001,
        status_line: bool = False,
    ):
        self.deadline_tolerance_s = deadline_tolerance_s
        self.columns: dict[str, list[float]] = {name: [] for name in TICK_FIELDS}
        self.events: list[dict] = []
        self.interventions: Counter[str] = Counter()
        self.skipped_ticks = 0
        self._file = None
        if jsonl_path:
            Path(jsonl_path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(jsonl_path, "w", buffering=1 << 16)  # noqa: SIM115 (closed in close())
        self._live = _StatusLine() if status_line else None

    # --- recording ----------------------------------------------------------------------------

    def tick(self, values: dict[str, float], notes: list[Intervention]) -> None:
        for name in TICK_FIELDS:
            self.columns[name].append(float(values[name]))
        for note in notes:
            self._intervention(note)
        if self._file is not None:
            self._file.write(json.dumps({"type": "tick", **values}) + "\n")

    def _intervention(self, note: Intervention) -> None:
        if self.interventions[note.kind] == 0:
            log.warning("safety at %.3f s: %s (%s)", note.t, note.kind, note.reason)
        self.interventions[note.kind] += 1
        if self._file is not None:
            self._file.write(json.dumps({"type": "intervention", **asdict(note)}) + "\n")

    def intervention(self, note: Intervention) -> None:
        """An intervention outside a tick (e-stop from the health check or the operator)."""
        self._intervention(note)

    def event(self, kind: str, t: float, **fields) -> None:
        """A plan arrival, a planner failure, a skipped tick... ``fields`` must be JSON-able."""
        record = {"type": kind, "t": t, **fields}
        self.events.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")

    def skipped(self, count: int) -> None:
        self.skipped_ticks += count

    # --- reading ------------------------------------------------------------------------------

    def array(self, name: str) -> np.ndarray:
        return np.asarray(self.columns[name], np.float64)

    def summary(self) -> RunSummary:
        t, lateness, compute = self.array("t"), self.array("lateness_s"), self.array("compute_s")
        plans = [e for e in self.events if e["type"] == "plan"]
        failures = Counter(
            e["error"].split(":")[0] for e in self.events if e["type"] == "plan_failed"
        )
        summary = RunSummary(
            ticks=len(t),
            plans=len(plans),
            planner_failures=dict(failures),
            interventions=dict(self.interventions),
            skipped_ticks=self.skipped_ticks,
        )
        if len(t) == 0:
            return summary
        summary.duration_s = float(t[-1] - t[0])
        if len(t) > 1 and summary.duration_s > 0:
            summary.loop_rate_hz = (len(t) - 1) / summary.duration_s
        # A skipped tick missed its deadline too: count it, or skipping would look punctual.
        misses = int((lateness > self.deadline_tolerance_s).sum()) + self.skipped_ticks
        summary.deadline_misses = misses
        summary.on_time_fraction = 1.0 - misses / (len(t) + self.skipped_ticks)
        p50, p99 = np.percentile(lateness, [50, 99]) * 1e3
        summary.lateness_p50_ms, summary.lateness_p99_ms = float(p50), float(p99)
        summary.lateness_max_ms = float(lateness.max() * 1e3)
        c50, c99 = np.percentile(compute, [50, 99]) * 1e3
        summary.compute_p50_ms, summary.compute_p99_ms = float(c50), float(c99)
        summary.following_fraction = float(self.array("following").mean())
        if plans:
            latency = np.array([e["latency_s"] for e in plans])
            summary.plan_latency_p50_s, summary.plan_latency_p99_s = map(
                float, np.percentile(latency, [50, 99])
            )
            compute_s = np.array([e["compute_s"] for e in plans], np.float64)
            if np.isfinite(compute_s).any():
                summary.plan_compute_p50_s = float(np.nanmedian(compute_s))
        return summary

    # --- the live status line -----------------------------------------------------------------

    def refresh_status(self, now: float) -> None:
        if self._live is None or not self.columns["t"]:
            return
        recent = slice(-200, None)
        lateness = np.asarray(self.columns["lateness_s"][recent])
        compute = np.asarray(self.columns["compute_s"][recent])
        text = (
            f"t={now:7.2f}s  ticks={len(self.columns['t'])}  "
            f"late p99={np.percentile(lateness, 99) * 1e3:5.2f}ms  "
            f"compute p99={np.percentile(compute, 99) * 1e3:5.2f}ms  "
            f"plan age={self.columns['plan_age_s'][-1]:5.2f}s  "
            f"plans={sum(e['type'] == 'plan' for e in self.events)}  "
            f"grip={self.columns['grip_force_n'][-1]:6.1f}N  "
            f"interventions={sum(self.interventions.values())}"
        )
        self._live.show(text)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._live is not None:
            self._live.stop()
            self._live = None


class _StatusLine:
    """A one-line rich Live display, refreshed only when asked (no refresh thread, so it
    never competes with the control loop for the GIL)."""

    def __init__(self):
        from rich.console import Console
        from rich.live import Live

        self._live = Live("", console=Console(stderr=True), auto_refresh=False, transient=True)
        self._live.start()

    def show(self, text: str) -> None:
        self._live.update(text, refresh=True)

    def stop(self) -> None:
        self._live.stop()
