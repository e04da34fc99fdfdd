"""The runtime: clocks, the dual-rate scheduler, the planner process, plan buffer, safety,
telemetry and the closed-loop demo."""
