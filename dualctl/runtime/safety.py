"""The safety supervisor: every command passes through :meth:`SafetySupervisor.filter` on its
way to the body, in the same tick, and every change it makes is an :class:`Intervention` with a
reason.

"Hold" means: stop the arm and keep the last gripper command that was sent (so a grasped object
stays grasped). An e-stop latches until :meth:`SafetySupervisor.clear_estop`; its gripper mode is
"hold" (keep the grasp) or "open".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from dualctl.runtime.config import SafetyConfig
from dualctl.types import (
    GRIPPER_FORCE_RANGE,
    GRIPPER_SPEED_RANGE,
    GRIPPER_STROKE_M,
    PROPRIO_FIELDS,
    Action,
    GripperCommand,
    Observation,
)

log = logging.getLogger(__name__)

#: Streams that must be fresh to act on (the camera is slower and only feeds the latent).
FAST_STREAMS = ("proprio", "wrench", "tactile")
_WIDTH = PROPRIO_FIELDS.index("width")


@dataclass(frozen=True)
class Intervention:
    """One change the supervisor made to a command, at time ``t`` (s)."""

    t: float
    kind: str
    reason: str


def grip_force(observation: Observation) -> float:
    """Measured grip force, N: the mean over the two fingertips of their summed normal force."""
    return float(observation.tactile[..., 0].sum(axis=(1, 2)).mean())


class SafetySupervisor:
    """Filters commands against :class:`~dualctl.runtime.config.SafetyConfig` limits.

    Args:
        limits: the limits.
        period_s: control period, s (for the one-tick workspace look-ahead).
        has_arm: False for a gripper-only body (arm limits are skipped, velocity is zero).
    """

    def __init__(self, limits: SafetyConfig, period_s: float, has_arm: bool = True):
        self.limits, self.period_s, self.has_arm = limits, period_s, has_arm
        self.low = np.asarray(limits.workspace_low, np.float32)
        self.high = np.asarray(limits.workspace_high, np.float32)
        self.estop_reason: str | None = None
        self.last_gripper: GripperCommand | None = None
        self._misses = 0
        self._yielding = False

    # --- e-stop -------------------------------------------------------------------------------

    def estop(self, reason: str, now: float) -> Intervention:
        """Latch an e-stop: from now on every command is the safe state."""
        if self.estop_reason is None:
            log.error("E-STOP at %.3f s: %s", now, reason)
        self.estop_reason = reason
        return Intervention(now, "estop", reason)

    def clear_estop(self) -> None:
        log.warning("e-stop cleared")
        self.estop_reason = None

    def _estop_action(self, observation: Observation, now: float) -> Action:
        if self.limits.estop_mode == "open":
            gripper = GripperCommand(
                GRIPPER_STROKE_M, GRIPPER_SPEED_RANGE[1], GRIPPER_FORCE_RANGE[0]
            )
        else:
            gripper = self._held_gripper(observation)
        return Action(np.zeros(4, np.float32), gripper, now)

    # --- the filter ---------------------------------------------------------------------------

    def hold(self, observation: Observation, now: float) -> Action:
        """Stop the arm; keep the last gripper command sent (or the current width)."""
        return Action(np.zeros(4, np.float32), self._held_gripper(observation), now)

    def _held_gripper(self, observation: Observation) -> GripperCommand:
        if self.last_gripper is not None:
            return self.last_gripper
        width = float(observation.proprio[_WIDTH])
        return GripperCommand(width, GRIPPER_SPEED_RANGE[0], GRIPPER_FORCE_RANGE[0]).clipped()

    def filter(
        self, action: Action | None, observation: Observation, now: float, lateness_s: float = 0.0
    ) -> tuple[Action, list[Intervention]]:
        """The command to send instead of ``action`` (None = nothing to follow: hold), and the
        interventions made. ``lateness_s`` is how late this tick started (s)."""
        notes: list[Intervention] = []
        if self.estop_reason is not None:
            return self._sent(self._estop_action(observation, now)), notes
        action = self._checked(action, observation, now, lateness_s, notes)
        velocity = self._limit_motion(action.ee_velocity, observation, now, notes)
        gripper = self._limit_grip(action.gripper, observation, now, notes)
        return self._sent(Action(velocity, gripper, now)), notes

    def _checked(self, action, observation, now, lateness_s, notes) -> Action:
        """``action``, or a hold when it cannot be used (NaN, stale input, watchdog)."""
        if action is None:
            return self.hold(observation, now)
        if not action.is_finite():
            notes.append(Intervention(now, "nan_action", "non-finite command rejected: hold"))
            return self.hold(observation, now)
        age = max(observation.age(now, s) for s in FAST_STREAMS)
        if age > self.limits.max_obs_age_s:
            reason = (
                f"observation {age * 1e3:.1f} ms old > {self.limits.max_obs_age_s * 1e3:.1f} ms"
            )
            notes.append(Intervention(now, "stale_observation", reason + ": hold"))
            return self.hold(observation, now)
        force = float(np.linalg.norm(observation.wrench[:3]))
        if self._over_wrench_limit(force):
            return self._wrench_limited(action, observation.wrench[:3], force, now, notes)
        self._misses = self._misses + 1 if lateness_s > self.limits.deadline_tolerance_s else 0
        if self._misses >= self.limits.watchdog_misses:
            reason = f"{self._misses} consecutive deadline misses (last {lateness_s * 1e3:.1f} ms)"
            notes.append(Intervention(now, "deadline_watchdog", reason + ": hold motion"))
            return Action(np.zeros(4, np.float32), action.gripper, now)
        return action

    def _over_wrench_limit(self, force: float) -> bool:
        """Whether the wrist force (N) calls for the wrench response this tick: over the
        limit, or ("yield") still above the release level since it was."""
        limit = self.limits.max_wrench_n
        if self.limits.wrench_response == "stop":
            return force > limit
        if force > limit:
            self._yielding = True
        elif force < self.limits.wrench_release * limit:
            self._yielding = False
        return self._yielding

    def _wrench_limited(self, action, force_vector, force, now, notes) -> Action:
        """``action`` with its motion stopped ("stop") or turned into a back-off ("yield").
        ``force_vector`` is the wrist force (N): what the arm exerts on the hand, so a
        contact pushes the hand along minus it and motion along it presses harder. The
        back-off keeps any commanded motion away from the contact and adds
        ``wrench_admittance`` m/s per N over the limit, at least ``wrench_backoff_mps``;
        everything else waits. The floor matters under the limit: an arm held still presses
        on (its servo keeps the force it has built up), so a back-off that ended at the limit
        left the hand pressing between the release level and the limit for good."""
        velocity = np.zeros(4, np.float32)
        limit, what = self.limits.max_wrench_n, "stop motion"
        if self.limits.wrench_response == "yield":
            pressing = np.asarray(force_vector, np.float32) / max(force, 1e-6)
            away = min(0.0, float(action.ee_velocity[:3] @ pressing))
            over = self.limits.wrench_admittance * max(0.0, force - limit)
            backoff = min(self.limits.max_speed_mps, max(self.limits.wrench_backoff_mps, over))
            velocity[:3] = (away - backoff) * pressing
            what = f"back off at {backoff * 1e3:.0f} mm/s"
        reason = f"wrist force {force:.1f} N (limit {limit:.1f} N): {what}"
        notes.append(Intervention(now, "wrench_limit", reason))
        return Action(velocity, action.gripper, now)

    def _limit_motion(self, velocity, observation, now, notes) -> np.ndarray:
        if not self.has_arm:
            return np.zeros(4, np.float32)
        velocity = velocity.astype(np.float32).copy()
        linear = velocity[:3]
        speed = float(np.linalg.norm(linear))
        if speed > self.limits.max_speed_mps:
            linear *= self.limits.max_speed_mps / speed
            notes.append(Intervention(now, "speed_limit", f"{speed:.3f} m/s clipped"))
        if abs(velocity[3]) > self.limits.max_yaw_rate:
            notes.append(Intervention(now, "yaw_rate_limit", f"{velocity[3]:.2f} rad/s clipped"))
            velocity[3] = np.clip(velocity[3], -self.limits.max_yaw_rate, self.limits.max_yaw_rate)
        position = observation.proprio[:3]
        # The slowest velocity that keeps (or brings) the end effector inside after one tick.
        lowest = np.where(position < self.low, 0.0, (self.low - position) / self.period_s)
        highest = np.where(position > self.high, 0.0, (self.high - position) / self.period_s)
        bounded = np.clip(linear, lowest, highest)
        if not np.array_equal(bounded, linear):
            axes = "".join("xyz"[i] for i in np.flatnonzero(bounded != linear))
            notes.append(Intervention(now, "workspace", f"motion along {axes} leaves the box"))
        velocity[:3] = bounded
        return velocity

    def _limit_grip(self, gripper: GripperCommand, observation, now, notes) -> GripperCommand:
        limit = self.limits.max_grip_force_n
        measured = grip_force(observation)
        if measured > limit:
            width = float(observation.proprio[_WIDTH]) + self.limits.release_width_m
            reason = f"grip force {measured:.1f} N > {limit:.1f} N: release"
            notes.append(Intervention(now, "grip_force", reason))
            return GripperCommand(width, GRIPPER_SPEED_RANGE[1], GRIPPER_FORCE_RANGE[0]).clipped()
        if gripper.force_n > limit:
            gripper = GripperCommand(gripper.width_m, gripper.speed_mps, limit)
        return gripper.clipped()

    def _sent(self, action: Action) -> Action:
        self.last_gripper = action.gripper
        return action
