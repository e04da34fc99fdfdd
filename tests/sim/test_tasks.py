"""Tasks and experts: splits differ, instructions name the task, the expert succeeds, and a fixed
grip force (or finger position) cannot do what the force-aware expert does."""

import dataclasses
import math

import numpy as np
import pytest
from dualctl.sim.config import SimConfig
from dualctl.sim.experts import expert_outcome
from dualctl.sim.tasks import COLOURS_HELDOUT, TASKS, instruction, sample_variation

SWEEP_SEEDS = range(30)
FIXED_FORCES = (25.0, 40.0, 70.0, 130.0)


def test_variation_is_a_function_of_task_seed_and_split():
    assert sample_variation("Lift", 7, "train") == sample_variation("Lift", 7, "train")
    assert sample_variation("Lift", 7, "train") != sample_variation("Lift", 8, "train")
    held = [sample_variation("Fragile", s, "heldout") for s in range(20)]
    train = [sample_variation("Fragile", s, "train") for s in range(20)]
    assert {v.colour for v in held} <= set(COLOURS_HELDOUT)
    assert not {v.colour for v in train} & set(COLOURS_HELDOUT)
    # Held-out values lie in the outer bands of each range, outside the train values.
    train_sizes = [v.object_half[2] for v in train]
    outside = [not min(train_sizes) <= v.object_half[2] <= max(train_sizes) for v in held]
    assert all(outside)


def test_each_task_has_its_own_instruction_naming_the_colour():
    texts = {task: instruction(task, sample_variation(task, 0, "train")) for task in TASKS}
    assert len(set(texts.values())) == len(TASKS)
    for task, text in texts.items():
        assert sample_variation(task, 0, "train").colour in text
    assert "pad" in texts["Place"] and "fragile" in texts["Fragile"]


@pytest.mark.parametrize("task", ["Lift", "Fragile", "Slippery"])
def test_distractor_pad_only_adds_a_pad_away_from_the_object(task):
    for seed in range(5):
        plain = sample_variation(task, seed, "train")
        with_pad = sample_variation(task, seed, "train", distractor_pad=True)
        assert plain.pad_xy is None and with_pad.pad_xy is not None
        assert dataclasses.replace(with_pad, pad_xy=None) == plain
        assert math.dist(with_pad.pad_xy, with_pad.object_xy) >= 0.1
    assert sample_variation("Place", 3, "train", distractor_pad=True) == sample_variation(
        "Place", 3, "train"
    )


@pytest.mark.parametrize("task", ["Lift", "Slippery"])
def test_expert_ignores_a_distractor_pad(task):
    outcome = expert_outcome(task, 4, config=SimConfig(distractor_pad=True))
    assert outcome.success and outcome.failure_reason is None


@pytest.mark.parametrize("task", TASKS)
def test_expert_succeeds_on_a_handful_of_seeds(task):
    outcomes = [expert_outcome(task, seed) for seed in range(3)]
    outcomes.append(expert_outcome(task, 100000, "heldout"))
    assert [o.failure_reason for o in outcomes] == [None] * 4
    assert all(o.success for o in outcomes)


@pytest.mark.parametrize("task", ["Fragile", "Slippery"])
def test_no_fixed_grip_force_or_position_does_what_the_force_aware_expert_does(task):
    expert = np.mean([expert_outcome(task, s).success for s in SWEEP_SEEDS])
    assert expert >= 0.95
    rates = {}
    for force in FIXED_FORCES:
        rates[force] = np.mean([expert_outcome(task, s, grip_force=force).success
                                for s in SWEEP_SEEDS])  # fmt: skip
    width = 0.03  # a fixed finger position inside every object, at the maximal force
    rates["width"] = np.mean([expert_outcome(task, s, grip_force=235.0, close_width=width).success
                              for s in SWEEP_SEEDS[:10]])  # fmt: skip
    assert max(rates.values()) <= 0.6, rates
    # Both ways of failing happen: too little force drops it, too much breaks it.
    low = [expert_outcome(task, s, grip_force=20.0).failure_reason for s in SWEEP_SEEDS[:10]]
    high = [expert_outcome(task, s, grip_force=235.0).failure_reason for s in SWEEP_SEEDS[:10]]
    assert "dropped" in low and "crushed" in high
