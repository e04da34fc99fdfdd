"""The place-pose reader and servo: the servo leaves a lift in place and a carry elsewhere to
the head, takes a carry that heads for the pad over its centre without letting it down, then
lowers it there (fast down to just above the height it was picked at); it does nothing without a pad or a carried object; the reader learns whether
there is a pad and where from frames, round-trips through its checkpoint, and bad checkpoints
and settings give clear errors; the tracker wires both in."""

import json

import numpy as np
import pytest
import torch

from dualctl.config import TrainerConfig, load_config
from dualctl.data.dataset import EpisodeStore
from dualctl.data.episode import Episode, write_dataset_info, write_episode
from dualctl.data.privileged import pad_labels
from dualctl.errors import CheckpointError, ConfigError, DataError
from dualctl.tracker.config import PlacePoseConfig
from dualctl.tracker.frame_reader import ReaderConfig
from dualctl.tracker.grip import SlipProbe
from dualctl.tracker.jepa import JepaTracker
from dualctl.tracker.place_pose import (
    CONFIG,
    WEIGHTS,
    XY_SCALE,
    PlacePoseNet,
    PlaceServo,
    load_place_pose,
    save_place_pose,
)
from dualctl.tracker.place_pose_train import train_place_pose
from dualctl.types import (
    ACTION_DIM,
    GRIPPER_STROKE_M,
    PROPRIO_DIM,
    PROPRIO_FIELDS,
    TACTILE_SHAPE,
    Action,
    GripperCommand,
    Observation,
)

from .conftest import RATE_HZ, SIZE
from .test_model import trained_parts

X, Y, Z, WIDTH = (PROPRIO_FIELDS.index(k) for k in ("ee_x", "ee_y", "ee_z", "width"))
#: The servo's defaults (tracker.place_pose).
SERVO = dict(gain=4.0, max_speed=0.1, engage_m=0.03, min_cosine=0.7, over_m=0.01,
             lower_speed=0.02)  # fmt: skip
PAD = (0.1, 0.0)


def observe(xy=(0.0, 0.0), z: float = 0.08, touch: float = 0.0) -> Observation:
    proprio = np.zeros(PROPRIO_DIM, np.float32)
    proprio[[X, Y, Z]] = (*xy, z)
    tactile = np.zeros(TACTILE_SHAPE, np.float32)
    tactile[0, 0, 0, 0] = touch
    return Observation(0.0, {}, proprio, np.zeros(6, np.float32), tactile)


def head(vz: float = -0.05) -> Action:
    return Action(np.array([0.0, 0.05, vz, 0.2], np.float32), GripperCommand(0.0, 0.1, 20.0))


def unchanged(action: Action) -> bool:
    """Whether ``action`` is the :func:`head` action as it was."""
    return bool(np.array_equal(action.ee_velocity, head().ee_velocity)) and (
        action.gripper == head().gripper
    )


def servo_seeing(pad=PAD, logit: float = 3.0) -> PlaceServo:
    servo = PlaceServo(**SERVO)
    servo.see(np.array([logit, *pad]))
    return servo


def test_a_carry_toward_the_pad_ends_over_it_and_comes_down_there():
    servo = servo_seeing()
    assert unchanged(servo(head(), observe((0.0, 0.0)), carrying=True))  # took hold here
    short = servo(head(), observe((0.02, 0.0)), carrying=True)
    assert not servo.engaged and unchanged(short)  # 2 cm: still the head's
    across = servo(head(), observe((0.04, 0.01)), carrying=True)
    assert servo.engaged
    np.testing.assert_allclose(across.ee_velocity, [0.1, -0.04, 0.0, 0.2], atol=1e-6)
    assert across.gripper == head().gripper  # the grip and the yaw stay the head's
    up = servo(head(vz=0.03), observe((0.07, 0.0)), carrying=True)
    assert up.ee_velocity[2] == pytest.approx(0.03)  # a lift is kept, a descent is not
    over = servo(head(vz=0.03), observe((0.095, 0.0)), carrying=True)
    np.testing.assert_allclose(over.ee_velocity[:3], [0.02, 0.0, -0.02], atol=1e-6)
    high = servo(head(), observe((0.095, 0.0), z=0.1), carrying=True, pick_z=0.03)
    assert high.ee_velocity[2] == pytest.approx(-0.1)  # 6 cm above the landing: fast
    near = servo(head(), observe((0.095, 0.0), z=0.05), carrying=True, pick_z=0.03)
    assert near.ee_velocity[2] == pytest.approx(-0.04)  # slowing: 4 /s x 1 cm
    low = servo(head(), observe((0.095, 0.0), z=0.04), carrying=True, pick_z=0.035)
    assert low.ee_velocity[2] == pytest.approx(-0.02)  # the last centimetre: lower_speed


