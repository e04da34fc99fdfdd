"""``dualctl deploy hardware=<config> task=<T> [--dry-run] --i-understand-the-limits``.

Shows the safety limits and refuses to start without the explicit acknowledgement; then connects
the real devices (or, with ``--dry-run``, in-process emulators speaking the same protocols),
checks their health and runs the gripper through a short scripted open/close sequence.

Not yet wired: handing the connected body to the runtime's ``run_controller`` with the task's
tracker and planner (see the Hardware section of the README).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

import numpy as np
from dualctl.hardware.config import HardwareConfig
from dualctl.hardware.device_errors import DeviceError
from dualctl.hardware.emulated import start_emulators
from dualctl.hardware.hardware_body import HardwareBody
from rich.console import Console
from rich.table import Table

from dualctl.cli import CommandRegistry, add_overrides
from dualctl.config import load_config
from dualctl.errors import DualctlError
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
        ("max wrench before stop", f"{lim.max_wrench_n:.0f} N"),
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
    rows = asyncio.run(deploy(config.hardware, dry_run, args.object_width))
    table = Table(title="scripted gripper sequence")
    for column in ("step", "asked width m", "sent width m", "sent force N", "width m", "object"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return 0


async def deploy(config: HardwareConfig, dry_run: bool, object_width_m: float) -> list[tuple]:
    emulators = None
    if dry_run:
        emulators, config = await start_emulators(config, object_width_m)
    body = HardwareBody.from_config(config)
    try:
        await body.connect()
        health = await body.health()
        if not health.ok:
            raise DeviceError("hardware unhealthy after connect: " + "; ".join(health.faults))
        return await scripted_sequence(body, config.limits.max_grip_speed_mps)
    finally:
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
