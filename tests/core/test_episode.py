import numpy as np
import pytest

from dualctl.data.episode import (
    Episode,
    episode_paths,
    read_dataset_info,
    read_episode,
    write_dataset_info,
    write_episode,
)
from dualctl.errors import DataError
from dualctl.types import ACTION_DIM, PROPRIO_DIM, TACTILE_SHAPE


def make_episode(steps=5):
    rng = np.random.default_rng(1)
    return Episode(
        images={"scene": rng.integers(0, 255, (steps, 16, 16, 3), dtype=np.uint8)},
        proprio=rng.normal(size=(steps, PROPRIO_DIM)).astype(np.float32),
        wrench=rng.normal(size=(steps, 6)).astype(np.float32),
        tactile=rng.random((steps, *TACTILE_SHAPE)).astype(np.float32),
        action=rng.normal(size=(steps, ACTION_DIM)).astype(np.float32),
        timestamp=np.arange(steps) / 20.0,
        meta={"task": "Lift", "seed": 3, "success": True},
    )


def test_episode_round_trip(tmp_path):
    path = tmp_path / "episodes" / "lift_000003.npz"
    episode = make_episode()
    write_episode(path, episode)
    again = read_episode(path)
    assert again.meta == episode.meta and len(again) == 5
    np.testing.assert_array_equal(again.images["scene"], episode.images["scene"])
    np.testing.assert_array_equal(again.tactile, episode.tactile)
    assert episode_paths(tmp_path) == [path]
    assert not list(path.parent.glob("*.tmp")), "temp file left behind"


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "ep.npz"
    write_episode(path, make_episode())
    bad = make_episode()
    bad.action = bad.action[:, :3]
    with pytest.raises(DataError, match="action"):
        write_episode(path, bad)
    assert read_episode(path).action.shape == (5, ACTION_DIM)


def test_unreadable_and_missing_files_are_data_errors(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz"):
        read_episode(tmp_path / "junk.npz")
    with pytest.raises(DataError, match="dualctl collect"):
        episode_paths(tmp_path / "nowhere")


def test_dataset_info_round_trip_and_version_check(tmp_path):
    write_dataset_info(tmp_path, {"cameras": ["scene"], "rate_hz": 20})
    assert read_dataset_info(tmp_path)["rate_hz"] == 20
    (tmp_path / "dataset.json").write_text('{"format_version": 99}')
    with pytest.raises(DataError, match="format_version"):
        read_dataset_info(tmp_path)
