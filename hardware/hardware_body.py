"""HardwareBody: the real gripper (plus optional F/T sensor, camera and tactile sensor) behind
the :class:`~dualctl.body.Body` interface.

Every device has its own asyncio task that keeps a latest-value slot (value + time.monotonic()
stamp). ``observe()`` and ``act()`` only touch slots, so they never wait on a device: a slow or
dead link shows up as an old stamp and a fault in ``health()``, within the tick it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import numpy as np
from dualctl.hardware.config import HardwareConfig, SafetyLimits
from dualctl.hardware.device_errors import DeviceError
from dualctl.hardware.netft import NetFT
from dualctl.hardware.netft_protocol import NetFTCalibration, mount_rotation
from dualctl.hardware.robotiq import GripperState, RobotiqGripper
from dualctl.hardware.robotiq_protocol import RobotiqRequest, encode_command
from dualctl.hardware.tactile import DigitTactile
from dualctl.hardware.video import VideoDevice

from dualctl.body import Body, BodySpec, Health
from dualctl.types import (
    PROPRIO_DIM,
    PROPRIO_FIELDS,
    TACTILE_SHAPE,
    WRENCH_DIM,
    Action,
    GripperCommand,
    Observation,
)

log = logging.getLogger(__name__)

_WIDTH, _WIDTH_VEL = PROPRIO_FIELDS.index("width"), PROPRIO_FIELDS.index("width_vel")


@dataclass
class Slot:
    """The latest value of one stream and when it was sampled (time.monotonic(), s)."""

    value: object = None
    stamp: float = -np.inf
    error: str | None = None

    def put(self, value, stamp: float) -> None:
        self.value, self.stamp, self.error = value, stamp, None


def _loop_time(monotonic_s: float) -> float:
    """A time.monotonic() instant on the event loop's clock (the same clock on Linux)."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_s - time.monotonic())


