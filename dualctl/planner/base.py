"""The planner interface the runtime calls. The built-in video-diffusion model is one backend;
an adapter to a large model (e.g. a Wan 2.2 pipeline on a GPU machine) is another."""

from __future__ import annotations

import abc

from dualctl.types import Observation, Plan


class Planner(abc.ABC):
    """System 2: imagines what the camera should see over the next few seconds."""

    @abc.abstractmethod
    def plan(self, observation: Observation, instruction: str) -> Plan:
        """A reference future conditioned on ``observation``.

        The returned plan's ``conditioned_at`` is ``observation.timestamp`` and its frame
        ``times`` are on the same clock, after it.
        """
