"""Robotiq gripper faults (gFLT, kFLT) as named, typed errors.

Meanings are the ones the 2F-85/2F-140 instruction manual documents for the gFLT byte;
the severity decides recovery: priority faults clear by themselves once the cause is gone,
minor faults once the condition ends, major faults need a reset (rACT 0 then 1).
"""

from __future__ import annotations

from dualctl.hardware.device_errors import DeviceError


class GripperFault(DeviceError):
    """A fault the gripper reports in its status.

    Attributes:
        code: the gFLT (or kFLT) value.
        meaning: the manual's description.
        severity: "priority", "minor", "major" or "controller".
        needs_reset: True when only a reactivation (rACT 0 then 1) clears it.
    """

    code = 0
    meaning = "unknown fault"
    severity = "major"
    needs_reset = True

    def __init__(self, code: int | None = None):
        if code is not None:
            self.code = code
        fix = "reactivate the gripper" if self.needs_reset else "it clears when the cause ends"
        super().__init__(
            f"Robotiq gripper fault 0x{self.code:02X} ({type(self).__name__}): "
            f"{self.meaning} [{self.severity}; {fix}]"
        )


class ActionDelayedFault(GripperFault):
    code, severity, needs_reset = 0x05, "priority", False
    meaning = "action delayed: the (re)activation must complete before any other action"


class NotActivatedFault(GripperFault):
    code, severity, needs_reset = 0x07, "priority", False
    meaning = "the activation bit (rACT) must be set before an action"


class OverTemperatureFault(GripperFault):
    code, severity, needs_reset = 0x08, "minor", False
    meaning = "maximum operating temperature exceeded (>= 85 C internally); wait for cool-down"


class CommunicationFault(GripperFault):
    code, severity, needs_reset = 0x09, "minor", False
    meaning = "no communication during at least 1 second (watchdog)"


class UnderVoltageFault(GripperFault):
    code = 0x0A
    meaning = "under minimum operating voltage"


class AutoReleaseInProgressFault(GripperFault):
    code = 0x0B
    meaning = "automatic release in progress"


class InternalFault(GripperFault):
    code = 0x0C
    meaning = "internal fault; contact support@robotiq.com"


class ActivationFault(GripperFault):
    code = 0x0D
    meaning = "activation fault: verify that no interference or other error occurred"


class OvercurrentFault(GripperFault):
    code = 0x0E
    meaning = "overcurrent triggered"


class AutoReleaseCompletedFault(GripperFault):
    code = 0x0F
    meaning = "automatic release completed"


class ControllerFault(GripperFault):
    """kFLT: a fault of the gripper's controller, reported in the fault byte's high nibble."""

    severity = "controller"
    meaning = "controller fault (kFLT); see the Robotiq controller manual for this code"


GRIPPER_FAULTS: dict[int, type[GripperFault]] = {
    cls.code: cls
    for cls in (
        ActionDelayedFault,
        NotActivatedFault,
        OverTemperatureFault,
        CommunicationFault,
        UnderVoltageFault,
        AutoReleaseInProgressFault,
        InternalFault,
        ActivationFault,
        OvercurrentFault,
        AutoReleaseCompletedFault,
    )
}


def decode_fault(fault: int, controller_fault: int = 0) -> GripperFault | None:
    """The named error for a gFLT / kFLT pair, or None when both are 0."""
    if fault:
        return GRIPPER_FAULTS.get(fault, GripperFault)(fault)
    if controller_fault:
        return ControllerFault(controller_fault)
    return None
