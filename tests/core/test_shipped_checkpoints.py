"""The checkpoints that ship in the repo: each tracker loads through the runtime and acts, and
all of them together stay small enough to keep in git (< 30 MB)."""

from pathlib import Path

import numpy as np
import pytest

from dualctl.config import load_config
from dualctl.errors import DualctlError
from dualctl.runtime.factories import load_runtime_tracker
from dualctl.tracker.checkpoint import read_checkpoint_config
from dualctl.types import PROPRIO_DIM, TACTILE_SHAPE, Observation

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
TRACKERS = sorted(p.name for p in CHECKPOINTS.glob("tracker*") if p.is_dir())


def test_every_shipped_tracker_is_there():
    shipped = {
        "tracker",
        "tracker_oracle",
        "tracker_overhead",
        "tracker_recipe",
    }
    assert shipped <= set(TRACKERS)


def test_the_default_tracker_runs_with_its_three_readers():
    tracker = load_runtime_tracker(load_config([]))
    assert tracker.grasp_servo is not None and tracker.place_servo is not None
    assert tracker.carry_servo is None  # the hand-pose reader ships but is off in the runtime


@pytest.mark.parametrize("name", TRACKERS)
def test_a_shipped_tracker_loads_and_acts(name):
    tracker = load_runtime_tracker(load_config([f"tracker.checkpoint={CHECKPOINTS / name}"]))
    frame = np.full((64, 64, 3), 120, np.uint8)
    images = {camera: frame for camera in tracker.cameras}
    latent, reference = tracker.encode_view(images), tracker.encode(frame[None])[0]
    observation = Observation(0.0, images, np.full(PROPRIO_DIM, 0.05, np.float32),
                              np.zeros(6, np.float32), np.zeros(TACTILE_SHAPE, np.float32))  # fmt: skip
    action = tracker.act(observation, latent, reference)
    assert np.isfinite(action.to_array()).all()


def test_the_recipe_tracker_runs_with_the_readers_its_recipe_trained():
    recipe = CHECKPOINTS / "tracker_recipe"
    tracker = load_runtime_tracker(load_config([f"tracker.checkpoint={recipe}"]))
    assert tracker.grasp_servo is not None and tracker.place_servo is not None
    assert tracker.carry_servo is None
    saved = read_checkpoint_config(recipe).train  # trained by its recipe's last stage
    last = load_config(["tracker=recipe_round2"]).tracker.train
    assert (saved.max_steps, saved.lr, saved.init) == (last.max_steps, last.lr, last.init)


def test_all_shipped_checkpoints_stay_under_30_mb():
    size = sum(f.stat().st_size for f in CHECKPOINTS.rglob("*") if f.is_file())
    assert size < 30e6


def test_the_overhead_tracker_asks_for_the_overhead_camera():
    tracker = load_runtime_tracker(
        load_config([f"tracker.checkpoint={CHECKPOINTS / 'tracker_overhead'}"])
    )
    assert tracker.cameras == ("overhead",) and tracker.lookahead_s == 0.5
    frame = np.full((64, 64, 3), 120, np.uint8)
    with pytest.raises(DualctlError, match="sim.overhead_camera=true"):
        tracker.encode_view({"scene": frame})
    assert tracker.encode_view({"overhead": frame}).shape == tracker.encode(frame[None])[0].shape


def test_the_runtime_tracker_turns_the_hand_with_its_shipped_grasp_pose_reader():
    shipped = load_runtime_tracker(load_config([]))
    assert shipped.grasp_pose_reader is not None and shipped.grasp_servo is not None
    assert shipped.grasp_pose_reader.config.camera == shipped.cameras[0]
    off = load_runtime_tracker(load_config(["tracker.grasp_pose.enabled=false"]))
    assert off.grasp_pose_reader is None and off.grasp_servo is None
    # a tracker whose folder holds no reader runs without one
    oracle = load_runtime_tracker(
        load_config([f"tracker.checkpoint={CHECKPOINTS / 'tracker_oracle'}"])
    )
    assert oracle.grasp_servo is None


def test_the_runtime_tracker_reads_the_hand_in_its_references_with_its_shipped_reader():
    from dualctl.sim.config import SimConfig
    from dualctl.sim.tasks import sample_variation
    from dualctl.sim.world import World

    off = load_runtime_tracker(load_config([]))  # off by default in the runtime
    assert off.carry_servo is None and off.reference_dim == off.latent_dim
    shipped = load_runtime_tracker(load_config(["tracker.hand_pose.enabled=true"]))
    assert shipped.carry_servo is not None and shipped.reference_dim == shipped.latent_dim + 3
    world = World("Place", sample_variation("Place", 7, "train"), SimConfig())
    try:
        frame, hand = world.render()["scene"], world.state().ee_pose[:3]
    finally:
        world.close()
    reading = shipped.encode(frame[None])[0, shipped.latent_dim :]
    assert np.abs(reading - hand).max() < 0.02  # the start pose, read off the camera frame
