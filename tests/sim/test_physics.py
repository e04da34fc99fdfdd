"""Physics, not shapes: touch, weight, breaking and slipping behave as the tasks promise."""

import dataclasses

import numpy as np
import pytest
from dualctl.sim.config import SimConfig
from dualctl.sim.experts import Expert, run_blind
from dualctl.sim.tasks import GRAVITY, sample_variation
from dualctl.sim.world import World


def make_world(task, seed, **changes):
    variation = sample_variation(task, seed, "train")
    if changes:
        variation = dataclasses.replace(variation, **changes)
    return World(task, variation, SimConfig())


def run_until(world, expert, phase):
    while expert.phase != phase and not world.monitor.status.done:
        world.apply(expert.act())
        world.advance_to(world.time + 0.05)


def test_tactile_reads_zero_without_contact_and_rises_on_grasp():
    world = make_world("Lift", 1)
    expert = Expert("Lift", world)
    run_until(world, expert, "close")
    assert np.all(world.tactile() == 0.0), "fingers open above the table: no touch at all"
    run_until(world, expert, "lift")
    tactile = world.tactile()
    normal = tactile[..., 0].sum(axis=(1, 2))
    # Each fingertip's taxels add up to the grip force the gripper was told to apply.
    assert normal == pytest.approx([expert.grip_force] * 2, rel=0.1)
    assert (tactile[..., 0] > 0).sum() >= 8, "a flat grasp presses on many taxels"


def test_wrist_wrench_reads_the_lifted_objects_weight():
    world = make_world("Slippery", 2)
    status = run_blind(world, Expert("Slippery", world).act)
    assert status.success
    weight = world.variation.mass * GRAVITY
    assert world.wrench()[2] == pytest.approx(weight, rel=0.1)
    # Held still and centred: horizontal force and torques are small next to the weight.
    assert np.abs(world.wrench()[:2]).max() < 0.1 * weight


@pytest.mark.parametrize("factor, crushed", [(1.25, True), (0.8, False)])
def test_fragile_object_breaks_above_its_threshold_only(factor, crushed):
    world = make_world("Fragile", 4)
    force = factor * world.variation.break_force
    assert force > 1.2 * world.variation.hold_force  # below the threshold it is still held
    status = run_blind(world, Expert("Fragile", world, grip_force=force).act)
    assert (status.failure_reason == "crushed") == crushed
    assert status.success != crushed


def test_slippery_object_slips_at_low_grip_force_and_holds_at_high():
    forces, outcomes, shear = [], [], []
    for factor in (0.7, 1.6):
        world = make_world("Slippery", 5, break_force=float("inf"))
        force = max(20.0, factor * world.variation.hold_force)
        forces.append(force / world.variation.hold_force)
        expert = Expert("Slippery", world, grip_force=force)
        outcomes.append(run_blind(world, expert.act))
        shear.append(world.tactile()[..., 1].sum())
    assert forces[0] < 1.0 < forces[1]
    assert outcomes[0].failure_reason == "dropped"
    assert outcomes[1].success
    # Held: the fingertips carry the weight as shear (the object pulls the pads down).
    assert shear[1] < -0.8 * world.variation.mass * GRAVITY
