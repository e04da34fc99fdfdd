"""`dualctl deploy`: the safety acknowledgement, and a dry run end to end on the emulators."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from dualctl.hardware import deploy

from dualctl.cli import CommandRegistry
from dualctl.config import load_config
from dualctl.errors import ConfigError, DualctlError


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dualctl")
    deploy.register(CommandRegistry(parser.add_subparsers(dest="command", required=True)))
    return parser.parse_args(argv)


def test_deploy_refuses_without_the_acknowledgement(capsys):
    args = _parse(["deploy", "hardware=robotiq_rtu", "task=Lift", "--dry-run"])
    with pytest.raises(deploy.NotAcknowledged, match="--i-understand-the-limits") as caught:
        args.run(args)
    assert isinstance(caught.value, DualctlError)  # the CLI turns it into exit status 2
    shown = capsys.readouterr().out
    assert "max grip force" in shown and "100 N" in shown  # the limits were shown first


def test_dry_run_grips_the_emulated_object_then_runs_the_controller(capsys):
    args = _parse(["deploy", "--i-understand-the-limits", "--object-width", "0.03",
                   "--duration", "2", "hardware=emulated", "task=Lift",
                   "hardware.gripper.transport=tcp", "runtime.realtime_priority=0"])  # fmt: skip
    assert args.run(args) == 0
    table = capsys.readouterr().out
    close_row = next(line for line in table.splitlines() if "close" in line)
    assert "0.030" in close_row and "yes" in close_row
    assert "controller run" in table
    duration = next(line for line in table.splitlines() if "duration_s" in line)
    assert float(duration.split()[-2]) == pytest.approx(2.0, abs=0.2)
    rate = next(line for line in table.splitlines() if "loop_rate_hz" in line)
    assert float(rate.split()[-2]) > 50.0  # the 200 Hz loop really ticked over the hardware


def test_deploy_runs_real_time_under_the_stricter_limits():
    config = load_config(["hardware=emulated", "hardware.limits.max_wrench_n=40",
                          "runtime.safety.max_grip_force_n=80", "runtime.clock=virtual"])  # fmt: skip
    runtime = deploy.deploy_runtime(config)
    assert runtime.clock == "real"
    assert runtime.safety.max_wrench_n == 40.0  # the hardware's, stricter than 150 N
    assert runtime.safety.max_grip_force_n == 80.0  # the runtime's, stricter than 100 N
    assert runtime.safety.max_obs_age_s == min(
        config.hardware.limits.max_obs_age_s, config.runtime.safety.max_obs_age_s
    )


def test_deploy_refuses_a_camera_of_another_view_than_the_trackers():
    hardware = load_config(["hardware=emulated", "hardware.camera.enabled=true"]).hardware
    deploy.check_camera_view(hardware, "scene", "checkpoints/tracker")  # the view it reads
    with pytest.raises(ConfigError, match="hardware.camera.view.*'overhead'.*tracker_overhead"):
        deploy.check_camera_view(hardware, "overhead", "checkpoints/tracker_overhead")
    hardware.camera.enabled = False
    with pytest.raises(ConfigError, match="hardware.camera.enabled.*reads camera 'scene'"):
        deploy.check_camera_view(hardware, "scene", "checkpoints/tracker")


def test_a_dry_run_replays_the_view_the_tracker_reads():
    config = load_config(["hardware=emulated", "task=Lift"])
    scene, _ = deploy._dry_run_camera(config, "scene")
    overhead, instruction = deploy._dry_run_camera(config, "overhead")
    assert overhead.frames.shape == scene.frames.shape
    assert np.abs(overhead.frames[0].astype(int) - scene.frames[0]).mean() > 10  # another view
    assert "lift" in instruction.lower()
