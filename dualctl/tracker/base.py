"""The tracker interface the runtime calls, at two rates: ``encode`` when a camera frame (or a
new plan) arrives, ``act`` on every control tick."""

from __future__ import annotations

import abc

import numpy as np

from dualctl.errors import DualctlError
from dualctl.types import Action, Observation


class Tracker(abc.ABC):
    """System 1: follows a reference future in latent space, with force and touch."""

    #: Size of the latent vectors ``encode`` returns.
    latent_dim: int
    #: How far ahead of now (s) the reference for ``act`` should be taken from the plan.
    lookahead_s: float
    #: The cameras :meth:`encode_view` reads, the first one the camera plans imitate.
    cameras: tuple[str, ...] = ("scene",)

    @property
    def reference_dim(self) -> int:
        """Size of the vectors :meth:`encode` returns for plan frames (``latent_dim`` unless a
        tracker appends more, e.g. a hand-pose reading)."""
        return self.latent_dim

    @abc.abstractmethod
    def encode(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 frames -> (N, reference_dim) float32 latents."""

    def encode_view(self, images: dict[str, np.ndarray]) -> np.ndarray:
        """What the robot sees now, one (H, W, 3) uint8 frame per camera in :attr:`cameras`
        -> the ``latent`` for :meth:`act` (by default the first camera's latent)."""
        return self.encode(camera_frame(images, self.cameras[0])[None])[0]

    @abc.abstractmethod
    def act(self, observation: Observation, latent: np.ndarray, reference: np.ndarray) -> Action:
        """The fast path: latest frame latent, fresh force/tactile/proprio and the reference
        latent for ``now + lookahead_s`` -> the next command. Must stay far below 1 ms."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget per-episode state (force history, MPC warm start)."""


def camera_frame(images: dict[str, np.ndarray], camera: str) -> np.ndarray:
    """``images[camera]``, or an error naming the cameras there are."""
    if camera not in images:
        raise DualctlError(
            f"the tracker needs camera '{camera}' but the observation has {sorted(images)}; "
            "add that camera to the body (in the sim: sim.wrist_camera=true for 'wrist', sim.overhead_camera=true for 'overhead')"
        )
    return images[camera]
