"""Scripted experts: one state machine per task that reads privileged state (object pose,
size, mass, friction) and grasps the way a careful person does: it sets the grip force to what
the object needs with a margin (and, for a fragile object, well below its break force), closes
slowly, and lifts only once the fingertips feel that force.

Experts are rate-independent: ``act`` may be called at the camera rate (collection) or at the
runtime's control rate; velocities are recomputed from the state each call.
"""

from __future__ import annotations

import math

import numpy as np
from dualctl.sim.config import SimConfig
from dualctl.sim.tasks import (
    GRAVITY,
    LIFT_HEIGHT,
    Status,
    instruction,
    on_pad,
    sample_variation,
)
from dualctl.sim.world import World

from dualctl.data.episode import Episode
from dualctl.tracker.grip import PROBE_SPEED, RESUME_ACCEL, SlipProbe, felt_forces
from dualctl.types import GRIPPER_FORCE_RANGE, GRIPPER_STROKE_M, Action, GripperCommand

#: Position gain (1/s) and limits of the expert's stage velocity commands.
GAIN = 6.0
MAX_SPEED = 0.25  # m/s
MAX_ACCEL = 0.8  # m/s^2: gentle, so lifting does not need much more grip than holding
CLOSE_SPEED = 0.05  # m/s
#: Grip force (N) for objects that are neither fragile nor slippery.
DEFAULT_GRIP_FORCE = 30.0


def expert_grip_force(variation) -> float:
    """Grip force (N) per finger: the geometric middle of the window between the force that
    holds the object (m g / 2 mu) and the force that breaks it, if it can break."""
    if math.isinf(variation.break_force):
        return max(DEFAULT_GRIP_FORCE, 2.0 * variation.hold_force)
    target = math.sqrt(variation.hold_force * variation.break_force)
    return float(np.clip(target, *GRIPPER_FORCE_RANGE))


