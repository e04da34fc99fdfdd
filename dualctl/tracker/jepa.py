"""The JEPA tracker the runtime drives: torch for ``encode`` (camera rate), numpy for ``act``
(every tick), and :func:`load_tracker` to build it from a checkpoint. When the checkpoint
ships a grasp-pose reader (or ``tracker.grasp_pose.checkpoint`` names one), it centres the open
hand over the object and turns it to its faces (:mod:`dualctl.tracker.grasp_pose`); with a
place-pose reader, a carry that heads for the target pad ends over it
(:mod:`dualctl.tracker.place_pose`). With a
hand-pose reader enabled (``tracker.hand_pose``, off in the runtime by default), every
reference latent ``encode`` returns ends with the hand position that reader sees in the frame,
and a hand carrying something moves toward the reference's (:mod:`dualctl.tracker.hand_pose`).

Missing inputs: a dropped modality (``drop_force``/``drop_tactile``) is fed as zeros with its
"missing" flag set, which the model saw in training through modality dropout; without tactile
the grip reflex is off and the head's own grip force is used. The wrench history holds one
sample per camera-frame period (what training windows hold), the newest slot refreshed every
tick; so does the tactile history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dualctl.errors import ConfigError, check_choice
from dualctl.tracker.base import Tracker, camera_frame
from dualctl.tracker.checkpoint import check_compatible, load_checkpoint
from dualctl.tracker.config import MODALITIES, TrackerConfig
from dualctl.tracker.descent import GuardedDescent
from dualctl.tracker.fastpath import FastPath
from dualctl.tracker.grasp_pose import WEIGHTS as GRASP_POSE_WEIGHTS
from dualctl.tracker.grasp_pose import GraspPoseNet, GraspServo, load_grasp_pose
from dualctl.tracker.grip import GripReflex
from dualctl.tracker.hand_pose import READING_DIM, CarryServo, HandPoseNet, load_hand_pose
from dualctl.tracker.hand_pose import WEIGHTS as HAND_POSE_WEIGHTS
from dualctl.tracker.model import TrackerNet, images_to_float
from dualctl.tracker.mpc import LatentMPC
from dualctl.tracker.place_pose import WEIGHTS as PLACE_POSE_WEIGHTS
from dualctl.tracker.place_pose import PlacePoseNet, PlaceServo, load_place_pose
from dualctl.types import Action, Observation

_ZERO_WRENCH = np.zeros(6, np.float32)


class FrameHistory:
    """The last ``length`` samples of a stream, one per ``period_s`` (the camera-frame period
    training windows are spaced by); the newest slot is overwritten on every tick in between."""

    def __init__(self, length: int, period_s: float):
        self.length, self.period_s = length, period_s
        self.reset()

    def reset(self) -> None:
        self.values: np.ndarray | None = None
        self.slot_time = 0.0

    def update(self, value: np.ndarray, time_s: float) -> np.ndarray:
        """Record ``value`` sampled at ``time_s`` (s); the history, oldest first."""
        if self.values is None:
            self.values = np.repeat(value[None], self.length, 0).astype(np.float32)
            self.slot_time = time_s
        elif time_s - self.slot_time >= self.period_s:
            self.values[:-1] = self.values[1:]
            self.slot_time = time_s
        self.values[-1] = value
        return self.values


def channels_last_convolutions(net: nn.Module) -> nn.Module:
    """``net`` with its 2-D convolution weights channels-last, in place: camera frames arrive
    (H, W, 3), so the images already are, and with both so a 64x64 encode costs ~25-35 % less
    on one core (bench/tracker_latency.py). Same results, other memory layout."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            module.to(memory_format=torch.channels_last)
    return net


