"""The single-rate baseline the hierarchy is compared with: a Diffusion-Policy-style visuomotor
policy, run at one rate (10 Hz), that maps the last two camera frames and the proprio vector to
a chunk of future actions and executes the first few before predicting again.

It is a *chunked regression* policy (a small CNN and an MLP head trained with an L1 loss on
normalised actions, as in ACT), not a denoising one: on CPU, with a 10-minute budget, a
regression head trains to a usable policy while a diffusion head would not. It sees neither
the wrist wrench nor touch: that is what users would otherwise deploy.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import nn
from torch.nn import functional

from dualctl.config import section_from_yaml, to_yaml
from dualctl.data.episode import atomic_write_bytes, atomic_write_text
from dualctl.errors import CheckpointError
from dualctl.eval.config import BaselineConfig
from dualctl.types import ACTION_DIM, PROPRIO_DIM, Action, Observation

#: Past frames the policy sees (the current one and one ``stride`` steps before it).
FRAMES = 2


@dataclass(frozen=True)
class Normaliser:
    """Per-channel mean/std of proprio and of actions (in the units of ``dualctl.types``)."""

    proprio_mean: np.ndarray
    proprio_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            f"norm.{k}": torch.from_numpy(np.asarray(v, np.float32)) for k, v in vars(self).items()
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Normaliser:
        return cls(
            **{k[len("norm.") :]: v.numpy() for k, v in tensors.items() if k.startswith("norm.")}
        )


def frames_to_input(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(B, FRAMES, H, W, 3) uint8 -> (B, 3 * FRAMES, size, size) float in [-0.5, 0.5]."""
    b, f, h, w, c = frames.shape
    x = frames.permute(0, 1, 4, 2, 3).reshape(b, f * c, h, w).float() / 255.0 - 0.5
    if (h, w) != (size, size):
        x = functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


class ChunkPolicyNet(nn.Module):
    """(frames, normalised proprio) -> (chunk, ACTION_DIM) normalised actions."""

    def __init__(self, config: BaselineConfig):
        super().__init__()
        layers, width = [], 3 * FRAMES
        for out in config.channels:
            layers += [
                nn.Conv2d(width, out, 3, stride=2, padding=1),
                nn.GroupNorm(8 if out % 8 == 0 else 1, out),
                nn.SiLU(),
            ]
            width = out
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        side = config.image_size // 16
        self.chunk = config.chunk
        self.head = nn.Sequential(
            nn.Linear(width * side * side + PROPRIO_DIM, config.hidden),
            nn.SiLU(),
            nn.Linear(config.hidden, config.hidden),
            nn.SiLU(),
            nn.Linear(config.hidden, config.chunk * ACTION_DIM),
        )

    def forward(self, images: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.cnn(images), proprio], dim=1)
        return self.head(features).view(-1, self.chunk, ACTION_DIM)


def save_baseline(
    folder: Path, net: ChunkPolicyNet, config: BaselineConfig, norm: Normaliser, meta: dict
) -> None:
    """Write ``model.safetensors`` (weights + normalisation) and ``config.yaml``, atomically.

    ``meta`` (JSON-able: camera, camera_hz, stride, training stats) goes into the safetensors
    header so a checkpoint says how it must be fed.
    """
    folder = Path(folder)
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tensors.update(norm.tensors())
    header = {"meta": json.dumps(meta)}
    atomic_write_bytes(
        folder / "model.safetensors", lambda f: f.write(save(tensors, metadata=header))
    )
    atomic_write_text(folder / "config.yaml", to_yaml(config))


def load_baseline(folder: Path) -> tuple[ChunkPolicyNet, BaselineConfig, Normaliser, dict]:
    """Read a checkpoint written by :func:`save_baseline`."""
    folder = Path(folder)
    weights, config_path = folder / "model.safetensors", folder / "config.yaml"
    if not weights.is_file() or not config_path.is_file():
        raise CheckpointError(
            f"baseline checkpoint {folder} lacks model.safetensors or config.yaml; "
            "train one with `dualctl train baseline`"
        )
    config = section_from_yaml(BaselineConfig, config_path, "ablate.baseline")
    tensors = load_file(weights)
    with safe_open(weights, "pt") as file:
        meta = json.loads(file.metadata()["meta"])
    net = ChunkPolicyNet(config)
    state = {k[len("net.") :]: v for k, v in tensors.items() if k.startswith("net.")}
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(
            f"baseline checkpoint {weights} does not match {config_path}: {error}"
        ) from error
    net.eval()
    return net, config, Normaliser.from_tensors(tensors), meta


class BaselinePolicy:
    """Drives a body at ``rate_hz``: call :meth:`act` once per period with the latest
    observation; every ``execute`` calls it predicts a new chunk.

    Args:
        camera: which of the observation's images to use.
    """

    def __init__(
        self, net: ChunkPolicyNet, config: BaselineConfig, norm: Normaliser, camera: str = "scene"
    ):
        self.net, self.config, self.norm, self.camera = net, config, norm, camera
        self.period_s = 1.0 / config.rate_hz
        self.reset()

    @classmethod
    def load(cls, folder: Path) -> BaselinePolicy:
        net, config, norm, meta = load_baseline(folder)
        return cls(net, config, norm, meta.get("camera", "scene"))

    def reset(self) -> None:
        self._frames: deque[np.ndarray] = deque(maxlen=FRAMES)
        self._queue: deque[np.ndarray] = deque()
        self.chunks = 0

    def _predict(self, observation: Observation) -> np.ndarray:
        frames = torch.from_numpy(np.stack(list(self._frames)))[None]
        proprio = (observation.proprio - self.norm.proprio_mean) / self.norm.proprio_std
        with torch.no_grad():
            out = self.net(
                frames_to_input(frames, self.config.image_size),
                torch.from_numpy(proprio)[None].float(),
            )
        return out[0].numpy() * self.norm.action_std + self.norm.action_mean

    def act(self, observation: Observation) -> Action:
        """The command for the next ``period_s`` seconds."""
        frame = observation.images[self.camera]
        if not self._frames:
            self._frames.extend([frame] * FRAMES)  # no history yet: repeat the first frame
        else:
            self._frames.append(frame)
        if not self._queue:
            chunk = self._predict(observation)
            self._queue.extend(chunk[: self.config.execute])
            self.chunks += 1
        return Action.from_array(self._queue.popleft(), timestamp=observation.timestamp)
