"""A small convolutional autoencoder: (3, H, W) pixels in [0, 1] <-> (C, H/4, W/4) latents.

Diffusion runs in its latent because pixel-space diffusion at 64x64 costs ~16x more per step
than at 16x16 on this CPU (the issue's cost notes), which would break the latency bar.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels // 4) or 1, channels)


class ResBlock(nn.Module):
    """Pre-activation residual block of two 3x3 convolutions."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm1, self.conv1 = group_norm(channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2, self.conv2 = group_norm(channels), nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class FrameAutoencoder(nn.Module):
    """Deterministic autoencoder with a 4x spatial reduction.

    ``encode`` takes (N, 3, H, W) floats in [0, 1]; ``decode`` returns the same, clamped.
    """

    def __init__(self, latent_channels: int = 4, width: int = 32):
        super().__init__()
        wide = 2 * width
        self.latent_channels = latent_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 4, stride=2, padding=1),
            ResBlock(width),
            nn.Conv2d(width, wide, 4, stride=2, padding=1),
            ResBlock(wide),
            group_norm(wide),
            nn.SiLU(),
            nn.Conv2d(wide, latent_channels, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, wide, 3, padding=1),
            ResBlock(wide),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(wide, width, 3, padding=1),
            ResBlock(width),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width, width, 3, padding=1),
            group_norm(width),
            nn.SiLU(),
            nn.Conv2d(width, 3, 3, padding=1),
        )

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.encoder(pixels * 2.0 - 1.0)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return (self.decoder(latents) * 0.5 + 0.5).clamp(0.0, 1.0)

    def decode_unclamped(self, latents: torch.Tensor) -> torch.Tensor:
        """The decoder's raw output in pixel units, for the training loss (no dead gradients)."""
        return self.decoder(latents) * 0.5 + 0.5


def to_pixels(frames_uint8: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float in [0, 1]."""
    return frames_uint8.movedim(-1, -3).float() / 255.0


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) float in [0, 1] -> (..., H, W, 3) uint8."""
    return (pixels.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).movedim(-3, -1)
