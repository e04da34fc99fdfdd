"""The tracker ensemble on the shipped checkpoints: side-by-side latents, the members' mean
action, one grip reflex, and members that cannot act as one refused by name."""

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pytest

from dualctl.config import load_config
from dualctl.errors import ConfigError
from dualctl.runtime.factories import load_runtime_tracker
from dualctl.tracker.checkpoint import load_checkpoint, save_checkpoint, with_reader_choices
from dualctl.tracker.ensemble import EnsembleTracker, load_ensemble
from dualctl.tracker.jepa import load_tracker
from dualctl.types import PROPRIO_DIM, TACTILE_SHAPE, Observation

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
ORACLE = CHECKPOINTS / "tracker_oracle"


def _ahead_member(folder: Path) -> Path:
    """``tracker_oracle``, its weights scaled, saved as trained for a 0.8 s lookahead
    (references 0.6-1.0 s ahead), like the ensemble's second member that
    ``configs/tracker/ahead08*.yaml`` trains (it no longer ships: the 30 MB cap)."""
    net, config = load_checkpoint(CHECKPOINTS / "tracker_oracle")
    for parameter in net.parameters():  # another member: the same shapes, other weights
        parameter.data.mul_(1.1)
    train = dataclasses.replace(config.train, reference_min_s=0.6)
    save_checkpoint(folder, net, dataclasses.replace(config, lookahead_s=0.8, train=train))
    return folder


AHEAD = _ahead_member(Path(tempfile.mkdtemp(prefix="dualctl_ahead_")) / "tracker_ahead")


def frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 64, 64, 3), dtype=np.uint8)


def observation(t: float, frame: np.ndarray) -> Observation:
    proprio = np.full(PROPRIO_DIM, 0.05, np.float32)
    tactile = np.zeros(TACTILE_SHAPE, np.float32)
    return Observation(t, {"scene": frame}, proprio, np.zeros(6, np.float32), tactile)


def test_latents_are_the_members_side_by_side():
    ensemble = load_ensemble([ORACLE, AHEAD], lookahead_s=0.8)
    oracle, ahead = load_tracker(ORACLE, lookahead_s=0.8), load_tracker(AHEAD)
    images = frames(3)
    latents = ensemble.encode(images)
    assert latents.shape == (3, oracle.latent_dim + ahead.latent_dim) == (3, ensemble.latent_dim)
    np.testing.assert_allclose(latents[:, : oracle.latent_dim], oracle.encode(images), atol=1e-5)
    np.testing.assert_allclose(latents[:, oracle.latent_dim :], ahead.encode(images), atol=1e-5)
    np.testing.assert_allclose(ensemble.encode_view({"scene": images[0]}), latents[0], atol=1e-5)


def test_the_raw_action_is_the_members_mean():
    ensemble = load_ensemble([ORACLE, AHEAD], lookahead_s=0.8)
    oracle, ahead = load_tracker(ORACLE, lookahead_s=0.8), load_tracker(AHEAD)
    for tracker in (ensemble, oracle, ahead):
        tracker.grip_reflex = None
    now, later = frames(2, seed=1)
    latent, reference = ensemble.encode(now[None])[0], ensemble.encode(later[None])[0]
    d = oracle.latent_dim
    obs = observation(0.0, now)
    mixed = ensemble.act(obs, latent, reference).to_array()
    alone = [oracle.act(obs, latent[:d], reference[:d]), ahead.act(obs, latent[d:], reference[d:])]
    mean = np.mean([a.to_array() for a in alone], axis=0)
    assert not np.allclose(alone[0].to_array(), alone[1].to_array(), atol=1e-3)
    np.testing.assert_allclose(mixed[:4], mean[:4], atol=1e-5)  # arm velocity and yaw rate


def test_an_ensemble_of_one_checkpoint_twice_acts_as_that_checkpoint():
    ensemble, alone = load_ensemble([ORACLE, ORACLE]), load_tracker(ORACLE)
    images = frames(8, seed=2)
    for t, frame in enumerate(images[:-1]):
        obs = observation(0.05 * t, frame)
        doubled = ensemble.act(
            obs, ensemble.encode(frame[None])[0], ensemble.encode(images[-1:])[0]
        )
        single = alone.act(obs, alone.encode(frame[None])[0], alone.encode(images[-1:])[0])
        np.testing.assert_allclose(doubled.to_array(), single.to_array(), atol=1e-4)
    assert ensemble.members[1].grip_reflex is None and ensemble.grip_reflex is not None


def test_the_stacked_fast_path_acts_as_the_members_one_by_one():
    stacked = load_ensemble([ORACLE, AHEAD], lookahead_s=0.8)
    one_by_one = load_ensemble([ORACLE, AHEAD], lookahead_s=0.8)
    assert stacked.stacked is not None
    one_by_one.stacked = None
    rng = np.random.default_rng(3)
    images = frames(6, seed=3)
    reference = stacked.encode(images[-1:])[0]
    for t, frame in enumerate(images[:-1]):
        obs = observation(0.02 * t, frame)
        obs.wrench = rng.normal(0.0, 5.0, 6).astype(np.float32)
        obs.tactile = np.abs(rng.normal(0.0, 1.0, TACTILE_SHAPE)).astype(np.float32)
        latent = stacked.encode(frame[None])[0]
        np.testing.assert_allclose(
            stacked.act(obs, latent, reference).to_array(),
            one_by_one.act(obs, latent, reference).to_array(),
            rtol=1e-4, atol=1e-4,
        )  # fmt: skip


def test_members_at_other_lookaheads_are_refused_unless_one_is_set():
    with pytest.raises(ConfigError, match="lookahead_s"):
        load_ensemble([ORACLE, AHEAD])  # 0.5 s and 0.8 s as trained
    assert load_ensemble([ORACLE, AHEAD], lookahead_s=0.8).lookahead_s == 0.8


def test_one_member_is_not_an_ensemble():
    with pytest.raises(ConfigError, match="tracker.ensemble"):
        EnsembleTracker([load_tracker(ORACLE)])


def test_the_runtime_builds_the_configured_ensemble():
    config = load_config([f"tracker.checkpoint={ORACLE}", f"tracker.ensemble=[{AHEAD}]",
                          "runtime.lookahead_s=0.8", "tracker.grip_reflex=false"])  # fmt: skip
    tracker = load_runtime_tracker(config)
    assert isinstance(tracker, EnsembleTracker)
    assert len(tracker.members) == 2 and tracker.lookahead_s == 0.8
    assert tracker.grip_reflex is None  # run-time choices reach every member


def test_an_ensemble_carries_its_first_members_hand_pose_reading_after_the_latents():
    shipped = CHECKPOINTS / "tracker"  # ships a hand-pose reader; tracker_oracle does not
    choices = with_reader_choices(shipped)  # the readers the checkpoint ships, turned on
    ensemble = load_ensemble([shipped, ORACLE], choices=choices, lookahead_s=0.5)
    first = load_tracker(shipped, config=choices)
    images = frames(2, seed=3)
    references = ensemble.encode(images)
    assert references.shape == (2, ensemble.reference_dim) == (2, ensemble.latent_dim + 3)
    np.testing.assert_allclose(references[:, -3:], first.encode(images)[:, -3:], atol=1e-5)
    assert ensemble.members[1].carry_servo is None  # one servo carries
    action = ensemble.act(observation(0.0, images[0]), ensemble.encode_view({"scene": images[0]}),
                          references[1])  # fmt: skip
    assert np.isfinite(action.to_array()).all()
