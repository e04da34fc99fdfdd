"""Typed errors of devices and their links (each message names the device, the value, the fix).

Every one is a :class:`~dualctl.errors.DualctlError`, so the CLI prints it on one line.
"""

from __future__ import annotations

from dualctl.errors import DualctlError


class DeviceError(DualctlError):
    """A device failed or could not be reached."""


class LinkError(DeviceError):
    """The link to a device failed (no reply, bad frame, disconnected)."""


class LinkTimeout(LinkError):
    """No valid reply within the timeout, after every retry."""


class CrcError(LinkError):
    """Replies arrived but their CRC did not match (noise on the line, wrong baud rate)."""


class Disconnected(LinkError):
    """The link is down; a reconnect with backoff is running."""


class ProtocolError(LinkError):
    """The device answered with a Modbus exception or a reply of the wrong kind."""
