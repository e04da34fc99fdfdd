"""Turning the open hand to the object's faces: a small CNN that reads the object's yaw from a
camera frame, and a servo that sets the arm's yaw rate from it until the hand first closes.

Why not the head: the tracker's latent does not carry the object's turn (nothing in the
world-model or cloning losses asks for it), and fine-tuning the head to read it cost more
success than the better yaw gained (README, Tracker: object probe). Yet the yaw matters: with
the arm turned to the expert's grasp yaw by a privileged servo, the oracle loop of
``checkpoints/tracker`` succeeds on Fragile 39 and Slippery 39 of 50 instead of 27 and 26. So
the yaw comes from a separate reader and leaves the head's weights alone.

The reader is trained on sim frames labelled with the episode's object yaw
(:func:`dualctl.data.privileged.object_yaw_labels`: known until the first touch) as (sin, cos)
of 4 x yaw, since a box looks the same every quarter turn. On a robot its labels would come
from another pose source (fiducials, a CAD fit); the servo only needs its estimate.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load, save
from torch import nn

from dualctl.data.episode import atomic_write_bytes, atomic_write_text
from dualctl.data.privileged import QUARTER_TURNS, TOUCH, face_yaw
from dualctl.errors import CheckpointError
from dualctl.tracker.model import images_to_float
from dualctl.types import PROPRIO_FIELDS, Action, Observation

WEIGHTS, CONFIG = "grasp_yaw.safetensors", "grasp_yaw.json"
_YAW = PROPRIO_FIELDS.index("ee_yaw")


@dataclass
class GraspYawNetConfig:
    """The reader's architecture, saved beside its weights.

    Attributes:
        camera: the camera it reads.
        image_size: input size (px) frames are resized to.
        channels: output channels of its four stride-2 convolutions.
        hidden: width of the layer before the (sin, cos) output.
    """

    camera: str = "scene"
    image_size: int = 64
    channels: tuple[int, ...] = (16, 32, 32, 32)
    hidden: int = 64


class GraspYawNet(nn.Module):
    """Camera frame -> unit (sin, cos) of 4 x the object's yaw."""

    def __init__(self, config: GraspYawNetConfig):
        super().__init__()
        self.config = config
        layers, previous = [], 3
        for width in config.channels:
            layers += [nn.Conv2d(previous, width, 3, 2, 1), nn.GroupNorm(4, width), nn.ReLU()]
            previous = width
        side = config.image_size // 2 ** len(config.channels)
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(previous * side * side, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 2)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float images in [0, 1] -> (B, 2) unit vectors."""
        return nn.functional.normalize(self.head(self.features(images)), dim=1)

    @torch.inference_mode()
    def read(self, frame: np.ndarray) -> np.ndarray:
        """One (H, W, 3) uint8 frame -> its (sin, cos) of 4 x yaw."""
        images = images_to_float(torch.from_numpy(np.ascontiguousarray(frame[None])),
                                 self.config.image_size)  # fmt: skip
        return self(images)[0].numpy()


def save_grasp_yaw(folder: Path, net: GraspYawNet, info: dict | None = None) -> None:
    """Write the reader's weights and architecture (and ``info``) into ``folder``, atomically."""
    folder = Path(folder)
    # float16 on disk: the shipped checkpoints share a 30 MB budget; inference runs in float32
    state = {k: v.detach().half().contiguous() for k, v in net.state_dict().items()}
    blob = save(state)
    record = {**asdict(net.config), "info": info or {}}
    atomic_write_text(folder / CONFIG, json.dumps(record, indent=2))
    atomic_write_bytes(folder / WEIGHTS, lambda f: f.write(blob))


def load_grasp_yaw(folder: str | Path) -> GraspYawNet:
    """A reader from ``folder`` (``grasp_yaw.safetensors`` + ``grasp_yaw.json``)."""
    folder = Path(folder)
    fix = (
        "train one with `dualctl train grasp-yaw data=data/sim` or set tracker.grasp_yaw.checkpoint"
    )
    for name in (CONFIG, WEIGHTS):
        if not (folder / name).is_file():
            raise CheckpointError(f"grasp-yaw checkpoint '{folder}' has no {name}; {fix}")
    record = json.loads((folder / CONFIG).read_text())
    record.pop("info", None)
    record["channels"] = tuple(record.get("channels", GraspYawNetConfig.channels))
    net = GraspYawNet(GraspYawNetConfig(**record))
    try:
        state = load((folder / WEIGHTS).read_bytes())
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, KeyError) as error:
        raise CheckpointError(
            f"grasp-yaw checkpoint '{folder}': weights do not fit its {CONFIG} ({error}); {fix}"
        ) from error
    return net.eval()


class YawServo:
    """Sets the arm's yaw rate toward the object face the reader sees, until first contact.

    The estimate is the mean of every reading since :meth:`reset` (the object does not move
    before it is touched, and the hand hides more of it as it comes down). The first fingertip
    touch ends it for the episode: from then on the object may have moved. (The opening and the
    wrist do not: the head narrows the hand on the way down, and the wrist reads the arm's own
    accelerations.)
    """

    def __init__(self, gain: float, max_rate: float):
        self.gain, self.max_rate = gain, max_rate
        self.reset()

    def reset(self) -> None:
        self._sum = np.zeros(2)
        self.armed = True
        #: The estimated face yaw (rad, in [-pi/4, pi/4]), None before any reading.
        self.face_yaw: float | None = None

    def see(self, reading: np.ndarray) -> None:
        """Add one reading (sin, cos of 4 x yaw) of a frame taken while still armed."""
        if self.armed:
            self._sum += reading
            self.face_yaw = float(face_yaw(self._sum[0], self._sum[1]))

    def __call__(self, action: Action, observation: Observation) -> Action:
        """``action`` with its yaw rate set by the servo while armed and the estimate exists."""
        if not self.armed:  # every tick after the first touch: nothing more to do
            return action
        self.armed = float(np.abs(observation.tactile).max()) <= TOUCH
        if not self.armed or self.face_yaw is None:
            return action
        yaw = float(observation.proprio[_YAW])
        quarter = 2.0 * math.pi / QUARTER_TURNS
        turn = (self.face_yaw - yaw + quarter / 2) % quarter - quarter / 2  # nearest face
        velocity = action.ee_velocity.copy()
        velocity[3] = float(np.clip(self.gain * turn, -self.max_rate, self.max_rate))
        return Action(velocity, action.gripper, action.timestamp)
