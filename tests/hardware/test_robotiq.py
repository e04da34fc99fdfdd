"""The Robotiq driver against the emulator over real transports (loopback TCP, a pty pair)."""

from __future__ import annotations

import asyncio

import pytest
from dualctl.hardware import device_errors as errors
from dualctl.hardware import robotiq_faults as faults
from dualctl.hardware.config import RobotiqConfig
from dualctl.hardware.gripper_model import GripperParams
from dualctl.hardware.robotiq import RobotiqGripper
from dualctl.hardware.robotiq_protocol import (
    GRIPPER_SPECS,
    Calibration,
    RobotiqRequest,
    encode_command,
)
from rigs import TEST_TIMING, gripper_rig, run, wait_for

from dualctl.types import GRIPPER_STROKE_M, GripperCommand

TRANSPORTS = ("tcp", "rtu_over_tcp", "rtu")
COUNT_M = GRIPPER_STROKE_M / (230 - 3)  # one position count of the default calibration


def test_frames_are_byte_for_byte_the_manuals_examples():
    """The 2F-85 manual's example frames (activation, full close, status read) incl. CRC."""

    async def body():
        async with gripper_rig("rtu") as (emulator, gripper):
            await gripper.activate()
            assert emulator.last_received == bytes.fromhex("0904 07D0 0003 B1CE")
            await gripper.write_request(RobotiqRequest(True, True, 0xFF, speed=0xFF, force=0xFF))
            assert emulator.last_received == bytes.fromhex("0910 03E8 0003 06 0900 00FF FFFF 4229")

    run(body())


def test_activation_frame_matches_manual():
    async def body():
        async with gripper_rig("rtu_over_tcp") as (emulator, gripper):
            await gripper.activate()
            frames = list(emulator.received)
            assert bytes.fromhex("0910 03E8 0003 06 0000 0000 0000 7330") in frames
            assert bytes.fromhex("0910 03E8 0003 06 0100 0000 0000 72E1") in frames

    run(body())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_activation_open_close_over_each_transport(transport):
    async def body():
        async with gripper_rig(transport) as (emulator, gripper):
            state = await gripper.activate()
            assert state.raw.ready and state.raw.activated and state.fault is None
            closed = await gripper.move(GripperCommand(0.02, 0.15, 50.0))
            assert closed.width_m == pytest.approx(0.02, abs=COUNT_M)
            assert not closed.object_detected
            opened = await gripper.move(GripperCommand(GRIPPER_STROKE_M, 0.15, 50.0))
            assert opened.width_m == pytest.approx(GRIPPER_STROKE_M, abs=1e-9)

    run(body())


def test_speed_and_force_reach_the_registers_quantised():
    async def body():
        async with gripper_rig() as (emulator, gripper):
            await gripper.activate()
            wanted = GripperCommand(0.0421, 0.0853, 117.3)
            sent = await gripper.command(wanted)
            request = emulator.model.request
            spec = GRIPPER_SPECS["2F-85"]
            assert request.go and request.act
            assert request.speed == int((0.0853 - 0.02) / (0.15 - 0.02) * 255)  # rounded down
            assert request.force == int((117.3 - 20) / (235 - 20) * 255)
            assert request.position == gripper.calibration.counts(0.0421)
            # the returned command is what the bytes mean, within one quantum of the wish
            assert wanted.speed_mps - 0.13 / 255 < sent.speed_mps <= wanted.speed_mps
            assert wanted.force_n - 215 / 255 < sent.force_n <= wanted.force_n
            assert sent.width_m == pytest.approx(wanted.width_m, abs=COUNT_M)
            assert spec.stroke_m == GRIPPER_STROKE_M

    run(body())


def test_slower_speed_byte_moves_the_fingers_less_in_the_same_time():
    async def body():
        travelled = []
        for speed in (0.02, 0.15):
            async with gripper_rig() as (emulator, gripper):
                await gripper.activate()
                start = (await gripper.read_status()).width_m
                await gripper.command(GripperCommand(0.0, speed, 50.0))
                await asyncio.sleep(0.1)
                travelled.append(start - (await gripper.read_status()).width_m)
        assert 0 < travelled[0] < travelled[1]

    run(body())


