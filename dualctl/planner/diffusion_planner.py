"""The built-in planner backend: latent video diffusion on CPU.

``load_planner(path)`` builds everything from files (a checkpoint folder and the installed text
encoder), so a planner process needs only a path string: nothing is pickled.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from dualctl.errors import DualctlError
from dualctl.planner.base import Planner
from dualctl.planner.checkpoint import WEIGHTS, load_weights, read_checkpoint
from dualctl.planner.config import PlannerConfig
from dualctl.planner.model import PlannerModel
from dualctl.planner.text import TextEncoder
from dualctl.types import Observation, Plan

log = logging.getLogger(__name__)


class PlannerInputError(DualctlError):
    """An observation the planner cannot use (missing camera, wrong resolution)."""


class DiffusionPlanner(Planner):
    """Imagines ``horizon`` frames over ``horizon_s`` from the current frame and instruction.

    Sampling is deterministic: every plan starts from the same seeded noise, so a plan is a
    function of (frame, proprio, instruction, steps, guidance, seed).
    """

    def __init__(
        self,
        model: PlannerModel,
        text_encoder: TextEncoder,
        config: PlannerConfig,
        image_size: int,
    ):
        self.model = model.eval()
        self.text_encoder = text_encoder
        self.config = config
        self.image_size = image_size
        self._noise_shape = (
            1, config.horizon, config.autoencoder.latent_channels, image_size // 4, image_size // 4,
        )  # fmt: skip

    def noise(self, batch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.config.seed)
        noise = torch.randn(self._noise_shape, generator=generator) * self.config.noise_scale
        return noise.expand(batch, -1, -1, -1, -1)

    def imagine(self, frames: np.ndarray, proprio: np.ndarray, instructions: list[str]):
        """(B, H, W, 3) uint8 frames, (B, P) proprio, B instructions -> (B, K, H, W, 3) uint8."""
        if frames.shape[1:] != (self.image_size, self.image_size, 3):
            raise PlannerInputError(
                f"planner frames have shape {frames.shape[1:]}, but the checkpoint was trained "
                f"on {(self.image_size, self.image_size, 3)} images; set sim.camera_size to match"
            )
        text = torch.from_numpy(self.text_encoder.encode_many(instructions))
        cfg = self.config
        futures = self.model.imagine(
            torch.from_numpy(np.ascontiguousarray(frames)),
            torch.from_numpy(np.asarray(proprio, np.float32)),
            text,
            self.noise(len(frames)),
            steps=cfg.steps,
            guidance=cfg.guidance,
            method=cfg.sampler,
            residual=cfg.residual_decode,
            change_threshold=cfg.change_threshold,
            composite=cfg.composite,
            time_shift=cfg.time_shift,
            blend_scale=cfg.blend_scale,
        )
        return futures.numpy()

    def plan(self, observation: Observation, instruction: str) -> Plan:
        camera = self.config.camera
        if camera not in observation.images:
            raise PlannerInputError(
                f"observation has no '{camera}' image (has {sorted(observation.images)}); "
                "set planner.camera to one of those"
            )
        frames = self.imagine(
            observation.images[camera][None], observation.proprio[None], [instruction]
        )[0]
        k, span = self.config.horizon, self.config.horizon_s
        t0 = observation.timestamp
        return Plan(
            frames=frames,
            times=t0 + np.arange(1, k + 1) * span / k,
            conditioned_at=t0,
            valid_until=t0 + span,
            instruction=instruction,
            camera=camera,
        )


def resolve_checkpoint(path: str | Path) -> Path:
    """``path`` if it exists; else, for ``checkpoints/<name>``, the copy installed with the
    package (so the shipped checkpoint is found from any working directory)."""
    path = Path(path)
    if path.exists() or path.is_absolute() or path.parts[:1] != ("checkpoints",):
        return path
    installed = Path(str(resources.files("dualctl.checkpoints"))).joinpath(*path.parts[1:])
    return installed if installed.exists() else path


def load_planner(
    checkpoint_dir: str | Path,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    threads: int | None = None,
    change_threshold: float | None = None,
    noise_scale: float | None = None,
    composite: str | None = None,
    time_shift: float | None = None,
    blend_scale: float | None = None,
) -> DiffusionPlanner:
    """Build the planner from a checkpoint folder; None keeps the checkpoint's setting.

    ``threads`` sets torch's intra-op threads of this process (the planner owns its process).
    A relative ``checkpoints/...`` path that does not exist falls back to the installed copy.
    """
    path = resolve_checkpoint(checkpoint_dir)
    config, tensors, metadata = read_checkpoint(path)
    overrides = {
        "steps": steps,
        "guidance": guidance,
        "seed": seed,
        "sampler": sampler,
        "change_threshold": change_threshold,
        "noise_scale": noise_scale,
        "composite": composite,
        "time_shift": time_shift,
        "blend_scale": blend_scale,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(config, key, value)
    config.__post_init__()  # the overrides get the same checks as the config file
    if threads is not None:
        torch.set_num_threads(threads)
    model = PlannerModel(config)
    load_weights(model, tensors, path / WEIGHTS)
    image_size = int(metadata.get("image_size", 64))
    log.info("loaded planner %s (%s steps, guidance %s)", path, config.steps, config.guidance)
    return DiffusionPlanner(model, TextEncoder(), config, image_size)
