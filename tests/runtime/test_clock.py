import asyncio

import pytest

from dualctl.runtime.clock import RealClock, VirtualClock


def test_virtual_clock_interleaves_tasks_by_their_deadlines():
    clock = VirtualClock()
    order = []

    async def ticker(name, period, count):
        t = clock.now()
        for _ in range(count):
            t += period
            await clock.sleep_until(t)
            order.append((round(clock.now(), 9), name))

    async def main():
        await asyncio.gather(ticker("fast", 0.005, 400), ticker("slow", 0.5, 4))

    clock.run(main())
    times = [t for t, _ in order]
    assert times == sorted(times)
    assert (0.5, "slow") in order and (2.0, "slow") in order
    assert clock.now() == pytest.approx(2.0)


def test_virtual_clock_jumps_long_waits_and_times_out_in_virtual_time():
    clock = VirtualClock(start=10.0)

    async def main():
        await clock.sleep_until(1010.0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(3600), 2.5)
        return clock.now()

    assert clock.run(main()) == pytest.approx(1012.5)


def test_real_clock_never_wakes_before_its_deadline():
    clock = RealClock(spin_s=0.001)

    async def main():
        woke = []
        deadline = clock.now()
        for _ in range(20):
            deadline += 0.002
            await clock.sleep_until(deadline)
            woke.append(clock.now() - deadline)
        return woke

    assert min(clock.run(main())) >= 0.0


def test_real_clock_calibration_picks_a_bounded_spin():
    clock = RealClock()

    async def main():
        await clock.prepare()
        return clock.spin_s

    spin = clock.run(main())
    assert 5e-4 <= spin <= 2e-3
