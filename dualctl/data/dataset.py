"""Episodes in memory, windows over them, and normalisation statistics, for training.

:class:`EpisodeStore` holds every episode of a dataset as one concatenated array per key (all
episodes fit in memory: a 64x64 episode is a few MB raw). :class:`WindowDataset` indexes
``(episode, t)`` windows and gathers, for a batch of them at once, each key at chosen step
offsets (future steps and past history, clamped to the episode), with numpy fancy indexing
instead of one Python call per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dualctl.data.episode import Episode, episode_paths, read_dataset_info, read_episode
from dualctl.data.privileged import object_xy_labels, object_yaw_labels, pad_labels
from dualctl.errors import DataError

#: Per-step keys besides images, in the episode format.
ARRAY_KEYS = ("proprio", "wrench", "tactile", "action", "timestamp")
#: The extra "camera" of episodes recorded while following a reference (DAgger rollouts): at
#: each step, the reference frame the policy was shown.
REFERENCE_CAMERA = "reference"


@dataclass(frozen=True)
class Stats:
    """Per-channel mean and std (std floored, so constant channels normalise to 0)."""

    mean: np.ndarray
    std: np.ndarray

    def normalise(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


class EpisodeStore:
    """All episodes of a dataset in memory, concatenated along time.

    Attributes:
        arrays: key -> (sum of T, ...) array; images under ``"frames"`` (one camera). When
            some episodes carry a :data:`REFERENCE_CAMERA`, its frames are under
            ``"reference_frames"`` (zeros elsewhere) and ``"has_reference"`` (T,) says where.
            ``"object_yaw"`` (T, 3) holds the sim's privileged object-yaw labels
            (:func:`~dualctl.data.privileged.object_yaw_labels`; all unknown for real data),
            ``"object_xy"`` (T, 3) its place on the table (``object_xy_labels``), ``"pad"``
            (T, 4) the target pad's (``pad_labels``).
        starts, lengths: (E,) first index and step count of each episode.
        metas: each episode's metadata dict.
    """

    def __init__(
        self,
        episodes: Sequence[Episode],
        camera: str | None = "scene",
        release: bool = False,
        extra_cameras: Sequence[str] = (),
    ):
        """``release`` drops each episode's images once they are copied (the given episodes
        lose them), so a dataset loads in about its own size of memory instead of twice it.
        Each of ``extra_cameras`` is kept under ``"<name>_frames"``."""
        if not episodes:
            raise DataError("no episodes to load; collect some with `dualctl collect`")
        self.metas = [e.meta for e in episodes]
        self.lengths = np.array([len(e) for e in episodes], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.arrays = {k: np.concatenate([getattr(e, k) for e in episodes]) for k in ARRAY_KEYS}
        self.arrays["object_yaw"] = np.concatenate(
            [object_yaw_labels(e.meta, e.proprio, e.tactile, e.wrench) for e in episodes]
        )
        self.arrays["object_xy"] = np.concatenate(
            [object_xy_labels(e.meta, e.proprio, e.tactile, e.wrench) for e in episodes]
        )
        self.arrays["pad"] = np.concatenate(
            [pad_labels(e.meta, e.proprio, e.tactile, e.wrench) for e in episodes]
        )
        cameras = {"frames": camera} if camera is not None else {}
        cameras.update({f"{name}_frames": name for name in extra_cameras})
        for name in cameras.values():
            missing = [i for i, e in enumerate(episodes) if name not in e.images]
            if missing:
                raise DataError(
                    f"episode {missing[0]} has no camera '{name}' "
                    f"(has {sorted(episodes[missing[0]].images)}); choose another camera"
                )
        has_reference = any(REFERENCE_CAMERA in e.images for e in episodes)
        if has_reference and camera is not None:
            _check_reference_camera(episodes, camera)
        for key, name in cameras.items():  # after the reference check: release pops images
            self.arrays[key] = _stack_images(episodes, name, release)
        if has_reference:
            self.arrays.update(_reference_arrays(episodes, release))

    @classmethod
    def load(
        cls,
        dataset: Path,
        camera: str | None = "scene",
        max_episodes: int = 0,
        tasks: Sequence[str] | None = None,
        extra_cameras: Sequence[str] = (),
    ) -> EpisodeStore:
        """Read a dataset folder (``max_episodes`` > 0 keeps the first ones of each task)."""
        read_dataset_info(dataset)
        paths = episode_paths(dataset)
        if not paths:
            raise DataError(f"dataset {dataset} has no episodes; collect some first")
        episodes = [read_episode(p) for p in paths]
        if tasks is not None:
            episodes = [e for e in episodes if e.meta.get("task") in tasks]
        if max_episodes:
            episodes = _first_per_task(episodes, max_episodes)
        return cls(episodes, camera, release=True, extra_cameras=extra_cameras)

    def __len__(self) -> int:
        return len(self.lengths)

    def subset(self, episode_ids: Sequence[int]) -> EpisodeStore:
        """A store with only the given episodes (their arrays copied)."""
        ids = list(episode_ids)
        if not ids:
            raise DataError("an empty episode subset was asked for; give at least one episode")
        new = object.__new__(EpisodeStore)
        new.metas = [self.metas[i] for i in ids]
        new.lengths = self.lengths[ids].copy()
        new.starts = np.concatenate([[0], np.cumsum(new.lengths)[:-1]]).astype(np.int64)
        new.arrays = {
            k: np.concatenate([v[self.slice(i)] for i in ids]) for k, v in self.arrays.items()
        }
        return new

    def slice(self, episode: int) -> slice:
        start = int(self.starts[episode])
        return slice(start, start + int(self.lengths[episode]))

    def episode(self, index: int) -> Episode:
        """One episode back as an :class:`Episode` (frames under the store's camera)."""
        s = self.slice(index)
        return Episode(
            images={},
            meta=self.metas[index],
            **{k: self.arrays[k][s] for k in ARRAY_KEYS},
        )

    def stats(self, key: str, floor: float = 1e-3) -> Stats:
        """Per-channel normalisation statistics of ``key`` over every step of every episode."""
        x = self.arrays[key].reshape(len(self.arrays[key]), -1).astype(np.float64)
        shape = self.arrays[key].shape[1:]
        mean, std = x.mean(0), np.maximum(x.std(0), floor)
        return Stats(mean.reshape(shape).astype(np.float32), std.reshape(shape).astype(np.float32))


def _stack_images(episodes: Sequence[Episode], camera: str, release: bool) -> np.ndarray:
    """Every episode's ``camera`` frames, concatenated along time."""
    first = episodes[0].images[camera]
    stacked = np.empty((sum(len(e) for e in episodes), *first.shape[1:]), first.dtype)
    start = 0
    for e in episodes:
        frames = e.images.pop(camera) if release else e.images[camera]
        stacked[start : start + len(frames)] = frames
        start += len(frames)
    return stacked


def _check_reference_camera(episodes: Sequence[Episode], camera: str) -> None:
    """Refuse episodes whose recorded references imitate another camera than ``camera``: a
    head trained on such pairs learns to follow a view it never sees. Episodes that do not
    say (recorded before ``reference_camera`` was kept) pass."""
    for i, e in enumerate(episodes):
        shown = e.meta.get("reference_camera")
        if REFERENCE_CAMERA in e.images and shown not in (None, camera):
            raise DataError(
                f"episode {i} ({e.meta.get('task')}, seed {e.meta.get('seed')}): its reference "
                f"frames imitate camera '{shown}', but the tracker reads '{camera}'; record the "
                f"references with a tracker or planner of camera '{camera}'"
            )


def _reference_arrays(episodes: Sequence[Episode], release: bool) -> dict[str, np.ndarray]:
    """ "reference_frames" and "has_reference" over all steps (zeros/False where absent)."""
    shape = next(e.images[REFERENCE_CAMERA] for e in episodes if REFERENCE_CAMERA in e.images)
    frames = np.zeros((sum(len(e) for e in episodes), *shape.shape[1:]), np.uint8)
    flags = np.zeros(len(frames), bool)
    start = 0
    for e in episodes:
        shown = e.images.pop(REFERENCE_CAMERA, None) if release else e.images.get(REFERENCE_CAMERA)
        if shown is not None:
            frames[start : start + len(e)] = shown
            flags[start : start + len(e)] = True
        start += len(e)
    return {"reference_frames": frames, "has_reference": flags}


def _first_per_task(episodes: list[Episode], count: int) -> list[Episode]:
    kept, seen = [], {}
    for episode in episodes:
        task = episode.meta.get("task", "")
        if seen.get(task, 0) < count:
            kept.append(episode)
            seen[task] = seen.get(task, 0) + 1
    return kept


class WindowDataset(torch.utils.data.Dataset):
    """``(episode, t)`` windows: each key gathered at ``t + offset`` for the given offsets.

    Args:
        store: the episodes.
        offsets: key -> step offsets relative to ``t`` (negative = history, positive = future);
            steps outside the episode are clamped to its first/last step.
        require_future: only windows with at least this many real steps after ``t``.

    An item is a dict key -> array of shape ``(len(offsets[key]), ...)`` plus ``"index"``
    (episode, t). ``__getitems__`` gathers a whole batch at once (DataLoader uses it).
    """

    def __init__(
        self, store: EpisodeStore, offsets: dict[str, Sequence[int]], require_future: int = 0
    ):
        self.store = store
        self.offsets = {k: np.asarray(v, np.int64) for k, v in offsets.items()}
        unknown = [k for k in self.offsets if k not in store.arrays]
        if unknown:
            raise DataError(f"window keys {unknown} not in the store ({sorted(store.arrays)})")
        episodes, steps = [], []
        for e, length in enumerate(store.lengths):
            t = np.arange(max(0, int(length) - require_future))
            episodes.append(np.full(len(t), e))
            steps.append(t)
        self.episodes = np.concatenate(episodes).astype(np.int64)
        self.steps = np.concatenate(steps).astype(np.int64)
        if not len(self.steps):
            raise DataError(
                f"no episode is longer than {require_future} steps; nothing to train on"
            )

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        indices = np.asarray(indices, np.int64)
        episodes, steps = self.episodes[indices], self.steps[indices]
        start, length = self.store.starts[episodes], self.store.lengths[episodes]
        batch = {"index": np.stack([episodes, steps], 1)}
        for key, offsets in self.offsets.items():
            local = np.clip(steps[:, None] + offsets[None, :], 0, length[:, None] - 1)
            batch[key] = self.store.arrays[key][start[:, None] + local]
        return batch


def collate_arrays(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """DataLoader ``collate_fn`` for :meth:`WindowDataset.__getitems__` batches."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}
