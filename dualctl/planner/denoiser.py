"""The latent video denoiser: a space-time factorised U-Net over K future latent frames.

Space is mixed by 2D residual convolutions applied to every frame; time by self-attention across
the K frames at every spatial position of the half-resolution stage (at full latent resolution
it would cost a fifth of the forward pass for little); one spatial self-attention sits at the
bottleneck. All
frames see the current frame's latent (channel concat) and one conditioning embedding (flow time,
instruction, proprioception, frame index) through FiLM.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dualctl.planner.autoencoder import group_norm


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of flow times t in [0, 1], shape (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / half)
    angles = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class FilmResBlock(nn.Module):
    """Residual block whose second norm is scaled and shifted by the conditioning embedding."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.film = nn.Linear(embed_dim, 2 * out_channels)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = (
            nn.Conv2d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(embed)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1.0 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class Attention(nn.Module):
    """Pre-norm multi-head self-attention over the middle axis of (N, L, C), residual."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, channels = x.shape
        qkv = self.qkv(self.norm(x)).view(n, length, 3, self.heads, channels // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(h.transpose(1, 2).reshape(n, length, channels))


class TemporalAttention(nn.Module):
    """Attention across the K frames at each spatial position of (B*K, C, H, W) features."""

    def __init__(self, channels: int, heads: int, frames: int):
        super().__init__()
        self.frames = frames
        self.attention = Attention(channels, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bk, c, h, w = x.shape
        b = bk // self.frames
        seq = (
            x.view(b, self.frames, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, self.frames, c)
        )
        seq = self.attention(seq)
        return seq.view(b, h * w, self.frames, c).permute(0, 2, 3, 1).reshape(bk, c, h, w)


class SpatialAttention(nn.Module):
    """Attention across the positions of each frame's (C, H, W) features."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.attention = Attention(channels, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        seq = self.attention(x.flatten(2).transpose(1, 2))
        return seq.transpose(1, 2).reshape(n, c, h, w)


class VideoDenoiser(nn.Module):
    """Flow-matching velocity of K noisy future latents given the current latent and context.

    forward(x_t (B, K, C, H, W), t (B,), current (B, C, H, W), text (B, text_dim),
    proprio (B, proprio_dim)) -> (B, K, C, H, W). H and W must be even.
    """

    def __init__(
        self,
        latent_channels: int,
        frames: int,
        text_dim: int,
        proprio_dim: int,
        width_high: int = 32,
        width_low: int = 96,
        blocks: int = 3,
        heads: int = 4,
        embed_dim: int = 128,
    ):
        super().__init__()
        self.frames = frames
        self.embed_dim = embed_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.text_mlp = nn.Sequential(
            nn.Linear(text_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.proprio_mlp = nn.Sequential(
            nn.Linear(proprio_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.frame_embed = nn.Parameter(torch.randn(frames, embed_dim) * 0.02)
        #: Stands in for the instruction when it is dropped (classifier-free guidance).
        self.null_text = nn.Parameter(torch.zeros(text_dim))

        self.stem = nn.Conv2d(2 * latent_channels, width_high, 3, padding=1)
        self.high_in = FilmResBlock(width_high, width_high, embed_dim)
        self.down = nn.Conv2d(width_high, width_low, 3, stride=2, padding=1)
        self.low = nn.ModuleList(
            FilmResBlock(width_low, width_low, embed_dim) for _ in range(blocks)
        )
        self.low_time = nn.ModuleList(
            TemporalAttention(width_low, heads, frames) for _ in range(blocks)
        )
        self.middle_space = SpatialAttention(width_low, heads)
        self.up = nn.Conv2d(width_low, width_high, 3, padding=1)
        self.high_out = FilmResBlock(2 * width_high, width_high, embed_dim)
        self.head_norm = group_norm(width_high)
        self.head = nn.Conv2d(width_high, latent_channels, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def embed(self, t: torch.Tensor, text: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """The per-frame conditioning embedding, (B * K, embed_dim)."""
        base = (
            self.time_mlp(timestep_embedding(t, self.embed_dim))
            + self.text_mlp(text)
            + self.proprio_mlp(proprio)
        )
        return (base[:, None] + self.frame_embed[None]).flatten(0, 1)

    def forward(self, x_t, t, current, text, proprio) -> torch.Tensor:
        b, k, c, h, w = x_t.shape
        embed = self.embed(t, text, proprio)
        context = current[:, None].expand(b, k, c, h, w)
        x = self.stem(torch.cat([x_t, context], dim=2).flatten(0, 1))
        x = self.high_in(x, embed)
        skip = x
        x = self.down(x)
        for index, (block, temporal) in enumerate(zip(self.low, self.low_time)):
            x = temporal(block(x, embed))
            if index == len(self.low) // 2:
                x = self.middle_space(x)
        x = self.up(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        x = self.high_out(torch.cat([x, skip], dim=1), embed)
        out = self.head(F.silu(self.head_norm(x)))
        return out.view(b, k, c, h, w)
