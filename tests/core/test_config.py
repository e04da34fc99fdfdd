import subprocess
import sys

import pytest

from dualctl.config import Config, load_config, section_from_yaml, to_yaml
from dualctl.errors import ConfigError
from dualctl.tracker.config import TrackerConfig


def test_defaults_load_and_overrides_apply():
    config = load_config(["task=Fragile", "tracker.rate_hz=250", "sim.camera_size=96"])
    assert isinstance(config, Config)
    assert config.task == "Fragile"
    assert config.tracker.rate_hz == 250.0
    assert config.sim.camera_size == 96


@pytest.mark.parametrize(
    ("override", "key", "fragment"),
    [
        ("tracker.nope=1", "tracker.nope", "known key"),
        ("tracker.rate_hz=fast", "tracker.rate_hz", "Float"),
        ("seed=1.5", "seed", "Integer"),
        ("tracker.rate_hz=5000", "tracker.rate_hz", "[1.0, 1000.0]"),
        ("sim.split=test", "sim.split", "'heldout'"),
        ("runtime.plan_alignment=state", "runtime.plan_alignment", "'latent'"),
        ("runtime.safety.wrench_backoff_mps=-1", "runtime.safety.wrench_backoff_mps", "[0.0"),
        ("hardware=no_such_rig", "hardware", "YAML path"),
        ("justaword", "justaword", "key=value"),
    ],
)
def test_bad_overrides_name_key_and_expectation(override, key, fragment):
    with pytest.raises(ConfigError) as info:
        load_config([override])
    assert info.value.key == key
    assert fragment in str(info.value)


def test_cli_bad_value_exits_2_with_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "dualctl.cli", "config", "show", "tracker.rate_hz=5000"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "tracker.rate_hz" in lines[0] and "5000" in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_config_show_prints_resolved_config():
    result = subprocess.run(
        [sys.executable, "-m", "dualctl.cli", "config", "show", "task=Place", "seed=7"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "task: Place" in result.stdout and "seed: 7" in result.stdout


def test_section_round_trips_through_yaml(tmp_path):
    section = TrackerConfig(rate_hz=333.0)
    path = tmp_path / "tracker.yaml"
    path.write_text(to_yaml(section))
    assert section_from_yaml(TrackerConfig, path, "tracker") == section


def test_section_from_yaml_rejects_unknown_key(tmp_path):
    path = tmp_path / "tracker.yaml"
    path.write_text("rate_hz: 100\nwarp_drive: true\n")
    with pytest.raises(ConfigError, match="warp_drive"):
        section_from_yaml(TrackerConfig, path, "tracker")


def test_cli_help_lists_every_command_without_loading_torch():
    probe = (
        "import sys\n"
        "from dualctl.cli import build_parser\n"
        "text = build_parser().format_help()\n"
        "print(sorted(m for m in ('torch', 'pytorch_lightning', 'matplotlib') if m in sys.modules))\n"
        "print(text)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded, _, help_text = result.stdout.partition("\n")
    assert loaded == "[]"
    for command in ("train", "plan", "demo", "deploy", "ablate", "collect", "config"):
        assert command in help_text
