"""Every enabled device's protocol emulator, started in-process for dry runs and tests.

:func:`start_emulators` returns the running emulators and a copy of the ``hardware`` config
rewired to reach them over loopback (Modbus on 127.0.0.1 or a pty pair; RDT on 127.0.0.1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from dualctl.hardware.config import HardwareConfig
from dualctl.hardware.gripper_model import GripperParams
from dualctl.hardware.netft_emulator import NetFTEmulator, constant_signal
from dualctl.hardware.netft_protocol import NetFTCalibration
from dualctl.hardware.robotiq_emulator import RobotiqEmulator
from dualctl.hardware.robotiq_protocol import GRIPPER_SPECS


@dataclass
class Emulators:
    gripper: RobotiqEmulator
    netft: NetFTEmulator | None = None

    async def stop(self) -> None:
        await self.gripper.stop()
        if self.netft is not None:
            await self.netft.stop()


async def start_emulators(
    config: HardwareConfig, object_width_m: float | None = None
) -> tuple[Emulators, HardwareConfig]:
    """Start emulators for ``config``'s devices; return them and the config that reaches them.

    Cameras have no emulator: a dry run turns them off.
    """
    g = config.gripper
    params = GripperParams(
        spec=GRIPPER_SPECS[g.model], open_counts=g.open_counts, closed_counts=g.closed_counts,
        object_width_m=object_width_m,
    )  # fmt: skip
    baudrate = g.baudrate if g.transport == "rtu" else None
    gripper = await RobotiqEmulator(g.transport, params, g.device_id, baudrate=baudrate).start()
    emulators = Emulators(gripper)
    gripper_config = dataclasses.replace(
        g, host="127.0.0.1", port=gripper.port or g.port, serial_port=gripper.serial_port
    )
    netft_config = config.netft
    if config.netft.enabled:
        calibration = NetFTCalibration(
            netft_config.counts_per_force, netft_config.counts_per_torque
        )
        emulators.netft = await NetFTEmulator(calibration, constant_signal(np.zeros(6))).start()
        netft_config = dataclasses.replace(
            netft_config, host="127.0.0.1", port=emulators.netft.port
        )
    off = dataclasses.replace(config.camera, enabled=False)
    rewired = dataclasses.replace(
        config, emulated=True, gripper=gripper_config, netft=netft_config, camera=off,
        tactile=dataclasses.replace(config.tactile, enabled=False),
    )  # fmt: skip
    return emulators, rewired
