"""HardwareBody on the emulators: latest-value slots, clipped actions, faults within a tick."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from dualctl.hardware.config import HardwareConfig, NetFTConfig, RobotiqConfig, SafetyLimits
from dualctl.hardware.emulated import start_emulators
from dualctl.hardware.hardware_body import HardwareBody
from dualctl.hardware.netft_emulator import constant_signal
from dualctl.hardware.video import ReplayCamera
from rigs import TEST_TIMING, run, wait_for

from dualctl.body import Body
from dualctl.types import PROPRIO_FIELDS, Action, GripperCommand

WIDTH = PROPRIO_FIELDS.index("width")
LIMITS = SafetyLimits(max_grip_force_n=80.0, max_grip_speed_mps=0.1)


def _config(transport="tcp", netft=False) -> HardwareConfig:
    gripper = RobotiqConfig(transport=transport, poll_hz=100.0, timing=TEST_TIMING,
                            activation_timeout_s=2.0)  # fmt: skip
    return HardwareConfig(gripper=gripper, netft=NetFTConfig(enabled=netft), limits=LIMITS)


async def _body(transport="tcp", netft=False, object_width_m=None):
    emulators, config = await start_emulators(_config(transport, netft), object_width_m)
    body = HardwareBody.from_config(config)
    await body.connect()
    return emulators, body


def test_observe_and_act_follow_the_gripper():
    async def body_test():
        emulators, body = await _body("rtu_over_tcp", object_width_m=0.03)
        assert isinstance(body, Body) and not body.spec.has_arm
        observation = await body.observe()
        assert observation.proprio[WIDTH] == pytest.approx(0.085)
        assert "proprio" in observation.stamps
        wish = Action(np.array([0.1, 0, 0, 0]), GripperCommand(0.0, 0.15, 200.0), timestamp=1.0)
        sent = await body.act(wish)
        assert np.all(sent.ee_velocity == 0)  # no arm: ignored
        assert sent.gripper.force_n <= LIMITS.max_grip_force_n
        assert sent.gripper.speed_mps <= LIMITS.max_grip_speed_mps
        assert sent.gripper.force_n == pytest.approx(80.0, abs=1.0)  # quantised to a byte
        model = emulators.gripper.model
        assert await wait_for(lambda: body.slots["proprio"].value.object_detected)
        assert model.request.force == int((80.0 - 20) / 215 * 255)
        observation = await body.observe()
        assert observation.proprio[WIDTH] == pytest.approx(0.03, abs=0.001)
        assert (await body.health()).ok
        await body.close()
        await body.close()  # twice is safe
        await emulators.stop()

    run(body_test())


def test_wrench_stream_is_biased_and_stamped():
    async def body_test():
        emulators, body = await _body(netft=True)
        emulators.netft.signal = constant_signal([0, 0, 4.0, 0, 0, 0.1])
        assert await wait_for(
            lambda: (
                body.slots["wrench"].value is not None
                and abs(body.slots["wrench"].value[2] - 4.0) < 1e-5
            )
        )
        observation = await body.observe()
        assert observation.wrench[5] == pytest.approx(0.1, abs=1e-5)
        assert observation.age(observation.stamps["wrench"], "wrench") == 0
        assert (await body.health()).ok
        await emulators.netft.stop()  # F/T box unplugged: stale within stale_s
        assert await wait_for(lambda: not run_sync_health(body), timeout_s=2.0)
        await body.close()
        await emulators.stop()

    run(body_test())


def run_sync_health(body) -> bool:
    """Health without awaiting: HardwareBody.health never awaits a device."""
    coroutine = body.health()
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value.ok
    raise AssertionError("health() awaited something")


def test_disconnect_marks_health_within_a_tick_and_never_blocks():
    async def body_test():
        emulators, body = await _body("tcp")
        await emulators.gripper.go_offline()
        assert await wait_for(lambda: not run_sync_health(body), timeout_s=0.5)
        faults = (await body.health()).faults
        assert any("link down" in f for f in faults)
        # observe/act only touch slots: they return at once while the device is gone
        observation = await asyncio.wait_for(body.observe(), 0.5)
        assert observation.proprio[WIDTH] == pytest.approx(0.085)
        await asyncio.wait_for(body.act(Action.hold(0.05)), 0.5)
        await emulators.gripper.go_online()
        assert await wait_for(lambda: run_sync_health(body), timeout_s=3.0)
        await body.close()
        await emulators.stop()

    run(body_test())


def test_gripper_fault_is_reported_with_its_meaning():
    async def body_test():
        emulators, body = await _body("tcp")
        emulators.gripper.model.inject_fault(0x0E)
        assert await wait_for(lambda: not run_sync_health(body), timeout_s=0.5)
        (fault,) = (await body.health()).faults
        assert "0x0E" in fault and "overcurrent" in fault
        await body.close()
        await emulators.stop()

    run(body_test())


def test_polling_keeps_the_watchdog_fed():
    async def body_test():
        emulators, body = await _body("tcp")
        emulators.gripper.params.watchdog_s = 0.1
        await asyncio.sleep(0.5)
        assert (await body.health()).ok
        assert body.slots["proprio"].value.fault is None
        await body.close()
        await emulators.stop()

    run(body_test())


def test_camera_frames_are_delivered_under_the_configured_view():
    async def body_test():
        emulators, config = await start_emulators(_config())
        config.camera.view = "overhead"
        frames = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3), np.uint8)
        body = HardwareBody.from_config(config, ReplayCamera(frames, fps=100.0))
        assert body.spec.cameras == {"overhead": (64, 64)}
        await body.connect()
        assert await wait_for(lambda: body.slots["image/overhead"].value is not None)
        observation = await body.observe()
        assert list(observation.images) == ["overhead"]
        assert any(np.array_equal(observation.images["overhead"], f) for f in frames)
        assert "image/overhead" in observation.stamps
        await body.close()
        await emulators.stop()

    run(body_test())
