"""``dualctl deploy hardware=<config> task=<T> [--dry-run] --i-understand-the-limits``.

Shows the safety limits and refuses to start without the explicit acknowledgement; then connects
the real devices (or, with ``--dry-run``, in-process emulators speaking the same protocols and a
camera replaying a scripted-expert episode of the task), checks their health, runs the gripper
through a short open/close check, and hands the body to the runtime's controller (planner process
+ tracker, real-time clock) for ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import time

import numpy as np
from dualctl.hardware.config import HardwareConfig
from dualctl.hardware.device_errors import DeviceError
from dualctl.hardware.emulated import start_emulators
from dualctl.hardware.hardware_body import HardwareBody
from dualctl.hardware.video import ReplayCamera
from rich.console import Console
from rich.table import Table

from dualctl.cli import CommandRegistry, add_overrides
from dualctl.config import Config, load_config
from dualctl.errors import ConfigError, DualctlError
from dualctl.runtime.clock import Clock
from dualctl.runtime.config import RuntimeConfig
from dualctl.runtime.factories import load_runtime_tracker, make_clock, planner_client
from dualctl.runtime.scheduler import run_controller
from dualctl.runtime.telemetry import RunSummary, Telemetry
from dualctl.types import GRIPPER_STROKE_M, Action, GripperCommand

log = logging.getLogger(__name__)

ACK_FLAG = "--i-understand-the-limits"


class NotAcknowledged(DualctlError):
    """The operator did not acknowledge the safety limits."""


def register(registry: CommandRegistry) -> None:
    parser = registry.add("deploy", "run a task on the real gripper (or its emulators)", run)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="run against in-process protocol emulators instead of devices",
    )
    parser.add_argument(
        ACK_FLAG,
        dest="acknowledged",
        action="store_true",
        help="confirm you have read the limits shown and the workspace is clear",
    )
    parser.add_argument("--object-width", type=float, default=0.04,
                        help="dry run: width (m) of the emulated object between the fingers")  # fmt: skip
    parser.add_argument("--duration", type=float, default=10.0,
                        help="how long the controller runs, s")  # fmt: skip
    parser.add_argument("--instruction", default="",
                        help="the task instruction for the planner (a dry run takes the replayed "
                        "episode's)")  # fmt: skip
    add_overrides(parser)


def limits_table(config: HardwareConfig, task: str, dry_run: bool) -> Table:
    g, lim = config.gripper, config.limits
    where = g.serial_port if g.transport == "rtu" else f"{g.host}:{g.port}"
    table = Table(title=f"deploy {task} on {config.name}" + (" (DRY RUN)" if dry_run else ""))
    table.add_column("setting")
    table.add_column("value", justify="right")
    rows = [
        ("gripper", f"Robotiq {g.model}, {g.transport} {where}, id {g.device_id}"),
        ("arm", "yes" if config.has_arm else "none (gripper only)"),
        ("max grip force", f"{lim.max_grip_force_n:.0f} N"),
        ("max finger speed", f"{lim.max_grip_speed_mps:.3f} m/s"),
        ("max wrist force (stops motion)", f"{lim.max_wrench_n:.0f} N"),
        ("max observation age", f"{lim.max_obs_age_s * 1e3:.0f} ms"),
        ("link timeout x attempts", f"{g.timing.timeout_s * 1e3:.0f} ms x {g.timing.retries + 1}"),
        ("F/T sensor", f"{config.netft.host}:{config.netft.port}" if config.netft.enabled else "none"),
    ]  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    return table


def run(args: argparse.Namespace) -> int:
    config = load_config(args.overrides)
    dry_run = args.dry_run or config.hardware.emulated
    console = Console()
    console.print(limits_table(config.hardware, config.task, dry_run))
    if not args.acknowledged:
        raise NotAcknowledged(
            f"deploy refuses to start without {ACK_FLAG}: read the limits above, clear the "
            f"workspace, then run again with {ACK_FLAG}"
        )
    if config.runtime.clock != "real":
        log.info("deploy runs on the real clock (runtime.clock=%s ignored)", config.runtime.clock)
    config = dataclasses.replace(config, runtime=deploy_runtime(config))
    clock = make_clock(config.runtime)
    tracker = load_runtime_tracker(config)  # torch before any EGL context (see the runtime)
    view = tracker.cameras[0]
    camera, instruction = None, args.instruction
    if dry_run:  # the replayed frames are of the tracker's view, delivered under its name
        camera, instruction = _dry_run_camera(config, view)
        config = _with_camera_view(config, view)
    else:
        check_camera_view(config.hardware, view, config.tracker.checkpoint)
    rows, summary = clock.run(
        deploy(config, clock, tracker, dry_run, args.object_width, args.duration,
               camera, instruction or args.instruction)
    )  # fmt: skip
    table = Table(title="pre-flight gripper check")
    for column in ("step", "asked width m", "sent width m", "sent force N", "width m", "object"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(_summary_table(summary))
    return 0


def deploy_runtime(config: Config) -> RuntimeConfig:
    """The ``runtime`` section for a deployment: the real clock, and the safety supervisor
    holding the stricter of its own limits and the hardware config's (the ones shown)."""
    limits, safety = config.hardware.limits, config.runtime.safety
    safety = dataclasses.replace(
        safety,
        max_grip_force_n=min(safety.max_grip_force_n, limits.max_grip_force_n),
        max_wrench_n=min(safety.max_wrench_n, limits.max_wrench_n),
        max_obs_age_s=min(safety.max_obs_age_s, limits.max_obs_age_s),
    )
    return dataclasses.replace(config.runtime, clock="real", safety=safety)


