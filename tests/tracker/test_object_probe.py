"""The object probe: privileged yaw labels where the sim knows the object's pose, a latent
trained to carry that yaw, and the head's turn input from it."""

import math

import numpy as np
import torch

from dualctl.data.dataset import EpisodeStore
from dualctl.data.episode import Episode, write_dataset_info, write_episode
from dualctl.data.privileged import face_yaw, object_xy_labels, object_yaw_labels
from dualctl.tracker.model import NORMALISED, PROPRIO_YAW, TrackerNet
from dualctl.types import ACTION_DIM, GRIPPER_STROKE_M, PROPRIO_DIM, TACTILE_SHAPE

from .conftest import RATE_HZ, SIZE
from .test_model import loss_before_and_after, small_config


def _bar(yaw: float) -> np.ndarray:
    """A 32x32 frame with a bar through the middle turned by ``yaw`` (rad), a quarter-turn
    symmetric cross so that, like a box, it repeats every quarter turn."""
    frame = np.full((SIZE, SIZE, 3), 40, np.uint8)
    for angle in (yaw, yaw + math.pi / 2):
        for r in np.linspace(-10, 10, 80):
            x, y = int(round(16 + r * math.cos(angle))), int(round(16 + r * math.sin(angle)))
            frame[y, x] = (230, 200, 40)
    return frame


def _episode(seed: int, steps: int = 12, close_at: int = 8) -> Episode:
    yaw = float(np.random.default_rng(seed).uniform(-math.pi, math.pi))
    proprio = np.zeros((steps, PROPRIO_DIM), np.float32)
    proprio[:, 4] = GRIPPER_STROKE_M
    proprio[close_at:, 4] = 0.03  # the hand closes: the yaw is no longer known after
    frames = np.stack([_bar(yaw)] * steps)
    meta = {"task": "Lift", "seed": seed, "split": "train", "variation": {"object_yaw": yaw}}
    return Episode({"scene": frames}, proprio, np.zeros((steps, 6), np.float32),
                   np.zeros((steps, *TACTILE_SHAPE), np.float32),
                   np.zeros((steps, ACTION_DIM), np.float32), np.arange(steps) / RATE_HZ,
                   meta)  # fmt: skip


def _dataset(folder, episodes=24):
    write_dataset_info(folder, {"cameras": {"scene": [SIZE, SIZE]}, "camera_hz": RATE_HZ})
    for i in range(episodes):
        write_episode(folder / "episodes" / f"{i:04d}.npz", _episode(i))
    return folder


def test_labels_are_known_until_the_hand_closes_or_feels_something():
    episode = _episode(3, steps=12, close_at=8)
    episode.tactile[5, 0, 0, 0, 0] = 1.0  # a touch at step 5 comes first
    labels = object_yaw_labels(episode.meta, episode.proprio, episode.tactile, episode.wrench)
    assert labels[:5, 2].all() and not labels[5:, 2].any()
    yaw = episode.meta["variation"]["object_yaw"]
    assert np.isclose(face_yaw(labels[0, 0], labels[0, 1]), (yaw + math.pi / 4) % (math.pi / 2)
                      - math.pi / 4, atol=1e-5)  # fmt: skip
    pushed = _episode(3)
    pushed.wrench[2, 2] = -10.0  # a fingertip on the object's top, before any close
    labels = object_yaw_labels(pushed.meta, pushed.proprio, pushed.tactile, pushed.wrench)
    assert labels[:2, 2].all() and not labels[2:, 2].any()
    real = object_yaw_labels({"task": "Lift"}, episode.proprio, episode.tactile, episode.wrench)
    assert not real.any()


def test_place_labels_are_known_over_the_same_steps_as_the_yaw():
    episode = _episode(4, steps=12, close_at=8)
    episode.meta["variation"]["object_xy"] = [0.03, -0.05]
    episode.tactile[6, 1, 0, 0, 0] = 1.0
    places = object_xy_labels(episode.meta, episode.proprio, episode.tactile, episode.wrench)
    yaws = object_yaw_labels(episode.meta, episode.proprio, episode.tactile, episode.wrench)
    np.testing.assert_array_equal(places[:, 2], yaws[:, 2])
    assert places[:6, 2].all() and not places[6:, 2].any()
    np.testing.assert_allclose(places[:, :2], np.tile([0.03, -0.05], (12, 1)))
    assert not object_xy_labels({}, episode.proprio, episode.tactile, episode.wrench).any()


def test_the_probe_loss_teaches_the_latent_the_objects_yaw(tmp_path):
    store = EpisodeStore.load(_dataset(tmp_path))
    config = small_config("tracker.object_probe=true")
    torch.manual_seed(0)
    net = TrackerNet(config)
    net.set_stats({k: store.stats(k) for k in NORMALISED})
    first, last = loss_before_and_after(net, config, store, "object", 60, stride=2)
    assert last < 0.3 * first


def test_the_head_is_told_the_turn_from_the_gripper_to_the_face_it_reads(tmp_path):
    store = EpisodeStore.load(_dataset(tmp_path, episodes=4))
    config = small_config("tracker.object_probe=true")
    net = TrackerNet(config)
    net.set_stats({k: store.stats(k) for k in NORMALISED})
    net.proprio_std[PROPRIO_YAW] = 0.3  # gripper yaws spread as in the sim data
    face = 0.3
    with torch.no_grad():  # a probe that reads sin/cos of 4 x 0.3 rad whatever the latent
        net.object.weight.zero_()
        net.object.bias.copy_(torch.tensor([math.sin(4 * face), math.cos(4 * face)]))
    proprio = torch.zeros(1, PROPRIO_DIM)
    proprio[0, PROPRIO_YAW] = -0.1
    context = net.context(proprio, torch.zeros(1, config.force_history, 6),
                          torch.zeros(1, config.tactile_history, *TACTILE_SHAPE),
                          torch.zeros(1, 1), torch.zeros(1, 1))  # fmt: skip
    features = net.object_features(torch.randn(1, config.latent_dim), context)
    assert torch.allclose(features[0, 2], torch.tensor(face + 0.1), atol=1e-4)
