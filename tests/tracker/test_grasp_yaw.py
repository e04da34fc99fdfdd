"""The grasp-yaw reader and servo: the servo turns the open hand to the nearest face the reader
sees and stops at the first touch; the reader learns the yaw from frames, round-trips through
its checkpoint, and bad checkpoints give clear errors; the tracker wires both in."""

import json
import math

import numpy as np
import pytest

from dualctl.config import TrainerConfig, load_config
from dualctl.data.dataset import EpisodeStore
from dualctl.errors import CheckpointError, ConfigError
from dualctl.tracker.config import GraspYawConfig
from dualctl.tracker.grasp_yaw import (
    CONFIG,
    WEIGHTS,
    GraspYawNet,
    GraspYawNetConfig,
    YawServo,
    load_grasp_yaw,
    save_grasp_yaw,
)
from dualctl.tracker.grasp_yaw_train import train_grasp_yaw
from dualctl.tracker.jepa import JepaTracker
from dualctl.types import (
    PROPRIO_DIM,
    PROPRIO_FIELDS,
    TACTILE_SHAPE,
    Action,
    GripperCommand,
    Observation,
)

from .test_model import small_config, trained_parts
from .test_object_probe import _bar, _dataset

YAW = PROPRIO_FIELDS.index("ee_yaw")


def reading(face: float) -> np.ndarray:
    return np.array([math.sin(4 * face), math.cos(4 * face)])


def observe(yaw: float, touch: float = 0.0) -> Observation:
    proprio = np.zeros(PROPRIO_DIM, np.float32)
    proprio[YAW] = yaw
    tactile = np.zeros(TACTILE_SHAPE, np.float32)
    tactile[0, 0, 0, 0] = touch
    return Observation(0.0, {}, proprio, np.zeros(6, np.float32), tactile)


def head(yaw_rate: float = 0.3) -> Action:
    return Action(np.array([0.01, 0.02, -0.1, yaw_rate], np.float32),
                  GripperCommand(0.085, 0.1, 20.0))  # fmt: skip


def test_the_servo_turns_the_open_hand_to_the_nearest_face_and_keeps_the_rest():
    servo = YawServo(gain=6.0, max_rate=1.5)
    servo.see(reading(0.3))
    action = servo(head(), observe(yaw=0.25))
    assert action.ee_velocity[3] == pytest.approx(6.0 * 0.05, abs=1e-5)
    np.testing.assert_allclose(action.ee_velocity[:3], [0.01, 0.02, -0.1])
    # faces repeat every quarter turn: from 1.7 rad the nearest face of 0.3 is 0.3 + pi/2
    near = servo(head(), observe(yaw=1.7)).ee_velocity[3]
    assert near == pytest.approx(6.0 * (0.3 + math.pi / 2 - 1.7), abs=1e-5)
    assert servo(head(), observe(yaw=-0.3)).ee_velocity[3] == pytest.approx(1.5)  # limited


def test_the_servo_leaves_the_head_alone_without_a_reading_and_after_the_first_touch():
    servo = YawServo(gain=6.0, max_rate=1.5)
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
    servo = YawServo(gain=1.0, max_rate=10.0)
    for face in (0.10, 0.20, 0.15):
        servo.see(reading(face))
    assert servo.face_yaw == pytest.approx(0.15, abs=2e-3)


def test_the_reader_round_trips_through_its_checkpoint(tmp_path):
    net = GraspYawNet(GraspYawNetConfig(image_size=32)).eval()
    frame = _bar(0.4)
    save_grasp_yaw(tmp_path / "reader", net, {"note": "test"})
    again = load_grasp_yaw(tmp_path / "reader")
    np.testing.assert_allclose(again.read(frame), net.read(frame), atol=2e-3)  # float16 on disk
    assert np.linalg.norm(again.read(frame)) == pytest.approx(1.0, abs=1e-5)


