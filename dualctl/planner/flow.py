"""Rectified-flow objective and a deterministic few-step ODE sampler with classifier-free
guidance.

Convention: x_t = (1 - t) * x_0 + t * noise, t in [0, 1]; the model predicts the velocity
``noise - x_0``; sampling integrates from t = 1 (noise) to t = 0 (data).

Time shift (SD3's resolution shift): t -> s t / (1 + (s - 1) t) moves both the training times
and the sampler's steps towards the noise end. A plan's latent change is sparse and smooth (a
moving arm in a still scene), so even at t = 0.9 the noisy input still shows much of it; without
the shift the model hardly ever learns the first steps from pure noise, where only the frame,
proprio and instruction can say what happens, and its plans stay near still.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: velocity(x_t, t, text) -> velocity; everything else the model needs is bound in.
Velocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def shift_times(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Flow times moved towards the noise end by ``shift`` (1 leaves them as they are)."""
    return shift * t / (1.0 + (shift - 1.0) * t)


def sample_times(
    batch: int, generator: torch.Generator | None = None, shift: float = 1.0
) -> torch.Tensor:
    """Logit-normal flow times (as in SD3), shifted: most training where the velocity is
    hardest."""
    return shift_times(torch.sigmoid(torch.randn(batch, generator=generator)), shift)


def flow_loss(
    velocity: Velocity, x0: torch.Tensor, text: torch.Tensor, shift: float = 1.0
) -> torch.Tensor:
    """Mean squared error of the predicted velocity on randomly noised ``x0`` (B, ...)."""
    t = sample_times(x0.shape[0], shift=shift).to(x0.device)
    noise = torch.randn_like(x0)
    t_b = t.view(-1, *([1] * (x0.dim() - 1)))
    x_t = (1.0 - t_b) * x0 + t_b * noise
    return torch.mean((velocity(x_t, t, text) - (noise - x0)) ** 2)


def guided(velocity: Velocity, null_text: torch.Tensor, guidance: float) -> Velocity:
    """Classifier-free guidance: v_null + w * (v_text - v_null), both in one batched call."""
    if guidance == 1.0:
        return velocity

    def combined(x_t, t, text):
        null = null_text.expand_as(text)
        both = velocity(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([text, null]))
        v_text, v_null = both.chunk(2)
        return v_null + guidance * (v_text - v_null)

    return combined


def solve(
    velocity: Velocity,
    noise: torch.Tensor,
    text: torch.Tensor,
    steps: int,
    method: str = "euler",
    shift: float = 1.0,
) -> torch.Tensor:
    """Integrate the flow ODE from ``noise`` at t = 1 to t = 0 in ``steps`` steps, uniform in
    the unshifted time (so shorter near the noise end when ``shift`` > 1).

    Deterministic: the only randomness is ``noise``. Heun's last step is an Euler step, since
    the velocity at t = 0 is never trained.
    """
    times = shift_times(torch.linspace(1.0, 0.0, steps + 1), shift)
    x = noise
    batch = noise.shape[0]
    for t_now, t_next in zip(times[:-1], times[1:]):
        dt = float(t_next - t_now)
        v = velocity(x, t_now.expand(batch), text)
        if method == "heun" and float(t_next) > 0.0:
            x_euler = x + dt * v
            v_next = velocity(x_euler, t_next.expand(batch), text)
            x = x + dt * 0.5 * (v + v_next)
        else:
            x = x + dt * v
    return x
