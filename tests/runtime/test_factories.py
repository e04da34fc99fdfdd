"""The runtime builds its models from the configured checkpoints with the configured run-time
settings (a CLI override such as ``tracker.grip_reflex=false`` must change what runs)."""

import pytest

from dualctl.config import load_config
from dualctl.errors import CheckpointError, ConfigError
from dualctl.runtime.clock import VirtualClock
from dualctl.runtime.factories import load_runtime_tracker, planner_client


def test_tracker_run_settings_come_from_the_config():
    default = load_runtime_tracker(load_config([]))
    assert default.grip_reflex is not None and not default.force_missing
    config = load_config(["tracker.grip_reflex=false", "tracker.drop_force=true"])
    ablated = load_runtime_tracker(config)
    assert ablated.grip_reflex is None and ablated.force_missing
    # Architecture comes from the checkpoint, not from the config's defaults.
    assert ablated.config.tactile_history == default.config.tactile_history != 1


def test_planner_process_gets_the_configured_sampling_settings():
    config = load_config(["planner.steps=3", "planner.composite=mask", "planner.noise_scale=0.5"])
    client = planner_client(config, VirtualClock(), "scene")
    kwargs = client.process.spec.kwargs
    assert kwargs["steps"] == 3 and kwargs["composite"] == "mask"
    assert kwargs["noise_scale"] == 0.5 and kwargs["checkpoint_dir"] == config.planner.checkpoint


def test_a_planner_of_another_camera_than_the_trackers_is_refused_before_it_starts():
    config = load_config([])  # the shipped planner imagines the scene camera
    with pytest.raises(
        ConfigError, match=r"planner.checkpoint.*camera 'overhead'.*imagines 'scene'"
    ):
        planner_client(config, VirtualClock(), "overhead")  # checkpoints/tracker_overhead's view


def test_runtime_lookahead_reads_the_plan_further_ahead_within_the_trained_range():
    default = load_runtime_tracker(load_config([]))
    further = load_runtime_tracker(load_config(["runtime.lookahead_s=0.8"]))
    assert further.lookahead_s == 0.8 != default.lookahead_s
    with pytest.raises(CheckpointError, match=r"tracker.lookahead_s=3.0 .checkpoint trained for"):
        load_runtime_tracker(load_config(["runtime.lookahead_s=3.0"]))
