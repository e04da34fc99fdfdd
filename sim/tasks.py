"""The tasks: what varies per episode (and how the train and held-out splits differ), the
instruction, and the success test with named failure reasons.

Force matters by construction in ``Fragile`` and ``Slippery``: each episode draws the grip
force the object needs to be lifted without slipping (``hold_force``, N, from its mass and
friction) and a force above which it breaks (``break_force``, N) a random factor higher. The
window between them moves over a range several times wider than the window itself, so no fixed
grip force fits most episodes, and nothing in the image shows where the window is: only the
wrist wrench (weight) and the tactile shear (slip) do.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from dualctl.errors import ConfigError

TASKS = ("Lift", "Fragile", "Slippery", "Place")
GRAVITY = 9.81
#: Lift height (m) of the object's centre that counts as lifted.
LIFT_HEIGHT = 0.10
#: How long (s) the success condition must hold before an episode succeeds.
SUCCESS_HOLD_S = 0.5
#: How far (m) the object may slide down between the fingers before it counts as dropped.
SLIP_LIMIT = 0.03
#: Object centre must stay within this distance (m) of the table centre, or it left the workspace.
WORKSPACE_RADIUS = 0.3
TIME_LIMIT_S = {"Lift": 8.0, "Fragile": 8.0, "Slippery": 8.0, "Place": 14.0}

#: Colour words the instruction uses: the train split and the held-out split use different ones.
COLOURS_TRAIN = {
    "red": (0.85, 0.12, 0.1),
    "blue": (0.1, 0.25, 0.85),
    "yellow": (0.9, 0.8, 0.1),
    "purple": (0.55, 0.15, 0.7),
    "orange": (0.95, 0.5, 0.05),
}
COLOURS_HELDOUT = {"cyan": (0.1, 0.8, 0.85), "pink": (0.95, 0.45, 0.7)}

INSTRUCTIONS = {
    "Lift": "lift the {colour} block",
    "Fragile": "gently lift the fragile {colour} block",
    "Slippery": "lift the slippery {colour} block without dropping it",
    "Place": "place the {colour} block on the green pad",
}


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError("task", task, "one of " + ", ".join(TASKS))
    return task


def _band(rng: np.random.Generator, low: float, high: float, split: str) -> float:
    """A value in [low, high]: the central 80 % for "train", the outer 10 % bands for
    "heldout" (so held-out episodes extrapolate a little beyond what training saw)."""
    width = high - low
    if split == "train":
        return float(rng.uniform(low + 0.1 * width, high - 0.1 * width))
    side = rng.uniform(0.0, 0.1 * width)
    return float(low + side if rng.random() < 0.5 else high - side)


def _log_band(rng: np.random.Generator, low: float, high: float, split: str) -> float:
    return float(math.exp(_band(rng, math.log(low), math.log(high), split)))


@dataclass(frozen=True)
class Variation:
    """Everything drawn per episode. Lengths m, angles rad, mass kg, forces N."""

    object_xy: tuple[float, float]
    object_yaw: float
    object_half: tuple[float, float, float]
    mass: float
    friction: float
    colour: str
    object_rgba: tuple[float, float, float, float]
    table_rgba: tuple[float, float, float, float]
    light_pos: tuple[float, float, float]
    light_diffuse: float
    #: grip force (N) each finger must press with to hold the object: m g / (2 mu)
    hold_force: float
    #: grip force (N) above which the object breaks; inf when it cannot
    break_force: float = math.inf
    pad_xy: tuple[float, float] | None = None

    def to_meta(self) -> dict:
        meta = asdict(self)
        meta["break_force"] = None if math.isinf(self.break_force) else self.break_force
        return meta


#: Force tasks: ranges of the hold force (N), of break force / hold force, and of friction.
FORCE_WINDOWS = {
    "Fragile": ((14, 200), (1.6, 2.4), (0.15, 0.3)),
    "Slippery": ((12, 200), (1.8, 2.5), (0.12, 0.25)),
}


def _force_window(rng, split, hold_range, ratio_range, friction_range):
    """(hold_force, break_force, friction, mass) for an object whose grip window moves."""
    hold = _log_band(rng, *hold_range, split)
    ratio = _band(rng, *ratio_range, split)
    friction = _band(rng, *friction_range, split)
    mass = 2.0 * friction * hold / GRAVITY
    return hold, hold * ratio, friction, mass


def sample_variation(task: str, seed: int, split: str, distractor_pad: bool = False) -> Variation:
    """The variation of episode ``seed`` of ``task`` in ``split`` ("train" or "heldout").

    ``distractor_pad`` puts the green pad in the scene of every task, not only ``Place``'s, so the
    scene alone no longer tells the task: only the instruction does. Everything else about the
    episode stays as without it (the pad is drawn last)."""
    check_task(task)
    rng = np.random.default_rng([seed, TASKS.index(task), 0 if split == "train" else 1])
    palette = COLOURS_TRAIN if split == "train" else COLOURS_HELDOUT
    colour = str(rng.choice(sorted(palette)))
    object_xy = (_band(rng, -0.08, 0.08, split), _band(rng, -0.08, 0.08, split))
    half = (_band(rng, 0.018, 0.028, split), _band(rng, 0.018, 0.028, split))
    half = (*half, _band(rng, 0.02, 0.035, split))
    grey = _band(rng, 0.35, 0.65, split)
    light_angle = rng.uniform(-math.pi, math.pi)
    common = dict(
        object_xy=object_xy,
        object_yaw=_band(rng, -0.6, 0.6, split),
        object_half=half,
        colour=colour,
        object_rgba=(*palette[colour], 1.0),
        table_rgba=(grey * 1.1, grey, grey * 0.85, 1.0),
        light_pos=(0.4 * math.cos(light_angle), 0.4 * math.sin(light_angle), 1.0),
        light_diffuse=_band(rng, 0.35, 0.9, split),
    )
    if task in FORCE_WINDOWS:
        hold, brk, friction, mass = _force_window(rng, split, *FORCE_WINDOWS[task])
    else:
        mass = _band(rng, 0.1, 0.5, split)
        friction = _band(rng, 0.6, 1.2, split)
        hold, brk = mass * GRAVITY / (2 * friction), math.inf
    with_pad = task == "Place" or distractor_pad
    pad_xy = _pad_position(rng, object_xy, split) if with_pad else None
    return Variation(**common, mass=mass, friction=friction, hold_force=hold, break_force=brk,
                     pad_xy=pad_xy)  # fmt: skip


def _pad_position(rng, object_xy, split) -> tuple[float, float]:
    """A pad centre at least 10 cm from the object, so the block must be carried."""
    for _ in range(100):
        pad = (_band(rng, -0.12, 0.12, split), _band(rng, -0.12, 0.12, split))
        if math.dist(pad, object_xy) >= 0.1:
            return pad
    return (-object_xy[0], -object_xy[1]) if math.dist(object_xy, (0, 0)) > 0.05 else (0.1, 0.1)


def instruction(task: str, variation: Variation) -> str:
    return INSTRUCTIONS[check_task(task)].format(colour=variation.colour)


def on_pad(pos, pad) -> bool:
    """Whether an object centred at ``pos`` (x, y, ... in m) sits on the pad centred at ``pad``
    (within 3.5 cm each way)."""
    return abs(pos[0] - pad[0]) < 0.035 and abs(pos[1] - pad[1]) < 0.035


@dataclass(frozen=True)
class WorldState:
    """Privileged state the monitor and the experts read. Lengths m, forces N, time s."""

    time: float
    object_pos: np.ndarray
    object_start_z: float
    ee_pose: np.ndarray  # x, y, z, yaw
    width: float
    pad_force: tuple[float, float]  # normal force of each fingertip on the object


@dataclass(frozen=True)
class Status:
    done: bool = False
    success: bool = False
    failure_reason: str | None = None


class TaskMonitor:
    """Follows an episode at the control rate and decides success or a named failure:
    ``crushed`` (grip force above the break force), ``dropped`` (the object slid out of the
    fingers or fell), ``missed_target`` (Place: released off the pad), ``out_of_workspace``
    (the object left the table) or ``timeout``."""

    def __init__(self, task: str, variation: Variation):
        self.task = check_task(task)
        self.variation = variation
        self.status = Status()
        self.peak_grip_force = 0.0
        self._grasp_offset: float | None = None
        self._success_since: float | None = None
        self._released_at: float | None = None

    def update(self, state: WorldState) -> Status:
        if self.status.done:
            return self.status
        self.peak_grip_force = max(self.peak_grip_force, *state.pad_force)
        failure = self._failure(state)
        if failure is not None:
            self.status = Status(done=True, success=False, failure_reason=failure)
        elif self._success_held(state):
            self.status = Status(done=True, success=True)
        elif state.time >= TIME_LIMIT_S[self.task]:
            self.status = Status(done=True, success=False, failure_reason="timeout")
        return self.status

    def _held(self, state: WorldState) -> bool:
        return min(state.pad_force) > 0.5

    def _failure(self, state: WorldState) -> str | None:
        if max(state.pad_force) > self.variation.break_force:
            return "crushed"
        pos = state.object_pos
        if math.hypot(pos[0], pos[1]) > WORKSPACE_RADIUS or pos[2] < -0.05:
            return "out_of_workspace"
        offset = state.ee_pose[2] - pos[2]
        if self._grasp_offset is None:
            if self._held(state):
                self._grasp_offset = offset
            return None
        let_go = self._released_at is None and not self._held(state)
        if self.task == "Place" and let_go and pos[2] - state.object_start_z < 0.015:
            self._released_at = state.time
        if self._released_at is not None:
            if self._resting_clear(state) and not on_pad(pos, self.variation.pad_xy):
                return "missed_target"
            return None
        if offset > self._grasp_offset + SLIP_LIMIT:
            return "dropped"
        return None

    def _success_held(self, state: WorldState) -> bool:
        ok = self._success_now(state)
        if not ok:
            self._success_since = None
            return False
        if self._success_since is None:
            self._success_since = state.time
        return state.time - self._success_since >= SUCCESS_HOLD_S

    def _success_now(self, state: WorldState) -> bool:
        pos = state.object_pos
        if self.task != "Place":
            return pos[2] - state.object_start_z >= LIFT_HEIGHT and self._held(state)
        return self._placed(state)

    def _placed(self, state: WorldState) -> bool:
        placed = on_pad(state.object_pos, self.variation.pad_xy)
        return self._released_at is not None and self._resting_clear(state) and placed

    @staticmethod
    def _resting_clear(state: WorldState) -> bool:
        """Resting on the table, untouched, with the fingers at least 3 cm above its centre."""
        pos = state.object_pos
        resting = abs(pos[2] - state.object_start_z) < 0.005 and max(state.pad_force) == 0.0
        return resting and state.ee_pose[2] - pos[2] > 0.03
