"""bench/tracker_oracle.py's record of how far a held object slid down the fingers."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def oracle():
    spec = importlib.util.spec_from_file_location("tracker_oracle", BENCH / "tracker_oracle.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tracker_oracle"] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def body_at(ee_z: float, object_z: float, pad_force: float, hold_force: float = 50.0):
    state = SimpleNamespace(ee_pose=np.array([0.0, 0.0, ee_z, 0.0]),
                            object_pos=np.array([0.0, 0.0, object_z]),
                            pad_force=(pad_force, pad_force))  # fmt: skip
    return SimpleNamespace(world=SimpleNamespace(state=lambda: state),
                           variation=SimpleNamespace(hold_force=hold_force))  # fmt: skip


def reflex(state: str, force: float = 0.0):
    return SimpleNamespace(state=state, probe=SimpleNamespace(force=force))


def test_the_slide_counts_from_the_first_hold_and_is_noted_when_carried(oracle):
    slide = oracle.GraspSlide()
    slide.update(body_at(0.05, 0.03, 0.0), reflex("closing"))  # not held yet
    slide.update(body_at(0.03, 0.03, 20.0), reflex("probing", 20.0))  # held: the zero
    assert slide.at_carried_m is None and slide.at_end_m is None
    slide.update(body_at(0.045, 0.035, 60.0), reflex("probing", 60.0))  # the pads slid 1 cm up
    slide.update(body_at(0.05, 0.04, 66.0), reflex("carrying", 66.0))
    assert slide.at_carried_m == pytest.approx(0.01)
    assert slide.force_over_hold == pytest.approx(66.0 / 50.0)
    slide.update(body_at(0.09, 0.06, 66.0), reflex("carrying", 66.0))  # slid during the carry
    assert slide.at_carried_m == pytest.approx(0.01) and slide.at_end_m == pytest.approx(0.03)


def test_without_a_reflex_only_the_end_slide_is_known(oracle):
    slide = oracle.GraspSlide()
    slide.update(body_at(0.03, 0.03, 20.0), None)
    slide.update(body_at(0.06, 0.04, 20.0), None)
    assert slide.at_end_m == pytest.approx(0.02) and slide.at_carried_m is None
    assert oracle._slide_text({"slide_at_carried_m": None}) == ""