def test_a_lift_in_place_or_a_carry_elsewhere_stays_the_heads():
    servo = servo_seeing()
    servo(head(), observe((0.0, 0.0)), carrying=True)
    assert unchanged(servo(head(), observe((0.0, 0.0), z=0.2), carrying=True))
    assert unchanged(servo(head(), observe((-0.05, 0.02)), carrying=True))  # away from the pad
    assert not servo.engaged


def test_without_a_pad_or_a_carried_object_the_head_acts():
    absent = servo_seeing(logit=-2.0)
    assert absent.pad_xy is None
    absent(head(), observe(), carrying=True)
    assert unchanged(absent(head(), observe((0.05, 0.0)), carrying=True))
    servo = servo_seeing()
    assert unchanged(servo(head(), observe((0.05, 0.0)), carrying=False))
    servo(head(), observe((0.05, 0.0)), carrying=True)  # a new hold starts here, near the pad
    assert not unchanged(servo(head(), observe((0.085, 0.0)), carrying=True))
    assert servo.engaged
    servo(head(), observe((0.085, 0.0)), carrying=False)  # let go: the next carry starts anew
    assert not servo.engaged


def test_the_estimate_is_the_mean_of_the_readings_before_the_first_touch():
    servo = servo_seeing((0.1, 0.0))
    servo.see(np.array([1.0, 0.12, 0.02]))
    np.testing.assert_allclose(servo.pad_xy, [0.11, 0.01])
    servo(head(), observe(touch=1.0), carrying=False)
    assert not servo.armed
    servo.see(np.array([1.0, -0.5, -0.5]))  # after a touch the view may hide the pad: ignored
    np.testing.assert_allclose(servo.pad_xy, [0.11, 0.01])
    servo.reset()
    assert servo.armed and servo.pad_xy is None


def test_pad_labels_mark_the_pad_and_the_untouched_frames():
    steps = 6
    proprio = np.zeros((steps, PROPRIO_DIM), np.float32)
    proprio[:, WIDTH] = GRIPPER_STROKE_M
    proprio[4:, WIDTH] = 0.03  # closes at step 4
    zeros = (np.zeros((steps, *TACTILE_SHAPE)), np.zeros((steps, 6)))
    place = pad_labels({"variation": {"pad_xy": [0.05, -0.02]}}, proprio, *zeros)
    np.testing.assert_allclose(place[0], [0.05, -0.02, 1.0, 1.0])
    np.testing.assert_allclose(place[:, 3], [1, 1, 1, 1, 0, 0])
    lift = pad_labels({"variation": {"pad_xy": None}}, proprio, *zeros)
    np.testing.assert_allclose(lift[:, 2], 0.0)
    np.testing.assert_allclose(lift[:, 3], [1, 1, 1, 1, 0, 0])
    assert not pad_labels({}, proprio, *zeros).any()  # a real episode: nothing known


def _pad_frame(pad) -> np.ndarray:
    """A 32x32 frame with a green square at (x, y) (100 px/m), or none for ``pad`` None."""
    frame = np.full((SIZE, SIZE, 3), 40, np.uint8)
    frame[20:24, 4:8] = (200, 60, 60)  # an object, in every scene
    if pad is not None:
        cx, cy = int(16 + 100 * pad[0]), int(16 + 100 * pad[1])
        frame[cy - 3 : cy + 3, cx - 3 : cx + 3] = (40, 200, 60)
    return frame


def _pad_dataset(folder, episodes=64, steps=8):
    """Half the episodes with a pad at a random place, half without."""
    write_dataset_info(folder, {"cameras": {"scene": [SIZE, SIZE]}, "camera_hz": RATE_HZ})
    for i in range(episodes):
        rng = np.random.default_rng(i)
        pad = rng.uniform(-0.08, 0.08, 2).tolist() if i % 2 else None
        proprio = np.zeros((steps, PROPRIO_DIM), np.float32)
        proprio[:, WIDTH] = GRIPPER_STROKE_M
        meta = {"task": "Place" if pad else "Lift", "seed": i, "split": "train",
                "variation": {"pad_xy": pad}}  # fmt: skip
        episode = Episode({"scene": np.stack([_pad_frame(pad)] * steps)}, proprio,
                          np.zeros((steps, 6), np.float32),
                          np.zeros((steps, *TACTILE_SHAPE), np.float32),
                          np.zeros((steps, ACTION_DIM), np.float32), np.arange(steps) / RATE_HZ,
                          meta)  # fmt: skip
        write_episode(folder / "episodes" / f"{i:04d}.npz", episode)
    return folder


