"""Windows over in-memory episodes: offsets, clamping at episode edges, statistics."""

import numpy as np
import pytest

from dualctl.data.dataset import REFERENCE_CAMERA, EpisodeStore, WindowDataset
from dualctl.data.episode import read_episode
from dualctl.errors import DataError


def test_windows_gather_offsets_and_clamp_at_the_edges(synthetic_dataset):
    store = EpisodeStore.load(synthetic_dataset)
    windows = WindowDataset(store, {"proprio": [-2, 0, 3], "frames": [0, 1]}, require_future=3)
    assert len(windows) == sum(int(n) - 3 for n in store.lengths)
    batch = windows.__getitems__([0, 5])
    first = store.episode(0)
    # window 0 is (episode 0, t=0): the -2 step clamps to t=0.
    np.testing.assert_array_equal(batch["proprio"][0], first.proprio[[0, 0, 3]])
    np.testing.assert_array_equal(batch["proprio"][1], first.proprio[[3, 5, 8]])
    np.testing.assert_array_equal(batch["frames"][1, 1], store.arrays["frames"][6])
    np.testing.assert_array_equal(batch["index"][1], [0, 5])


def test_future_offsets_clamp_to_the_last_step(synthetic_dataset):
    store = EpisodeStore.load(synthetic_dataset)
    windows = WindowDataset(store, {"action": [0, 100]})
    last = int(store.lengths[0]) - 1
    item = windows[last]
    np.testing.assert_array_equal(item["action"][1], store.episode(0).action[last])


def test_subset_and_stats(synthetic_dataset):
    store = EpisodeStore.load(synthetic_dataset)
    sub = store.subset([2, 0])
    assert len(sub) == 2 and sub.metas[0]["seed"] == 2
    np.testing.assert_array_equal(sub.arrays["frames"][: sub.lengths[0]],
                                  store.arrays["frames"][store.slice(2)])  # fmt: skip
    stats = store.stats("action")
    assert stats.mean.shape == (7,) and (stats.std >= 1e-3).all()
    normalised = stats.normalise(store.arrays["action"])
    assert abs(normalised[:, 0].mean()) < 1e-4 and abs(normalised[:, 0].std() - 1) < 1e-3


def test_missing_dataset_and_unknown_keys_are_data_errors(synthetic_dataset, tmp_path):
    with pytest.raises(DataError, match="dataset.json"):
        EpisodeStore.load(tmp_path)
    store = EpisodeStore.load(synthetic_dataset)
    with pytest.raises(DataError, match="bogus"):
        WindowDataset(store, {"bogus": [0]})


def test_recorded_references_are_gathered_with_their_flag(synthetic_dataset):
    plain = read_episode(sorted((synthetic_dataset / "episodes").glob("*.npz"))[0])
    shown = read_episode(sorted((synthetic_dataset / "episodes").glob("*.npz"))[1])
    shown.images[REFERENCE_CAMERA] = 255 - shown.images["scene"]
    store = EpisodeStore([plain, shown])
    assert not store.arrays["has_reference"][: len(plain)].any()
    assert store.arrays["has_reference"][len(plain) :].all()
    assert not store.arrays["reference_frames"][: len(plain)].any()
    windows = WindowDataset(store, {"reference_frames": [0], "has_reference": [0]})
    batch = windows.__getitems__([len(plain) + 3])
    np.testing.assert_array_equal(batch["reference_frames"][0, 0], 255 - shown.images["scene"][3])
    assert "reference_frames" not in EpisodeStore([plain]).arrays


def test_references_of_another_camera_than_the_store_reads_are_refused(synthetic_dataset):
    paths = sorted((synthetic_dataset / "episodes").glob("*.npz"))[:2]
    plain, shown = (read_episode(p) for p in paths)
    shown.images[REFERENCE_CAMERA] = 255 - shown.images["scene"]
    shown.meta["reference_camera"] = "scene"
    assert EpisodeStore([plain, shown]).arrays["has_reference"].any()  # its own camera: kept
    shown.meta["reference_camera"] = "overhead"
    with pytest.raises(DataError, match="episode 1 .*imitate camera 'overhead'.*reads 'scene'"):
        EpisodeStore([plain, shown])


def test_released_store_holds_the_same_arrays_and_frees_the_episode_images(synthetic_dataset):
    paths = sorted((synthetic_dataset / "episodes").glob("*.npz"))[:3]
    episodes = [read_episode(p) for p in paths]
    episodes[1].images[REFERENCE_CAMERA] = 255 - episodes[1].images["scene"]
    kept = EpisodeStore(episodes)
    released = EpisodeStore(episodes, release=True)
    assert kept.arrays.keys() == released.arrays.keys()
    for key, value in kept.arrays.items():
        np.testing.assert_array_equal(released.arrays[key], value, err_msg=key)
    assert all(not e.images for e in episodes)
