"""Gripper command+status round-trip rate against the Robotiq emulator.

Each cycle is what the fast loop needs from the gripper: an FC16 command write (15-byte request,
8-byte reply) then an FC04 status read (8-byte request, 11-byte reply). Over RTU at 115200 baud
8N1 a byte takes 10 bit times, so the wire alone costs (15+8+8+11)*10/115200 = 3.65 ms per cycle:
the pty null modem delays every byte by that much, per direction, like a real line. The device's
own limit is 200 Hz (5 ms per command).

    .venv/bin/python bench/gripper_roundtrip.py [--cycles 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from dualctl.hardware.config import LinkTiming, RobotiqConfig
from dualctl.hardware.robotiq import RobotiqGripper
from dualctl.hardware.robotiq_emulator import RobotiqEmulator
from rich.console import Console
from rich.table import Table

from dualctl.data.episode import atomic_write_bytes
from dualctl.types import GripperCommand

DEVICE_LIMIT_HZ = 200.0
BAUD = 115200
CYCLE_BYTES = 15 + 8 + 8 + 11
RESULTS = Path(__file__).parent / "results" / "gripper_roundtrip.json"


async def measure(transport: str, baudrate: int | None, cycles: int) -> dict:
    emulator = await RobotiqEmulator(transport, baudrate=baudrate).start()
    config = RobotiqConfig(
        transport=transport, port=emulator.port, serial_port=emulator.serial_port,
        timing=LinkTiming(timeout_s=0.1, retries=1),
    )  # fmt: skip
    gripper = RobotiqGripper.from_config(config)
    await gripper.connect()
    await gripper.activate()
    line = emulator.line
    late_before = (line.lateness_s, line.deliveries) if line else (0.0, 0)
    durations = []
    for i in range(cycles):
        width = 0.085 * (i % 20) / 20
        start = time.perf_counter()
        await gripper.command(GripperCommand(width, 0.1, 50.0))
        await gripper.read_status()
        durations.append(time.perf_counter() - start)
    # the modelled line's own timer overshoot, per cycle (4 timed deliveries), to subtract
    late_ms = 0.0
    if line is not None and line.deliveries > late_before[1]:
        late_ms = 1e3 * (line.lateness_s - late_before[0]) / cycles
    await gripper.close()
    await emulator.stop()
    durations.sort()
    mean = statistics.fmean(durations)
    return {
        "transport": transport + (f" @{baudrate} baud" if baudrate else ""),
        "cycles": cycles,
        "mean_ms": 1e3 * mean,
        "p50_ms": 1e3 * durations[len(durations) // 2],
        "p99_ms": 1e3 * durations[int(0.99 * (len(durations) - 1))],
        "rate_hz": 1.0 / mean,
        "fraction_of_200hz": 1.0 / mean / DEVICE_LIMIT_HZ,
        "wire_ms": 1e3 * CYCLE_BYTES * 10 / BAUD if baudrate else 0.0,
        "timer_overshoot_ms": late_ms,
        "rate_without_overshoot_hz": 1.0 / (mean - late_ms / 1e3),
    }


async def main(cycles: int) -> list[dict]:
    rows = []
    for transport, baudrate in (("tcp", None), ("rtu_over_tcp", None), ("rtu", None),
                                ("rtu", BAUD)):  # fmt: skip
        rows.append(await measure(transport, baudrate, cycles))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=400)
    args = parser.parse_args()
    rows = asyncio.run(main(args.cycles))
    table = Table(title="Robotiq command+status round trip vs. the emulator (200 Hz device limit)")
    columns = ("transport", "mean ms", "p50 ms", "p99 ms", "wire ms", "timer late ms",
               "rate Hz", "of 200 Hz", "rate Hz w/o late")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["transport"], f"{r['mean_ms']:.2f}", f"{r['p50_ms']:.2f}",
                      f"{r['p99_ms']:.2f}", f"{r['wire_ms']:.2f}", f"{r['timer_overshoot_ms']:.2f}",
                      f"{r['rate_hz']:.0f}", f"{100 * r['fraction_of_200hz']:.0f}%",
                      f"{r['rate_without_overshoot_hz']:.0f}")  # fmt: skip
    Console(width=140).print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {"device_limit_hz": DEVICE_LIMIT_HZ, "cycle_bytes": CYCLE_BYTES, "rows": rows}
    data = json.dumps(payload, indent=2).encode()
    atomic_write_bytes(RESULTS, lambda file: file.write(data))