class Expert:
    """Approach, descend, close to a target force, lift (and for Place: carry, lower, release,
    retreat). Call :meth:`act` whenever a new command is wanted.

    ``grip_force`` (N) and ``close_width`` (m) override how it closes: a fixed force or a
    fixed finger position instead of the force the object needs (the baselines that show
    force matters)."""

    def __init__(
        self, task: str, world: World, grip_force: float | None = None, close_width: float = 0.0
    ):
        self.task, self.world = task, world
        self.phase = "approach"
        self.grip_force = expert_grip_force(world.variation) if grip_force is None else grip_force
        self.close_width = close_width
        self._phase_start = 0.0
        self._velocity = np.zeros(4)
        self._last_time = world.time
        self._yaw = 0.0
        self._grasp_z = 0.0

    def _enter(self, phase: str) -> None:
        self.phase, self._phase_start = phase, self.world.time

    def _grasp_yaw(self) -> float:
        """Gripper yaw facing two of the box's sides, the one nearest zero (boxes repeat every
        quarter turn)."""
        yaw = self.world.object_yaw()
        return (yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4

    def _move(self, target: np.ndarray) -> np.ndarray:
        """Velocity (m/s, rad/s) toward ``target`` pose, with speed and acceleration limits."""
        now = self.world.time
        dt = max(now - self._last_time, 1e-3)
        self._last_time = now
        pose = self.world.state().ee_pose
        desired = np.clip(GAIN * (target - pose), -MAX_SPEED, MAX_SPEED)
        desired[3] = np.clip(GAIN * (target[3] - pose[3]), -1.5, 1.5)
        step = MAX_ACCEL * dt
        self._velocity = np.clip(desired, self._velocity - step, self._velocity + step)
        self._velocity[3] = desired[3]
        return self._velocity.astype(np.float32)

    def act(self) -> Action:
        state = self.world.state()
        obj, pose = state.object_pos, state.ee_pose
        half_z = self.world.variation.object_half[2]
        in_phase = state.time - self._phase_start
        opened = GripperCommand(GRIPPER_STROKE_M, 0.1, self.grip_force)
        closed = GripperCommand(self.close_width, CLOSE_SPEED, self.grip_force)
        if self.phase == "approach":
            self._yaw = self._grasp_yaw()
            self._grasp_z = max(obj[2], 0.022)
            target = np.array([obj[0], obj[1], self._grasp_z + half_z + 0.05, self._yaw])
            if np.abs(target[:2] - pose[:2]).max() < 0.003 and abs(self._yaw - pose[3]) < 0.03:
                self._enter("descend")
            return Action(self._move(target), opened)
        if self.phase == "descend":
            target = np.array([obj[0], obj[1], self._grasp_z, self._yaw])
            if abs(pose[2] - self._grasp_z) < 0.002:
                self._enter("close")
            return Action(self._move(target), opened)
        hold = np.array([*pose[:2], self._grasp_z, self._yaw])
        if self.phase == "close":
            if min(state.pad_force) > 0.9 * self.grip_force and in_phase > 0.2 or in_phase > 2.0:
                self._enter("lift")
            return Action(self._move(hold), closed)
        lifted = np.array([*pose[:2], self._grasp_z + LIFT_HEIGHT + 0.03, self._yaw])
        if self.task != "Place":
            return Action(self._move(lifted), closed)
        return self._place(state, closed, opened)

    def _place(self, state, closed: GripperCommand, opened: GripperCommand) -> Action:
        pose, pad = state.ee_pose, self.world.variation.pad_xy
        carry_z = self._grasp_z + 0.06
        if self.phase == "lift":
            if pose[2] > carry_z - 0.005:
                self._enter("carry")
            return Action(self._move(np.array([*pose[:2], carry_z, self._yaw])), closed)
        if self.phase == "carry":
            target = np.array([pad[0], pad[1], carry_z, self._yaw])
            if np.abs(target[:2] - pose[:2]).max() < 0.004:
                self._enter("lower")
            return Action(self._move(target), closed)
        if self.phase == "lower":
            target = np.array([pad[0], pad[1], self._grasp_z + 0.003, self._yaw])
            if pose[2] < self._grasp_z + 0.005:
                self._enter("release")
            return Action(self._move(target), closed)
        if self.phase == "release":
            if state.width > GRIPPER_STROKE_M - 0.01:
                self._enter("retreat")
            return Action(self._move(np.array([*pose[:2], pose[2], self._yaw])), opened)
        return Action(self._move(np.array([*pose[:2], self._grasp_z + 0.1, self._yaw])), opened)


#: State-read phases (m): an open hand below the approach height and this close (xy) to the
#: object keeps descending while it centres; a carried object this close (xy) to the pad is
#: brought over it at its height.
ALIGNED_M = 0.01
NEAR_PAD_M = 0.03
_HELD_PHASES = ("lift", "carry", "lower", "release")


class StateExpert(Expert):
    """An :class:`Expert` that reads its phase from the state at every call instead of
    keeping it (a DAgger teacher: a label must not depend on how the robot got there).

    The plain expert's phases are a script: off its own path, e.g. a tracker that carried
    the block over the pad below the carry height, it keeps saying "lift" while the demos in
    that state say "lower", and a head trained on both learns to hover. Read from the state,
    an open hand lines up at the approach height as the script does and, once below it,
    centres on the way down; one closed on nothing opens and goes back up; a held block near
    the pad is brought over it at its height, lowered by its height above the table and let
    go of once it is down. Only the grasp keeps memory: a held object still on the table is
    squeezed until the script starts the lift, and not again after."""

    def __init__(self, task: str, world: World, **overrides):
        super().__init__(task, world, **overrides)
        self._grasp_z = max(world.state().object_start_z, 0.022)
        self._yaw = self._grasp_yaw()

    def act(self) -> Action:
        state = self.world.state()
        phase = self._phase_from(state)
        if phase != self.phase:
            self._enter(phase)
        return super().act()

    def _phase_from(self, state) -> str:
        if self._holding(state):
            lifted = state.object_pos[2] - state.object_start_z > 0.005
            return self._held_phase(state) if lifted or self.phase in _HELD_PHASES else "close"
        if self.task == "Place" and self._resting_on_pad(state):
            return "release" if state.width < GRIPPER_STROKE_M - 0.01 else "retreat"
        return self._reach_phase(state)

    def _holding(self, state) -> bool:
        """Both fingertips press the object, or they did and still close around it (a grip
        the slip probe is still firming up loses touch for a moment)."""
        if min(state.pad_force) > 0.5:
            return True
        around = np.linalg.norm(state.object_pos - state.ee_pose[:3]) < 0.03
        return self.phase in _HELD_PHASES and around and state.width < GRIPPER_STROKE_M - 0.01

    def _reach_phase(self, state) -> str:
        obj, pose = state.object_pos, state.ee_pose
        self._yaw, self._grasp_z = self._grasp_yaw(), max(obj[2], 0.022)
        offset = float(np.abs(obj[:2] - pose[:2]).max())
        pre_grasp_z = self._grasp_z + self.world.variation.object_half[2] + 0.05
        at_grasp = abs(pose[2] - self._grasp_z) < 0.005 and offset < ALIGNED_M
        if at_grasp and (self.phase == "close" or offset < 0.004):
            return "close"
        if state.width < GRIPPER_STROKE_M - 0.01 or offset >= ALIGNED_M:
            return "approach"  # closed on nothing, or off the block: open and go back up
        lined_up = offset < 0.003 and abs(self._yaw - pose[3]) < 0.03  # the script's rule
        if pose[2] < pre_grasp_z - 0.01 or lined_up and pose[2] < pre_grasp_z + 0.01:
            return "descend"  # below the approach height already: centre on the way down
        return "approach"

    def _held_phase(self, state) -> str:
        if self.task != "Place":
            return "lift"
        pose = state.ee_pose
        gap = self._pad_gap(pose)
        if gap < (0.01 if self.phase in ("lower", "release") else 0.004):
            return "release" if self._set_down(state) else "lower"
        carry_z = self._grasp_z + 0.06
        return "carry" if gap < NEAR_PAD_M or pose[2] > carry_z - 0.005 else "lift"

    def _pad_gap(self, pose: np.ndarray) -> float:
        """Largest xy distance (m) from the gripper to the pad's centre."""
        return float(np.abs(np.asarray(self.world.variation.pad_xy) - pose[:2]).max())

    @staticmethod
    def _set_down(state) -> bool:
        """The held object's bottom is at the table (wherever the fingers hold it)."""
        return state.object_pos[2] - state.object_start_z < 0.003

    def _place(self, state, closed: GripperCommand, opened: GripperCommand) -> Action:
        pose = state.ee_pose
        if self.phase == "lower":
            # Down by the object's height above its resting height: a grasp above the script's
            # grasp height would never bring the fingers down to it.
            drop = state.object_pos[2] - state.object_start_z
            pad = self.world.variation.pad_xy
            target = np.array([pad[0], pad[1], pose[2] - drop - 0.002, self._yaw])
            return Action(self._move(target), closed)
        if self.phase != "carry" or self._pad_gap(pose) >= NEAR_PAD_M:
            return super()._place(state, closed, opened)
        # Near the pad already: over it at this height, not back up to the carry height first.
        z = float(np.clip(pose[2], self._grasp_z + 0.01, self._grasp_z + 0.06))
        pad = self.world.variation.pad_xy
        if self._pad_gap(pose) < 0.004:
            self._enter("lower")
        return Action(self._move(np.array([pad[0], pad[1], z, self._yaw])), closed)

    def _resting_on_pad(self, state) -> bool:
        pos = state.object_pos
        resting = abs(pos[2] - state.object_start_z) < 0.005
        return resting and on_pad(pos, self.world.variation.pad_xy)


class TouchGrip:
    """The touch teacher: an :class:`Expert`'s arm with the grip force found from touch alone
    (:class:`~dualctl.tracker.grip.SlipProbe`, one step per call at the camera rate), the lift
    slowed to ``PROBE_SPEED`` until the object is carried. Its demonstrations show a head how
    a grasp looks when nothing tells the force in advance (the expert's force is privileged).

    Its probe is the first version of the rule (judged at once after a raise), the one
    ``data/sim_touch`` and the DAgger sets were recorded with; the tracker's reflex uses the
    Coulomb test.
    """

    def __init__(self, expert: Expert, world: World):
        self.expert, self.world = expert, world
        self.probe = SlipProbe(GRIPPER_FORCE_RANGE[0], settle=False)
        expert.grip_force = self.probe.force
        self.probing = False
        self.vz = 0.0
        self.time = world.time

    def act(self) -> Action:
        self.probing = self.probing or self.expert.phase == "lift"
        if self.probing and not self.probe.carried:
            self.expert.grip_force = self.probe.step(*felt_forces(self.world.tactile()))
        action = self.expert.act()
        dt = max(self.world.time - self.time, 1e-3)
        self.time = self.world.time
        carried = self.probe.carried
        limit = self.vz + RESUME_ACCEL * dt if carried or not self.probing else PROBE_SPEED
        velocity = action.ee_velocity.copy()
        velocity[2] = min(velocity[2], limit)
        self.vz = float(velocity[2])
        return Action(velocity, action.gripper, action.timestamp)


def run_episode(world: World, policy, camera_hz: float) -> dict[str, list]:
    """Step ``world`` at the camera rate, asking ``policy()`` for the action at each recorded
    step, until the task ends. Returns per-step lists (images, proprio, wrench, tactile,
    action, timestamp); the last step shows the outcome and carries a hold action."""
    steps: dict[str, list] = {k: [] for k in ("images", "proprio", "wrench", "tactile")}
    steps.update(action=[], timestamp=[])
    period = 1.0 / camera_hz
    t = 0.0
    while True:
        done = world.monitor.status.done
        action = world.apply(Action.hold(world.state().width) if done else policy())
        steps["images"].append(world.render())
        steps["proprio"].append(world.proprio())
        steps["wrench"].append(world.wrench())
        steps["tactile"].append(world.tactile())
        steps["action"].append(action.to_array())
        steps["timestamp"].append(t)
        if done:
            return steps
        t += period
        world.advance_to(t)


def run_blind(world: World, policy, period: float = 0.05) -> Status:
    """Step ``world`` with ``policy()`` every ``period`` s until the task ends, without
    rendering or recording (fast: for sweeps and tests). Returns the final status."""
    while not world.monitor.status.done:
        world.apply(policy())
        world.advance_to(world.time + period)
    return world.monitor.status


def expert_outcome(
    task: str, seed: int, split: str = "train", config: SimConfig | None = None, **overrides
) -> Status:
    """How the expert (with optional ``grip_force``/``close_width`` overrides) ends episode
    ``seed``, without rendering."""  # fmt: skip
    config = config or SimConfig()
    world = World(task, sample_variation(task, seed, split, config.distractor_pad), config)
    try:
        return run_blind(world, Expert(task, world, **overrides).act)
    finally:
        world.close()


def run_expert(task: str, seed: int, split: str, config: SimConfig) -> Episode:
    """Run the scripted expert on episode ``seed`` of ``task`` in ``split``; the recorded
    Episode (at ``config.camera_hz``) with its meta."""
    variation = sample_variation(task, seed, split, config.distractor_pad)
    world = World(task, variation, config)
    try:
        expert = Expert(task, world)
        steps = run_episode(world, expert.act, config.camera_hz)
    finally:
        world.close()
    meta = episode_meta(world, seed, split, config, expert_grip_force=expert.grip_force)
    return steps_to_episode(steps, world.cameras, meta)


def episode_meta(world: World, seed: int, split: str, config: SimConfig, **extra) -> dict:
    """The meta every recorded sim episode carries (task, instruction, variation, outcome,
    rates, peak grip force, object weight), plus ``extra`` from its recorder."""
    variation, status = world.variation, world.monitor.status
    return {
        "task": world.task,
        "instruction": instruction(world.task, variation),
        "seed": seed,
        "split": split,
        "variation": variation.to_meta(),
        "success": status.success,
        "failure_reason": status.failure_reason,
        "camera_hz": config.camera_hz,
        "physics_hz": config.physics_hz,
        "distractor_pad": config.distractor_pad,
        "peak_grip_force": world.monitor.peak_grip_force,
        "object_weight": variation.mass * GRAVITY,
        **extra,
    }


def steps_to_episode(steps: dict[str, list], cameras, meta: dict) -> Episode:
    """Stack the per-step records of :func:`run_episode` (or any loop recording the same keys)
    into an :class:`Episode` with ``meta``."""
    return Episode(
        images={name: np.stack([s[name] for s in steps["images"]]) for name in cameras},
        proprio=np.stack(steps["proprio"]),
        wrench=np.stack(steps["wrench"]),
        tactile=np.stack(steps["tactile"]),
        action=np.stack(steps["action"]),
        timestamp=np.array(steps["timestamp"], np.float64),
        meta=meta,
    )
