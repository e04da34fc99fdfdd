"""Schema of the ``hardware`` config section (files in ``configs/hardware/``).

Gripper-only deployments are the default: no arm, a Robotiq 2F-85 on Modbus RTU (device id 9,
115200 baud 8N1, as shipped), no F/T sensor, no camera until a file turns them on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dualctl.errors import ConfigError, check_choice, check_range


@dataclass
class LinkTiming:
    """Every timeout and retry of one device link, in one place (s).

    Attributes:
        timeout_s: longest wait for one reply; a 3-register Modbus exchange at 115200 baud
            takes ~2 ms on the wire, so 50 ms is generous yet keeps a 200 Hz loop alive.
        retries: extra attempts of a request after a timeout before the link is dropped.
        connect_timeout_s: longest wait to open the link.
        backoff_min_s: first reconnect delay; it doubles after every failed attempt ...
        backoff_max_s: ... up to this cap, so a replugged cable is noticed within it.
    """

    timeout_s: float = 0.05
    retries: int = 2
    connect_timeout_s: float = 1.0
    backoff_min_s: float = 0.05
    backoff_max_s: float = 2.0

    def check(self, key: str) -> None:
        check_range(f"{key}.timeout_s", self.timeout_s, 0.001, 5.0)
        check_range(f"{key}.retries", self.retries, 0, 10)
        check_range(f"{key}.connect_timeout_s", self.connect_timeout_s, 0.01, 30.0)
        check_range(f"{key}.backoff_min_s", self.backoff_min_s, 0.001, 10.0)
        check_range(f"{key}.backoff_max_s", self.backoff_max_s, self.backoff_min_s, 60.0)


@dataclass
class RobotiqConfig:
    """A Robotiq 2F-85 / 2F-140 on Modbus.

    Attributes:
        model: "2F-85" or "2F-140" (stroke, speed and force ranges differ).
        transport: "rtu" (RS-485 serial), "tcp" (Modbus TCP) or "rtu_over_tcp" (a serial-to-
            Ethernet gateway that forwards raw RTU frames).
        host: gateway or controller address for the TCP transports.
        port: TCP port (502 is Modbus TCP's; gateways often use 4001 or 54321).
        serial_port: device path for "rtu", e.g. /dev/ttyUSB0.
        baudrate: bits/s; the gripper ships at 115200 8N1.
        device_id: Modbus unit id; the gripper ships as 9.
        poll_hz: status polling rate; must stay well above 1 Hz, the gripper's communication
            watchdog (gFLT 0x09 after 1 s of silence).
        open_counts: gPO reading when fully open (calibration; ``dualctl`` can measure it).
        closed_counts: gPO reading when fully closed on nothing (calibration).
        activation_timeout_s: longest wait for gSTA == 3 after setting rACT (the real
            activation strokes the fingers fully, a few seconds).
        timing: timeouts, retries and reconnect backoff of the link.
    """

    model: str = "2F-85"
    transport: str = "rtu"
    host: str = "127.0.0.1"
    port: int = 502
    serial_port: str = "/dev/ttyUSB0"
    baudrate: int = 115200
    device_id: int = 9
    poll_hz: float = 100.0
    open_counts: int = 3
    closed_counts: int = 230
    activation_timeout_s: float = 10.0
    timing: LinkTiming = field(default_factory=LinkTiming)

    def check(self, key: str) -> None:
        check_choice(f"{key}.model", self.model, ("2F-85", "2F-140"))
        check_choice(f"{key}.transport", self.transport, ("rtu", "tcp", "rtu_over_tcp"))
        check_range(f"{key}.port", self.port, 1, 65535)
        check_choice(f"{key}.baudrate", self.baudrate, (9600, 19200, 38400, 57600, 115200))
        check_range(f"{key}.device_id", self.device_id, 1, 247)
        check_range(f"{key}.poll_hz", self.poll_hz, 2.0, 200.0)
        check_range(f"{key}.open_counts", self.open_counts, 0, 254)
        check_range(f"{key}.closed_counts", self.closed_counts, self.open_counts + 1, 255)
        check_range(f"{key}.activation_timeout_s", self.activation_timeout_s, 0.01, 60.0)
        self.timing.check(f"{key}.timing")


@dataclass
class NetFTConfig:
    """An ATI Net F/T sensor streaming RDT records over UDP.

    Attributes:
        enabled: False when no wrist sensor is mounted (the wrench stream then reads zeros).
        host: the Net F/T box's address.
        port: RDT UDP port (49152 on every Net F/T).
        counts_per_force: counts per N, from the sensor's calibration page (1000000 typical).
        counts_per_torque: counts per N·m, likewise.
        stale_s: a wrench older than this marks the body unhealthy.
        bias_on_connect: zero the sensor (software bias) at connect, with nothing in the hand.
        mount_rpy_deg: how the sensor is turned on the wrist, as roll, pitch, yaw (deg) taking
            its axes to the controller's: forces the hand feels, z along the fingers, so a held
            mass reads fz = +m g with the gripper pointing down (the sim's convention, which
            the tracker was trained on and the grip reflex's set-down reads). Check it with a
            known mass in the hand before a run.
    """

    enabled: bool = False
    host: str = "192.168.1.1"
    port: int = 49152
    counts_per_force: float = 1_000_000.0
    counts_per_torque: float = 1_000_000.0
    stale_s: float = 0.1
    bias_on_connect: bool = True
    mount_rpy_deg: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def check(self, key: str) -> None:
        check_range(f"{key}.port", self.port, 1, 65535)
        if len(self.mount_rpy_deg) != 3:
            raise ConfigError(f"{key}.mount_rpy_deg", list(self.mount_rpy_deg),
                              "3 angles: roll, pitch, yaw (deg)")  # fmt: skip
        for index, angle in enumerate(self.mount_rpy_deg):
            check_range(f"{key}.mount_rpy_deg[{index}]", angle, -360.0, 360.0)
        check_range(f"{key}.counts_per_force", self.counts_per_force, 1e-6)
        check_range(f"{key}.counts_per_torque", self.counts_per_torque, 1e-6)
        check_range(f"{key}.stale_s", self.stale_s, 0.001, 10.0)


@dataclass
class VideoConfig:
    """A USB video device read through OpenCV (extra ``camera``).

    Attributes:
        enabled: False when not mounted.
        device: OpenCV index (0) or path (/dev/video0).
        width: frame width in pixels asked of the device, and the width delivered.
        height: frame height in pixels, likewise.
        fps: frame rate asked of the device, Hz.
        view: the camera name its frames are delivered under, which a tracker checkpoint
            asks for by name: "scene" (the sim's 38.5 deg view) or "overhead" (62 deg, see
            ``sim.overhead_camera``); mount the camera to match the checkpoint's view.
    """

    enabled: bool = False
    device: str = "0"
    width: int = 64
    height: int = 64
    fps: float = 30.0
    view: str = "scene"

    def check(self, key: str) -> None:
        if not self.view.isidentifier():
            raise ConfigError(f"{key}.view", self.view, "a camera name such as scene or overhead")
        check_range(f"{key}.width", self.width, 8, 4096)
        check_range(f"{key}.height", self.height, 8, 4096)
        check_range(f"{key}.fps", self.fps, 1.0, 240.0)


@dataclass
class SafetyLimits:
    """What ``dualctl deploy`` promises the operator, shown before it moves anything.

    Attributes:
        max_grip_force_n: the force byte is clipped so the request never exceeds this (N).
        max_grip_speed_mps: finger speed cap (m/s).
        max_ee_speed_mps: arm Cartesian speed cap (m/s); unused while gripper-only.
        max_wrench_n: a measured force norm above this stops motion (N).
        max_obs_age_s: an observation older than this is a safety event (s).
    """

    max_grip_force_n: float = 100.0
    max_grip_speed_mps: float = 0.1
    max_ee_speed_mps: float = 0.05
    max_wrench_n: float = 60.0
    max_obs_age_s: float = 0.1

    def check(self, key: str) -> None:
        check_range(f"{key}.max_grip_force_n", self.max_grip_force_n, 1.0, 300.0)
        check_range(f"{key}.max_grip_speed_mps", self.max_grip_speed_mps, 0.001, 0.3)
        check_range(f"{key}.max_ee_speed_mps", self.max_ee_speed_mps, 0.0, 1.0)
        check_range(f"{key}.max_wrench_n", self.max_wrench_n, 1.0, 2000.0)
        check_range(f"{key}.max_obs_age_s", self.max_obs_age_s, 0.001, 5.0)


@dataclass
class HardwareConfig:
    """Real devices. Filled in by the files in ``configs/hardware/``.

    Attributes:
        name: a label for logs.
        timeout_s: default bound on any one device call (s) outside the links' own timing.
        emulated: True runs every enabled device against its in-process protocol emulator
            (dry runs; also what ``deploy --dry-run`` forces).
        has_arm: False for gripper-only deployments (end-effector velocity is ignored).
        gripper: the Robotiq gripper link.
        netft: the wrist force/torque sensor.
        camera: the scene camera.
        tactile: a DIGIT-style tactile sensor (a USB video stream of the gel).
        limits: safety limits shown and enforced at deploy.
    """

    name: str = "none"
    timeout_s: float = 0.05
    emulated: bool = False
    has_arm: bool = False
    gripper: RobotiqConfig = field(default_factory=RobotiqConfig)
    netft: NetFTConfig = field(default_factory=NetFTConfig)
    camera: VideoConfig = field(default_factory=VideoConfig)
    tactile: VideoConfig = field(default_factory=lambda: VideoConfig(device="1", fps=60.0))
    limits: SafetyLimits = field(default_factory=SafetyLimits)

    def __post_init__(self):
        check_range("hardware.timeout_s", self.timeout_s, 0.001, 5.0)
        if self.has_arm:
            raise ConfigError("hardware.has_arm", True, "false: no arm adapter exists yet")
        self.gripper.check("hardware.gripper")
        self.netft.check("hardware.netft")
        self.camera.check("hardware.camera")
        self.tactile.check("hardware.tactile")
        self.limits.check("hardware.limits")
