"""bench/tracker_dagger.py's demo linking, which two recording processes share."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "tracker_dagger.py"


@pytest.fixture(scope="module")
def dagger():
    spec = importlib.util.spec_from_file_location("tracker_dagger", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def demos_folder(tmp_path: Path, names: list[str]) -> Path:
    demos = tmp_path / "demos"
    (demos / "episodes").mkdir(parents=True)
    for name in names:
        (demos / "episodes" / name).write_bytes(b"npz")
    return demos


def test_demos_are_linked_once_and_relinking_keeps_them(dagger, tmp_path):
    demos = demos_folder(tmp_path, ["lift_000000.npz", "place_000001.npz"])
    out = tmp_path / "out"
    (out / "episodes").mkdir(parents=True)
    assert dagger.link_demos(out, demos) == 2
    assert dagger.link_demos(out, demos) == 2
    links = sorted((out / "episodes").iterdir())
    assert [link.name for link in links] == ["demo_lift_000000.npz", "demo_place_000001.npz"]
    assert all(link.is_symlink() and link.read_bytes() == b"npz" for link in links)


def test_a_link_made_by_the_other_process_meanwhile_is_kept(dagger, tmp_path, monkeypatch):
    demos = demos_folder(tmp_path, ["lift_000000.npz"])
    out = tmp_path / "out"
    (out / "episodes").mkdir(parents=True)
    dagger.link_demos(out, demos)
    # The other process made the link between this one's check and its own symlink call.
    monkeypatch.setattr(Path, "is_symlink", lambda self: False)
    assert dagger.link_demos(out, demos) == 1
    monkeypatch.undo()
    assert (out / "episodes" / "demo_lift_000000.npz").is_symlink()
