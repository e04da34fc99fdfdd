"""A tracker with a wrist camera: its features reach the head, training learns from them, and
a body without that camera gets a clear error."""

import numpy as np
import pytest
from dualctl.sim.config import SimConfig, with_cameras

from dualctl.cli import main
from dualctl.data.episode import write_dataset_info, write_episode
from dualctl.errors import DualctlError
from dualctl.tracker.jepa import load_tracker
from dualctl.types import Observation

from .conftest import RATE_HZ, SIZE, SMALL, synthetic_episode

WRIST = [*SMALL, "tracker.wrist_camera=wrist", "tracker.train.max_steps=150",
         "tracker.train.lr=3e-3", "tracker.train.modality_dropout=0"]  # fmt: skip


def wrist_view(left: bool) -> np.ndarray:
    """A bright square on the left or the right half of the wrist image."""
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    x = 4 if left else SIZE - 12
    frame[12:20, x : x + 8] = 255
    return frame


def write_wrist_dataset(folder, episodes: int = 12):
    """Episodes whose x velocity is told only by the wrist view: +2 cm/s when the square is
    on the left, -2 cm/s when on the right."""
    write_dataset_info(folder, {"cameras": {"scene": [SIZE] * 2, "wrist": [SIZE] * 2},
                                "camera_hz": RATE_HZ})  # fmt: skip
    rng = np.random.default_rng(0)
    for i in range(episodes):
        episode = synthetic_episode(i)
        left = rng.random(len(episode)) < 0.5
        episode.images["wrist"] = np.stack([wrist_view(side) for side in left])
        episode.action[:, 0] = np.where(left, 0.02, -0.02)
        write_episode(folder / "episodes" / f"{i:04d}.npz", episode)
    return folder


@pytest.fixture(scope="module")
def wrist_data(tmp_path_factory):
    return write_wrist_dataset(tmp_path_factory.mktemp("wrist_data"))


@pytest.fixture(scope="module")
def wrist_tracker(wrist_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("wrist_run")
    assert main(["train", "tracker", f"data={wrist_data}", f"out={out}", *WRIST]) == 0
    return load_tracker(out / "tracker" / "export")


def observe(wrist: np.ndarray | None) -> Observation:
    images = {"scene": np.zeros((SIZE, SIZE, 3), np.uint8)}
    if wrist is not None:
        images["wrist"] = wrist
    return Observation(0.0, images, np.zeros(10), np.zeros(6), np.zeros((2, 4, 4, 3)))


def test_the_head_acts_on_what_the_wrist_camera_shows(wrist_tracker):
    assert wrist_tracker.cameras == ("scene", "wrist")
    reference = wrist_tracker.encode(np.zeros((1, SIZE, SIZE, 3), np.uint8))[0]
    moves = {}
    for left in (True, False):
        observation = observe(wrist_view(left))
        latent = wrist_tracker.encode_view(observation.images)
        assert latent.shape == (2 * wrist_tracker.latent_dim,)
        moves[left] = wrist_tracker.act(observation, latent, reference).ee_velocity[0]
    assert moves[True] > 0.005 and moves[False] < -0.005


def test_a_body_without_the_wrist_camera_is_told_what_to_add(wrist_tracker):
    with pytest.raises(DualctlError, match="camera 'wrist'.*\\['scene'\\].*sim.wrist_camera"):
        wrist_tracker.encode_view(observe(None).images)


def test_a_wrist_camera_added_to_a_checkpoint_starts_acting_like_it(wrist_data, tmp_path):
    quick = [*SMALL, "tracker.train.max_steps=5"]
    assert main(["train", "tracker", f"data={wrist_data}", f"out={tmp_path / 'a'}", *quick]) == 0
    start_dir = tmp_path / "a" / "tracker" / "export"
    grown_run = [*quick, "tracker.wrist_camera=wrist", "tracker.train.max_steps=1",
                 "tracker.train.lr=1e-7", f"tracker.train.init={start_dir}"]  # fmt: skip
    assert (
        main(["train", "tracker", f"data={wrist_data}", f"out={tmp_path / 'b'}", *grown_run]) == 0
    )
    start, grown = load_tracker(start_dir), load_tracker(tmp_path / "b" / "tracker" / "export")
    assert grown.cameras == ("scene", "wrist") and start.cameras == ("scene",)
    rng = np.random.default_rng(1)
    z, ref, wrist = rng.normal(size=(3, start.latent_dim)).astype(np.float32)
    context = rng.normal(size=start.net.context_dim).astype(np.float32)
    np.testing.assert_allclose(grown.fast.action(np.concatenate([z, wrist]), ref, context),
                               start.fast.action(z, ref, context), rtol=1e-2, atol=1e-3)  # fmt: skip


def test_a_pose_probe_cannot_be_added_before_a_wrist_camera_the_checkpoint_has(
    wrist_data, tmp_path
):
    quick = [*SMALL, "tracker.train.max_steps=2", "tracker.wrist_camera=wrist"]
    assert main(["train", "tracker", f"data={wrist_data}", f"out={tmp_path / 'a'}", *quick]) == 0
    start_dir = tmp_path / "a" / "tracker" / "export"
    grown = [*quick, "tracker.pose_probe=true", f"tracker.train.init={start_dir}"]
    assert main(["train", "tracker", f"data={wrist_data}", f"out={tmp_path / 'b'}", *grown]) == 2
    assert not (tmp_path / "b" / "tracker" / "export").exists()


def test_the_sim_renders_the_cameras_a_tracker_reads():
    assert with_cameras(SimConfig(), ("scene", "wrist")).wrist_camera
    assert not with_cameras(SimConfig(), ("scene",)).wrist_camera
