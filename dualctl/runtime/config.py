"""Schema of the ``runtime`` config section: clocks, rates, plan timing, safety limits,
telemetry and the demo."""

from __future__ import annotations

from dataclasses import dataclass, field

from dualctl.errors import ConfigError, check_choice, check_range
from dualctl.types import GRIPPER_FORCE_RANGE, GRIPPER_STROKE_M


@dataclass
class SafetyConfig:
    """Limits the safety supervisor enforces on every tick.

    Attributes:
        max_grip_force_n: measured grip force (N, mean fingertip normal force) above which the
            gripper is told to release within the same tick; also caps the commanded force.
            The default is the 2F-85's rated maximum: the sim's heavy Fragile and Slippery
            blocks need up to ~150 N per finger to be held (train split; 200 N held out), so a
            lower limit drops them by design. Lower it for delicate objects; ``dualctl
            deploy`` also takes ``hardware.limits.max_grip_force_n`` when that is stricter.
        release_width_m: how far (m) the fingers open past their current width on a release.
        workspace_low: (x, y, z) lower corner of the box the end effector must stay in, m.
        workspace_high: (x, y, z) upper corner, m.
        max_speed_mps: end-effector linear speed limit, m/s.
        max_yaw_rate: end-effector yaw-rate limit, rad/s.
        max_wrench_n: the wrist force norm (N) the arm must not press harder than, e.g. into
            the table or onto an object (the gripper command always stands).
        wrench_response: what happens above ``max_wrench_n``: "yield" (the default) backs the
            arm off along the force, ``wrench_admittance`` m/s per N over the limit, and lets
            it move only away from the contact until the force is back under
            ``wrench_release`` x the limit; "stop" stops all motion for each tick over the
            limit, which leaves the press the arm's servo has built up (a stiff stage held
            160-260 N against a 150 N limit) and stops the arm backing off too.
        wrench_admittance: back-off speed per N of force over the limit (m/s/N), with "yield".
        wrench_backoff_mps: the slowest back-off (m/s) while yielding, also under the limit:
            an arm that stood still there would keep pressing (its servo holds the force).
        wrench_release: with "yield", the arm has its motion back once the force falls below
            this fraction of ``max_wrench_n``.
        max_obs_age_s: an observation whose oldest force/tactile/proprio stream is older than
            this (s) is not acted on: the arm holds.
        max_plan_age_s: a plan conditioned longer ago than this (s) is stale even before its
            own ``valid_until``.
        deadline_tolerance_s: a tick starting later than its deadline by more than this (s) is
            a deadline miss.
        watchdog_misses: this many consecutive deadline misses make the watchdog hold motion.
        estop_mode: what the gripper does on an e-stop: "hold" keeps the grip, "open" opens.
        health_period_s: how often (s) the body's health is polled; a fault is an e-stop.
    """

    max_grip_force_n: float = GRIPPER_FORCE_RANGE[1]
    release_width_m: float = 0.004
    workspace_low: list[float] = field(default_factory=lambda: [-0.35, -0.35, 0.0])
    workspace_high: list[float] = field(default_factory=lambda: [0.35, 0.35, 0.45])
    max_speed_mps: float = 0.5
    max_yaw_rate: float = 2.0
    max_wrench_n: float = 150.0
    wrench_response: str = "yield"
    wrench_admittance: float = 0.001
    wrench_backoff_mps: float = 0.01
    wrench_release: float = 0.7
    max_obs_age_s: float = 0.05
    max_plan_age_s: float = 4.0
    deadline_tolerance_s: float = 0.001
    watchdog_misses: int = 5
    estop_mode: str = "hold"
    health_period_s: float = 0.1

    def __post_init__(self):
        key = "runtime.safety"
        check_range(f"{key}.max_grip_force_n", self.max_grip_force_n, *GRIPPER_FORCE_RANGE)
        check_range(f"{key}.release_width_m", self.release_width_m, 0.0, GRIPPER_STROKE_M)
        for name in ("workspace_low", "workspace_high"):
            if len(getattr(self, name)) != 3:
                raise ConfigError(f"{key}.{name}", getattr(self, name), "a list [x, y, z] in m")
        if any(lo >= hi for lo, hi in zip(self.workspace_low, self.workspace_high)):
            raise ConfigError(
                f"{key}.workspace_low", self.workspace_low, "each value below workspace_high"
            )
        check_range(f"{key}.max_speed_mps", self.max_speed_mps, 0.0, 5.0)
        check_range(f"{key}.max_yaw_rate", self.max_yaw_rate, 0.0, 20.0)
        check_range(f"{key}.max_wrench_n", self.max_wrench_n, 1.0, 2000.0)
        check_range(f"{key}.max_obs_age_s", self.max_obs_age_s, 1e-4, 10.0)
        check_range(f"{key}.max_plan_age_s", self.max_plan_age_s, 0.01, 600.0)
        check_range(f"{key}.deadline_tolerance_s", self.deadline_tolerance_s, 0.0, 1.0)
        check_range(f"{key}.watchdog_misses", self.watchdog_misses, 1)
        check_choice(f"{key}.wrench_response", self.wrench_response, ("stop", "yield"))
        check_range(f"{key}.wrench_admittance", self.wrench_admittance, 0.0, 0.1)
        check_range(f"{key}.wrench_backoff_mps", self.wrench_backoff_mps, 0.0, 1.0)
        check_range(f"{key}.wrench_release", self.wrench_release, 0.1, 1.0)
        check_choice(f"{key}.estop_mode", self.estop_mode, ("hold", "open"))
        check_range(f"{key}.health_period_s", self.health_period_s, 0.001, 10.0)


