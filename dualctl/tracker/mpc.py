"""Latent MPC: cross-entropy method over short action sequences through the predictor, with
an L1 energy between the predicted latent and the reference. For study and ablation beside
the tracking head; far slower than it (a few ms per call).

It only calls the network's ``predict``/``rollout`` and starts each search from the head's
action (and the shifted previous solution), so it refines rather than replaces the head.
"""

from __future__ import annotations

import numpy as np
import torch

from dualctl.tracker.config import TrackerMpcConfig
from dualctl.tracker.model import TrackerNet


class LatentMPC:
    """CEM in normalised action space (std 1 = the dataset's action spread)."""

    def __init__(self, net: TrackerNet, config: TrackerMpcConfig, lookahead_frames: int, seed=0):
        self.net = net
        self.config = config
        self.lookahead_frames = lookahead_frames
        self.generator = torch.Generator().manual_seed(seed)
        self.previous: torch.Tensor | None = None

    def reset(self) -> None:
        self.previous = None

    def energy(self, latent: torch.Tensor, reference: torch.Tensor, actions, context):
        """L1 distance of the rolled-out final latent from the reference, interpolated to the
        horizon's end (the reference lies ``lookahead_frames`` ahead, the horizon may not)."""
        h = actions.shape[1]
        goal = latent + (reference - latent) * min(1.0, h / self.lookahead_frames)
        final = self.net.rollout(latent.expand(len(actions), -1), actions, context)[:, -1]
        return (final - goal).abs().sum(-1)

    @torch.no_grad()
    def plan(self, latent: np.ndarray, reference: np.ndarray, context: np.ndarray, start):
        """Best first action (normalised) for one sample; ``start`` is the head's (7,) action."""
        c = self.config
        z = torch.from_numpy(latent)[None]
        ref = torch.from_numpy(reference)[None]
        ctx = torch.from_numpy(context)[None].expand(c.samples, -1)
        mean = torch.from_numpy(np.asarray(start, np.float32))[None].repeat(c.horizon, 1)
        if self.previous is not None:
            mean[:-1] = self.previous[1:]
        std = torch.full_like(mean, 0.5)
        for _ in range(c.iterations):
            noise = torch.randn((c.samples, *mean.shape), generator=self.generator)
            samples = mean + std * noise
            samples[0] = mean
            energy = self.energy(z, ref, samples, ctx)
            elites = samples[energy.topk(c.elites, largest=False).indices]
            mean, std = elites.mean(0), elites.std(0).clamp_min(0.05)
        self.previous = mean
        return mean[0].numpy()
