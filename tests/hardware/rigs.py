"""Test rigs: a driver connected to its emulator over a real loopback transport."""

from __future__ import annotations

import asyncio
import contextlib
import time

from dualctl.hardware.config import LinkTiming, RobotiqConfig
from dualctl.hardware.gripper_model import GripperParams
from dualctl.hardware.robotiq import RobotiqGripper
from dualctl.hardware.robotiq_emulator import RobotiqEmulator

# Short but not twitchy on a loaded 2-core CI machine.
TEST_TIMING = LinkTiming(
    timeout_s=0.1, retries=1, connect_timeout_s=1.0, backoff_min_s=0.02, backoff_max_s=0.2
)


@contextlib.asynccontextmanager
async def gripper_rig(transport: str = "tcp", params: GripperParams | None = None, **config):
    """Yield (emulator, gripper) connected over ``transport``; closed on exit."""
    emulator = RobotiqEmulator(transport, params or GripperParams())
    await emulator.start()
    settings = dict(
        transport=transport, port=emulator.port, serial_port=emulator.serial_port,
        activation_timeout_s=2.0, timing=TEST_TIMING,
    )  # fmt: skip
    settings.update(config)
    gripper = RobotiqGripper.from_config(RobotiqConfig(**settings))
    try:
        await gripper.connect()
        yield emulator, gripper
    finally:
        await gripper.close()
        await emulator.stop()


async def wait_for(condition, timeout_s: float = 3.0, step_s: float = 0.01) -> bool:
    """Poll ``condition()`` until true or ``timeout_s`` passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step_s)
    return True


def run(coroutine):
    return asyncio.run(coroutine)
