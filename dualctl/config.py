"""Typed configuration: dataclass schemas composed into one OmegaConf structured config.

Each part owns the schema of its section (``dualctl.tracker.config`` and so on); this module
composes them, loads ``configs/default.yaml``, applies config-group files
(``hardware=robotiq_tcp`` merges ``configs/hardware/robotiq_tcp.yaml`` into ``hardware``) and
dotlist overrides, and validates. Every failure is a :class:`ConfigError` naming the key path,
the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf import errors as oc_errors

from dualctl.errors import ConfigError, check_range
from dualctl.eval.config import AblateConfig
from dualctl.hardware.config import HardwareConfig
from dualctl.planner.config import PlannerConfig
from dualctl.runtime.config import RuntimeConfig
from dualctl.sim.config import SimConfig
from dualctl.tracker.config import TrackerConfig


@dataclass
class TrainerConfig:
    """Lightning trainer settings shared by every ``dualctl train`` run.

    ``accelerator``/``devices``/``strategy`` pass straight to Lightning, so the same command runs
    DDP on a GPU machine (``trainer.accelerator=gpu trainer.devices=4 trainer.strategy=ddp``).
    """

    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    # 2 cores here: more loader workers than that only add process overhead.
    num_workers: int = 0
    log_every_n_steps: int = 20
    threads: int = 2

    def __post_init__(self):
        check_range("trainer.devices", self.devices, 1)
        check_range("trainer.num_workers", self.num_workers, 0)
        check_range("trainer.threads", self.threads, 1)


@dataclass
class Config:
    """The whole configuration. Top-level keys are the ones most commands take."""

    task: str = "Lift"
    seed: int = 0
    out: str = "out"
    data: str = "data"
    episodes: int = 50
    sim: SimConfig = field(default_factory=SimConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    ablate: AblateConfig = field(default_factory=AblateConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def __post_init__(self):
        check_range("seed", self.seed, 0)
        check_range("episodes", self.episodes, 1)


def config_root() -> Path:
    """Folder of the shipped YAML configs (package data)."""
    return Path(str(resources.files("dualctl.configs")))


def _group_names() -> set[str]:
    return {f.name for f in dataclasses.fields(Config) if dataclasses.is_dataclass(f.type)} | {
        f.name for f in dataclasses.fields(Config) if f.default_factory is not dataclasses.MISSING
    }


def _group_file(group: str, name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        candidate = path
    else:
        candidate = config_root() / group / f"{name}.yaml"
    if not candidate.is_file():
        available = sorted(p.stem for p in (config_root() / group).glob("*.yaml"))
        raise ConfigError(group, name, f"a YAML path or one of {available}")
    return candidate


def _split_overrides(overrides: list[str]) -> tuple[list[tuple[str, Path]], list[str]]:
    groups, dotlist = [], []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(item, item, "an override of the form key=value")
        if key in _group_names():
            groups.append((key, _group_file(key, value)))
        else:
            dotlist.append(item)
    return groups, dotlist


def _load_yaml(path: Path):
    try:
        return OmegaConf.load(path)
    except Exception as error:  # yaml's parser errors have no common base we can name
        raise ConfigError(str(path), "<file>", f"valid YAML ({error})") from error


def _merge(schema, *configs):
    try:
        return OmegaConf.merge(schema, *configs)
    except oc_errors.ConfigKeyError as error:
        raise ConfigError(error.full_key, "<unknown key>",
                          "a known key (`dualctl config show` lists them)") from None  # fmt: skip
    except oc_errors.ValidationError as error:
        wanted = re.search(r"converted to (\w+)", error.msg)
        expected = f"a value of type {wanted.group(1)}" if wanted else error.msg.splitlines()[0]
        raise ConfigError(error.full_key, getattr(error, "value", "?"), expected) from None


def _instantiate(merged, key: str):
    """Build the dataclasses (running their validation); surface their ConfigError as is."""
    try:
        return OmegaConf.to_object(merged)
    except oc_errors.OmegaConfBaseException as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(getattr(error, "full_key", None) or key, "?", str(error)) from None


def load_config(overrides: list[str] | tuple[str, ...] = (), default: Path | None = None) -> Config:
    """Resolve the configuration: schema <- default.yaml <- group files <- dotlist overrides."""
    schema = OmegaConf.structured(Config)
    default = default if default is not None else config_root() / "default.yaml"
    merged = _merge(schema, _load_yaml(default))
    groups, dotlist = _split_overrides(list(overrides))
    for group, path in groups:
        merged = _merge(merged, OmegaConf.create({group: _load_yaml(path)}))
    merged = _merge(merged, OmegaConf.from_dotlist(dotlist))
    return _instantiate(merged, "<config>")


def to_yaml(config) -> str:
    """The config (or any section of it) as YAML, e.g. to save beside a checkpoint."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def section_from_yaml(schema: type, path: Path, key: str):
    """Load one section saved by :func:`to_yaml` (e.g. a checkpoint's config) into ``schema``."""
    return _instantiate(_merge(OmegaConf.structured(schema), _load_yaml(path)), key)
