"""The grasp-pose reader and servo: the servo turns the open hand to the nearest face the reader
sees, centres it over the object once low and near, and stops at the first touch; the reader
learns the yaw and the place from frames, round-trips through its checkpoint, and bad
checkpoints give clear errors; the tracker wires both in."""

import json
import math

import numpy as np
import pytest

from dualctl.config import TrainerConfig, load_config
from dualctl.data.dataset import EpisodeStore
from dualctl.data.episode import Episode, write_dataset_info, write_episode
from dualctl.errors import CheckpointError, ConfigError
from dualctl.tracker.config import GraspPoseConfig
from dualctl.tracker.frame_reader import ReaderConfig
from dualctl.tracker.grasp_pose import (
    CONFIG,
    WEIGHTS,
    GraspPoseNet,
    GraspServo,
    load_grasp_pose,
    save_grasp_pose,
)
from dualctl.tracker.grasp_pose_train import train_grasp_pose
from dualctl.tracker.jepa import JepaTracker
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
from .test_model import small_config, trained_parts
from .test_object_probe import _bar

YAW, X, Y, Z = (PROPRIO_FIELDS.index(k) for k in ("ee_yaw", "ee_x", "ee_y", "ee_z"))
#: The servo's defaults (tracker.grasp_pose).
SERVO = dict(gain=6.0, max_rate=1.5, xy_gain=6.0, max_speed=0.1, reach_m=0.06, below_m=0.14)


def reading(face: float, xy=(0.0, 0.0)) -> np.ndarray:
    return np.array([math.sin(4 * face), math.cos(4 * face), *xy])


def observe(yaw: float, touch: float = 0.0, xyz=(0.0, 0.0, 0.3)) -> Observation:
    proprio = np.zeros(PROPRIO_DIM, np.float32)
    proprio[YAW] = yaw
    proprio[[X, Y, Z]] = xyz
    tactile = np.zeros(TACTILE_SHAPE, np.float32)
    tactile[0, 0, 0, 0] = touch
    return Observation(0.0, {}, proprio, np.zeros(6, np.float32), tactile)


def head(yaw_rate: float = 0.3) -> Action:
    return Action(np.array([0.01, 0.02, -0.1, yaw_rate], np.float32),
                  GripperCommand(0.085, 0.1, 20.0))  # fmt: skip


def _cross(yaw: float, xy) -> np.ndarray:
    """A 32x32 frame with a quarter-turn symmetric cross turned by ``yaw`` (rad) and moved by
    ``xy`` (m) at 100 px/m, like a box seen from above."""
    frame = np.full((SIZE, SIZE, 3), 40, np.uint8)
    cx, cy = 16 + 100 * xy[0], 16 + 100 * xy[1]
    for angle in (yaw, yaw + math.pi / 2):
        for r in np.linspace(-8, 8, 64):
            x, y = int(round(cx + r * math.cos(angle))), int(round(cy + r * math.sin(angle)))
            frame[y, x] = (230, 200, 40)
    return frame


def _posed_dataset(folder, episodes=64, steps=12, close_at=8):
    """Episodes of a still cross at a random yaw and place, the hand closing at ``close_at``."""
    write_dataset_info(folder, {"cameras": {"scene": [SIZE, SIZE]}, "camera_hz": RATE_HZ})
    for i in range(episodes):
        rng = np.random.default_rng(i)
        yaw, xy = float(rng.uniform(-math.pi, math.pi)), rng.uniform(-0.05, 0.05, 2).tolist()
        proprio = np.zeros((steps, PROPRIO_DIM), np.float32)
        proprio[:, 4] = GRIPPER_STROKE_M
        proprio[close_at:, 4] = 0.03
        meta = {"task": "Lift", "seed": i, "split": "train",
                "variation": {"object_yaw": yaw, "object_xy": xy}}  # fmt: skip
        episode = Episode({"scene": np.stack([_cross(yaw, xy)] * steps)}, proprio,
                          np.zeros((steps, 6), np.float32),
                          np.zeros((steps, *TACTILE_SHAPE), np.float32),
                          np.zeros((steps, ACTION_DIM), np.float32), np.arange(steps) / RATE_HZ,
                          meta)  # fmt: skip
        write_episode(folder / "episodes" / f"{i:04d}.npz", episode)
    return folder


