"""The whole planner network: autoencoder, latent video denoiser and the normalisation between
them. Training and inference both go through these methods, so preprocessing is written once.
"""

from __future__ import annotations

import torch
from torch import nn

from dualctl.planner.autoencoder import FrameAutoencoder, to_pixels, to_uint8
from dualctl.planner.config import PlannerConfig
from dualctl.planner.denoiser import VideoDenoiser
from dualctl.planner.flow import guided, solve
from dualctl.planner.text import TEXT_DIM
from dualctl.types import PROPRIO_DIM


class PlannerModel(nn.Module):
    """Autoencoder + denoiser + statistics (buffers, so they ship in the same file)."""

    def __init__(self, config: PlannerConfig):
        super().__init__()
        channels = config.autoencoder.latent_channels
        self.horizon = config.horizon
        self.autoencoder = FrameAutoencoder(channels, config.autoencoder.width)
        d = config.denoiser
        self.denoiser = VideoDenoiser(
            channels, config.horizon, TEXT_DIM, PROPRIO_DIM,
            d.width_high, d.width_low, d.blocks, d.heads, d.embed_dim,
        )  # fmt: skip
        self.register_buffer("latent_mean", torch.zeros(channels))
        self.register_buffer("latent_std", torch.ones(channels))
        self.register_buffer("delta_std", torch.ones(config.horizon, channels))
        self.register_buffer("proprio_mean", torch.zeros(PROPRIO_DIM))
        self.register_buffer("proprio_std", torch.ones(PROPRIO_DIM))

    # --- normalisation ----------------------------------------------------------------------
    def encode(self, frames_uint8: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> (N, C, h, w) normalised latents."""
        z = self.autoencoder.encode(to_pixels(frames_uint8))
        return (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) normalised latents -> (N, 3, H, W) pixels in [0, 1]."""
        z = latents * self.latent_std[:, None, None] + self.latent_mean[:, None, None]
        return self.autoencoder.decode(z)

    def normalise_proprio(self, proprio: torch.Tensor) -> torch.Tensor:
        return (proprio - self.proprio_mean) / self.proprio_std

    # --- sampling ---------------------------------------------------------------------------
    def velocity(self, current: torch.Tensor, proprio: torch.Tensor):
        """The denoiser as a flow velocity with the frame and proprio bound in."""

        def velocity(x_t, t, text):
            repeat = x_t.shape[0] // current.shape[0]
            return self.denoiser(
                x_t, t, current.repeat(repeat, 1, 1, 1), text, proprio.repeat(repeat, 1)
            )

        return velocity

    @torch.no_grad()
    def imagine(
        self,
        frames_uint8: torch.Tensor,
        proprio: torch.Tensor,
        text: torch.Tensor,
        noise: torch.Tensor,
        steps: int,
        guidance: float,
        method: str = "euler",
        residual: bool = True,
        change_threshold: float = 0.0,
        composite: str = "add",
        time_shift: float = 1.0,
        blend_scale: float = 0.3,
    ) -> torch.Tensor:
        """Current frames (B, H, W, 3) uint8, raw proprio (B, P), instruction embeddings (B, D)
        and initial noise (B, K, C, h, w) -> imagined futures (B, K, H, W, 3) uint8.
        ``time_shift``: see :func:`dualctl.planner.flow.solve`.

        With ``residual`` the plan is the real frame with the decoded change painted on (see
        :func:`paint_change`); otherwise the decoded future frames themselves.
        """
        current = self.encode(frames_uint8)
        velocity = guided(
            self.velocity(current, self.normalise_proprio(proprio)),
            self.denoiser.null_text,
            guidance,
        )
        delta = solve(velocity, noise, text, steps, method, time_shift)
        future = current[:, None] + delta * self.delta_std[None, :, :, None, None]
        b, k = future.shape[:2]
        pixels = self.decode(future.flatten(0, 1))
        pixels = pixels.view(b, k, *pixels.shape[1:])
        if residual:
            change = pixels - self.decode(current)[:, None]
            pixels = paint_change(
                to_pixels(frames_uint8),
                change,
                change_threshold,
                None if composite == "add" else pixels,
                blend_scale if composite == "blend" else 0.0,
            )
        return to_uint8(pixels)


def paint_change(
    frames: torch.Tensor,
    change: torch.Tensor,
    threshold: float,
    decoded: torch.Tensor | None = None,
    blend_scale: float = 0.0,
) -> torch.Tensor:
    """Real frames (B, 3, H, W) with imagined changes (B, K, 3, H, W) painted on, in [0, 1].

    What stays put keeps its true pixels (the autoencoder's blur cancels out). Changes smaller
    than ``threshold`` (per pixel, largest channel) fade out linearly up to twice the threshold:
    they are sampling noise on a static background, not motion. Without ``decoded`` the change
    is added to the real frame; with the decoded future frames (B, K, 3, H, W), pixels that
    change are replaced by them, so no sharp copy of what moved away stays behind. A
    ``blend_scale`` > 0 replaces them in proportion instead: a pixel whose change is that large
    or larger shows the decoded future, a smaller change mixes it with the real pixel, so a
    faint, unsure change stays mostly real and the decoder's blur leaves no halo.
    """
    target = frames[:, None] + change if decoded is None else decoded
    if threshold <= 0.0 and blend_scale <= 0.0:
        return target
    size = change.abs().amax(dim=2, keepdim=True)
    weight = torch.ones_like(size)
    if threshold > 0.0:
        weight = ((size - threshold) / threshold).clamp(0.0, 1.0)
    if blend_scale > 0.0:
        weight = weight * (size / blend_scale).clamp(max=1.0)
    return frames[:, None] + weight * (target - frames[:, None])
