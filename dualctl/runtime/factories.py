"""Turning the configuration into the runtime's objects, once, at the CLI: the clock, the
planner process client for the configured planner checkpoint, and the tracker. Used by
``dualctl demo``, the benches and ``dualctl deploy``."""

from __future__ import annotations

from dualctl.config import Config, section_from_yaml
from dualctl.errors import ConfigError
from dualctl.runtime.clock import Clock, RealClock, VirtualClock
from dualctl.runtime.config import RuntimeConfig
from dualctl.runtime.planner_process import PlannerSpec, ProcessPlanClient

#: The planner checkpoint's factory, run inside the planner process.
PLANNER_FACTORY = "dualctl.planner.diffusion_planner:load_planner"


def make_clock(runtime: RuntimeConfig) -> Clock:
    """The clock ``runtime.clock`` names (a real clock calibrates its spin unless set)."""
    if runtime.clock == "virtual":
        return VirtualClock()
    spin_s = None if runtime.spin_s < 0 else runtime.spin_s
    return RealClock(spin_s, runtime.realtime_priority)


#: Sampling settings of ``planner`` that apply at run time (the rest is the checkpoint's).
PLANNER_RUN_KEYS = ("steps", "sampler", "guidance", "seed", "noise_scale", "change_threshold",
                    "composite", "blend_scale")  # fmt: skip


def planner_client(config: Config, clock: Clock, camera: str) -> ProcessPlanClient:
    """The planner process for the configured planner checkpoint, sampling with the configured
    ``PLANNER_RUN_KEYS``; ``camera`` is the tracker's, which the planner must imagine."""
    check_planner_camera(config.planner.checkpoint, camera)
    runtime = config.runtime
    settings = {key: getattr(config.planner, key) for key in PLANNER_RUN_KEYS}
    spec = PlannerSpec(
        PLANNER_FACTORY,
        {"checkpoint_dir": config.planner.checkpoint, "threads": 1, **settings},
        threads=1,
    )
    return ProcessPlanClient(
        spec, clock, latency_s=runtime.plan_latency_s, latency_mode=runtime.plan_latency_mode,
        injected_delay_s=runtime.plan_latency_s if runtime.inject_delay else 0.0,
        timeout_s=runtime.planner_timeout_s, restart_s=runtime.planner_restart_s,
        virtual_patience_s=runtime.planner_virtual_patience_s,
        shm_bytes=int(runtime.planner_shm_mb * (1 << 20)),
        max_in_flight=runtime.max_plans_in_flight,
    )  # fmt: skip


def check_planner_camera(checkpoint: str, camera: str, key: str = "planner.checkpoint") -> None:
    """Refuse a planner checkpoint (config key ``key``) that imagines another camera than
    ``camera``: the scheduler would reject every plan it makes and the arm would only hold. A
    checkpoint that cannot be read is left to the planner's loader, which reports it."""
    from dualctl.planner.checkpoint import CONFIG
    from dualctl.planner.config import PlannerConfig
    from dualctl.planner.diffusion_planner import resolve_checkpoint

    path = resolve_checkpoint(checkpoint) / CONFIG
    if not path.is_file():
        return
    imagined = section_from_yaml(PlannerConfig, path, "planner").camera
    if imagined != camera:
        raise ConfigError(
            key, checkpoint,
            f"a planner of camera '{camera}', the one the tracker reads (this one imagines "
            f"'{imagined}')",
        )  # fmt: skip


def load_runtime_tracker(config: Config):
    """The configured tracker checkpoint (with ``tracker.ensemble``: the ensemble of it and
    those): its own architecture settings, the configured run-time choices
    (``dualctl.tracker.config.RUN_KEYS``: controller, dropped inputs, grip reflex) and
    ``runtime.lookahead_s`` when set. Torch gets one thread in the control process: the planner
    process has its own, and more threads only fight over the machine's cores (an encode goes
    from ~2 ms to ~15 ms on a busy 2-core machine)."""
    from pathlib import Path

    import torch

    from dualctl.tracker.checkpoint import with_run_choices
    from dualctl.tracker.jepa import load_tracker

    torch.set_num_threads(1)
    folder = config.tracker.checkpoint
    lookahead_s = config.runtime.lookahead_s or None
    if config.tracker.ensemble:
        from dualctl.tracker.ensemble import load_ensemble

        folders = [folder, *config.tracker.ensemble]
        return load_ensemble(folders, choices=config.tracker, lookahead_s=lookahead_s)
    run = with_run_choices(Path(folder), config.tracker)
    return load_tracker(folder, config=run, lookahead_s=lookahead_s)
