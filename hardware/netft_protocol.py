"""ATI Net F/T Raw Data Transfer (RDT) over UDP, shared by the driver and the emulator.

Requests are 8 bytes big-endian: ``uint16 header (0x1234), uint16 command, uint32 sample count``
(0 = stream until told to stop). Each record is 36 bytes big-endian: ``uint32 rdt_sequence,
uint32 ft_sequence, uint32 status, int32 Fx Fy Fz Tx Ty Tz`` in counts; divide forces by
counts-per-force and torques by counts-per-torque (the sensor's calibration) for N and N·m.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

RDT_PORT = 49152
HEADER = 0x1234
CMD_STOP = 0x0000
CMD_START_REALTIME = 0x0002
CMD_START_BUFFERED = 0x0003
CMD_RESET_LATCH = 0x0041
CMD_SET_BIAS = 0x0042

_REQUEST = struct.Struct(">HHI")
_RECORD = struct.Struct(">III6i")
REQUEST_SIZE = _REQUEST.size  # 8
RECORD_SIZE = _RECORD.size  # 36


def pack_request(command: int, samples: int = 0) -> bytes:
    return _REQUEST.pack(HEADER, command, samples)


def unpack_request(data: bytes) -> tuple[int, int] | None:
    """(command, sample count), or None for a malformed request."""
    if len(data) != REQUEST_SIZE:
        return None
    header, command, samples = _REQUEST.unpack(data)
    return (command, samples) if header == HEADER else None


@dataclass(frozen=True)
class RdtRecord:
    """One RDT record: sequence numbers, status word, and the six raw counts."""

    rdt_sequence: int
    ft_sequence: int
    status: int
    counts: tuple[int, int, int, int, int, int]

    def pack(self) -> bytes:
        return _RECORD.pack(self.rdt_sequence, self.ft_sequence, self.status, *self.counts)

    @classmethod
    def unpack(cls, data: bytes) -> RdtRecord:
        values = _RECORD.unpack(data)
        return cls(values[0], values[1], values[2], tuple(values[3:]))


def mount_rotation(roll_deg: float, pitch_deg: float, yaw_deg: float) -> np.ndarray:
    """The 3x3 rotation taking the sensor's axes to the controller's wrist axes, from the
    sensor's mounting as roll, pitch, yaw (deg, applied about x, then y, then z)."""
    r, p, y = np.radians([roll_deg, pitch_deg, yaw_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
    ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
    rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class NetFTCalibration:
    """Counts per unit from the sensor's calibration (its web page shows both)."""

    counts_per_force: float
    counts_per_torque: float

    def to_wrench(self, counts) -> np.ndarray:
        """(6,) counts -> (6,) float64 [N, N, N, N·m, N·m, N·m]."""
        c = np.asarray(counts, np.float64)
        return np.concatenate([c[:3] / self.counts_per_force, c[3:] / self.counts_per_torque])

    def to_counts(self, wrench) -> tuple[int, ...]:
        w = np.asarray(wrench, np.float64)
        scaled = np.concatenate([w[:3] * self.counts_per_force, w[3:] * self.counts_per_torque])
        limit = 2**31 - 1
        return tuple(int(v) for v in np.clip(np.round(scaled), -limit, limit))
