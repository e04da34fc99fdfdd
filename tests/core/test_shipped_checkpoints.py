"""The checkpoints that ship in the repo: each tracker loads through the runtime and acts, and
all of them together stay small enough to keep in git (< 30 MB)."""

from pathlib import Path

import numpy as np
import pytest

from dualctl.config import load_config
from dualctl.errors import DualctlError
from dualctl.runtime.factories import load_runtime_tracker
from dualctl.types import PROPRIO_DIM, TACTILE_SHAPE, Observation

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
TRACKERS = sorted(p.name for p in CHECKPOINTS.glob("tracker*") if p.is_dir())


def test_every_shipped_tracker_is_there():
    shipped = {
        "tracker",
        "tracker_dagger2",
        "tracker_oracle",
        "tracker_ahead08",
        "tracker_overhead",
    }
    assert shipped <= set(TRACKERS)


@pytest.mark.parametrize("name", TRACKERS)
def test_a_shipped_tracker_loads_and_acts(name):
    tracker = load_runtime_tracker(load_config([f"tracker.checkpoint={CHECKPOINTS / name}"]))
    frame = np.full((64, 64, 3), 120, np.uint8)
    latent = tracker.encode(frame[None])[0]
    observation = Observation(0.0, {"scene": frame}, np.full(PROPRIO_DIM, 0.05, np.float32),
                              np.zeros(6, np.float32), np.zeros(TACTILE_SHAPE, np.float32))  # fmt: skip
    action = tracker.act(observation, latent, latent)
    assert np.isfinite(action.to_array()).all()


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
