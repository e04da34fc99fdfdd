"""The ablation arms: what each one runs, as data. :mod:`dualctl.eval.episode` builds the
controller an :class:`ArmSpec` describes; tests check each arm differs from ``full`` in exactly
the part it ablates.

- ``full``: diffusion planner -> plan buffer -> JEPA tracker (tracking head), force and touch.
- ``tracker-only-head`` / ``tracker-only-mpc``: no planner; the tracker's reference is the
  episode's goal image (the expert's final frame for the same seed), as in V-JEPA 2-AC; with the
  tracking head or with latent MPC.
- ``planner-only``: no tracker; each plan's consecutive frames are turned into actions by an
  inverse-dynamics model and executed open loop until the next plan (UniPi).
- ``no-force`` / ``no-tactile`` / ``no-touch``: ``full`` with that input zeroed at the tracker
  (and its "missing" flag set, as in modality-dropout training).
- ``delay-<ms>``: ``full`` with ``ms`` of latency added to every plan's arrival (virtual time).
- ``oracle-plan``: ``full`` with the planner replaced by the scripted expert's recorded future
  for the same seed: an upper bound on what a better planner could buy.
- ``baseline``: the single-rate image-to-action-chunk policy at 10 Hz (no planner, no tracker).
"""

from __future__ import annotations

from dataclasses import dataclass

from dualctl.errors import ConfigError
from dualctl.eval.config import DELAY_ARM, NAMED_ARMS

#: What drives the body.
HIERARCHY, OPEN_LOOP_PLAN, SINGLE_RATE = "hierarchy", "open-loop-plan", "single-rate"
#: Where the tracker's reference comes from.
PLANNER, GOAL, ORACLE = "planner", "goal", "oracle"
ALL_MODALITIES = ("force", "tactile")


@dataclass(frozen=True)
class ArmSpec:
    """What one arm runs.

    Attributes:
        name: the arm's name.
        driver: ``HIERARCHY`` (tracker following a reference), ``OPEN_LOOP_PLAN`` (planner +
            inverse dynamics) or ``SINGLE_RATE`` (the baseline policy).
        reference: where the tracker's reference comes from (``HIERARCHY`` only).
        controller: tracker controller, "head" or "mpc".
        modalities: tracker inputs besides vision and proprio that are kept.
        extra_latency_s: s added to the planner's simulated latency.
    """

    name: str
    driver: str = HIERARCHY
    reference: str = PLANNER
    controller: str = "head"
    modalities: tuple[str, ...] = ALL_MODALITIES
    extra_latency_s: float = 0.0

    @property
    def uses_planner(self) -> bool:
        return self.driver == OPEN_LOOP_PLAN or (
            self.driver == HIERARCHY and self.reference == PLANNER
        )

    @property
    def uses_tracker(self) -> bool:
        return self.driver == HIERARCHY


_NAMED = {
    "full": ArmSpec("full"),
    "tracker-only-head": ArmSpec("tracker-only-head", reference=GOAL),
    "tracker-only-mpc": ArmSpec("tracker-only-mpc", reference=GOAL, controller="mpc"),
    "planner-only": ArmSpec("planner-only", driver=OPEN_LOOP_PLAN, modalities=()),
    "no-force": ArmSpec("no-force", modalities=("tactile",)),
    "no-tactile": ArmSpec("no-tactile", modalities=("force",)),
    "no-touch": ArmSpec("no-touch", modalities=()),
    "oracle-plan": ArmSpec("oracle-plan", reference=ORACLE),
    "baseline": ArmSpec("baseline", driver=SINGLE_RATE, modalities=()),
}
if set(_NAMED) != set(NAMED_ARMS):  # pragma: no cover - a programming error, caught by tests
    raise RuntimeError("arms.py and config.NAMED_ARMS list different arms")


def arm_spec(name: str) -> ArmSpec:
    """The spec of a named arm or of ``delay-<ms>``."""
    if name in _NAMED:
        return _NAMED[name]
    match = DELAY_ARM.match(name)
    if match:
        return ArmSpec(name, extra_latency_s=int(match.group(1)) / 1000.0)
    raise ConfigError("ablate.arms", name, "one of " + ", ".join(NAMED_ARMS) + " or delay-<ms>")
