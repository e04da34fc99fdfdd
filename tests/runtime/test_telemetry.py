import json

import pytest

from dualctl.runtime.safety import Intervention
from dualctl.runtime.telemetry import TICK_FIELDS, Telemetry


def tick(t, lateness):
    values = dict.fromkeys(TICK_FIELDS, 0.0)
    values.update(t=t, lateness_s=lateness, compute_s=0.0002, following=1.0)
    return values


def test_summary_counts_misses_and_plan_latency_and_writes_jsonl(tmp_path):
    path = tmp_path / "run.jsonl"
    telemetry = Telemetry(path, deadline_tolerance_s=0.001)
    for i in range(1000):
        late = 0.003 if i % 100 == 0 else 0.0001  # 10 misses in 1000 ticks
        notes = [Intervention(i * 0.005, "speed_limit", "clipped")] if i == 5 else []
        telemetry.tick(tick(i * 0.005, late), notes)
    telemetry.event("plan", 1.0, latency_s=0.3, compute_s=0.25, how="swapped")
    telemetry.event("plan", 1.5, latency_s=0.5, compute_s=0.26, how="stitched")
    telemetry.event("plan_failed", 2.0, error="hung")
    telemetry.close()

    summary = telemetry.summary()
    assert summary.ticks == 1000 and summary.deadline_misses == 10
    assert summary.on_time_fraction == pytest.approx(0.99)
    assert summary.loop_rate_hz == pytest.approx(200.0)
    assert summary.lateness_p50_ms == pytest.approx(0.1)
    assert summary.plans == 2 and summary.plan_latency_p50_s == pytest.approx(0.4)
    assert summary.planner_failures == {"hung": 1}
    assert summary.interventions == {"speed_limit": 1}

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = [line["type"] for line in lines]
    assert kinds.count("tick") == 1000 and kinds.count("intervention") == 1
    assert kinds.count("plan") == 2 and kinds.count("plan_failed") == 1
    assert next(line for line in lines if line["type"] == "intervention")["reason"] == "clipped"
