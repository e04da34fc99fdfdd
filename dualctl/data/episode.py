"""The episode format: one compressed ``.npz`` file per episode, written atomically.

A dataset is a folder::

    <dataset>/dataset.json            what every episode shares (format version, cameras, rate)
    <dataset>/episodes/<name>.npz     one episode each

An episode file holds, per recorded step ``t`` (at the camera rate):

    images/<camera>  (T, H, W, 3) uint8
    proprio          (T, PROPRIO_DIM) float32       see dualctl.types.PROPRIO_FIELDS
    wrench           (T, 6) float32                 N, N·m
    tactile          (T, *TACTILE_SHAPE) float32    N
    action           (T, ACTION_DIM) float32        the command issued at step t
    timestamp        (T,) float64                   s since the episode started

and ``meta``: a JSON string with task, instruction, seed, split, variation parameters, success
and failure reason. Compressed npz keeps a 64x64 episode to a few hundred kB and loads in a few
ms, which is what training needs: every episode fits in memory at once.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dualctl.errors import DataError
from dualctl.types import ACTION_DIM, PROPRIO_DIM, TACTILE_SHAPE, WRENCH_DIM

FORMAT_VERSION = 1
STEP_KEYS = ("proprio", "wrench", "tactile", "action", "timestamp")
_STEP_SHAPES = {
    "proprio": (PROPRIO_DIM,),
    "wrench": (WRENCH_DIM,),
    "tactile": TACTILE_SHAPE,
    "action": (ACTION_DIM,),
    "timestamp": (),
}


@dataclass
class Episode:
    """One recorded episode: per-step arrays (see the module doc) and its metadata."""

    images: dict[str, np.ndarray]
    proprio: np.ndarray
    wrench: np.ndarray
    tactile: np.ndarray
    action: np.ndarray
    timestamp: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timestamp)

    def validate(self, where: str = "episode") -> None:
        steps = len(self.timestamp)
        for key in STEP_KEYS:
            array = getattr(self, key)
            if array.shape != (steps, *_STEP_SHAPES[key]):
                raise DataError(
                    f"{where}: '{key}' has shape {array.shape}, "
                    f"expected {(steps, *_STEP_SHAPES[key])}"
                )
        for name, frames in self.images.items():
            if frames.dtype != np.uint8 or frames.ndim != 4 or len(frames) != steps:
                raise DataError(
                    f"{where}: 'images/{name}' has shape {frames.shape} {frames.dtype}, "
                    f"expected ({steps}, H, W, 3) uint8"
                )


def atomic_write_bytes(path: Path, write) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def write_episode(path: Path, episode: Episode) -> None:
    """Write one episode atomically: a crash leaves either the old file or the new one."""
    episode.validate(str(path))
    arrays = {f"images/{k}": v for k, v in episode.images.items()}
    arrays.update({key: getattr(episode, key) for key in STEP_KEYS})
    arrays["meta"] = np.array(json.dumps(episode.meta))
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **arrays))


def read_episode(path: Path) -> Episode:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"episode file {path} does not exist")
    try:
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as error:
        raise DataError(f"episode file {path} is not a readable .npz ({error})") from error
    missing = [k for k in (*STEP_KEYS, "meta") if k not in arrays]
    if missing:
        raise DataError(f"episode file {path} lacks {missing}")
    images = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("images/")}
    episode = Episode(
        images=images,
        meta=json.loads(str(arrays["meta"])),
        **{key: arrays[key] for key in STEP_KEYS},
    )
    episode.validate(str(path))
    return episode


def episode_paths(dataset: Path) -> list[Path]:
    """Sorted episode files of a dataset folder."""
    dataset = Path(dataset)
    if not (dataset / "episodes").is_dir():
        raise DataError(
            f"dataset {dataset} has no episodes/ folder; make one with `dualctl collect`"
        )
    return sorted((dataset / "episodes").glob("*.npz"))


def write_dataset_info(dataset: Path, info: dict) -> None:
    atomic_write_text(Path(dataset) / "dataset.json", json.dumps(
        {"format_version": FORMAT_VERSION, **info}, indent=2))  # fmt: skip


def read_dataset_info(dataset: Path) -> dict:
    path = Path(dataset) / "dataset.json"
    if not path.is_file():
        raise DataError(f"dataset {dataset} has no dataset.json; make one with `dualctl collect`")
    info = json.loads(path.read_text())
    if info.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{path}: format_version {info.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    return info