def test_the_servo_turns_the_open_hand_to_the_nearest_face_and_keeps_the_rest():
    servo = GraspServo(**SERVO)
    servo.see(reading(0.3))
    action = servo(head(), observe(yaw=0.25))
    assert action.ee_velocity[3] == pytest.approx(6.0 * 0.05, abs=1e-5)
    np.testing.assert_allclose(action.ee_velocity[:3], [0.01, 0.02, -0.1])
    # faces repeat every quarter turn: from 1.7 rad the nearest face of 0.3 is 0.3 + pi/2
    near = servo(head(), observe(yaw=1.7)).ee_velocity[3]
    assert near == pytest.approx(6.0 * (0.3 + math.pi / 2 - 1.7), abs=1e-5)
    assert servo(head(), observe(yaw=-0.3)).ee_velocity[3] == pytest.approx(1.5)  # limited


def test_the_servo_centres_the_hand_only_when_low_and_near_the_object():
    servo = GraspServo(**SERVO)
    servo.see(reading(0.0, xy=(0.03, -0.01)))
    low_near = servo(head(yaw_rate=0.0), observe(0.0, xyz=(0.02, 0.0, 0.10))).ee_velocity
    np.testing.assert_allclose(low_near[:3], [0.06, -0.06, -0.1], atol=1e-5)  # z: the head's
    high = servo(head(yaw_rate=0.0), observe(0.0, xyz=(0.02, 0.0, 0.20))).ee_velocity
    np.testing.assert_allclose(high[:2], [0.01, 0.02])
    far = servo(head(yaw_rate=0.0), observe(0.0, xyz=(-0.05, 0.0, 0.10))).ee_velocity
    np.testing.assert_allclose(far[:2], [0.01, 0.02])  # 8 cm away: the head still chooses
    edge = servo(head(yaw_rate=0.0), observe(0.0, xyz=(0.0, -0.05, 0.10))).ee_velocity
    np.testing.assert_allclose(edge[:2], [0.1, 0.1], atol=1e-5)  # 4.5 cm: limited per axis
    servo.see(reading(0.0, xy=(0.05, 0.01)))  # the estimate is the mean place
    np.testing.assert_allclose(servo.object_xy, [0.04, 0.0], atol=1e-9)


def test_the_servo_leaves_the_head_alone_without_a_reading_and_after_the_first_touch():
    servo = GraspServo(**SERVO)
    action = head()
    assert servo(action, observe(yaw=0.0)) is action
    servo.see(reading(0.3))
    assert servo(action, observe(yaw=0.0, touch=1.0)) is action
    assert not servo.armed
    servo.see(reading(-0.3))  # ignored once touched
    assert servo(action, observe(yaw=0.0)) is action  # stays off for the episode
    servo.reset()
    servo.see(reading(-0.3))
    assert servo(action, observe(yaw=0.0)).ee_velocity[3] == pytest.approx(-1.5)


def test_the_servo_estimate_is_the_mean_of_its_readings():
    servo = GraspServo(**{**SERVO, "gain": 1.0, "max_rate": 10.0})
    for face in (0.10, 0.20, 0.15):
        servo.see(reading(face))
    assert servo.face_yaw == pytest.approx(0.15, abs=2e-3)


def test_the_reader_round_trips_through_its_checkpoint(tmp_path):
    net = GraspPoseNet(ReaderConfig(image_size=32)).eval()
    frame = _bar(0.4)
    save_grasp_pose(tmp_path / "reader", net, {"note": "test"})
    again = load_grasp_pose(tmp_path / "reader")
    np.testing.assert_allclose(again.read(frame), net.read(frame), atol=2e-3)  # float16 on disk
    assert np.linalg.norm(again.read(frame)[:2]) == pytest.approx(1.0, abs=1e-5)
    assert again.read(frame).shape == (4,)


def test_bad_reader_checkpoints_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"no {CONFIG}"):
        load_grasp_pose(tmp_path / "nothing")
    save_grasp_pose(tmp_path / "reader", GraspPoseNet(ReaderConfig(image_size=32)))
    record = json.loads((tmp_path / "reader" / CONFIG).read_text())
    record["hidden"] = 8  # weights of another architecture
    (tmp_path / "reader" / CONFIG).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_grasp_pose(tmp_path / "reader")
    (tmp_path / "reader" / WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match=f"no {WEIGHTS}"):
        load_grasp_pose(tmp_path / "reader")