def test_training_learns_whether_there_is_a_pad_and_where(tmp_path):
    data = _pad_dataset(tmp_path / "data")
    config = PlacePoseConfig(steps=400, batch_size=32, lr=3e-3, val_episodes=8,
                             export=str(tmp_path / "reader"))  # fmt: skip
    summary = train_place_pose(config, data, tmp_path / "run", 0, TrainerConfig(threads=1))
    assert summary["val_presence_accuracy"] == 1.0
    assert summary["val_median_xy_error_m"] < 0.015  # chance: ~0.06
    assert (tmp_path / "run" / "lightning" / "last.ckpt").is_file()  # resumable
    reader = load_place_pose(tmp_path / "reader")
    logit, x, y = reader.read(_pad_frame((0.05, -0.04)))
    assert logit > 0 and [x, y] == pytest.approx([0.05, -0.04], abs=0.015)
    assert reader.read(_pad_frame(None))[0] < 0


def test_training_without_pad_labels_says_so(tmp_path, synthetic_dataset):
    config = PlacePoseConfig(steps=1, export=str(tmp_path / "reader"))
    with pytest.raises(DataError, match="no frames of a scene with a target pad"):
        train_place_pose(config, synthetic_dataset, tmp_path / "run", 0, TrainerConfig(threads=1))


def test_the_reader_round_trips_and_bad_checkpoints_are_named(tmp_path):
    net = PlacePoseNet(ReaderConfig(image_size=32)).eval()
    frame = _pad_frame((0.02, 0.01))
    save_place_pose(tmp_path / "reader", net, {"note": "test"})
    again = load_place_pose(tmp_path / "reader")
    np.testing.assert_allclose(again.read(frame), net.read(frame), atol=2e-3)  # float16 on disk
    with pytest.raises(CheckpointError, match=f"place-pose checkpoint .* no {CONFIG}"):
        load_place_pose(tmp_path / "nothing")
    record = json.loads((tmp_path / "reader" / CONFIG).read_text())
    (tmp_path / "reader" / CONFIG).write_text(json.dumps({**record, "hidden": 8}))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_place_pose(tmp_path / "reader")
    (tmp_path / "reader" / WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match=f"no {WEIGHTS}"):
        load_place_pose(tmp_path / "reader")


def _fixed_reader(reading) -> PlacePoseNet:
    """A reader whose every reading is ``reading`` (presence logit, x, y)."""
    net = PlacePoseNet(ReaderConfig(image_size=32)).eval()
    last = net.head[-1]
    last.weight.data.zero_()
    last.bias.data = torch.tensor([reading[0], reading[1] / XY_SCALE, reading[2] / XY_SCALE])
    return net


def test_a_tracker_with_a_reader_reads_the_pad_and_steers_a_carry_to_it(
    tmp_path, synthetic_dataset
):
    save_place_pose(tmp_path / "reader", _fixed_reader((4.0, 0.1, 0.02)))
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store)
    config.place_pose = PlacePoseConfig(checkpoint=str(tmp_path / "reader"))
    tracker = JepaTracker(net, config)
    latent = tracker.encode_view({"scene": store.arrays["frames"][0]})
    np.testing.assert_allclose(tracker.place_servo.pad_xy, [0.1, 0.02], atol=1e-3)
    tracker.grip_reflex.probe = SlipProbe()
    tracker.grip_reflex.probe.carried = True
    tracker.act(_at((0.0, 0.02), 0.0), latent, latent)  # took hold here
    for tick in range(1, 80):  # the reflex ramps a carried object's velocity (CARRY_ACCEL)
        action = tracker.act(_at((0.05, 0.02), tick * 0.005), latent, latent)
    np.testing.assert_allclose(action.ee_velocity[:2], [0.1, 0.0], atol=1e-4)
    assert action.ee_velocity[2] >= 0.0
    tracker.reset()
    assert tracker.place_servo.pad_xy is None


def _at(xy, t: float) -> Observation:
    observation = observe(xy)
    return Observation(t, {}, observation.proprio, observation.wrench, observation.tactile)


def test_a_place_reader_of_another_camera_is_refused(tmp_path, synthetic_dataset):
    save_place_pose(tmp_path / "reader", PlacePoseNet(ReaderConfig(camera="overhead")))
    config, net = trained_parts(EpisodeStore.load(synthetic_dataset))
    config.place_pose = PlacePoseConfig(checkpoint=str(tmp_path / "reader"))
    with pytest.raises(ConfigError, match="tracker.place_pose.checkpoint"):
        JepaTracker(net, config)


def test_a_bad_place_setting_names_its_field():
    with pytest.raises(ConfigError, match="tracker.place_pose.min_cosine"):
        load_config(["tracker.place_pose.min_cosine=2"])