@dataclass
class RuntimeConfig:
    """Scheduler settings. The control rate itself is ``tracker.rate_hz``.

    Attributes:
        clock: "real" (wall clock, paced by absolute deadlines) or "virtual" (deterministic,
            as fast as the machine allows, planner latency simulated).
        spin_s: real clock: the last part of every wait (s) is a busy spin, because asyncio's
            timer wakes up to ~1 ms late (epoll has millisecond resolution). Negative means
            "calibrate at start" (measure the timer's overshoot and use its p99).
        realtime_priority: real clock: SCHED_FIFO priority (1-99) for the control loop, so the
            kernel never preempts a tick for the planner process or other jobs; 0 = normal
            scheduling. Needs root or CAP_SYS_NICE (else a warning and normal scheduling).
        replan_period_s: a new plan is requested this often (s) ...
        replan_margin_s: ... or sooner, when the current plan ends within this time (s) of
            ``now + lookahead`` and no request is in flight.
        max_plans_in_flight: requests that may be outstanding at once; with a planner slower
            than ``replan_period_s`` (or an injected delay), plans still arrive at that rate.
        lookahead_s: how far ahead of now (s) the tracker's reference is read from the plan;
            0 = the tracker checkpoint's own. Any other value must lie in the range of
            reference times the checkpoint's head was trained on (else a CheckpointError).
        blend_s: a late plan is stitched: the old reference is kept up to ``arrival +
            lookahead`` and blends into the new plan over this time (s).
        plan_alignment: where the robot is on a plan's timeline: "latent" (the default: the
            plan time whose latent is nearest the current view, searched forward from the
            last match up to now; a new plan replaces the old one, no blend) or "clock" (it
            keeps the plan's pace; a late plan is stitched). The reference is read
            ``lookahead`` after that point.
        plan_latency_s: virtual clock: simulated planner latency (s) between request and
            arrival when ``plan_latency_mode`` is "fixed"; added on top of the real latency in
            real-time mode as an injected delay when ``inject_delay`` is true.
        plan_latency_mode: virtual clock: "fixed" (deterministic) or "measured" (the planner
            process's own compute time, not deterministic).
        inject_delay: real clock: add ``plan_latency_s`` to every plan's arrival (for delay
            studies); the virtual clock always uses ``plan_latency_s``.
        planner_timeout_s: a planner that has not answered this long (s) after a request is
            declared hung, killed and restarted.
        planner_virtual_patience_s: virtual clock: wall-clock time (s) a planner process may
            take to answer before it counts as hung (a busy machine must not change the run).
        planner_restart_s: wait (s) before restarting a crashed or hung planner process.
        planner_shm_mb: size of each of the two shared-memory blocks that carry observations to
            the planner process and plans back, MB.
        max_job_wait_s: real clock: background work (frame encoding) normally runs only in a
            tick's slack; after waiting this long (s) it runs anyway.
        telemetry_path: write one JSON line per tick and per event here ("" = don't).
        status_line: show a live status line in the terminal (real clock).
        safety: the safety supervisor's limits.
    """

    clock: str = "virtual"
    spin_s: float = -1.0
    realtime_priority: int = 10
    replan_period_s: float = 0.5
    replan_margin_s: float = 0.5
    max_plans_in_flight: int = 3
    lookahead_s: float = 0.0
    blend_s: float = 0.25
    plan_alignment: str = "latent"
    plan_latency_s: float = 0.3
    plan_latency_mode: str = "fixed"
    inject_delay: bool = False
    planner_timeout_s: float = 5.0
    planner_virtual_patience_s: float = 60.0
    planner_restart_s: float = 0.5
    planner_shm_mb: float = 8.0
    max_job_wait_s: float = 0.1
    telemetry_path: str = ""
    status_line: bool = True
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    def __post_init__(self):
        check_choice("runtime.clock", self.clock, ("real", "virtual"))
        check_range("runtime.spin_s", self.spin_s, -1.0, 0.01)
        check_range("runtime.realtime_priority", self.realtime_priority, 0, 99)
        check_range("runtime.replan_period_s", self.replan_period_s, 0.01, 60.0)
        check_range("runtime.replan_margin_s", self.replan_margin_s, 0.0, 60.0)
        check_range("runtime.max_plans_in_flight", self.max_plans_in_flight, 1, 16)
        check_range("runtime.lookahead_s", self.lookahead_s, 0.0, 5.0)
        check_range("runtime.blend_s", self.blend_s, 0.0, 10.0)
        check_choice("runtime.plan_alignment", self.plan_alignment, ("clock", "latent"))
        check_range("runtime.plan_latency_s", self.plan_latency_s, 0.0, 60.0)
        check_choice("runtime.plan_latency_mode", self.plan_latency_mode, ("fixed", "measured"))
        check_range("runtime.planner_timeout_s", self.planner_timeout_s, 0.01, 600.0)
        check_range("runtime.planner_virtual_patience_s", self.planner_virtual_patience_s, 0.01)
        check_range("runtime.planner_restart_s", self.planner_restart_s, 0.0, 60.0)
        check_range("runtime.planner_shm_mb", self.planner_shm_mb, 0.1, 1024.0)
        check_range("runtime.max_job_wait_s", self.max_job_wait_s, 0.0, 10.0)
