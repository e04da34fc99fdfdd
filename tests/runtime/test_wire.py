import numpy as np
import pytest

from dualctl.runtime.wire import SharedBlock, WireError, read_arrays, write_arrays
from dualctl.types import PROPRIO_DIM, TACTILE_SHAPE, Observation, Plan


@pytest.fixture
def block():
    shared = SharedBlock(1 << 16)
    yield shared
    shared.close()


def test_observation_and_plan_round_trip_through_shared_memory(block):
    rng = np.random.default_rng(1)
    observation = Observation(
        2.5, {"scene": rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)},
        rng.normal(size=PROPRIO_DIM), rng.normal(size=6), rng.random(TACTILE_SHAPE),
        {"proprio": 2.5, "image/scene": 2.45},
    )  # fmt: skip
    back = Observation.from_arrays(
        read_arrays(block.view, write_arrays(block.view, observation.to_arrays()))
    )
    assert back.timestamp == 2.5 and back.stamps == observation.stamps
    np.testing.assert_array_equal(back.images["scene"], observation.images["scene"])
    np.testing.assert_array_equal(back.tactile, observation.tactile)

    plan = Plan(
        rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8), [3.0, 3.2, 3.4, 3.6], 2.5, 4.0, "lift"
    )
    back = Plan.from_arrays(read_arrays(block.view, write_arrays(block.view, plan.to_arrays())))
    np.testing.assert_array_equal(back.frames, plan.frames)
    assert back.instruction == "lift" and back.valid_until == 4.0


def test_oversized_arrays_and_bad_layouts_are_refused(block):
    with pytest.raises(WireError, match="planner_shm_mb"):
        write_arrays(block.view, {"big": np.zeros(1 << 17, np.uint8)})
    with pytest.raises(WireError, match="outside"):
        read_arrays(block.view, [{"name": "x", "dtype": "<f8", "shape": [1 << 20], "offset": 0}])
    with pytest.raises(WireError, match="malformed"):
        read_arrays(block.view, [{"name": "x"}])
