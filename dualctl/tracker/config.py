"""Schema of the ``tracker`` config section.

Architecture fields (those in :data:`ARCHITECTURE_KEYS`) are saved beside a checkpoint and must
match when it is loaded; the rest choose how the tracker runs or trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dualctl.errors import ConfigError, check_choice, check_range

#: Fields that decide the weights' shapes or what they were trained to do; a checkpoint only
#: loads under the same values.
ARCHITECTURE_KEYS = (
    "lookahead_s",
    "encoder",
    "arch",
    "coord_channels",
    "pool",
    "keypoints",
    "keypoint_stage",
    "pose_probe",
    "object_probe",
    "image_size",
    "wrist_camera",
    "latent_dim",
    "hidden_dim",
    "sensor_dim",
    "force_history",
    "tactile_history",
    "vjepa2_hidden_size",
    "vjepa2_layers",
    "vjepa2_patch_size",
)

MODALITIES = ("force", "tactile")
#: Fields a run chooses whatever checkpoint it loads (the rest come from the checkpoint).
RUN_KEYS = (
    "rate_hz", "controller", "drop_force", "drop_tactile", "grip_reflex", "regrasp", "heavy_probe_speed", "guarded_descent",
    "grasp_pose",
    "hand_pose", "place_pose", "mpc",
)  # fmt: skip
#: Behaviour-cloning losses of the tracking head (``tracker.train.head_loss``), by name.
HEAD_LOSSES = ("mse", "l1")


@dataclass
class TrackerTrainConfig:
    """How ``dualctl train tracker`` trains: JEPA + tracking head in one Lightning run, then
    optionally the head alone on the frozen encoder's latents (:mod:`dualctl.tracker.head_stage`).

    Attributes:
        batch_size: windows per step.
        max_steps: optimiser steps of the joint run; 0 skips it (only with ``init``: refit
            the head of that checkpoint in the head stage, e.g. on a DAgger round's data).
        max_minutes: wall-clock cap (min); training stops early and exports when reached.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        ema_start, ema_end: EMA momentum of the target encoder, cosine-ramped over training
            (closer to 1 = slower target; it must lag the online encoder to avoid collapse).
        rollout_weight: weight of the multi-step rollout loss beside the teacher-forced loss.
        var_weight, cov_weight: VICReg variance and covariance terms on online latents.
        head_weight: weight of the tracking head's behaviour-cloning loss.
        head_loss: that loss on normalised actions: "mse" (the mean of the labels seen in a
            state) or "l1" (their median: where the teacher's labels disagree, e.g. up in some
            visits and down in others, the median picks the majority instead of averaging
            the two into a hover; the loss ACT-style chunked policies use).
        pose_weight: weight of the pose probe's loss (``tracker.pose_probe``).
        object_weight: weight of the object probe's loss (``tracker.object_probe``).
        recorded_references: condition the head on the reference an episode recorded as shown
            (DAgger rollouts) where there is one; false uses hindsight frames everywhere.
        modality_dropout: probability of dropping force (and, independently, tactile) per window.
        shift_px: random image shift (pixels) for augmentation.
        colour_jitter: also recolour each window (channel order, brightness), so unseen object
            and table colours do not read as unseen states.
        val_episodes: episodes held back from the training set for validation.
        resume: "" (fresh), "true" (the run's last checkpoint) or a Lightning .ckpt path.
        export: folder to write model.safetensors + config.yaml to ("" = <out>/tracker/export).
        val_every: validate every this many steps.
        reference_min_s, reference_max_s: hindsight references for the head are drawn from
            this range of time ahead (s); reference_max_s = 0 uses exactly lookahead_s.
        max_episodes: use at most this many episodes (0 = all), for quick runs.
        init: "" (fresh weights) or a tracker checkpoint folder to fine-tune from (its weights
            and normalisation statistics; its architecture keys must match), e.g. a DAgger
            round on top of the behaviour-cloned checkpoint.
        head_steps: steps of the head stage after the joint run (0 = none).
        head_batch_size: recorded steps (rows) per head-stage batch.
        head_lr: peak AdamW learning rate of the head stage (one-cycle schedule).
        head_copies: latents cached per frame for the head stage: the frame as it is, plus
            copies shifted by up to ``shift_px`` (augmentation).
    """

    batch_size: int = 32
    max_steps: int = 3000
    max_minutes: float = 18.0
    lr: float = 1e-3
    weight_decay: float = 1e-4
    ema_start: float = 0.99
    ema_end: float = 0.999
    rollout_weight: float = 1.0
    var_weight: float = 1.0
    cov_weight: float = 0.04
    head_weight: float = 1.0
    head_loss: str = "mse"
    pose_weight: float = 1.0
    object_weight: float = 1.0
    recorded_references: bool = True
    modality_dropout: float = 0.3
    shift_px: int = 2
    colour_jitter: bool = False
    val_episodes: int = 16
    resume: str = ""
    export: str = ""
    val_every: int = 250
    reference_min_s: float = 0.0
    reference_max_s: float = 0.0
    max_episodes: int = 0
    init: str = ""
    head_steps: int = 0
    head_batch_size: int = 256
    head_lr: float = 1e-3
    head_copies: int = 4

    def __post_init__(self):
        check_range("tracker.train.batch_size", self.batch_size, 1)
        check_range("tracker.train.max_steps", self.max_steps, 0)
        if self.max_steps == 0 and not (self.init and self.head_steps):
            raise ConfigError("tracker.train.max_steps", 0,
                              "at least 1, or 0 with tracker.train.init and head_steps set "
                              "(refit only the head of that checkpoint)")  # fmt: skip
        check_range("tracker.train.max_minutes", self.max_minutes, 0.1)
        check_range("tracker.train.lr", self.lr, 1e-7, 1.0)
        check_range("tracker.train.weight_decay", self.weight_decay, 0.0, 1.0)
        check_range("tracker.train.ema_start", self.ema_start, 0.0, 1.0)
        check_range("tracker.train.ema_end", self.ema_end, self.ema_start, 1.0)
        weights = ("rollout", "var", "cov", "head", "pose", "object")
        for name in (f"{w}_weight" for w in weights):
            check_range(f"tracker.train.{name}", getattr(self, name), 0.0)
        check_choice("tracker.train.head_loss", self.head_loss, HEAD_LOSSES)
        check_range("tracker.train.modality_dropout", self.modality_dropout, 0.0, 1.0)
        check_range("tracker.train.shift_px", self.shift_px, 0, 16)
        check_range("tracker.train.val_episodes", self.val_episodes, 0)
        check_range("tracker.train.max_episodes", self.max_episodes, 0)
        check_range("tracker.train.val_every", self.val_every, 1)
        check_range("tracker.train.reference_min_s", self.reference_min_s, 0.0, 10.0)
        check_range("tracker.train.reference_max_s", self.reference_max_s, 0.0, 10.0)
        check_range("tracker.train.head_steps", self.head_steps, 0)
        check_range("tracker.train.head_batch_size", self.head_batch_size, 1)
        check_range("tracker.train.head_lr", self.head_lr, 1e-7, 1.0)
        check_range("tracker.train.head_copies", self.head_copies, 1, 64)


@dataclass
class TrackerMpcConfig:
    """Latent MPC (CEM through the predictor), the study/ablation alternative to the head.

    Attributes:
        samples: action sequences per CEM iteration.
        elites: best sequences refitted each iteration.
        iterations: CEM iterations per call.
        horizon: predictor steps (camera frames) per sequence.
    """

    samples: int = 64
    elites: int = 8
    iterations: int = 3
    horizon: int = 4

    def __post_init__(self):
        check_range("tracker.mpc.samples", self.samples, 2)
        check_range("tracker.mpc.elites", self.elites, 1, self.samples)
        check_range("tracker.mpc.iterations", self.iterations, 1)
        check_range("tracker.mpc.horizon", self.horizon, 1, 32)


@dataclass
class ReaderTrainingConfig:
    """How ``dualctl train grasp-pose`` / ``hand-pose`` / ``place-pose`` fit a frame reader
    (:mod:`dualctl.tracker.frame_reader`); the readers' settings below share these fields.

    Attributes:
        camera: the camera the reader is trained on.
        steps: training steps.
        batch_size: frames per training step.
        lr: AdamW learning rate.
        max_minutes: training wall-clock cap (min).
        val_episodes: episodes held back for validation.
        export: folder the trained reader is written to.
    """

    camera: str = "scene"
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    max_minutes: float = 10.0
    val_episodes: int = 40
    export: str = "out/reader"

    def check_training(self, key: str) -> None:
        """Range checks of the training fields, errors named ``<key>.<field>``."""
        check_range(f"{key}.steps", self.steps, 1)
        check_range(f"{key}.batch_size", self.batch_size, 1)
        check_range(f"{key}.lr", self.lr, 1e-7, 1.0)
        check_range(f"{key}.max_minutes", self.max_minutes, 0.1)
        check_range(f"{key}.val_episodes", self.val_episodes, 0)


@dataclass
class GraspPoseConfig(ReaderTrainingConfig):
    """The grasp-pose reader and servo (:mod:`dualctl.tracker.grasp_pose`): a small CNN reads
    the object's place and yaw from the camera, and the arm centres the open hand over it and
    turns it to its faces. Training fields as :class:`ReaderTrainingConfig`.

    Attributes:
        enabled: steer the hand with the servo when a reader is found (false: the head's own
            velocity, e.g. to ablate the servo).
        checkpoint: the reader's folder; "" = the tracker checkpoint's own reader
            (``grasp_pose.safetensors`` beside its weights), if it ships one.
        gain: servo yaw rate (rad/s) per rad of turn still to go.
        max_rate: servo yaw rate limit (rad/s).
        xy_gain: servo sideways speed (m/s) per m still to go (0: the head's own x, y).
        max_speed: servo sideways speed limit (m/s) per axis.
        reach_m: the servo centres the hand only within this distance (m) of the object...
        below_m: ...and below this hand height (m) above the table.
    """

    enabled: bool = True
    checkpoint: str = ""
    gain: float = 6.0
    max_rate: float = 1.5
    xy_gain: float = 6.0
    max_speed: float = 0.1
    reach_m: float = 0.06
    below_m: float = 0.14
    export: str = "out/grasp_pose"

    def __post_init__(self):
        check_range("tracker.grasp_pose.gain", self.gain, 0.0, 100.0)
        check_range("tracker.grasp_pose.max_rate", self.max_rate, 0.0, 10.0)
        check_range("tracker.grasp_pose.xy_gain", self.xy_gain, 0.0, 100.0)
        check_range("tracker.grasp_pose.max_speed", self.max_speed, 0.0, 1.0)
        check_range("tracker.grasp_pose.reach_m", self.reach_m, 0.0, 1.0)
        check_range("tracker.grasp_pose.below_m", self.below_m, 0.0, 2.0)
        self.check_training("tracker.grasp_pose")


@dataclass
class HandPoseConfig(ReaderTrainingConfig):
    """The hand-pose reader and carry servo (:mod:`dualctl.tracker.hand_pose`): a small CNN
    reads the gripper's place off each reference frame, and while the hand carries something
    the arm moves toward where the reference shows it. Training fields as
    :class:`ReaderTrainingConfig`.

    Attributes:
        enabled: steer a carrying hand with the servo when a reader is found. Off by default:
            on the oracle reference it carries Place's blocks to the pad, but on the planner's
            plans 1 s late it follows readings that jump from plan to plan (closed loop, seeds
            0-39: 103/160 without delay and 81/160 with 1 s, against 103 and 90 without it).
            The oracle and DAgger benches turn it on (``--hand-pose``).
        checkpoint: the reader's folder; "" = the tracker checkpoint's own reader
            (``hand_pose.safetensors`` beside its weights), if it ships one.
        gain: servo speed (m/s) per m still to go.
        max_speed: servo speed limit (m/s) per axis.
        max_accel: servo acceleration limit (m/s^2) per axis.
        engage_m: the servo engages once the reference's hand is this far (m) across the table
            from the hand (0: as soon as it carries).
        lift_m: before that, a carrying hand rises toward the reference's hand once that is
            more than this (m) higher (never slower than the head asks); a large value turns
            it off.
        lift_speed: at up to this speed (m/s).
    """

    enabled: bool = False
    checkpoint: str = ""
    gain: float = 4.0
    max_speed: float = 0.1
    max_accel: float = 1.0
    engage_m: float = 0.05
    lift_m: float = 0.005
    lift_speed: float = 0.03
    steps: int = 3000
    export: str = "out/hand_pose"

    def __post_init__(self):
        check_range("tracker.hand_pose.gain", self.gain, 0.0, 100.0)
        check_range("tracker.hand_pose.max_speed", self.max_speed, 0.0, 1.0)
        check_range("tracker.hand_pose.max_accel", self.max_accel, 0.01, 100.0)
        check_range("tracker.hand_pose.engage_m", self.engage_m, 0.0, 1.0)
        check_range("tracker.hand_pose.lift_m", self.lift_m, 0.0, 10.0)
        check_range("tracker.hand_pose.lift_speed", self.lift_speed, 0.0, 1.0)
        self.check_training("tracker.hand_pose")


@dataclass
class PlacePoseConfig(ReaderTrainingConfig):
    """The place-pose reader and servo (:mod:`dualctl.tracker.place_pose`): a small CNN reads
    whether the table holds a target pad and where, and a carry that heads for it ends over
    its centre, lowered there. Training fields as :class:`ReaderTrainingConfig`.

    Attributes:
        enabled: steer a carry with the servo when a reader is found (false: the head's own,
            e.g. to ablate it).
        checkpoint: the reader's folder; "" = the tracker checkpoint's own reader
            (``place_pose.safetensors`` beside its weights), if it ships one.
        gain: servo speed (m/s) per m still to go.
        max_speed: servo speed limit (m/s) per axis.
        engage_m: the servo engages once the hand has carried its object this far (m) across
            the table...
        min_cosine: ...in a direction whose cosine with the pad's is at least this.
        over_m: within this distance (m) of the pad's centre the hand lowers...
        lower_speed: ...at this speed (m/s) for the last centimetre above the height it
            picked the object at (faster, up to ``max_speed``, above that).
    """

    enabled: bool = True
    checkpoint: str = ""
    gain: float = 4.0
    max_speed: float = 0.1
    engage_m: float = 0.03
    min_cosine: float = 0.7
    over_m: float = 0.01
    lower_speed: float = 0.02
    steps: int = 2000
    export: str = "out/place_pose"

    def __post_init__(self):
        check_range("tracker.place_pose.gain", self.gain, 0.0, 100.0)
        check_range("tracker.place_pose.max_speed", self.max_speed, 0.0, 1.0)
        check_range("tracker.place_pose.engage_m", self.engage_m, 0.0, 1.0)
        check_range("tracker.place_pose.min_cosine", self.min_cosine, -1.0, 1.0)
        check_range("tracker.place_pose.over_m", self.over_m, 0.0, 0.1)
        check_range("tracker.place_pose.lower_speed", self.lower_speed, 0.001, 0.5)
        self.check_training("tracker.place_pose")


@dataclass
class TrackerConfig:
    """System 1 settings.

    Attributes:
        rate_hz: control (fast-path) rate, Hz.
        checkpoint: folder with model.safetensors + config.yaml to run from.
        controller: "head" (tracking head, fast, default) or "mpc" (latent CEM, slow, study).
        drop_force, drop_tactile: run without that modality (inputs zeroed, "missing" flag set,
            as seen in training through modality dropout).
        grip_reflex: set the grip force from touch with the slip reflex
            (:mod:`dualctl.tracker.grip`) instead of the head's force output; it needs tactile
            input and is off whenever tactile is dropped.
        regrasp: with the grip reflex, open and lift clear when the fingers close on nothing
            or on top of the object (needs the wrist force), and let the head try again
            (:class:`dualctl.tracker.grip.GripReflex`).
        heavy_probe_speed: with the grip reflex, its probing lift speed (m/s) once the probe's
            force is past ``grip.HEAVY_GRIP_N`` (a heavy object). The default keeps its usual
            0.02 m/s: 0.015 takes the oracle bench's Fragile from 41 to 45 of 50 but the closed
            loop's from 29 to 26 of 40.
        guarded_descent: with the grip reflex and the grasp-pose servo, lower an open hand the
            head holds still over the object until it meets something, then close it
            (:mod:`dualctl.tracker.descent`). On: closed loop (seeds 0-39) 112/160 against
            103/160 without it, 95/160 against 90/160 with 1 s of planner delay.
        grasp_pose: the grasp-pose reader and servo (off unless its checkpoint is set).
        hand_pose: the hand-pose reader and carry servo (off unless its checkpoint is set).
        place_pose: the place-pose reader and servo (off unless its checkpoint is set).
        lookahead_s: s ahead of now the reference latent is taken from the plan.
        ensemble: more tracker checkpoint folders acting with ``checkpoint`` as one
            (:mod:`dualctl.tracker.ensemble`: their actions averaged, one grip reflex); they
            must read the same cameras and run at one lookahead ([] = ``checkpoint`` alone).
        encoder: image encoder backend, "timm" or "vjepa2" (transformers VJEPA2Model).
        arch: timm architecture name (built with pretrained=False).
        encoder_weights: optional local weights file (.safetensors/.pth) for the image encoder,
            or a local VJEPA2 checkpoint folder; "" trains from scratch.
        coord_channels: append x/y coordinate planes to the image so pooled features keep
            where things are.
        pool: how the timm encoder's feature maps become the latent: "flatten" (the last map
            flattened, so a unit stands for a place) or "keypoints" (spatial-softmax keypoint
            coordinates from an early map plus the last map average-pooled, see
            :class:`dualctl.tracker.encoders.KeypointImageEncoder`; ignores coord_channels).
        keypoints: keypoints found by the "keypoints" pool.
        keypoint_stage: the timm feature stage (``features_only`` index, 0 = finest) the
            keypoints are found on.
        pose_probe: train a linear probe from a latent to the gripper pose and opening seen in
            that frame (proprio x, y, z, yaw, width), which makes the latent carry the
            geometry; the head also gets the probe's pose of the reference minus that of the
            current latent (where the reference wants the gripper, from the images alone).
        object_probe: train a linear probe from the current latent to the object's yaw (sin
            and cos of 4 x yaw, a box repeating every quarter turn; privileged sim labels, see
            :mod:`dualctl.data.privileged`), which makes the latent carry the turn the world
            model and cloning losses leave out; the head also gets the probe's output and the
            gap from the gripper's yaw to the face it reads (the turn to make).
        image_size: square image side the encoder takes, pixels.
        camera: camera whose frames are encoded.
        wrist_camera: a second, hand-mounted camera ("" = none, "wrist" in the sim) whose
            current frame a separate encoder embeds for the head alone: it shows the object
            between the fingers (offset and turn to a few mm and degrees), which the scene
            camera at 64x64 (~6 mm per pixel) cannot. References stay scene frames.
        frame_hz: camera/record rate (Hz) the model was trained at; set from the dataset.
        latent_dim: size of the visual latent.
        hidden_dim: width of the predictor and head MLPs.
        sensor_dim: feature size of each of the force and tactile encoders.
        force_history: wrench samples (one per camera frame period) the force encoder sees.
        tactile_history: tactile frames (one per camera frame period) the tactile encoder sees;
            1 = the current one only.
        horizon: predictor rollout steps in training (camera frames).
        vjepa2_hidden_size, vjepa2_layers, vjepa2_patch_size: tiny VJEPA2 config when no
            local checkpoint is given.
    """

    rate_hz: float = 200.0
    checkpoint: str = "checkpoints/tracker"
    ensemble: list[str] = field(default_factory=list)
    controller: str = "head"
    drop_force: bool = False
    drop_tactile: bool = False
    grip_reflex: bool = True
    regrasp: bool = False
    heavy_probe_speed: float = 0.02
    guarded_descent: bool = True
    grasp_pose: GraspPoseConfig = field(default_factory=GraspPoseConfig)
    hand_pose: HandPoseConfig = field(default_factory=HandPoseConfig)
    place_pose: PlacePoseConfig = field(default_factory=PlacePoseConfig)
    lookahead_s: float = 0.5
    encoder: str = "timm"
    arch: str = "test_resnet"
    encoder_weights: str = ""
    coord_channels: bool = True
    pool: str = "flatten"
    keypoints: int = 32
    keypoint_stage: int = 1
    pose_probe: bool = False
    object_probe: bool = False
    image_size: int = 64
    camera: str = "scene"
    wrist_camera: str = ""
    frame_hz: float = 20.0
    latent_dim: int = 64
    hidden_dim: int = 256
    sensor_dim: int = 32
    force_history: int = 4
    tactile_history: int = 1
    horizon: int = 4
    vjepa2_hidden_size: int = 64
    vjepa2_layers: int = 2
    vjepa2_patch_size: int = 8
    train: TrackerTrainConfig = field(default_factory=TrackerTrainConfig)
    mpc: TrackerMpcConfig = field(default_factory=TrackerMpcConfig)

    def __post_init__(self):
        check_range("tracker.rate_hz", self.rate_hz, 1.0, 1000.0)
        check_choice("tracker.controller", self.controller, ("head", "mpc"))
        check_range("tracker.lookahead_s", self.lookahead_s, 0.0, 5.0)
        check_range("tracker.heavy_probe_speed", self.heavy_probe_speed, 0.001, 0.1)
        check_choice("tracker.encoder", self.encoder, ("timm", "vjepa2"))
        check_choice("tracker.pool", self.pool, ("flatten", "keypoints"))
        check_range("tracker.keypoints", self.keypoints, 1, 1024)
        check_range("tracker.keypoint_stage", self.keypoint_stage, 0, 16)
        check_range("tracker.image_size", self.image_size, 16, 256)
        check_range("tracker.frame_hz", self.frame_hz, 1.0, 120.0)
        check_range("tracker.latent_dim", self.latent_dim, 4, 4096)
        check_range("tracker.hidden_dim", self.hidden_dim, 8, 4096)
        check_range("tracker.sensor_dim", self.sensor_dim, 2, 1024)
        check_range("tracker.force_history", self.force_history, 1, 64)
        check_range("tracker.tactile_history", self.tactile_history, 1, 64)
        check_range("tracker.horizon", self.horizon, 1, 32)
        if self.wrist_camera and self.train.head_steps:
            raise ConfigError("tracker.train.head_steps", self.train.head_steps,
                              "0 with tracker.wrist_camera set (the head stage caches scene "
                              "latents only)")  # fmt: skip
        check_range("tracker.vjepa2_hidden_size", self.vjepa2_hidden_size, 8)
        check_range("tracker.vjepa2_layers", self.vjepa2_layers, 1)
        check_range("tracker.vjepa2_patch_size", self.vjepa2_patch_size, 2)

    @property
    def lookahead_frames(self) -> int:
        """The lookahead in camera frames (what hindsight references are trained with)."""
        return max(1, round(self.lookahead_s * self.frame_hz))

    @property
    def dropped(self) -> tuple[str, ...]:
        """Modalities this config runs without."""
        return tuple(m for m, d in zip(MODALITIES, (self.drop_force, self.drop_tactile)) if d)
