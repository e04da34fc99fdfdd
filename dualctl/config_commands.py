"""``dualctl config show``: print the resolved configuration."""

from __future__ import annotations

import argparse

from dualctl.cli import CommandRegistry, add_overrides
from dualctl.config import load_config, to_yaml


def register(registry: CommandRegistry) -> None:
    parser = registry.add("config", "show the resolved configuration", run)
    parser.add_argument("action", choices=["show"], help="what to do with the config")
    add_overrides(parser)


def run(args: argparse.Namespace) -> int:
    print(to_yaml(load_config(args.overrides)), end="")
    return 0