def test_object_detection_and_current_rising_with_force():
    async def body():
        currents = []
        for force in (20.0, 235.0):
            params = GripperParams(object_width_m=0.03)
            async with gripper_rig("rtu_over_tcp", params) as (emulator, gripper):
                await gripper.activate()
                state = await gripper.move(GripperCommand(0.0, 0.15, force))
                assert state.object_detected and state.raw.object == 2
                assert state.width_m == pytest.approx(0.03, abs=COUNT_M)
                await asyncio.sleep(0.08)  # let the squeeze build up
                currents.append((await gripper.read_status()).current_a)
                released = await gripper.move(GripperCommand(0.085, 0.15, force))
                assert not released.object_detected and released.raw.object == 3
        assert currents[1] > currents[0] > 0

    run(body())


def test_width_calibration_measures_this_units_counts():
    async def body():
        params = GripperParams(open_counts=8, closed_counts=221)
        async with gripper_rig("tcp", params) as (emulator, gripper):
            await gripper.activate()
            assert gripper.calibration == Calibration(3, 230, GRIPPER_STROKE_M)
            calibration = await gripper.calibrate()
            assert (calibration.open_counts, calibration.closed_counts) == (8, 221)
            state = await gripper.move(GripperCommand(0.0425, 0.15, 20.0))
            assert state.width_m == pytest.approx(0.0425, abs=GRIPPER_STROKE_M / 213)
            assert emulator.model.position == pytest.approx((8 + 221) / 2, abs=1)

    run(body())


def test_calibration_refuses_when_an_object_is_in_the_hand():
    async def body():
        async with gripper_rig("tcp", GripperParams(object_width_m=0.05)) as (_, gripper):
            await gripper.activate()
            with pytest.raises(errors.DeviceError, match="object"):
                await gripper.calibrate()

    run(body())


MAJOR = (0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F)


@pytest.mark.parametrize("code", (0x08, *MAJOR))
def test_injected_fault_is_decoded_with_its_meaning(code):
    async def body():
        async with gripper_rig() as (emulator, gripper):
            await gripper.activate()
            emulator.model.inject_fault(code)
            state = await gripper.read_status()
            fault = state.fault
            assert type(fault) is faults.GRIPPER_FAULTS[code]
            assert fault.code == code and f"0x{code:02X}" in str(fault)
            assert fault.meaning in str(fault)
            assert fault.needs_reset == (code in MAJOR)
            with pytest.raises(faults.GRIPPER_FAULTS[code]):
                await gripper.move(GripperCommand(0.01, 0.1, 50.0))
            if code in MAJOR:
                await gripper.activate()  # a rising rACT edge clears a major fault
            else:
                emulator.model.clear_fault()
            assert (await gripper.read_status()).fault is None

    run(body())


def test_every_documented_code_has_its_own_named_error():
    names = {faults.GRIPPER_FAULTS[c].__name__ for c in (5, 7, 8, 9, *MAJOR)}
    assert len(names) == 10
    assert "Overcurrent" in faults.decode_fault(0x0E).meaning.title()
    assert faults.decode_fault(0) is None
    assert type(faults.decode_fault(0x03)) is faults.GripperFault  # undocumented code


def test_action_before_activation_is_fault_0x07():
    async def body():
        async with gripper_rig() as (emulator, gripper):
            await gripper.write_request(RobotiqRequest(False, True, 100, speed=0, force=0))
            state = await gripper.read_status()
            assert isinstance(state.fault, faults.NotActivatedFault)
            await gripper.activate()
            assert (await gripper.read_status()).fault is None

    run(body())


def test_action_during_activation_is_fault_0x05():
    async def body():
        async with gripper_rig("tcp", GripperParams(activation_s=0.5)) as (emulator, gripper):
            await gripper.write_request(
                encode_command(GripperCommand(0, 0.1, 50), gripper.spec, gripper.calibration)[0]
            )
            state = await gripper.read_status()
            assert isinstance(state.fault, faults.ActionDelayedFault)
            assert not state.fault.needs_reset

    run(body())


def test_silence_trips_the_watchdog_fault_0x09():
    async def body():
        async with gripper_rig("tcp", GripperParams(watchdog_s=0.15)) as (emulator, gripper):
            await gripper.activate()
            for _ in range(10):  # polling faster than the watchdog: never trips
                await asyncio.sleep(0.05)
                assert (await gripper.read_status()).fault is None
            await asyncio.sleep(0.25)
            state = await gripper.read_status()
            assert isinstance(state.fault, faults.CommunicationFault)
            assert (await gripper.read_status()).fault is None  # communication is back

    run(body())


