"""The ``dualctl`` command. Each part registers its own subcommands; this module only collects
them, parses the command line, and turns typed errors into one line and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable

from dualctl.errors import DualctlError
from dualctl.memory import keep_freed_memory

# dualctl renders offscreen (no display on robots' PCs, CI or here); MuJoCo reads this at import.
for _variable in ("MUJOCO_GL", "PYOPENGL_PLATFORM"):
    if not os.environ.get(_variable):
        os.environ[_variable] = "egl"

#: Modules that register subcommands, each with ``register(registry: CommandRegistry)``.
COMMAND_MODULES = (
    "dualctl.config_commands",
    "dualctl.tracker.commands",
    "dualctl.planner.commands",
    "dualctl.eval.commands",
    "dualctl.sim.commands",
    "dualctl.hardware.deploy",
    "dualctl.runtime.demo",
)


class CommandRegistry:
    """Collects subcommands; ``train`` targets are collected under one ``train`` command."""

    def __init__(self, subparsers: argparse._SubParsersAction):
        self._subparsers = subparsers
        self._train_targets: argparse._SubParsersAction | None = None

    def add(self, name: str, help: str, run: Callable[[argparse.Namespace], int | None]):
        parser = self._subparsers.add_parser(name, help=help, description=help)
        parser.set_defaults(run=run)
        return parser

    def add_train(self, name: str, help: str, run: Callable[[argparse.Namespace], int | None]):
        if self._train_targets is None:
            train = self._subparsers.add_parser("train", help="train a model from a config")
            self._train_targets = train.add_subparsers(dest="target", required=True)
        parser = self._train_targets.add_parser(name, help=help, description=help)
        parser.set_defaults(run=run)
        return parser


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """Give a subcommand the dotlist overrides every command takes (``key=value ...``)."""
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value",
        help="config overrides, e.g. task=Lift tracker.rate_hz=200; section=name loads "
        "configs/<section>/<name>.yaml",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dualctl", description="dualctl: a hierarchical dual-system robot controller"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    registry = CommandRegistry(parser.add_subparsers(dest="command", required=True))
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(registry)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pymodbus logs every unanswered request with a frame dump; our Modbus link already reports
    # timeouts with the device's meaning and retries, so its own log is kept for -v.
    logging.getLogger("pymodbus").setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)
    keep_freed_memory()
    try:
        return int(args.run(args) or 0)
    except DualctlError as error:
        print(f"dualctl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dualctl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