class HardwareBody(Body):
    """Gripper-only by default (``spec.has_arm`` False: end-effector velocity is ignored).

    Args:
        gripper: the Robotiq driver (not yet connected).
        limits: force/speed caps applied to every gripper command.
        poll_hz: gripper status polling rate (Hz); keeps the 1 s watchdog fed.
        netft: wrist F/T sensor, if mounted; ``netft_stale_s`` bounds its age.
        camera: the camera, if mounted (delivered as ``images[camera_view]``).
        camera_view: the camera name its frames are delivered under (``hardware.camera.view``).
        tactile: gel sensor, if mounted.
        activate: run the activation sequence at connect (the gripper must be free to move).
    """

    def __init__(
        self,
        gripper: RobotiqGripper,
        limits: SafetyLimits,
        poll_hz: float = 100.0,
        netft: NetFT | None = None,
        netft_stale_s: float = 0.1,
        bias_on_connect: bool = True,
        camera: VideoDevice | None = None,
        camera_hz: float = 30.0,
        camera_view: str = "scene",
        tactile: DigitTactile | None = None,
        activate: bool = True,
    ):
        self.gripper, self.limits, self.poll_s = gripper, limits, 1.0 / poll_hz
        self.netft, self.netft_stale_s, self.bias_on_connect = netft, netft_stale_s, bias_on_connect
        self.camera, self.tactile, self.activate = camera, tactile, activate
        self.camera_view, self._image = camera_view, f"image/{camera_view}"
        cameras = {camera_view: (camera.height, camera.width)} if camera else {}
        self.spec = BodySpec(cameras=cameras, camera_hz=camera_hz, has_arm=False)
        self.slots = {"proprio": Slot(), "wrench": Slot(), "tactile": Slot(), self._image: Slot()}
        self.commands_sent = 0
        self._pending: RobotiqRequest | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._link_up = False
        self._previous_state: GripperState | None = None
        self._width_vel = 0.0

    @classmethod
    def from_config(cls, config: HardwareConfig, camera: VideoDevice | None = None) -> HardwareBody:
        """Build (not connect) the body the ``hardware`` config section describes; ``camera``,
        if given, replaces the configured camera (a dry run's replayed frames of its view)."""
        netft = tactile = None
        if config.netft.enabled:
            calibration = NetFTCalibration(
                config.netft.counts_per_force, config.netft.counts_per_torque
            )
            angles = config.netft.mount_rpy_deg
            mount = mount_rotation(*angles) if any(angles) else None  # None: the sensor's axes
            netft = NetFT(config.netft.host, config.netft.port, calibration, mount)
        if camera is None and config.camera.enabled:
            c = config.camera
            camera = VideoDevice(c.device, c.width, c.height, c.fps)
        if config.tactile.enabled:
            t = config.tactile
            tactile = DigitTactile(VideoDevice(t.device, t.width, t.height, t.fps))
        return cls(
            RobotiqGripper.from_config(config.gripper), config.limits,
            poll_hz=config.gripper.poll_hz, netft=netft, netft_stale_s=config.netft.stale_s,
            bias_on_connect=config.netft.bias_on_connect, camera=camera,
            camera_hz=camera.fps if camera else config.camera.fps,
            camera_view=config.camera.view, tactile=tactile,
        )  # fmt: skip

    # --- Body ---------------------------------------------------------------------------------
    async def connect(self) -> None:
        self.gripper.link.on_state_change(self._on_link)
        await self.gripper.connect()
        self._link_up = True
        state = await (self.gripper.activate() if self.activate else self.gripper.read_status())
        self._on_gripper_state(state)
        self._tasks.append(asyncio.create_task(self._gripper_io(), name="gripper io"))
        if self.netft is not None:
            await self._connect_netft()
        if self.camera is not None:
            await self.camera.open()
            self._tasks.append(asyncio.create_task(self._read_camera(), name="camera"))
        if self.tactile is not None:
            await self.tactile.open()
            self._tasks.append(asyncio.create_task(self._read_tactile(), name="tactile"))

    async def observe(self) -> Observation:
        proprio = np.zeros(PROPRIO_DIM, np.float32)
        state = self.slots["proprio"].value
        if state is not None:
            proprio[_WIDTH], proprio[_WIDTH_VEL] = state.width_m, self._width_vel
        wrench = self.slots["wrench"].value
        tactile = self.slots["tactile"].value
        images = {}
        if self.slots[self._image].value is not None:
            images[self.camera_view] = self.slots[self._image].value
        stamps = {name: slot.stamp for name, slot in self.slots.items() if slot.value is not None}
        return Observation(
            timestamp=max(stamps.values(), default=time.monotonic()),
            images=images,
            proprio=proprio,
            wrench=np.zeros(WRENCH_DIM) if wrench is None else wrench,
            tactile=np.zeros(TACTILE_SHAPE) if tactile is None else tactile,
            stamps=stamps,
        )

    async def act(self, action: Action) -> Action:
        """Queue the gripper request (latest wins, sent at once by the I/O task); return it as
        the device will execute it: clipped to the limits and quantised to the register bytes."""
        g = action.gripper
        capped = GripperCommand(
            width_m=g.width_m,
            speed_mps=min(g.speed_mps, self.limits.max_grip_speed_mps),
            force_n=min(g.force_n, self.limits.max_grip_force_n),
        )
        request, sent = encode_command(capped, self.gripper.spec, self.gripper.calibration)
        self._pending = request
        self._wake.set()
        return Action(np.zeros(4, np.float32), sent, action.timestamp)

    async def health(self) -> Health:
        faults = []
        if not self._link_up:
            error = self.gripper.link.last_error
            faults.append(f"gripper link down ({error or 'disconnected'}); reconnecting")
        proprio = self.slots["proprio"]
        if proprio.error:
            faults.append(proprio.error)
        if proprio.value is not None and proprio.value.fault is not None:
            faults.append(str(proprio.value.fault))
        now = time.monotonic()
        if self.netft is not None and now - self.slots["wrench"].stamp > self.netft_stale_s:
            faults.append(f"F/T data older than {self.netft_stale_s} s")
        for name in ("wrench", self._image, "tactile"):
            if self.slots[name].error:
                faults.append(self.slots[name].error)
        return Health(ok=not faults, faults=tuple(faults))

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        _, stuck = await asyncio.wait(tasks, timeout=1.0) if tasks else ((), ())
        if stuck:
            log.error("device tasks ignored cancellation: %s", [t.get_name() for t in stuck])
        if self._link_up:
            with contextlib.suppress(DeviceError):  # best effort; the link may be gone
                await self.gripper.stop()
        await self.gripper.close()
        for device in (self.netft, self.camera, self.tactile):
            if device is not None:
                await device.close()

    # --- tasks --------------------------------------------------------------------------------
    def _on_link(self, up: bool) -> None:
        self._link_up = up
        if not up:
            self._pending = None  # never replay a stale command after a reconnect

    def _on_gripper_state(self, state: GripperState) -> None:
        previous = self._previous_state
        if previous is not None and state.stamp > previous.stamp:
            self._width_vel = (state.width_m - previous.width_m) / (state.stamp - previous.stamp)
        self._previous_state = state
        self.slots["proprio"].put(state, state.stamp)

    async def _gripper_io(self) -> None:
        """Send queued commands at once; read the status every poll period (absolute deadlines)."""
        deadline = time.monotonic()
        while True:
            deadline += self.poll_s
            with contextlib.suppress(TimeoutError):  # not wait_for: see netft.next_sample
                async with asyncio.timeout_at(_loop_time(deadline)):
                    await self._wake.wait()
            try:
                await self._gripper_step(deadline)
            except DeviceError as error:
                self.slots["proprio"].error = f"gripper: {error}"
                await asyncio.sleep(self.poll_s)  # the link reconnects by itself meanwhile
            now = time.monotonic()
            if now > deadline + self.poll_s:  # fell behind (a timeout): restart the schedule
                deadline = now

    async def _gripper_step(self, deadline: float) -> None:
        if self._wake.is_set():
            self._wake.clear()
            pending, self._pending = self._pending, None
            if pending is not None:
                await self.gripper.write_request(pending)
                self.commands_sent += 1
            if time.monotonic() < deadline:
                return
        self._on_gripper_state(await self.gripper.read_status())

    async def _connect_netft(self) -> None:
        await self.netft.connect()
        self.netft.start_streaming()
        if self.bias_on_connect:
            await self.netft.software_bias()
        sample = await self.netft.next_sample(self.netft_stale_s)
        self.slots["wrench"].put(sample.wrench.astype(np.float32), sample.stamp)
        self._tasks.append(asyncio.create_task(self._read_netft(), name="netft"))

    async def _read_netft(self) -> None:
        while True:
            try:
                sample = await self.netft.next_sample(self.netft_stale_s)
            except DeviceError as error:
                self.slots["wrench"].error = f"F/T: {error}"
                self.netft.start_streaming()  # a rebooted box forgets it was streaming
                continue
            self.slots["wrench"].put(sample.wrench.astype(np.float32), sample.stamp)
            if sample.status:  # the sensor flags saturation, a broken gauge, ...
                self.slots["wrench"].error = f"F/T status word 0x{sample.status:08X}"

    async def _read_camera(self) -> None:
        while True:
            try:
                frame = await self.camera.read()
            except DeviceError as error:
                self.slots[self._image].error = f"camera: {error}"
                await asyncio.sleep(0.1)
                continue
            self.slots[self._image].put(frame.image, frame.stamp)

    async def _read_tactile(self) -> None:
        while True:
            try:
                tactile, stamp = await self.tactile.read()
            except DeviceError as error:
                self.slots["tactile"].error = f"tactile: {error}"
                await asyncio.sleep(0.1)
                continue
            self.slots["tactile"].put(tactile, stamp)