def test_controller_fault_kflt_is_decoded():
    async def body():
        async with gripper_rig() as (emulator, gripper):
            await gripper.activate()
            emulator.model.inject_fault(0x3, controller=True)
            fault = (await gripper.read_status()).fault
            assert isinstance(fault, faults.ControllerFault) and fault.code == 3
            assert "kFLT" in str(fault)

    run(body())


@pytest.mark.parametrize("transport", ("rtu_over_tcp", "rtu"))
def test_one_bad_crc_is_retried_and_counted(transport):
    async def body():
        async with gripper_rig(transport) as (emulator, gripper):
            await gripper.activate()
            emulator.faults.corrupt_crc = 1
            state = await gripper.read_status()
            assert state.raw.ready
            assert gripper.link.stats.crc_errors == 1

    run(body())


def test_persistent_bad_crc_raises_crc_error_then_recovers():
    async def body():
        async with gripper_rig("rtu_over_tcp") as (emulator, gripper):
            await gripper.activate()
            emulator.faults.corrupt_crc = 2  # both attempts (retries=1)
            with pytest.raises(errors.CrcError, match="CRC"):
                await gripper.read_status()
            assert await wait_for(lambda: gripper.link.connected)
            assert (await gripper.read_status()).raw.ready

    run(body())


def test_dropped_reply_is_retried_then_timeout_after_all_retries():
    async def body():
        async with gripper_rig("tcp") as (emulator, gripper):
            await gripper.activate()
            emulator.faults.drop_replies = 1
            assert (await gripper.read_status()).raw.ready
            assert gripper.link.stats.timeouts == 1
            emulator.faults.drop_replies = 2
            with pytest.raises(errors.LinkTimeout, match="no reply"):
                await gripper.read_status()
            assert not gripper.link.connected  # dropped after the last retry ...
            assert await wait_for(lambda: gripper.link.connected)  # ... and back by itself
            assert (await gripper.read_status()).raw.ready

    run(body())


def test_slow_replies_time_out():
    async def body():
        async with gripper_rig("rtu_over_tcp") as (emulator, gripper):
            await gripper.activate()
            emulator.faults.delay_s = 0.3  # longer than the 0.1 s timeout
            with pytest.raises(errors.LinkTimeout):
                await gripper.read_status()
            emulator.faults.delay_s = 0.0
            assert await wait_for(lambda: gripper.link.connected)
            assert (await gripper.read_status()).raw.ready

    run(body())


@pytest.mark.parametrize("transport", ("tcp", "rtu_over_tcp"))
def test_disconnect_is_noticed_and_the_link_reconnects(transport):
    async def body():
        async with gripper_rig(transport) as (emulator, gripper):
            await gripper.activate()
            emulator.disconnect()
            assert await wait_for(lambda: gripper.link.stats.drops == 1)
            assert await wait_for(lambda: gripper.link.connected)
            assert gripper.link.stats.reconnects == 1
            assert (await gripper.read_status()).raw.ready

    run(body())


def test_device_offline_raises_link_errors_and_backs_off_until_it_returns():
    async def body():
        async with gripper_rig("tcp") as (emulator, gripper):
            await gripper.activate()
            states = []
            gripper.link.on_state_change(states.append)
            await emulator.go_offline()
            assert await wait_for(lambda: states == [False])
            with pytest.raises(errors.Disconnected, match="reconnecting"):
                await gripper.read_status()
            await asyncio.sleep(0.3)  # several capped-backoff attempts fail meanwhile
            assert not gripper.link.connected
            await emulator.go_online()
            assert await wait_for(lambda: gripper.link.connected)
            assert states == [False, True]
            assert (await gripper.read_status()).raw.ready  # the gripper kept its state

    run(body())


def test_connect_to_nothing_raises_disconnected():
    async def body():
        config = RobotiqConfig(transport="tcp", port=1, timing=TEST_TIMING)
        gripper = RobotiqGripper.from_config(config)
        with pytest.raises(errors.Disconnected, match="cannot open"):
            await gripper.connect()
        await gripper.close()

    run(body())
