"""The tracker's network: online and EMA target image encoders, force/tactile encoder, an
action-conditioned latent predictor and the tracking head, with the normalisation statistics
as buffers so one ``state_dict`` is the whole model.

One short method per job (``encode``, ``context``, ``predict``, ``rollout``, ``head``), after
tdmpc2's world model; training losses live in :mod:`dualctl.tracker.lit`, latent MPC in
:mod:`dualctl.tracker.mpc`, the numpy fast path in :mod:`dualctl.tracker.fastpath`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dualctl.data.dataset import Stats
from dualctl.data.privileged import QUARTER_TURNS
from dualctl.tracker.config import TrackerConfig
from dualctl.tracker.encoders import SensorEncoder, build_image_encoder, mlp
from dualctl.types import ACTION_DIM, PROPRIO_DIM, PROPRIO_FIELDS, TACTILE_SHAPE, WRENCH_DIM

#: Normalised keys and their per-step shapes (their statistics are buffers ``<key>_mean/std``).
NORMALISED = {
    "proprio": (PROPRIO_DIM,),
    "wrench": (WRENCH_DIM,),
    "tactile": TACTILE_SHAPE,
    "action": (ACTION_DIM,),
}
#: Smallest std (SI units) each key is normalised by. Demos recorded at the camera rate can
#: leave a channel nearly constant (wrist torque about z), while the control rate sees real
#: transients on it; a floor at the sensor's physical scale keeps those from reading as
#: hundreds of standard deviations.
STD_FLOORS = {"proprio": 1e-3, "wrench": 0.2, "tactile": 0.1, "action": 1e-3}
#: Normalised sensor inputs are clipped to +-this, so one odd reading cannot swamp the rest.
INPUT_CLIP = 5.0
#: Proprio fields the networks see: pose and opening. Velocities are left out on purpose: the
#: commanded velocity is almost the measured one a moment later, so a cloned policy would learn
#: to copy it (and feed back its own errors) instead of reading the reference.
PROPRIO_INPUTS = 5
PROPRIO_YAW = PROPRIO_FIELDS.index("ee_yaw")  # among the PROPRIO_INPUTS
#: Head inputs the object probe adds: its (sin, cos) of 4 x the object's yaw, and the turn from
#: the gripper's yaw to the face that reading points at (rad).
OBJECT_INPUTS = 3


def images_to_float(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, size, size) float in [0, 1] (area-resized if needed)."""
    x = frames.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="area")
    return x


