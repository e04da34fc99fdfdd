"""The demo end to end on the shipped checkpoints: sim body, planner process, tracker."""

import json

from dualctl.config import load_config
from dualctl.runtime.clock import VirtualClock
from dualctl.runtime.demo import run_demo


def test_demo_runs_the_closed_loop_and_writes_videos_and_summary(tmp_path):
    config = load_config(["runtime.status_line=false"])
    clock = VirtualClock()
    rows = clock.run(run_demo(config, ["Lift"], clock, tmp_path, max_episode_s=1.2))
    (row,) = rows
    summary = row["summary"]
    assert row["task"] == "Lift" and row["instruction"]
    assert summary["ticks"] >= 200 and summary["loop_rate_hz"] > 199.0
    assert summary["plans"] >= 2  # the planner process answered (0.3 s latency, 0.5 s period)
    assert summary["planner_failures"] == {}
    assert (tmp_path / "Lift.mp4").stat().st_size > 1000
    assert (tmp_path / "Lift.gif").stat().st_size > 1000
    assert json.loads((tmp_path / "demo_summary.json").read_text())[0]["task"] == "Lift"