class JepaTracker(Tracker):
    """System 1 on a trained :class:`TrackerNet` (see the module doc for missing inputs)."""

    def __init__(self, net: TrackerNet, config: TrackerConfig):
        self.net = channels_last_convolutions(net.eval())
        self.config = config
        self.latent_dim = config.latent_dim
        self.cameras = (
            (config.camera, config.wrist_camera) if config.wrist_camera else (config.camera,)
        )
        self.lookahead_s = config.lookahead_s
        self.force_missing = config.drop_force
        self.tactile_missing = config.drop_tactile
        self.fast = FastPath(net)
        self.mpc = (
            LatentMPC(net, config.mpc, config.lookahead_frames)
            if config.controller == "mpc"
            else None
        )
        self.wrench_history = FrameHistory(config.force_history, 1.0 / config.frame_hz)
        self.tactile_history = FrameHistory(config.tactile_history, 1.0 / config.frame_hz)
        use_reflex = config.grip_reflex and not config.drop_tactile
        self.grip_reflex = (
            GripReflex(1.0 / config.frame_hz, config.regrasp, config.heavy_probe_speed)
            if use_reflex
            else None
        )
        self.grasp_pose_reader, self.grasp_servo = self._grasp_pose(config)
        self.hand_pose_reader, self.carry_servo = self._hand_pose(config)
        self.place_pose_reader, self.place_servo = self._place_pose(config)
        use_descent = (config.guarded_descent and self.grip_reflex is not None
                       and self.grasp_servo is not None)  # fmt: skip
        self.descent = GuardedDescent() if use_descent else None
        self.reset()

    @property
    def reference_dim(self) -> int:
        """Size of the reference vectors :meth:`encode` returns: the scene latent, then the
        hand-pose reading (m) when there is a reader."""
        return self.latent_dim + (READING_DIM if self.hand_pose_reader is not None else 0)

    def _grasp_pose(self, config: TrackerConfig) -> tuple[GraspPoseNet | None, GraspServo | None]:
        """The grasp-pose reader and its servo when one is set and enabled."""
        settings = config.grasp_pose
        if not (settings.enabled and settings.checkpoint):
            return None, None
        reader = self._scene_reader("grasp_pose", settings.checkpoint, load_grasp_pose)
        servo = GraspServo(settings.gain, settings.max_rate, settings.xy_gain, settings.max_speed,
                           settings.reach_m, settings.below_m)  # fmt: skip
        return reader, servo

    def _scene_reader(self, key: str, checkpoint: str, load):
        """The reader ``load`` finds in ``checkpoint``, which must read a camera this tracker
        reads (else a ConfigError on ``tracker.<key>.checkpoint``)."""
        reader = load(checkpoint)
        if reader.config.camera not in self.cameras:
            raise ConfigError(f"tracker.{key}.checkpoint", checkpoint,
                              f"a reader of a camera this tracker reads {self.cameras}, not "
                              f"'{reader.config.camera}'")  # fmt: skip
        return reader

    def _hand_pose(self, config: TrackerConfig) -> tuple[HandPoseNet | None, CarryServo | None]:
        """The hand-pose reader and the carry servo when one is set and enabled."""
        settings = config.hand_pose
        if not (settings.enabled and settings.checkpoint):
            return None, None
        reader = load_hand_pose(settings.checkpoint)
        if reader.config.camera != config.camera:
            raise ConfigError("tracker.hand_pose.checkpoint", settings.checkpoint,
                              f"a reader of the camera plans imitate ('{config.camera}'), not "
                              f"'{reader.config.camera}'")  # fmt: skip
        servo = CarryServo(settings.gain, settings.max_speed, settings.max_accel,
                           settings.engage_m, settings.lift_m, settings.lift_speed)  # fmt: skip
        return reader, servo

    def _place_pose(self, config: TrackerConfig) -> tuple[PlacePoseNet | None, PlaceServo | None]:
        """The place-pose reader and its servo when one is set and enabled (and the grip
        reflex, which says when the hand carries something and lets go on the pad, is on)."""
        settings = config.place_pose
        if not (settings.enabled and settings.checkpoint and self.grip_reflex is not None):
            return None, None
        reader = self._scene_reader("place_pose", settings.checkpoint, load_place_pose)
        servo = PlaceServo(settings.gain, settings.max_speed, settings.engage_m,
                           settings.min_cosine, settings.over_m, settings.lower_speed)  # fmt: skip
        return reader, servo

    def reset(self) -> None:
        self.wrench_history.reset()
        self.tactile_history.reset()
        if self.grip_reflex is not None:
            self.grip_reflex.reset()
        if self.grasp_servo is not None:
            self.grasp_servo.reset()
        if self.carry_servo is not None:
            self.carry_servo.reset()
        if self.place_servo is not None:
            self.place_servo.reset()
        if self.descent is not None:
            self.descent.reset()
        if self.mpc is not None:
            self.mpc.reset()

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 reference frames -> (N, reference_dim) float32: the scene latent,
        then the hand-pose reader's reading (m) if there is a reader."""
        latents = self.encode_scene(frames)
        if self.hand_pose_reader is None:
            return latents
        return np.concatenate([latents, self.hand_pose_reader.read_many(frames)], 1)

    @torch.inference_mode()
    def encode_scene(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 frames -> (N, latent_dim) float32 scene latents."""
        images = images_to_float(torch.from_numpy(np.ascontiguousarray(frames)),
                                 self.config.image_size)  # fmt: skip
        return self.net.encode(images).numpy()

    @torch.inference_mode()
    def encode_view(self, images: dict[str, np.ndarray]) -> np.ndarray:
        """The scene camera's latent, followed by the wrist camera's features if it has one
        (and the grasp-pose reader's reading of the view, kept by its servo)."""
        if self.grasp_servo is not None and self.grasp_servo.armed:
            reader = self.grasp_pose_reader
            self.grasp_servo.see(reader.read(camera_frame(images, reader.config.camera)))
        if self.place_servo is not None and self.place_servo.armed:
            reader = self.place_pose_reader
            self.place_servo.see(reader.read(camera_frame(images, reader.config.camera)))
        latents = [self.encode_scene(camera_frame(images, self.config.camera)[None])[0]]
        if self.config.wrist_camera:
            wrist = camera_frame(images, self.config.wrist_camera)[None]
            pixels = images_to_float(torch.from_numpy(np.ascontiguousarray(wrist)),
                                     self.config.image_size)  # fmt: skip
            latents.append(self.net.encode_wrist(pixels)[0].numpy())
        return np.concatenate(latents)

    def act(self, observation: Observation, latent: np.ndarray, reference: np.ndarray) -> Action:
        scene, hand = reference[: self.latent_dim], reference[self.latent_dim :]
        vector = self.action_vector(observation, latent, scene)
        return self.finish(observation, vector, hand if len(hand) else None)

    def action_vector(
        self, observation: Observation, latent: np.ndarray, reference: np.ndarray
    ) -> np.ndarray:
        """The head's (or latent MPC's) raw action in SI units, ``ACTION_FIELDS`` order, before
        the grip reflex; updates the force and touch histories."""
        wrenches, touches = self.sensor_histories(observation)
        context = self.fast.context(
            observation.proprio, wrenches, touches, self.force_missing, self.tactile_missing
        )
        vector = self.fast.action(latent, reference, context)
        if self.mpc is not None:
            a_mean, a_std = self.fast.stats["action"]
            start = (vector - a_mean) / a_std
            scene = latent[: self.latent_dim]  # the world model predicts scene latents only
            vector = self.mpc.plan(scene, reference, context, start) * a_std + a_mean
        return vector

    def sensor_histories(self, observation: Observation) -> tuple[np.ndarray, np.ndarray]:
        """The wrench (K, 6) and tactile (T, *TACTILE_SHAPE) histories with ``observation``
        recorded, oldest first."""
        wrench = _ZERO_WRENCH if self.force_missing else observation.wrench
        stamps = observation.stamps
        wrenches = self.wrench_history.update(wrench, stamps.get("wrench", observation.timestamp))
        touches = self.tactile_history.update(
            observation.tactile, stamps.get("tactile", observation.timestamp)
        )
        return wrenches, touches

    def finish(
        self, observation: Observation, vector: np.ndarray, hand_goal: np.ndarray | None = None
    ) -> Action:
        """A raw action vector -> the command: the servos and the grip reflex applied, the
        gripper clipped. ``hand_goal`` is the reference's hand position (m), if read."""
        action = Action.from_array(vector, timestamp=observation.timestamp)
        if self.grasp_servo is not None:
            action = self.grasp_servo(action, observation)
        if self.descent is not None:
            object_xy = self.grasp_servo.object_xy
            action = self.descent(action, observation, object_xy, self.grip_reflex.state)
        if self.carry_servo is not None:
            if hand_goal is not None and self._carrying():
                action = self.carry_servo(action, observation, hand_goal, self.grip_reflex.grasp_z)
            else:
                self.carry_servo.idle()
        if self.place_servo is not None:
            pick_z = self.grip_reflex.grasp_z
            action = self.place_servo(action, observation, self._carrying(), pick_z)
        if self.grip_reflex is not None:
            wrench = _ZERO_WRENCH if self.force_missing else observation.wrench
            action = self.grip_reflex(
                action, observation.tactile, observation.timestamp, observation.proprio, wrench
            )
        return Action(action.ee_velocity, action.gripper.clipped(), action.timestamp)

    def _carrying(self) -> bool:
        """Whether the grip reflex holds something it has found carried (as of the last tick)."""
        return self.grip_reflex is not None and self.grip_reflex.state == "carrying"


#: Reader settings of TrackerConfig -> the weights file such a reader ships as.
READERS = {
    "grasp_pose": GRASP_POSE_WEIGHTS,
    "hand_pose": HAND_POSE_WEIGHTS,
    "place_pose": PLACE_POSE_WEIGHTS,
}


def with_own_readers(config: TrackerConfig, checkpoint_dir: Path) -> TrackerConfig:
    """``config`` reading the grasp-, hand- and place-pose readers the tracker checkpoint ships
    beside its weights where no other reader is named (``tracker.<reader>.checkpoint`` empty)."""
    for key, weights in READERS.items():
        settings = getattr(config, key)
        if not settings.checkpoint and (checkpoint_dir / weights).is_file():
            config = replace(config, **{key: replace(settings, checkpoint=str(checkpoint_dir))})
    return config


def load_tracker(
    checkpoint_dir: str | Path,
    modalities: Iterable[str] = MODALITIES,
    config: TrackerConfig | None = None,
    lookahead_s: float | None = None,
) -> JepaTracker:
    """A tracker from ``checkpoint_dir`` using only ``modalities`` (others run as missing).

    ``config``, when given, sets the run-time choices (controller, lookahead, MPC, dropped
    modalities, besides ``modalities``); its architecture keys must match the checkpoint's,
    else :class:`~dualctl.errors.CheckpointError` names the differences. ``lookahead_s``
    overrides the lookahead alone; like one in ``config`` it must lie in the range of
    reference times the head was trained on.
    """
    net, saved = load_checkpoint(Path(checkpoint_dir))
    modalities = tuple(modalities)
    for name in modalities:
        check_choice("tracker modalities", name, MODALITIES)
    run = saved
    if config is not None:
        check_compatible(Path(checkpoint_dir), saved, config)
        # Run-time settings from the caller; what the data fixed at training from the checkpoint.
        run = TrackerConfig(**{**vars(config), "frame_hz": saved.frame_hz})
    if lookahead_s is not None:
        run = replace(run, lookahead_s=lookahead_s)
        check_compatible(Path(checkpoint_dir), saved, run)
    run = with_own_readers(run, Path(checkpoint_dir))
    run.drop_force = run.drop_force or "force" not in modalities
    run.drop_tactile = run.drop_tactile or "tactile" not in modalities
    return JepaTracker(net, run)
