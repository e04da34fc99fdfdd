"""Image similarity of imagined and real frames: PSNR (dB) and SSIM, on uint8 RGB images."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

#: SSIM constants of Wang et al. (2004) for a data range of 1.
_C1, _C2 = 0.01**2, 0.03**2


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB) of two uint8 images (or stacks); capped at 100."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) / 255.0**2
    return float(100.0 if mse <= 1e-10 else -10.0 * np.log10(mse))


def _gaussian_window(size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of uint8 (..., H, W, 3) images, a 7x7 Gaussian window per
    channel (small, since the images are 64x64)."""
    x = torch.from_numpy(a.reshape(-1, *a.shape[-3:])).movedim(-1, 1).double() / 255.0
    y = torch.from_numpy(b.reshape(-1, *b.shape[-3:])).movedim(-1, 1).double() / 255.0
    n, c = x.shape[:2]
    window = _gaussian_window().to(x.dtype)
    x, y = x.reshape(n * c, 1, *x.shape[2:]), y.reshape(n * c, 1, *y.shape[2:])

    def blur(z):
        return F.conv2d(z, window)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    den = (mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2)
    return float((num / den).mean())