def test_training_learns_the_yaw_and_the_place_from_the_frames(tmp_path):
    data = _posed_dataset(tmp_path / "data")
    config = GraspPoseConfig(steps=500, batch_size=32, lr=3e-3, val_episodes=8,
                             export=str(tmp_path / "reader"))  # fmt: skip
    summary = train_grasp_pose(config, data, tmp_path / "run", 0, TrainerConfig(threads=1))
    assert summary["val_median_yaw_error_rad"] < 0.2  # chance: ~0.39
    assert summary["val_median_xy_error_m"] < 0.015  # chance: ~0.04
    reader = load_grasp_pose(tmp_path / "reader")
    assert (tmp_path / "run" / "lightning" / "last.ckpt").is_file()  # resumable
    sin4, cos4, x, y = reader.read(_cross(0.2, (0.04, -0.03)))
    assert float(np.arctan2(sin4, cos4) / 4) == pytest.approx(0.2, abs=0.2)
    assert [x, y] == pytest.approx([0.04, -0.03], abs=0.015)


def test_training_without_pose_labels_says_so(tmp_path, synthetic_dataset):
    from dualctl.errors import DataError

    config = GraspPoseConfig(steps=1, export=str(tmp_path / "reader"))
    with pytest.raises(DataError, match="no frames with a known object pose"):
        train_grasp_pose(config, synthetic_dataset, tmp_path / "run", 0, TrainerConfig(threads=1))


def test_a_tracker_with_a_reader_turns_its_open_hand(tmp_path, synthetic_dataset):
    reader = GraspPoseNet(ReaderConfig(image_size=32)).eval()
    save_grasp_pose(tmp_path / "reader", reader)
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store)
    config.grasp_pose = GraspPoseConfig(checkpoint=str(tmp_path / "reader"))
    tracker = JepaTracker(net, config)
    frame = store.arrays["frames"][0]
    latent = tracker.encode_view({"scene": frame})
    sin4, cos4, x, y = reader.read(frame)
    near = observe(yaw=0.0, xyz=(x - 0.01, y, 0.1))
    action = tracker.act(near, latent, latent)
    face = float(np.arctan2(sin4, cos4) / 4)
    assert action.ee_velocity[3] == pytest.approx(np.clip(6.0 * face, -1.5, 1.5), abs=2e-2)
    np.testing.assert_allclose(action.ee_velocity[:2], [0.06, 0.0], atol=1e-4)
    tracker.reset()  # a new episode: no reading yet, the head's yaw rate again
    plain = JepaTracker(net, small_config())
    assert tracker.act(observe(yaw=0.0), latent, latent).ee_velocity[3] == pytest.approx(
        plain.act(observe(yaw=0.0), latent, latent).ee_velocity[3], abs=1e-5
    )


def test_a_reader_of_a_camera_the_tracker_does_not_read_is_refused(tmp_path, synthetic_dataset):
    save_grasp_pose(tmp_path / "reader", GraspPoseNet(ReaderConfig(camera="overhead")))
    config, net = trained_parts(EpisodeStore.load(synthetic_dataset))
    config.grasp_pose = GraspPoseConfig(checkpoint=str(tmp_path / "reader"))
    with pytest.raises(ConfigError, match="tracker.grasp_pose.checkpoint"):
        JepaTracker(net, config)


def test_a_bad_servo_setting_names_its_field():
    with pytest.raises(ConfigError, match="tracker.grasp_pose.max_rate"):
        load_config(["tracker.grasp_pose.max_rate=-1"])


def test_the_benches_grasp_pose_choice_selects_the_own_reader_none_or_another(tmp_path):
    from pathlib import Path

    from dualctl.tracker.checkpoint import with_reader_choices
    from dualctl.tracker.jepa import load_tracker

    shipped = Path(__file__).resolve().parents[2] / "checkpoints" / "tracker"
    own = load_tracker(shipped, config=with_reader_choices(shipped, ""))
    assert own.grasp_servo is not None
    off = load_tracker(shipped, config=with_reader_choices(shipped, "off"))
    assert off.grasp_servo is None
    save_grasp_pose(tmp_path / "other", GraspPoseNet(ReaderConfig()))
    other = load_tracker(shipped, config=with_reader_choices(shipped, str(tmp_path / "other")))
    assert other.grasp_pose_reader.config.hidden == ReaderConfig().hidden
    with pytest.raises(CheckpointError, match="grasp-pose checkpoint"):
        load_tracker(shipped, config=with_reader_choices(shipped, str(tmp_path / "none")))