class TrackerNet(nn.Module):
    """Every learned part of System 1 (see the module doc)."""

    def __init__(self, config: TrackerConfig, load_encoder_weights: bool = True):
        super().__init__()
        self.config = config
        d, h = config.latent_dim, config.hidden_dim
        self.encoder = build_image_encoder(config, load_weights=load_encoder_weights)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.sensors = SensorEncoder(
            config.force_history, config.tactile_history, config.sensor_dim
        )
        self.context_dim = 2 * config.sensor_dim + PROPRIO_INPUTS
        self.predictor = mlp([d + ACTION_DIM + self.context_dim, h, h, d])
        self.pose = nn.Linear(d, PROPRIO_INPUTS) if config.pose_probe else None
        pose_inputs = PROPRIO_INPUTS if config.pose_probe else 0
        # The wrist view is the head's alone (trained by its loss): the world model and the
        # references live in the scene camera's latent space.
        wrist = config.wrist_camera
        self.wrist_encoder = build_image_encoder(config, load_encoder_weights) if wrist else None
        wrist_inputs = d if wrist else 0
        self.object = nn.Linear(d, 2) if config.object_probe else None
        object_inputs = OBJECT_INPUTS if config.object_probe else 0
        head_inputs = 3 * d + self.context_dim + pose_inputs + wrist_inputs + object_inputs
        self.head = mlp([head_inputs, h, h, ACTION_DIM])
        for key, shape in NORMALISED.items():
            self.register_buffer(f"{key}_mean", torch.zeros(shape))
            self.register_buffer(f"{key}_std", torch.ones(shape))

    def set_stats(self, stats: dict[str, Stats]) -> None:
        """Copy dataset normalisation statistics into the buffers."""
        for key in NORMALISED:
            getattr(self, f"{key}_mean").copy_(torch.from_numpy(stats[key].mean))
            getattr(self, f"{key}_std").copy_(torch.from_numpy(stats[key].std))

    def stats_numpy(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        return (
            getattr(self, f"{key}_mean").numpy().copy(),
            getattr(self, f"{key}_std").numpy().copy(),
        )

    def normalise(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return (x - getattr(self, f"{key}_mean")) / getattr(self, f"{key}_std")

    def denormalise(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return x * getattr(self, f"{key}_std") + getattr(self, f"{key}_mean")

    def encode(self, images: torch.Tensor, target: bool = False) -> torch.Tensor:
        """(B, 3, S, S) float images in [0, 1] -> (B, latent_dim) latents."""
        return (self.target_encoder if target else self.encoder)(images)

    def encode_wrist(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) wrist-camera images in [0, 1] -> (B, latent_dim) head features."""
        return self.wrist_encoder(images)

    def context(
        self,
        proprio: torch.Tensor,
        wrench_history: torch.Tensor,
        tactile: torch.Tensor,
        force_missing: torch.Tensor,
        tactile_missing: torch.Tensor,
    ) -> torch.Tensor:
        """Raw (SI) proprio (B, 10), wrench history (B, K, 6), tactile history
        (B, T, 2, 4, 4, 3) and (B, 1) missing flags -> (B, context_dim) features."""
        clip = INPUT_CLIP
        sensed = self.sensors(
            self.normalise("wrench", wrench_history).clamp(-clip, clip),
            self.normalise("tactile", tactile).clamp(-clip, clip),
            force_missing,
            tactile_missing,
        )
        pose = self.normalise("proprio", proprio)[:, :PROPRIO_INPUTS].clamp(-clip, clip)
        return torch.cat([sensed, pose], 1)

    def predict(self, latent: torch.Tensor, action: torch.Tensor, context: torch.Tensor):
        """One camera frame ahead: latent (B, D), normalised action (B, 7), context -> (B, D)."""
        return latent + self.predictor(torch.cat([latent, action, context], -1))

    def rollout(self, latent: torch.Tensor, actions: torch.Tensor, context: torch.Tensor):
        """Autoregressive prediction over normalised actions (B, H, 7) -> (B, H, D)."""
        out = []
        for k in range(actions.shape[1]):
            latent = self.predict(latent, actions[:, k], context)
            out.append(latent)
        return torch.stack(out, 1)

    def head_action(
        self,
        latent: torch.Tensor,
        reference: torch.Tensor,
        context: torch.Tensor,
        wrist: torch.Tensor | None = None,
    ):
        """Tracking head: (B, D) latent now, (B, D) reference at lookahead (and the (B, D)
        wrist features with ``wrist_camera``) -> normalised action."""
        inputs = [latent, reference, reference - latent, context]
        if self.pose is not None:
            inputs.append(self.pose(reference) - self.pose(latent))
        if self.wrist_encoder is not None:
            inputs.append(wrist)
        if self.object is not None:
            inputs.append(self.object_features(latent, context))
        return self.head(torch.cat(inputs, 1))

    def object_features(self, latent: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(B, 3): the object probe's (sin, cos) of 4 x yaw, and the face yaw it reads minus
        the gripper's (rad; no gradient through the angle, whose slope blows up near 0)."""
        sin_cos = self.object(latent)
        face = torch.atan2(sin_cos[:, 0], sin_cos[:, 1]).detach() / QUARTER_TURNS
        yaw_at = self.context_dim - PROPRIO_INPUTS + PROPRIO_YAW
        mean, std = self.proprio_mean[PROPRIO_YAW], self.proprio_std[PROPRIO_YAW]
        gripper_yaw = context[:, yaw_at] * std + mean
        return torch.cat([sin_cos, (face - gripper_yaw)[:, None]], 1)

    def object_error(self, latent: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The object probe's MSE over the steps whose yaw is known (``labels`` (B, 3) from
        :func:`~dualctl.data.privileged.object_yaw_labels`); 0 when none is."""
        known = labels[:, 2]
        squared = (self.object(latent) - labels[:, :2]).pow(2).sum(1)
        return (squared * known).sum() / known.sum().clamp(min=1.0)

    def pose_error(self, latent: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """The pose probe's MSE against the normalised pose and opening of raw ``proprio``."""
        target = self.normalise("proprio", proprio)[:, :PROPRIO_INPUTS].clamp(
            -INPUT_CLIP, INPUT_CLIP
        )
        return F.mse_loss(self.pose(latent), target)

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step of the target encoder towards the online one (no gradient flows there)."""
        for target, online in zip(
            self.target_encoder.parameters(), self.encoder.parameters(), strict=True
        ):
            target.lerp_(online, 1.0 - momentum)
        for target, online in zip(
            self.target_encoder.buffers(), self.encoder.buffers(), strict=True
        ):
            target.copy_(online)
