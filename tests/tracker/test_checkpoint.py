"""Which configs a tracker checkpoint loads under (no training: the check reads configs)."""

from dataclasses import replace
from pathlib import Path

import pytest

from dualctl.errors import CheckpointError
from dualctl.tracker.checkpoint import check_compatible, trained_lookahead_range
from dualctl.tracker.config import TrackerConfig, TrackerTrainConfig

RANGED = TrackerConfig(lookahead_s=0.5,
                       train=TrackerTrainConfig(reference_min_s=0.25, reference_max_s=1.0))  # fmt: skip
EXACT = TrackerConfig(lookahead_s=0.5)


def test_a_head_trained_on_a_range_of_references_runs_at_any_lookahead_inside_it():
    assert trained_lookahead_range(RANGED) == (0.25, 1.0)
    for lookahead in (0.25, 0.8, 1.0):
        check_compatible(Path("ckpt"), RANGED, replace(RANGED, lookahead_s=lookahead))
    with pytest.raises(CheckpointError, match=r"tracker.lookahead_s=1.2 .checkpoint trained for "
                                              r"0.25..1.0 s, runs at 0.5"):  # fmt: skip
        check_compatible(Path("ckpt"), RANGED, replace(RANGED, lookahead_s=1.2))


def test_a_head_trained_at_one_lookahead_runs_only_there():
    assert trained_lookahead_range(EXACT) == (0.5, 0.5)
    check_compatible(Path("ckpt"), EXACT, EXACT)
    with pytest.raises(CheckpointError, match=r"lookahead_s=0.8 .checkpoint trained for 0.5..0.5"):
        check_compatible(Path("ckpt"), EXACT, replace(EXACT, lookahead_s=0.8))


def test_other_architecture_keys_still_must_match_exactly():
    with pytest.raises(CheckpointError, match=r"tracker.latent_dim=32 .checkpoint has 64"):
        check_compatible(Path("ckpt"), RANGED, replace(RANGED, latent_dim=32, lookahead_s=0.8))
