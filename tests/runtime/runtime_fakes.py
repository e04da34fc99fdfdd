"""Small test-only Body / Tracker / Planner implementations for the runtime's contract tests.

The world: an end effector at (x, y, z) moved by velocity commands and a gripper closing on a
4 cm object (stiffness 5 kN/m, squeeze limited by the commanded force). The camera image encodes
the state in its colour (x, y in the red/green channels, finger width in blue), so a "latent" is
just the mean colour, and a plan is a stack of images of a target state.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from dualctl.body import Body, BodySpec, Health
from dualctl.planner.base import Planner
from dualctl.tracker.base import Tracker
from dualctl.types import (
    GRIPPER_STROKE_M,
    PROPRIO_DIM,
    TACTILE_SHAPE,
    Action,
    GripperCommand,
    Observation,
    Plan,
)

SIZE = 16
OBJECT_M = 0.04
STIFFNESS = 5000.0
FACTORY_FILE = str(Path(__file__).resolve())


def encode_state(x: float, y: float, width: float) -> np.ndarray:
    """The colour (0..255) the camera shows for this state."""
    return np.array([128 + 400 * x, 128 + 400 * y, 2000 * width], np.float64)


def state_image(x: float, y: float, width: float) -> np.ndarray:
    colour = np.clip(np.round(encode_state(x, y, width)), 0, 255).astype(np.uint8)
    return np.broadcast_to(colour, (SIZE, SIZE, 3)).copy()


class FakeBody(Body):
    """A lazily integrated point-mass gripper world driven by the clock's ``now``.

    Args:
        now: the runtime clock's ``now``.
        seed: seeds the wrench noise (for replay tests).
        fault_at: from this time (s) on, ``health`` reports a fault.
        spike_at: from this time (s) on, an external squeeze adds ``spike_n`` (N) to the
            measured contact force.
        freeze_at: from this time (s) on, the force/tactile/proprio streams stop updating.
    """

    def __init__(self, now, seed=0, fault_at=None, spike_at=None, spike_n=0.0, freeze_at=None,
                 start_width=0.08, cameras=("scene",)):  # fmt: skip
        self.cameras = cameras
        self.spec = BodySpec(cameras={name: (SIZE, SIZE) for name in cameras}, camera_hz=20.0)
        self.now, self.rng = now, np.random.default_rng(seed)
        self.fault_at, self.spike_at, self.spike_n = fault_at, spike_at, spike_n
        self.freeze_at = freeze_at
        self.position = np.zeros(3)
        self.width = start_width
        self.velocity = np.zeros(3)
        self.gripper = GripperCommand(start_width, 0.1, 20.0)
        self.t = now()
        self.frame_t = -np.inf
        self.image = None
        self.sent: list[Action] = []

    async def connect(self):
        return None

    def _advance(self):
        now = self.now()
        dt = max(0.0, now - self.t)
        self.t = now
        self.position += self.velocity * dt
        step = np.clip(self.gripper.width_m - self.width, -self.gripper.speed_mps * dt,
                       self.gripper.speed_mps * dt)  # fmt: skip
        floor = OBJECT_M - self.gripper.force_n / STIFFNESS
        self.width = max(self.width + step, min(floor, self.width))

    def contact_force(self) -> float:
        spike = self.spike_n if self.spike_at is not None and self.t >= self.spike_at else 0.0
        return max(0.0, OBJECT_M - self.width) * STIFFNESS + spike

    async def observe(self) -> Observation:
        self._advance()
        if self.t - self.frame_t >= 1.0 / self.spec.camera_hz - 1e-9:
            self.frame_t = self.t
            self.image = state_image(self.position[0], self.position[1], self.width)
        tactile = np.zeros(TACTILE_SHAPE, np.float32)
        tactile[..., 0] = self.contact_force() / 16.0
        proprio = np.zeros(PROPRIO_DIM, np.float32)
        proprio[:3], proprio[4] = self.position, self.width
        wrench = self.rng.normal(0, 0.01, 6)
        fresh = self.t if self.freeze_at is None else min(self.t, self.freeze_at)
        stamps = {"proprio": fresh, "wrench": fresh, "tactile": fresh}
        stamps.update({f"image/{name}": self.frame_t for name in self.cameras})
        images = {name: self.image for name in self.cameras}  # every view shows the same
        return Observation(self.t, images, proprio, wrench, tactile, stamps)

    async def act(self, action: Action) -> Action:
        self._advance()
        self.velocity = action.ee_velocity[:3].astype(np.float64)
        self.gripper = action.gripper.clipped()
        sent = Action(action.ee_velocity, self.gripper, self.t)
        self.sent.append(sent)
        return sent

    async def health(self) -> Health:
        if self.fault_at is not None and self.now() >= self.fault_at:
            return Health(False, ("gripper fault 0x07: overcurrent",))
        return Health(True)

    async def close(self):
        return None


class FakeTracker(Tracker):
    """Proportional control towards the reference colour; records what it was given.

    Args:
        grip_force_n: the grip force it commands.
        nan_after: from this many ``act`` calls on, return NaN velocities.
    """

    latent_dim = 3
    lookahead_s = 0.1

    def __init__(self, grip_force_n=60.0, nan_after=None):
        self.grip_force_n, self.nan_after = grip_force_n, nan_after
        self.references: list[np.ndarray] = []
        self.calls = 0

    def encode(self, frames):
        return frames.reshape(len(frames), -1, 3).mean(axis=1).astype(np.float32)

    def act(self, observation, latent, reference):
        self.calls += 1
        self.references.append(np.array(reference))
        error = (reference - latent) / np.array([400.0, 400.0, 2000.0])
        velocity = np.array([4.0 * error[0], 4.0 * error[1], 0.0, 0.0])
        if self.nan_after is not None and self.calls > self.nan_after:
            velocity[:] = np.nan
        width = float(np.clip(reference[2] / 2000.0, 0.0, GRIPPER_STROKE_M))
        return Action(
            velocity, GripperCommand(width, 0.1, self.grip_force_n), observation.timestamp
        )

    def reset(self):
        self.references.clear()
        self.calls = 0


class TargetPlanner(Planner):
    """Plans a straight line from the observed state to a target state, K frames 0.25 s apart.

    Args:
        targets: (x, y, width) targets used in turn, one per plan.
        mode: "ok"; "crash_once" / "hang_once" (call number ``fail_call`` of the first process
            crashes / hangs; a marker file remembers it across restarts); "garbage" / "raise"
            (calls ``fail_call`` .. ``fail_call + bad - 1`` return unusable plans / raise).
        marker: path of the marker file for the *_once modes.
        compute_s: real time each plan takes, s.
        valid_s: each plan is valid this long (s) after its observation.
    """

    def __init__(self, targets=((0.1, 0.0, 0.02),), mode="ok", marker="", bad=0, compute_s=0.0,
                 fail_call=1, valid_s=2.5, camera="scene"):  # fmt: skip
        self.targets = [tuple(t) for t in targets]
        self.camera = camera
        self.mode, self.marker, self.bad, self.compute_s = mode, marker, bad, compute_s
        self.fail_call, self.valid_s = fail_call, valid_s
        self.calls = 0

    def plan(self, observation, instruction):
        self.calls += 1
        time.sleep(self.compute_s)
        once = self.calls == self.fail_call and not os.path.exists(self.marker)
        if self.mode in ("crash_once", "hang_once") and once:
            Path(self.marker).write_text("tripped")
            if self.mode == "crash_once":
                os._exit(3)
            time.sleep(3600)
        bad = self.fail_call <= self.calls < self.fail_call + self.bad
        if self.mode == "raise" and bad:
            raise RuntimeError("planner exploded")
        target = self.targets[(self.calls - 1) % len(self.targets)]
        times = observation.timestamp + 0.25 * np.arange(1, 9)
        frames = np.stack([state_image(*target) for _ in times])
        if self.mode == "garbage" and bad:
            frames = frames[:, :5]  # the wrong image size
        valid_until = observation.timestamp + self.valid_s
        return Plan(frames, times, observation.timestamp, valid_until, instruction, self.camera)


def make_planner(**kwargs) -> TargetPlanner:
    """The factory the planner process calls (``runtime_fakes.py:make_planner``)."""
    return TargetPlanner(**kwargs)


def run_virtual(plans_factory, duration_s=3.0, config=None, body_kwargs=None, tracker=None,
                rate_hz=200.0):  # fmt: skip
    """Run the controller on a fresh virtual clock; return (summary, telemetry, body, tracker).

    ``plans_factory(clock)`` builds the plan client (started and closed here), or is None.
    """
    from dualctl.runtime.clock import VirtualClock
    from dualctl.runtime.config import RuntimeConfig
    from dualctl.runtime.scheduler import run_controller
    from dualctl.runtime.telemetry import Telemetry

    clock = VirtualClock()
    body = FakeBody(clock.now, **(body_kwargs or {}))
    tracker = tracker or FakeTracker()
    telemetry = Telemetry()

    async def main():
        plans = plans_factory(clock) if plans_factory else None
        if plans is not None:
            await plans.start()
        try:
            return await run_controller(
                body, tracker, plans, clock, config or RuntimeConfig(), telemetry,
                rate_hz=rate_hz, instruction="reach", max_duration_s=duration_s,
            )  # fmt: skip
        finally:
            if plans is not None:
                await plans.close()

    summary = clock.run(main())
    return summary, telemetry, body, tracker
