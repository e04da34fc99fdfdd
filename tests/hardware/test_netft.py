"""The Net F/T driver against the RDT emulator over loopback UDP."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from dualctl.hardware.device_errors import LinkTimeout
from dualctl.hardware.netft import NetFT
from dualctl.hardware.netft_emulator import NetFTEmulator, constant_signal
from dualctl.hardware.netft_protocol import (
    RECORD_SIZE,
    NetFTCalibration,
    RdtRecord,
    mount_rotation,
    pack_request,
    unpack_request,
)
from rigs import run, wait_for

from dualctl.config import load_config
from dualctl.errors import ConfigError

LOAD = np.array([1.5, -2.25, 10.0, 0.125, -0.05, 0.3])


def test_rdt_wire_format_is_big_endian_and_36_bytes():
    assert pack_request(0x0002, 0) == bytes.fromhex("1234 0002 00000000")
    assert unpack_request(bytes.fromhex("1234 0042 00000000")) == (0x42, 0)
    assert unpack_request(bytes.fromhex("4321 0002 00000000")) is None
    record = RdtRecord(7, 9, 0, (1, -1, 2, -2, 3, 2**31 - 1))
    data = record.pack()
    assert len(data) == RECORD_SIZE == 36
    assert data[:12] == bytes.fromhex("00000007 00000009 00000000")
    assert data[12:20] == bytes.fromhex("00000001 FFFFFFFF")
    assert RdtRecord.unpack(data) == record


def test_counts_convert_to_newtons_and_newton_metres():
    calibration = NetFTCalibration(counts_per_force=1_000_000.0, counts_per_torque=500.0)
    wrench = calibration.to_wrench([2_000_000, -500_000, 0, 250, -1000, 0])
    assert wrench == pytest.approx([2.0, -0.5, 0.0, 0.5, -2.0, 0.0])
    assert calibration.to_counts(wrench) == (2_000_000, -500_000, 0, 250, -1000, 0)


async def _rig(emulator: NetFTEmulator) -> NetFT:
    await emulator.start()
    sensor = NetFT("127.0.0.1", emulator.port, emulator.calibration)
    await sensor.connect()
    sensor.start_streaming()
    return sensor


def test_streamed_wrench_is_in_si_units():
    async def body():
        calibration = NetFTCalibration(counts_per_force=1_000_000.0, counts_per_torque=1000.0)
        emulator = NetFTEmulator(calibration, constant_signal(LOAD))
        sensor = await _rig(emulator)
        sample = await sensor.next_sample(1.0)
        assert sample.wrench == pytest.approx(LOAD, abs=1e-3)
        assert sample.status == 0
        await sensor.close()
        await emulator.stop()

    run(body())


def test_a_sensor_mounted_upside_down_reads_in_the_wrists_axes():
    # Turned half a turn about x, the sensor sees a held mass pull along its -z; the controller
    # (and the grip reflex's set-down) expects fz = +m g.
    upside_down = mount_rotation(180.0, 0.0, 0.0)
    assert upside_down @ [0.0, 0.0, -9.81] == pytest.approx([0.0, 0.0, 9.81])
    quarter = mount_rotation(0.0, 0.0, 90.0)
    assert quarter @ [1.0, 0.0, 0.0] == pytest.approx([0.0, 1.0, 0.0])

    async def body():
        emulator = NetFTEmulator(signal=constant_signal(LOAD))
        await emulator.start()
        sensor = NetFT("127.0.0.1", emulator.port, emulator.calibration, upside_down)
        await sensor.connect()
        sensor.start_streaming()
        wrench = (await sensor.next_sample(1.0)).wrench
        expected = np.concatenate([upside_down @ LOAD[:3], upside_down @ LOAD[3:]])
        assert wrench == pytest.approx(expected, abs=1e-3)
        assert wrench[2] == pytest.approx(-LOAD[2], abs=1e-3)
        await sensor.close()
        await emulator.stop()

    run(body())


@pytest.mark.parametrize(
    "value, named", [("[180,0]", r"mount_rpy_deg'.*3 angles"), ("[0,0,400]", r"mount_rpy_deg\[2\]")]
)
def test_a_bad_sensor_mounting_is_refused_by_name(value, named):
    with pytest.raises(ConfigError, match=named):
        load_config([f"hardware.netft.mount_rpy_deg={value}"])


def test_software_bias_and_device_bias_zero_the_load():
    async def body():
        emulator = NetFTEmulator(signal=constant_signal(LOAD))
        sensor = await _rig(emulator)
        bias = await sensor.software_bias(samples=10)
        assert bias == pytest.approx(LOAD, abs=1e-6)
        assert (await sensor.next_sample(1.0)).wrench == pytest.approx(np.zeros(6), abs=1e-6)
        # a load added after the bias is seen on top of it
        emulator.signal = constant_signal(LOAD + [0, 0, 5.0, 0, 0, 0])
        await asyncio.sleep(0.02)
        assert (await sensor.next_sample(1.0)).wrench[2] == pytest.approx(5.0, abs=1e-6)
        # the device's own bias command zeroes at the sensor, without any software bias
        sensor.clear_bias()
        assert (await sensor.next_sample(1.0)).wrench[2] == pytest.approx(15.0, abs=1e-6)
        sensor.device_bias()
        assert await wait_for(
            lambda: np.allclose(sensor.latest.wrench, 0.0, atol=1e-6), timeout_s=1.0
        )
        await sensor.close()
        await emulator.stop()

    run(body())


def test_packet_loss_is_counted_from_sequence_gaps():
    async def body():
        emulator = NetFTEmulator(rate_hz=1000.0, loss=0.3, seed=3)
        sensor = await _rig(emulator)
        await asyncio.sleep(0.3)
        sensor.stop_streaming()
        await asyncio.sleep(0.05)
        assert emulator.dropped > 0
        # every record sent arrived on loopback; each one dropped between the first and the
        # last received shows as a gap in the RDT sequence
        assert sensor.received == emulator.sent
        dropped = set(emulator.dropped_sequences)
        first = min(n for n in range(1, emulator.sent + emulator.dropped + 1) if n not in dropped)
        last = sensor.latest.rdt_sequence
        assert sensor.lost == sum(first < n < last for n in dropped) > 0
        await sensor.close()
        await emulator.stop()

    run(body())


def test_finite_stream_and_stop_then_a_bounded_wait():
    async def body():
        emulator = NetFTEmulator(rate_hz=1000.0)
        sensor = await _rig(emulator)
        await sensor.next_sample(1.0)
        sensor.stop_streaming()
        await asyncio.sleep(0.05)
        with pytest.raises(LinkTimeout, match="no record"):
            await sensor.next_sample(0.05)
        sensor.start_streaming(samples=5)
        await asyncio.sleep(0.1)
        assert emulator.sent >= 5
        sent = emulator.sent
        await asyncio.sleep(0.05)
        assert emulator.sent == sent  # stopped by itself after 5
        await sensor.close()
        await emulator.stop()

    run(body())
