"""Several trained trackers acting as one: each embeds the view and the reference with its own
encoder, their raw actions are averaged, and one grip reflex (the first member's) finishes the
command.

Why: trackers trained by the same recipe from other seeds, or at another lookahead, fail on
different episodes (two runs of one recipe differ by ~20 of 200 oracle episodes); the average
of their actions fails on fewer than either (README, Tracker). The latents the runtime keeps
(the live view, the plan's references) are the members' latents side by side, so the plan
buffer, its interpolation and stitching work on them unchanged. Each member costs its encode
(~1.4 ms a 64x64 frame on an idle core); members of one shape share a stacked fast path
(:class:`~dualctl.tracker.fastpath.StackedFastPath`: one batched matmul a layer, one sensor
history), so a tick costs little more than one member's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from dualctl.errors import ConfigError
from dualctl.tracker.base import Tracker
from dualctl.tracker.checkpoint import with_run_choices
from dualctl.tracker.config import MODALITIES, TrackerConfig
from dualctl.tracker.fastpath import StackedFastPath
from dualctl.tracker.grip import GripReflex
from dualctl.tracker.jepa import JepaTracker, load_tracker
from dualctl.types import Action, Observation


class EnsembleTracker(Tracker):
    """The mean action of ``members``, which must read the same cameras and lookahead."""

    def __init__(self, members: Sequence[JepaTracker]):
        if len(members) < 2:
            raise ConfigError("tracker.ensemble", len(members), "at least 2 members")
        first = members[0]
        for member in members[1:]:
            if member.cameras != first.cameras:
                raise ConfigError("tracker.ensemble cameras", member.cameras,
                                  f"the first member's {first.cameras}")  # fmt: skip
            if abs(member.lookahead_s - first.lookahead_s) > 1e-9:
                raise ConfigError("tracker.ensemble lookahead_s", member.lookahead_s,
                                  f"the first member's {first.lookahead_s} s")  # fmt: skip
        self.members = list(members)
        self.cameras = first.cameras
        self.lookahead_s = first.lookahead_s
        self.latent_dim = sum(m.latent_dim for m in self.members)
        # Where each member's part starts in the view (scene + wrist latents) and reference.
        self._view_splits = np.cumsum([m.latent_dim * len(m.cameras) for m in members])[:-1]
        self._reference_splits = np.cumsum([m.latent_dim for m in members])[:-1]
        for member in self.members[1:]:
            member.grip_reflex = None  # one reflex decides the grasp
            member.grasp_pose_reader = member.grasp_servo = None  # and one servo the approach
            member.hand_pose_reader = member.carry_servo = None  # and the carry
            member.place_pose_reader = member.place_servo = None  # and the set-down
        self.stacked = _stacked_fast_path(self.members)

    @property
    def grip_reflex(self) -> GripReflex | None:
        return self.members[0].grip_reflex

    @grip_reflex.setter
    def grip_reflex(self, reflex: GripReflex | None) -> None:
        self.members[0].grip_reflex = reflex

    @property
    def reference_dim(self) -> int:
        """Every member's scene latent, then the first member's hand-pose reading if any."""
        return self.latent_dim + self.members[0].reference_dim - self.members[0].latent_dim

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) frames -> every member's scene latents side by side (N, latent_dim),
        then the first member's hand-pose reading if it has a reader."""
        parts = [m.encode_scene(frames) for m in self.members]
        reader = self.members[0].hand_pose_reader
        return np.concatenate(parts + ([reader.read_many(frames)] if reader else []), axis=1)

    def encode_view(self, images: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([m.encode_view(images) for m in self.members])

    def act(self, observation: Observation, latent: np.ndarray, reference: np.ndarray) -> Action:
        first = self.members[0]
        reference, hand = reference[: self.latent_dim], reference[self.latent_dim :]
        hand = hand if len(hand) else None
        if self.stacked is not None:  # members of one latent size, one camera each
            members = len(self.members)
            mean = self.stacked.mean_action(
                latent.reshape(members, -1), reference.reshape(members, -1),
                observation.proprio, first.sensor_histories(observation),
                (first.force_missing, first.tactile_missing),
            )  # fmt: skip
            return first.finish(observation, mean, hand)
        views = np.split(latent, self._view_splits)
        references = np.split(reference, self._reference_splits)
        vectors = [
            member.action_vector(observation, view, ref)
            for member, view, ref in zip(self.members, views, references, strict=True)
        ]
        mean = np.mean(vectors, axis=0).astype(np.float32)
        return first.finish(observation, mean, hand)

    def reset(self) -> None:
        for member in self.members:
            member.reset()


def load_ensemble(
    checkpoint_dirs: Iterable[str | Path],
    modalities: Iterable[str] = MODALITIES,
    choices: TrackerConfig | None = None,
    lookahead_s: float | None = None,
) -> EnsembleTracker:
    """An :class:`EnsembleTracker` of the checkpoints in ``checkpoint_dirs``, each loaded as
    :func:`~dualctl.tracker.jepa.load_tracker` loads one, with its own architecture settings
    (members may differ, e.g. in the lookahead they were trained at) and the run-time choices
    of ``choices`` (:func:`~dualctl.tracker.checkpoint.with_run_choices`) when given."""
    modalities = tuple(modalities)
    members = [
        load_tracker(
            folder,
            modalities,
            None if choices is None else with_run_choices(Path(folder), choices),
            lookahead_s,
        )
        for folder in checkpoint_dirs
    ]
    return EnsembleTracker(members)


def _stacked_fast_path(members: Sequence[JepaTracker]) -> StackedFastPath | None:
    """One batched fast path for ``members`` when they can share it (the tracking head on the
    scene camera alone, equal layer shapes, one history length and frame rate, the same
    missing inputs), else None and each member acts on its own."""

    def history_settings(member: JepaTracker) -> tuple:
        c = member.config
        return (c.force_history, c.tactile_history, c.frame_hz, member.force_missing,
                member.tactile_missing)  # fmt: skip

    same = all(history_settings(m) == history_settings(members[0]) for m in members)
    heads = all(m.mpc is None and len(m.cameras) == 1 for m in members)
    paths = [m.fast for m in members]
    return StackedFastPath(paths) if same and heads and StackedFastPath.stackable(paths) else None
