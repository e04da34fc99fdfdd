"""bench/tracker_recipe.py: its stages' lanes run side by side, each lane's commands in order,
and a failing command stops the stage with its command line named."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "tracker_recipe.py"


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("tracker_recipe", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _append(path: Path, text: str) -> list[str]:
    """A command that appends ``text`` and a newline to ``path``."""
    code = f"open({str(path)!r}, 'a').write({text!r} + '\\n')"
    return [sys.executable, "-c", code]


def test_lanes_run_their_commands_in_order(recipe, tmp_path):
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    lanes = [[_append(first, "a"), _append(first, "b"), _append(first, "c")],
             [_append(second, "x")]]  # fmt: skip
    recipe._run_side_by_side(lanes, tmp_path / "recipe.log")
    assert first.read_text().split() == ["a", "b", "c"]
    assert second.read_text().split() == ["x"]


def test_a_failing_command_stops_the_stage_and_is_named(recipe, tmp_path):
    done = tmp_path / "done.txt"
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    with pytest.raises(SystemExit, match="raise SystemExit"):
        recipe._run_side_by_side([[failing, _append(done, "after")]], tmp_path / "recipe.log")
    assert not done.exists()  # the lane's next command never ran


def test_the_recipe_trains_all_three_readers_beside_cloning(recipe, tmp_path):
    args = recipe.argparse.Namespace(work=str(tmp_path), data="data/sim", seed=3, demos=5,
                                     bc_steps=None, round1_steps=None, round2_steps=None)  # fmt: skip
    stages = dict(recipe._stages(args))
    readers, cloning = stages["readers and behaviour cloning"]
    assert [c[2] for c in readers] == ["grasp-pose", "place-pose", "hand-pose"]
    assert all(f"tracker.{c[2].replace('-', '_')}.export={tmp_path / 'tracker'}" in c
               for c in readers)  # fmt: skip
    assert "tracker=recipe" in cloning[0] and "trainer.threads=1" in cloning[0]