def test_bad_reader_checkpoints_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"no {CONFIG}"):
        load_grasp_yaw(tmp_path / "nothing")
    save_grasp_yaw(tmp_path / "reader", GraspYawNet(GraspYawNetConfig(image_size=32)))
    record = json.loads((tmp_path / "reader" / CONFIG).read_text())
    record["hidden"] = 8  # weights of another architecture
    (tmp_path / "reader" / CONFIG).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_grasp_yaw(tmp_path / "reader")
    (tmp_path / "reader" / WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match=f"no {WEIGHTS}"):
        load_grasp_yaw(tmp_path / "reader")


def test_training_learns_the_yaw_from_the_frames(tmp_path):
    data = _dataset(tmp_path / "data", episodes=24)
    config = GraspYawConfig(steps=250, batch_size=32, lr=3e-3, val_episodes=4,
                            export=str(tmp_path / "reader"))  # fmt: skip
    summary = train_grasp_yaw(config, data, tmp_path / "run", 0, TrainerConfig(threads=1))
    assert summary["val_median_yaw_error_rad"] < 0.15  # chance: ~0.39
    reader = load_grasp_yaw(tmp_path / "reader")
    assert (tmp_path / "run" / "lightning" / "last.ckpt").is_file()  # resumable
    face = float(np.arctan2(*reader.read(_bar(0.2))) / 4)
    assert face == pytest.approx(0.2, abs=0.15)


def test_a_tracker_with_a_reader_turns_its_open_hand(tmp_path, synthetic_dataset):
    reader = GraspYawNet(GraspYawNetConfig(image_size=32)).eval()
    save_grasp_yaw(tmp_path / "reader", reader)
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store)
    config.grasp_yaw = GraspYawConfig(checkpoint=str(tmp_path / "reader"))
    tracker = JepaTracker(net, config)
    frame = store.arrays["frames"][0]
    latent = tracker.encode_view({"scene": frame})
    face = float(np.arctan2(*reader.read(frame)) / 4)
    action = tracker.act(observe(yaw=0.0), latent, latent)
    assert action.ee_velocity[3] == pytest.approx(np.clip(6.0 * face, -1.5, 1.5), abs=2e-2)
    tracker.reset()  # a new episode: no reading yet, the head's yaw rate again
    plain = JepaTracker(net, small_config())
    assert tracker.act(observe(yaw=0.0), latent, latent).ee_velocity[3] == pytest.approx(
        plain.act(observe(yaw=0.0), latent, latent).ee_velocity[3], abs=1e-5
    )


def test_a_reader_of_a_camera_the_tracker_does_not_read_is_refused(tmp_path, synthetic_dataset):
    save_grasp_yaw(tmp_path / "reader", GraspYawNet(GraspYawNetConfig(camera="overhead")))
    config, net = trained_parts(EpisodeStore.load(synthetic_dataset))
    config.grasp_yaw = GraspYawConfig(checkpoint=str(tmp_path / "reader"))
    with pytest.raises(ConfigError, match="tracker.grasp_yaw.checkpoint"):
        JepaTracker(net, config)


def test_a_bad_servo_setting_names_its_field():
    with pytest.raises(ConfigError, match="tracker.grasp_yaw.max_rate"):
        load_config(["tracker.grasp_yaw.max_rate=-1"])


def test_the_benches_grasp_yaw_choice_selects_the_own_reader_none_or_another(tmp_path):
    from pathlib import Path

    from dualctl.tracker.checkpoint import with_grasp_yaw_choice
    from dualctl.tracker.jepa import load_tracker

    shipped = Path(__file__).resolve().parents[2] / "checkpoints" / "tracker"
    own = load_tracker(shipped, config=with_grasp_yaw_choice(shipped, ""))
    assert own.yaw_servo is not None
    off = load_tracker(shipped, config=with_grasp_yaw_choice(shipped, "off"))
    assert off.yaw_servo is None
    save_grasp_yaw(tmp_path / "other", GraspYawNet(GraspYawNetConfig()))
    other = load_tracker(shipped, config=with_grasp_yaw_choice(shipped, str(tmp_path / "other")))
    assert other.grasp_yaw_reader.config.hidden == GraspYawNetConfig().hidden
    with pytest.raises(CheckpointError, match="grasp-yaw checkpoint"):
        load_tracker(shipped, config=with_grasp_yaw_choice(shipped, str(tmp_path / "none")))
