"""SimBody: the sim world behind the runtime's Body interface.

The body keeps no clock of its own: on every ``observe``/``act`` it advances physics up to the
runtime clock's ``now()`` (so it works on a real clock and on a virtual one that jumps), holding
the last command in between. A camera frame is rendered only when one is due at
``sim.camera_hz``, at the latest frame time on the camera's grid; every stream's stamp says
when it was sampled, on the runtime clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from dualctl.sim.config import SimConfig
from dualctl.sim.tasks import Status, WorldState, check_task, instruction, sample_variation
from dualctl.sim.world import World

from dualctl.body import Body, BodySpec, Health
from dualctl.errors import DualctlError
from dualctl.types import Action, Observation


class SimBody(Body):
    """Episode ``seed`` of ``task`` (from ``config.split``) as a body driven on clock ``now``.

    Extras beyond :class:`Body`: ``instruction``, ``status()`` (done, success,
    failure_reason), ``privileged()`` (object and gripper state for experts and tests) and
    ``world`` (the :class:`World`, for an expert to act on).
    """

    def __init__(self, task: str, seed: int, config: SimConfig, now: Callable[[], float]):
        self.task, self.seed, self.config, self._now = check_task(task), seed, config, now
        self.variation = sample_variation(task, seed, config.split, config.distractor_pad)
        self.instruction = instruction(task, self.variation)
        cameras = {name: (config.camera_size, config.camera_size) for name in config.cameras}
        self.spec = BodySpec(cameras=cameras, camera_hz=config.camera_hz, has_arm=True)
        self.world: World | None = None
        self._t0 = 0.0
        self._frame_index = -1
        self._images: dict[str, np.ndarray] = {}
        self._image_time = 0.0

    # --- Body -----------------------------------------------------------------------------------
    async def connect(self) -> None:
        if self.world is not None:
            return
        self.world = World(self.task, self.variation, self.config)
        self._t0 = self._now()
        self._render(0)

    async def observe(self) -> Observation:
        world = self._sync()
        t = self._t0 + world.time
        image_t = self._t0 + self._image_time
        stamps = {f"image/{name}": image_t for name in self._images}
        stamps.update(proprio=t, wrench=t, tactile=t)
        return Observation(
            timestamp=t,
            images=dict(self._images),
            proprio=world.proprio(),
            wrench=world.wrench(),
            tactile=world.tactile(),
            stamps=stamps,
        )

    async def act(self, action: Action) -> Action:
        world = self._sync()
        sent = world.apply(action)
        return Action(sent.ee_velocity, sent.gripper, action.timestamp)

    async def health(self) -> Health:
        if self.world is None:
            return Health(ok=False, faults=("not connected",))
        return Health(ok=True)

    async def close(self) -> None:
        if self.world is not None:
            self.world.apply(Action.hold(self.world.state().width))
            self.world.close()
            self.world = None

    # --- extras ---------------------------------------------------------------------------------
    def status(self) -> Status:
        """Whether the episode has ended, and how (as of the last observe/act)."""
        return self._connected().monitor.status

    def privileged(self) -> WorldState:
        """Object and gripper state the robot could not sense directly (experts, tests)."""
        return self._connected().state()

    # --- time -----------------------------------------------------------------------------------
    def _connected(self) -> World:
        if self.world is None:
            raise DualctlError(f"SimBody({self.task}, seed={self.seed}): call connect() first")
        return self.world

    def _sync(self) -> World:
        """Advance physics to now, rendering the latest camera frame that fell due on the way."""
        world = self._connected()
        t = self._now() - self._t0
        if t <= world.time:
            return world
        period = 1.0 / self.config.camera_hz
        due = math.floor(t / period + 1e-9)
        if due > self._frame_index:
            world.advance_to(due * period)
            self._render(due)
        world.advance_to(t)
        return world

    def _render(self, index: int) -> None:
        self._images = self.world.render()
        self._frame_index = index
        self._image_time = self.world.time
