"""The hand-pose reader and carry servo: the servo drives a carrying hand toward the reference's
hand position; the reader learns that position from frames and round-trips through its
checkpoint; the tracker appends its reading to every reference latent, moves toward it only
while the grip reflex carries, and the runtime's latent alignment ignores the reading."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dualctl.config import TrainerConfig, load_config
from dualctl.data.dataset import EpisodeStore
from dualctl.data.episode import Episode, write_dataset_info, write_episode
from dualctl.errors import CheckpointError, ConfigError
from dualctl.tracker.checkpoint import with_reader_choices
from dualctl.tracker.config import HandPoseConfig
from dualctl.tracker.frame_reader import ReaderConfig
from dualctl.tracker.grip import SlipProbe
from dualctl.tracker.hand_pose import (
    CONFIG,
    HAND_VELOCITY,
    HAND_XYZ,
    LIFT_AFTER_M,
    SET_DOWN_SPEED,
    WEIGHTS,
    CarryServo,
    HandPoseNet,
    load_hand_pose,
    save_hand_pose,
)
from dualctl.tracker.hand_pose_train import soften, train_hand_pose
from dualctl.tracker.jepa import JepaTracker, load_tracker
from dualctl.types import (
    ACTION_DIM,
    PROPRIO_DIM,
    TACTILE_SHAPE,
    Action,
    GripperCommand,
    Observation,
)

from .conftest import RATE_HZ, SIZE
from .test_model import trained_parts

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "tracker"


def observe(xyz=(0.0, 0.0, 0.1), t: float = 0.0, velocity=(0.0, 0.0, 0.0)) -> Observation:
    proprio = np.zeros(PROPRIO_DIM, np.float32)
    proprio[HAND_XYZ] = xyz
    proprio[HAND_VELOCITY] = velocity
    return Observation(t, {}, proprio, np.zeros(6, np.float32),
                       np.zeros(TACTILE_SHAPE, np.float32))  # fmt: skip


def head() -> Action:
    return Action(np.array([0.01, 0.02, 0.03, 0.4], np.float32), GripperCommand(0.0, 0.1, 20.0))


def _hand(xyz) -> np.ndarray:
    """A 32x32 frame with a square at (x, y) (100 px/m) that grows with z, like a hand seen
    from above."""
    frame = np.full((SIZE, SIZE, 3), 40, np.uint8)
    cx, cy, half = 16 + 100 * xyz[0], 16 + 100 * xyz[1], 1 + 40 * xyz[2]
    ys, xs = np.mgrid[:SIZE, :SIZE]
    frame[(abs(xs - cx) <= half) & (abs(ys - cy) <= half)] = (220, 220, 230)
    return frame


def _moving_hand_dataset(folder, episodes=48, steps=10):
    write_dataset_info(folder, {"cameras": {"scene": [SIZE, SIZE]}, "camera_hz": RATE_HZ})
    for i in range(episodes):
        rng = np.random.default_rng(i)
        start, end = rng.uniform([-0.05, -0.05, 0.05], [0.05, 0.05, 0.15], (2, 3))
        path = np.linspace(start, end, steps)
        proprio = np.zeros((steps, PROPRIO_DIM), np.float32)
        proprio[:, HAND_XYZ] = path
        episode = Episode({"scene": np.stack([_hand(p) for p in path])}, proprio,
                          np.zeros((steps, 6), np.float32),
                          np.zeros((steps, *TACTILE_SHAPE), np.float32),
                          np.zeros((steps, ACTION_DIM), np.float32), np.arange(steps) / RATE_HZ,
                          {"task": "Lift", "seed": i, "split": "train"})  # fmt: skip
        write_episode(folder / "episodes" / f"{i:04d}.npz", episode)
    return folder


def test_the_carry_servo_drives_toward_the_goal_and_keeps_the_rest():
    servo = CarryServo(gain=4.0, max_speed=0.1, max_accel=100.0)
    goal = np.array([0.01, -0.005, 0.2])
    first = servo(head(), observe(velocity=(0.01, 0.0, 0.0)), goal, None)
    np.testing.assert_allclose(first.ee_velocity[:3], [0.01, 0.0, 0.0], atol=1e-6)  # measured
    action = servo(head(), observe(t=0.01), goal, None)
    np.testing.assert_allclose(action.ee_velocity, [0.04, -0.02, 0.1, 0.4], atol=1e-6)
    assert action.gripper == head().gripper  # the grip and the yaw stay the head's
    lower = servo(head(), observe(t=0.02), np.array([0.0, 0.0, 0.05]), None)
    assert lower.ee_velocity[2] == pytest.approx(0.03)  # never lower than the head asks
    down = servo(head(), observe(t=0.03), np.array([0.0, 0.0, 0.05]), 0.03)
    assert down.ee_velocity[2] == pytest.approx(-0.1)  # unless it sets down at the pick height


def test_the_carry_servo_ramps_its_speed():
    servo = CarryServo(gain=4.0, max_speed=0.1, max_accel=1.0)
    goal = np.array([0.1, 0.0, 0.1])
    speeds = [servo(head(), observe(t=0.005 * i), goal, None).ee_velocity[0] for i in range(15)]
    np.testing.assert_allclose(np.diff(speeds), 0.005, atol=1e-6)  # 1 m/s^2 at 200 Hz
    servo.idle()  # carrying nothing for a tick: the next carry starts from the measured speed
    assert servo(head(), observe(t=1.0), goal, None).ee_velocity[0] == 0.0


def test_the_carry_servo_engages_only_when_the_reference_carries_across():
    servo = CarryServo(gain=4.0, max_speed=0.1, max_accel=100.0, engage_m=0.03)
    straight_up = np.array([0.01, 0.01, 0.2])
    lift = head()
    assert servo(lift, observe(), straight_up, None) is lift  # a straight lift: the head's
    assert not servo.engaged
    servo(head(), observe(t=0.01), np.array([0.03, 0.0, 0.1]), None)
    assert servo.engaged
    action = servo(head(), observe(t=0.02), straight_up, None)  # engaged it stays
    np.testing.assert_allclose(action.ee_velocity[:3], [0.04, 0.04, 0.1], atol=1e-6)
    servo.reset()
    assert not servo.engaged


def test_before_it_engages_the_carry_servo_lifts_to_the_reference_height():
    servo = CarryServo(gain=4.0, max_speed=0.1, max_accel=100.0, engage_m=0.05, lift_m=0.01,
                       lift_speed=0.05)  # fmt: skip
    higher = np.array([0.0, 0.0, 0.13])  # 3 cm above the hand: a straight lift not yet done
    picked = 0.1 - LIFT_AFTER_M  # the hand (z 0.1) has carried its object far enough up
    servo(head(), observe(), higher, picked)  # the first tick starts from the measured velocity
    action = servo(head(), observe(t=0.01), higher, picked)
    np.testing.assert_allclose(action.ee_velocity, [0.01, 0.02, 0.05, 0.4], atol=1e-6)
    assert not servo.engaged  # across, the head still steers
    near = servo(head(), observe(t=0.02), np.array([0.0, 0.0, 0.105]), picked)
    assert near.ee_velocity[2] == pytest.approx(0.03)  # within lift_m: the head's own lift
    fast = Action(np.array([0.0, 0.0, 0.09, 0.0], np.float32), head().gripper)
    moving = observe(t=0.03, velocity=(0.0, 0.0, 0.09))  # it starts again from the measured
    slow_goal = servo(fast, moving, np.array([0.0, 0.0, 0.115]), picked)
    assert slow_goal.ee_velocity[2] == pytest.approx(0.09)
    slow_goal = servo(fast, observe(t=0.04), np.array([0.0, 0.0, 0.115]), picked)
    assert slow_goal.ee_velocity[2] == pytest.approx(0.09)  # never slower than the head
    low = servo(head(), observe(t=0.05), higher, picked + 0.01)  # lifted under LIFT_AFTER_M
    assert low.ee_velocity[2] == pytest.approx(0.03)
    assert servo(head(), observe(t=0.06), higher, None).ee_velocity[2] == pytest.approx(0.03)
    off = CarryServo(gain=4.0, max_speed=0.1, max_accel=100.0, engage_m=0.05)
    assert off(head(), observe(), higher, picked).ee_velocity[2] == pytest.approx(0.03)


def test_the_carry_servo_sets_down_where_the_reference_let_go():
    servo = CarryServo(gain=4.0, max_speed=0.1, max_accel=100.0)
    lift = [0.05, 0.08, 0.10, 0.10]  # the reference carries up and across...
    lower = [0.08, 0.06, 0.045, 0.04]  # ...lowers the object onto its support...
    rise = [0.045, 0.052]  # ...and its open hand rises: it let go
    t = 0.0
    for z in lift + lower + rise[:1]:
        t += 0.01
        action = servo(head(), observe(xyz=(0.0, 0.0, 0.07), t=t), np.array([0.05, 0.0, z]), 0.03)
        assert not servo.setting_down
    assert action.ee_velocity[0] == pytest.approx(0.1)  # still carrying across
    t += 0.01
    action = servo(head(), observe(xyz=(0.0, 0.0, 0.07), t=t), np.array([0.05, 0.0, rise[1]]), 0.03)
    assert servo.setting_down  # this hand still holds its object 3 cm higher: straight down
    np.testing.assert_allclose(action.ee_velocity[:3], [0.0, 0.0, -SET_DOWN_SPEED], atol=1e-6)
    servo.idle()  # let go: the next carry watches the reference anew
    assert not servo.setting_down
    for z in lift + [0.08, 0.075, 0.09]:  # down 2.5 cm and up again, but high over the pick
        servo(head(), observe(xyz=(0.0, 0.0, 0.07), t=t), np.array([0.05, 0.0, z]), 0.03)
    assert not servo.setting_down  # e.g. a plan's hand wandering while it lifts
    servo.idle()
    for z in lift + lower + rise:
        servo(head(), observe(xyz=(0.0, 0.0, 0.07), t=t), np.array([0.05, 0.0, z]), None)
    assert not servo.setting_down  # no pick height known: never


def test_the_reader_round_trips_and_bad_checkpoints_are_named(tmp_path):
    net = HandPoseNet(ReaderConfig(image_size=32)).eval()
    frame = _hand((0.02, 0.01, 0.1))
    save_hand_pose(tmp_path / "reader", net, {"note": "test"})
    again = load_hand_pose(tmp_path / "reader")
    np.testing.assert_allclose(again.read(frame), net.read(frame), atol=2e-3)  # float16 on disk
    assert again.read_many(np.stack([frame] * 2)).shape == (2, 3)
    with pytest.raises(CheckpointError, match=f"hand-pose checkpoint .* no {CONFIG}"):
        load_hand_pose(tmp_path / "nothing")
    record = json.loads((tmp_path / "reader" / CONFIG).read_text())
    (tmp_path / "reader" / CONFIG).write_text(json.dumps({**record, "hidden": 8}))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_hand_pose(tmp_path / "reader")
    (tmp_path / "reader" / WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match=f"no {WEIGHTS}"):
        load_hand_pose(tmp_path / "reader")


def test_soften_blurs_half_the_batch_and_keeps_the_rest():
    images = np.zeros((4, 3, 8, 8), np.float32)
    images[:, :, 4, 4] = 1.0
    out = soften(torch.from_numpy(images)).numpy()
    assert out[0, 0, 4, 6] > 0.0 == out[1, 0, 4, 6]  # twice spreads 2 px, once 1 px
    assert out[1, 0, 3:6, 3:6] == pytest.approx(np.full((3, 3), 1 / 9))  # a 3x3 box
    np.testing.assert_array_equal(out[2:], images[2:])
    assert out[:2].sum() == pytest.approx(images[:2].sum(), rel=1e-5)  # mass kept inside


def test_training_learns_the_hand_position_from_the_frames(tmp_path):
    data = _moving_hand_dataset(tmp_path / "data")
    config = HandPoseConfig(steps=400, batch_size=32, lr=3e-3, val_episodes=8,
                            export=str(tmp_path / "reader"))  # fmt: skip
    summary = train_hand_pose(config, data, tmp_path / "run", 0, TrainerConfig(threads=1))
    assert summary["val_median_error_m"] < 0.02  # chance: ~0.07
    assert (tmp_path / "run" / "lightning" / "last.ckpt").is_file()  # resumable
    reader = load_hand_pose(tmp_path / "reader")
    assert reader.read(_hand((0.03, -0.02, 0.1))) == pytest.approx([0.03, -0.02, 0.1], abs=0.02)


def test_a_tracker_with_a_reader_carries_toward_the_references_hand(tmp_path, synthetic_dataset):
    reader = HandPoseNet(ReaderConfig(image_size=32)).eval()
    save_hand_pose(tmp_path / "reader", reader)
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store)
    config.hand_pose = HandPoseConfig(
        checkpoint=str(tmp_path / "reader"), engage_m=0.0, enabled=True
    )
    tracker = JepaTracker(net, config)
    frames = store.arrays["frames"][:3]
    references = tracker.encode(frames)
    assert references.shape == (3, config.latent_dim + 3) == (3, tracker.reference_dim)
    np.testing.assert_allclose(references[:, config.latent_dim :], reader.read_many(frames),
                               atol=2e-3)  # fmt: skip
    latent = tracker.encode_view({"scene": frames[0]})
    assert latent.shape == (config.latent_dim,)
    goal = references[1, config.latent_dim :]
    here = observe(goal - np.array([0.01, 0.0, 0.005]), velocity=(0.04, 0.0, 0.0))
    free = tracker.act(here, latent, references[1])  # not carrying: the head's velocity
    plain = JepaTracker(net, trained_parts(store)[0])
    head_only = plain.act(here, latent, references[1][: config.latent_dim])
    np.testing.assert_allclose(free.ee_velocity, head_only.ee_velocity, atol=1e-5)
    tracker.grip_reflex.probe = SlipProbe()
    tracker.grip_reflex.probe.carried = True
    position = goal - np.array([0.01, 0.0, 0.005])
    first = tracker.act(observe(position, 0.005, (0.04, 0.0, 0.0)), latent, references[1])
    for tick in range(2, 80):  # the reflex ramps a carried object's velocity (CARRY_ACCEL)
        carrying = tracker.act(observe(position, tick * 0.005, (0.04, 0.0, 0.0)), latent,
                               references[1])  # fmt: skip
    np.testing.assert_allclose(carrying.ee_velocity[:3], [0.04, 0.0, 0.02], atol=1e-4)
    assert np.abs(first.ee_velocity[:3] - free.ee_velocity[:3]).max() <= 0.8 * 0.005 + 1e-6


def test_a_hand_reader_of_another_camera_is_refused(tmp_path, synthetic_dataset):
    save_hand_pose(tmp_path / "reader", HandPoseNet(ReaderConfig(camera="overhead")))
    config, net = trained_parts(EpisodeStore.load(synthetic_dataset))
    config.hand_pose = HandPoseConfig(checkpoint=str(tmp_path / "reader"), enabled=True)
    with pytest.raises(ConfigError, match="tracker.hand_pose.checkpoint"):
        JepaTracker(net, config)


def test_a_bad_carry_setting_names_its_field():
    with pytest.raises(ConfigError, match="tracker.hand_pose.max_speed"):
        load_config(["tracker.hand_pose.max_speed=-1"])
    with pytest.raises(ConfigError, match="tracker.hand_pose.lift_speed"):
        load_config(["tracker.hand_pose.lift_speed=2"])


def test_the_tracker_builds_its_carry_servo_with_the_lift_settings(tmp_path, synthetic_dataset):
    save_hand_pose(tmp_path / "reader", HandPoseNet(ReaderConfig(image_size=32)))
    config, net = trained_parts(EpisodeStore.load(synthetic_dataset))
    config.hand_pose = HandPoseConfig(checkpoint=str(tmp_path / "reader"), enabled=True,
                                      lift_m=0.02, lift_speed=0.04)  # fmt: skip
    servo = JepaTracker(net, config).carry_servo
    assert (servo.lift_m, servo.lift_speed) == (0.02, 0.04)


def test_the_benches_hand_pose_choice_selects_the_own_reader_none_or_another(tmp_path):
    own = load_tracker(SHIPPED, config=with_reader_choices(SHIPPED))
    assert (own.hand_pose_reader is not None) == (SHIPPED / WEIGHTS).is_file()
    off = load_tracker(SHIPPED, config=with_reader_choices(SHIPPED, hand_pose="off"))
    assert off.hand_pose_reader is None and off.reference_dim == off.latent_dim
    save_hand_pose(tmp_path / "other", HandPoseNet(ReaderConfig()))
    other = load_tracker(SHIPPED, config=with_reader_choices(SHIPPED, "", str(tmp_path / "other")))
    assert other.reference_dim == other.latent_dim + 3
    with pytest.raises(CheckpointError, match="hand-pose checkpoint"):
        load_tracker(SHIPPED, config=with_reader_choices(SHIPPED, "", str(tmp_path / "none")))