def check_camera_view(hardware: HardwareConfig, view: str, checkpoint: str) -> None:
    """Refuse to start when the mounted camera does not deliver the view the tracker reads:
    fed another view, a tracker acts on frames unlike any it was trained on."""
    if not hardware.camera.enabled:
        raise ConfigError("hardware.camera.enabled", False,
                          f"true: the tracker {checkpoint} reads camera '{view}'")  # fmt: skip
    if hardware.camera.view != view:
        raise ConfigError(
            "hardware.camera.view", hardware.camera.view,
            f"'{view}', the camera the tracker {checkpoint} was trained on (mount the camera "
            "to that view, or use a tracker trained on the mounted one)",
        )  # fmt: skip


def _with_camera_view(config: Config, view: str) -> Config:
    camera = dataclasses.replace(config.hardware.camera, view=view)
    return dataclasses.replace(config, hardware=dataclasses.replace(config.hardware, camera=camera))


def _dry_run_camera(config: Config, view: str) -> tuple[ReplayCamera, str]:
    """A camera replaying the scripted expert's episode of the task as camera ``view`` sees it
    (frames at the camera rate), and that episode's instruction."""
    from dualctl.sim.config import with_cameras
    from dualctl.sim.experts import run_expert

    sim = with_cameras(config.sim, [view])
    episode = run_expert(config.task, config.seed, config.sim.split, sim)
    frames = episode.images[view]
    return ReplayCamera(frames, config.sim.camera_hz), episode.meta["instruction"]


def _summary_table(summary: RunSummary) -> Table:
    table = Table(title="controller run")
    table.add_column("figure")
    table.add_column("value", justify="right")
    s = summary.to_dict()
    for name in ("duration_s", "loop_rate_hz", "lateness_p50_ms", "lateness_p99_ms",
                 "deadline_misses", "plans", "plan_latency_p50_s"):  # fmt: skip
        table.add_row(name, f"{s[name]:.3f}" if isinstance(s[name], float) else str(s[name]))
    table.add_row("interventions", str(s["interventions"]))
    return table


async def deploy(
    config: Config,
    clock: Clock,
    tracker,
    dry_run: bool,
    object_width_m: float,
    duration_s: float,
    camera: ReplayCamera | None,
    instruction: str,
) -> tuple[list[tuple], RunSummary]:
    """Connect, check health, run the pre-flight gripper check, then the controller for
    ``duration_s`` (s). Always closes the body (which stops it) and the emulators."""
    plans = planner_client(config, clock, tracker.cameras[0])  # a planner of another view: refused
    hardware, emulators, body = config.hardware, None, None
    try:
        if dry_run:
            emulators, hardware = await start_emulators(hardware, object_width_m)
        body = HardwareBody.from_config(hardware, camera)
        await body.connect()
        health = await body.health()
        if not health.ok:
            raise DeviceError("hardware unhealthy after connect: " + "; ".join(health.faults))
        rows = await scripted_sequence(body, hardware.limits.max_grip_speed_mps)
        await plans.start()
        telemetry = Telemetry(config.runtime.telemetry_path or None,
                              config.runtime.safety.deadline_tolerance_s,
                              status_line=config.runtime.status_line)  # fmt: skip
        summary = await run_controller(
            body, tracker, plans, clock, config.runtime, telemetry,
            rate_hz=config.tracker.rate_hz, instruction=instruction,
            camera=tracker.cameras[0], max_duration_s=duration_s,
        )  # fmt: skip
        telemetry.close()
        return rows, summary
    finally:
        await plans.close()
        if body is not None:
            await body.close()
        if emulators is not None:
            await emulators.stop()


async def scripted_sequence(body: HardwareBody, speed_mps: float, settle_s: float = 5.0):
    """Open, close (on whatever is in the hand), open; one table row per step."""
    rows = []
    for step, width in (("open", GRIPPER_STROKE_M), ("close", 0.0), ("open", GRIPPER_STROKE_M)):
        asked = Action(np.zeros(4), GripperCommand(width, speed_mps, 40.0), time.monotonic())
        sent = await body.act(asked)
        target = body.gripper.calibration.counts(sent.gripper.width_m)
        state = await _settled(body, target, time.monotonic(), settle_s)
        rows.append((step, f"{width:.4f}", f"{sent.gripper.width_m:.4f}",
                     f"{sent.gripper.force_n:.1f}", f"{state.width_m:.4f}",
                     "yes" if state.object_detected else "no"))  # fmt: skip
    return rows


async def _settled(body: HardwareBody, target: int, since: float, timeout_s: float):
    """Wait (bounded) for a status read after ``since`` that echoes ``target`` (gPR) with the
    fingers stopped; raise on a fault."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        health = await body.health()
        if not health.ok:
            raise DeviceError("; ".join(health.faults))
        state = body.slots["proprio"].value
        if state.stamp > since and state.raw.requested == target and not state.moving:
            return state
    raise DeviceError(f"gripper did not settle within {timeout_s} s")
