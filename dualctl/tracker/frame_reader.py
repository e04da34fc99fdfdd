"""Small CNNs that read a few numbers (a pose) straight from one camera frame, beside the
tracker's latent: the grasp-pose reader (the object's place and yaw) and the hand-pose reader
(the gripper's place in a reference frame). Four stride-2 convolutions and a two-layer head,
~57 k parameters, ~0.1 ms a 64x64 frame on one core. Saved as ``<stem>.safetensors`` (float16)
with ``<stem>.json`` (the architecture and a training summary) in a folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load, save
from torch import nn

from dualctl.data.episode import atomic_write_bytes, atomic_write_text
from dualctl.errors import CheckpointError
from dualctl.tracker.model import images_to_float


@dataclass
class ReaderConfig:
    """A reader's architecture, saved beside its weights.

    Attributes:
        camera: the camera it reads.
        image_size: input size (px) frames are resized to.
        channels: output channels of its four stride-2 convolutions.
        hidden: width of the layer before the output.
    """

    camera: str = "scene"
    image_size: int = 64
    channels: tuple[int, ...] = (16, 32, 32, 32)
    hidden: int = 64


class FrameReader(nn.Module):
    """Camera frames -> ``outputs`` raw numbers each; subclasses give them their meaning in
    :meth:`forward`."""

    outputs: int

    def __init__(self, config: ReaderConfig):
        super().__init__()
        self.config = config
        layers, previous = [], 3
        for width in config.channels:
            layers += [nn.Conv2d(previous, width, 3, 2, 1), nn.GroupNorm(4, width), nn.ReLU()]
            previous = width
        side = config.image_size // 2 ** len(config.channels)
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(previous * side * side, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, self.outputs),
        )

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float images in [0, 1] -> (B, outputs) raw head outputs."""
        return self.head(self.features(images))

    @torch.inference_mode()
    def read_many(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 frames -> (N, outputs) readings."""
        images = images_to_float(torch.from_numpy(np.ascontiguousarray(frames)),
                                 self.config.image_size)  # fmt: skip
        return self(images).numpy()

    def read(self, frame: np.ndarray) -> np.ndarray:
        """One (H, W, 3) uint8 frame -> its reading."""
        return self.read_many(frame[None])[0]


def save_reader(folder: Path, stem: str, net: FrameReader, info: dict | None = None) -> None:
    """Write ``net``'s weights and architecture (and ``info``) into ``folder`` as ``stem``.*,
    atomically."""
    folder = Path(folder)
    # float16 on disk: the shipped checkpoints share a 30 MB budget; inference runs in float32
    state = {k: v.detach().half().contiguous() for k, v in net.state_dict().items()}
    blob = save(state)
    record = {**asdict(net.config), "info": info or {}}
    atomic_write_text(folder / f"{stem}.json", json.dumps(record, indent=2))
    atomic_write_bytes(folder / f"{stem}.safetensors", lambda f: f.write(blob))


def load_reader(kind: type[FrameReader], folder: str | Path, stem: str, fix: str) -> FrameReader:
    """A ``kind`` reader from ``folder``/``stem``.*, in eval mode; a missing or mismatched file
    is a :class:`CheckpointError` that ends with ``fix``."""
    folder = Path(folder)
    config_file, weights_file = folder / f"{stem}.json", folder / f"{stem}.safetensors"
    for path in (config_file, weights_file):
        if not path.is_file():
            raise CheckpointError(f"{stem.replace('_', '-')} checkpoint '{folder}' has no "
                                  f"{path.name}; {fix}")  # fmt: skip
    record = json.loads(config_file.read_text())
    record.pop("info", None)
    record["channels"] = tuple(record.get("channels", ReaderConfig.channels))
    net = kind(ReaderConfig(**record))
    try:
        state = load(weights_file.read_bytes())
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, KeyError) as error:
        raise CheckpointError(
            f"{stem.replace('_', '-')} checkpoint '{folder}': weights do not fit its "
            f"{config_file.name} ({error}); {fix}"
        ) from error
    return net.eval()
