"""dualctl: a hierarchical dual-system robot controller.

System 2 (``dualctl.planner``) imagines a short reference future as video; System 1
(``dualctl.tracker``) follows it in a JEPA latent space with force and touch; the runtime
(``dualctl.runtime``) runs both at their own rates over one body, sim or hardware.
"""

__version__ = "0.1.0"
