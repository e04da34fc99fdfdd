"""The state-read expert (the DAgger teacher's arm): it finishes the tasks as the scripted
expert does, and off the script's path its labels follow from where things are, not from
the phase the script would be stuck in."""

import numpy as np
import pytest
from dualctl.sim.config import SimConfig
from dualctl.sim.experts import Expert, StateExpert, TouchGrip, run_blind
from dualctl.sim.tasks import TASKS, sample_variation
from dualctl.sim.world import World

from dualctl.types import GRIPPER_STROKE_M, Action, GripperCommand

PERIOD = 0.05  # s between commands, the camera rate


@pytest.fixture
def world_for():
    worlds = []

    def make(task: str, seed: int = 0) -> World:
        worlds.append(World(task, sample_variation(task, seed, "train"), SimConfig()))
        return worlds[-1]

    yield make
    for world in worlds:
        world.close()


def step(world: World, action: Action) -> None:
    world.apply(action)
    world.advance_to(world.time + PERIOD)


def drive(world: World, target: np.ndarray, gripper: GripperCommand, seconds: float) -> None:
    """Move the gripper toward ``target`` (x, y, z in m) with a P-controller, as a tracker
    would, keeping ``gripper``."""
    for _ in range(round(seconds / PERIOD)):
        pose = world.state().ee_pose
        velocity = np.zeros(4, np.float32)
        velocity[:3] = np.clip(4.0 * (target - pose[:3]), -0.1, 0.1)
        step(world, Action(velocity, gripper))


@pytest.mark.parametrize("task", TASKS)
def test_the_state_read_expert_finishes_every_task(task, world_for):
    for seed in range(2):
        world = world_for(task, seed)
        assert run_blind(world, StateExpert(task, world).act).success, (task, seed)


@pytest.mark.parametrize("task", TASKS)
def test_under_the_touch_grip_too(task, world_for):
    # Fragile seed 20 loses touch for a moment in the slip probe's lift: read as "not held",
    # the fingers were squeezed again at the table while the probe raised the force (crushed).
    for seed in (0, 20):
        world = world_for(task, seed)
        teacher = TouchGrip(StateExpert(task, world), world)
        assert run_blind(world, teacher.act).success, (task, seed)


def test_a_block_carried_low_beside_the_pad_is_brought_over_it_and_lowered(world_for):
    world = world_for("Place")
    script, state_read = Expert("Place", world), StateExpert("Place", world)
    while script.phase != "carry":  # the script picks the block up
        step(world, script.act())
    state_read.act()
    carrying = GripperCommand(0.0, 0.05, script.grip_force)
    pad = np.asarray(world.variation.pad_xy)
    low_beside_pad = np.array([pad[0] + 0.015, pad[1], script._grasp_z + 0.015])
    drive(world, low_beside_pad, carrying, seconds=3.0)
    assert min(world.state().pad_force) > 0.5  # still held
    assert script.act().ee_velocity[2] > 0.0  # the script still wants the carry height
    label = state_read.act()
    assert label.ee_velocity[2] <= 1e-6 and label.ee_velocity[0] < 0.0  # over the pad, not up
    status = run_blind(world, state_read.act)
    assert status.success, status


def test_a_hand_closed_on_nothing_opens_and_starts_over(world_for):
    world = world_for("Lift")
    above_block = np.array([*world.state().object_pos[:2], 0.12])
    drive(world, above_block, GripperCommand(0.0, 0.05, 20.0), seconds=2.0)
    assert world.state().width < 0.01
    expert = StateExpert("Lift", world)
    assert expert.act().gripper.width_m == pytest.approx(GRIPPER_STROKE_M)
    assert expert.phase == "approach"
    assert run_blind(world, expert.act).success


def test_a_block_grasped_high_is_let_go_of_once_it_is_down_on_the_pad(world_for):
    world = world_for("Place")
    script = Expert("Place", world)
    while script.phase != "descend":
        step(world, script.act())
    script._grasp_z += 0.01  # close 1 cm above the script's grasp height
    while script.phase != "carry":
        step(world, script.act())
    state_read = StateExpert("Place", world)
    state_read.act()
    holding = GripperCommand(0.0, 0.05, script.grip_force)
    pad = np.asarray(world.variation.pad_xy)
    drive(world, np.array([*pad, script._grasp_z + 0.02], np.float32), holding, seconds=3.0)
    drive(world, np.array([*pad, script._grasp_z - 0.01], np.float32), holding, seconds=1.5)
    state = world.state()
    assert state.object_pos[2] - state.object_start_z < 0.003  # down, fingers 1 cm higher
    assert min(state.pad_force) > 0.5
    assert state_read.act().gripper.width_m == pytest.approx(GRIPPER_STROKE_M)
    assert state_read.phase == "release"
    assert run_blind(world, state_read.act).success
