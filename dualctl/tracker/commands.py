"""``dualctl train tracker``, ``grasp-pose``, ``hand-pose`` and ``place-pose``; the training
code (and Lightning) loads only when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from dualctl.cli import CommandRegistry, add_overrides
from dualctl.config import load_config


def register(registry: CommandRegistry) -> None:
    parser = registry.add_train(
        "tracker", "train the JEPA tracker (System 1) on a dataset", run_command
    )
    add_overrides(parser)
    add_overrides(
        registry.add_train(
            "grasp-pose",
            "train the grasp-pose reader (object place and yaw from the camera) on a sim dataset",
            run_grasp_pose,
        )
    )
    add_overrides(
        registry.add_train(
            "hand-pose",
            "train the hand-pose reader (the gripper's place, from the camera) on a dataset",
            run_hand_pose,
        )
    )
    add_overrides(
        registry.add_train(
            "place-pose",
            "train the place-pose reader (the target pad's place, from the camera) on a sim "
            "dataset",
            run_place_pose,
        )
    )


def run_grasp_pose(args: argparse.Namespace) -> int:
    from dualctl.tracker.grasp_pose_train import train_grasp_pose

    config = load_config(args.overrides)
    train_grasp_pose(
        config.tracker.grasp_pose, Path(config.data), Path(config.out) / "grasp_pose", config.seed,
        config.trainer,
    )  # fmt: skip
    return 0


def run_hand_pose(args: argparse.Namespace) -> int:
    from dualctl.tracker.hand_pose_train import train_hand_pose

    config = load_config(args.overrides)
    train_hand_pose(
        config.tracker.hand_pose, Path(config.data), Path(config.out) / "hand_pose", config.seed,
        config.trainer,
    )  # fmt: skip
    return 0


def run_place_pose(args: argparse.Namespace) -> int:
    from dualctl.tracker.place_pose_train import train_place_pose

    config = load_config(args.overrides)
    train_place_pose(
        config.tracker.place_pose, Path(config.data), Path(config.out) / "place_pose",
        config.seed, config.trainer,
    )  # fmt: skip
    return 0


def run_command(args: argparse.Namespace) -> int:
    from dualctl.tracker.train import train_tracker

    config = load_config(args.overrides)
    train_tracker(
        config.tracker, Path(config.data), Path(config.out) / "tracker", config.seed,
        config.trainer,
    )  # fmt: skip
    return 0
