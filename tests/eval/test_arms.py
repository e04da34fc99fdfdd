"""Every arm really changes what runs: checked on the parts each arm builds (a tiny untrained
tracker checkpoint stands in for the shipped one; the behaviour checked does not depend on
training)."""

import dataclasses

import numpy as np
import pytest
import torch

from dualctl.config import load_config
from dualctl.data.episode import Episode
from dualctl.errors import CheckpointError
from dualctl.eval.arms import (
    GOAL,
    HIERARCHY,
    OPEN_LOOP_PLAN,
    ORACLE,
    PLANNER,
    SINGLE_RATE,
    arm_spec,
)
from dualctl.eval.config import NAMED_ARMS
from dualctl.eval.episode import Models, build, plan_latency_s
from dualctl.eval.references import GoalPlanner, OraclePlanner
from dualctl.eval.results import Job
from dualctl.runtime.clock import VirtualClock
from dualctl.tracker.checkpoint import save_checkpoint
from dualctl.tracker.config import TrackerConfig
from dualctl.tracker.ensemble import EnsembleTracker
from dualctl.tracker.model import TrackerNet
from dualctl.types import ACTION_DIM, PROPRIO_DIM, TACTILE_SHAPE, Observation

FULL = arm_spec("full")


def test_each_arm_differs_from_full_in_what_it_ablates():
    differences = {}
    for name in NAMED_ARMS:
        spec = arm_spec(name)
        differences[name] = {f.name for f in dataclasses.fields(spec)
                             if f.name != "name" and getattr(spec, f.name) != getattr(FULL, f.name)}  # fmt: skip
    assert differences == {
        "full": set(),
        "tracker-only-head": {"reference"},
        "tracker-only-mpc": {"reference", "controller"},
        "planner-only": {"driver", "modalities"},
        "no-force": {"modalities"},
        "no-tactile": {"modalities"},
        "no-touch": {"modalities"},
        "oracle-plan": {"reference"},
        "baseline": {"driver", "modalities"},
    }
    assert arm_spec("no-force").modalities == ("tactile",)
    assert arm_spec("no-tactile").modalities == ("force",)
    assert arm_spec("no-touch").modalities == ()
    assert arm_spec("delay-750").extra_latency_s == 0.75
    assert dataclasses.replace(arm_spec("delay-750"), extra_latency_s=0.0, name="full") == FULL
    assert not arm_spec("tracker-only-head").uses_planner and arm_spec("planner-only").uses_planner
    assert not arm_spec("baseline").uses_tracker and not arm_spec("baseline").uses_planner


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tracker")
    config = TrackerConfig(image_size=32, latent_dim=16, hidden_dim=32, sensor_dim=8)
    torch.manual_seed(0)
    net = TrackerNet(config, load_encoder_weights=False)
    with torch.no_grad():  # make the sensors matter in an untrained net
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    save_checkpoint(folder, net, config)
    overrides = [
        f"ablate.tracker_checkpoint={folder}",
        "tracker.mpc.samples=16",
        "tracker.mpc.iterations=1",
    ]
    models = Models(load_config(overrides))
    models._planner = GoalPlanner(_expert(), 8, 2.0)  # these tests check the rest, not diffusion
    return models


def _expert(steps=30) -> Episode:
    frames = np.zeros((steps, 32, 32, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(steps)  # frame i is tagged by its first pixel
    return Episode({"scene": frames}, np.zeros((steps, PROPRIO_DIM), np.float32), np.zeros((steps, 6), np.float32),
                   np.zeros((steps, *TACTILE_SHAPE), np.float32), np.zeros((steps, ACTION_DIM), np.float32),
                   np.arange(steps) / 20.0)  # fmt: skip


def _observation(t=0.0, force=0.0, touch=0.0) -> Observation:
    image = np.full((32, 32, 3), 90, np.uint8)
    wrench = np.array([force, -force, 2 * force, 0.1 * force, 0, 0], np.float32)
    return Observation(t, {"scene": image}, np.full(PROPRIO_DIM, 0.05, np.float32), wrench,
                       np.full(TACTILE_SHAPE, touch, np.float32),
                       {"proprio": t, "wrench": t, "tactile": t, "image/scene": t})  # fmt: skip


def _command(tracker, **inputs) -> np.ndarray:
    tracker.reset()
    obs = _observation(**inputs)
    latent = tracker.encode(obs.images["scene"][None])[0]
    reference = tracker.encode(np.full((1, 32, 32, 3), 200, np.uint8))[0]
    return tracker.act(obs, latent, reference).to_array()


@pytest.mark.parametrize(("arm", "force_used", "touch_used"), [
    ("full", True, True), ("no-force", False, True), ("no-tactile", True, False), ("no-touch", False, False),
])  # fmt: skip
def test_modality_arms_zero_that_input_at_the_tracker(models, arm, force_used, touch_used):
    job = Job("Lift", arm, "train", 0)
    tracker = build(arm_spec(arm), models, job, VirtualClock()).tracker
    assert (tracker.force_missing, tracker.tactile_missing) == (not force_used, not touch_used)
    quiet = _command(tracker)
    assert np.allclose(_command(tracker, force=25.0), quiet) != force_used
    assert np.allclose(_command(tracker, touch=6.0), quiet) != touch_used


def test_tracker_only_arms_follow_the_goal_with_head_or_mpc(models, monkeypatch):
    monkeypatch.setattr(models, "expert", lambda task, split, seed, camera: _expert())
    clock = VirtualClock()
    head = build(
        arm_spec("tracker-only-head"), models, Job("Place", "tracker-only-head", "train", 3), clock
    )
    mpc = build(
        arm_spec("tracker-only-mpc"), models, Job("Place", "tracker-only-mpc", "train", 3), clock
    )
    assert isinstance(head.plans.planner, GoalPlanner) and isinstance(
        mpc.plans.planner, GoalPlanner
    )
    assert head.tracker.mpc is None and mpc.tracker.mpc is not None
    assert head.plans.latency_s == 0.0  # no planner: the goal image costs nothing
    plan = head.plans.planner.plan(_observation(1.0), "place")
    assert (plan.frames[:, 0, 0, 0] == 29).all()  # every frame is the expert's last one


def test_oracle_plan_is_the_experts_future_from_the_robots_state(models, monkeypatch):
    expert = _expert()
    expert.proprio[:, 2] = 0.3 - 0.01 * np.arange(30)  # the expert descends 1 cm per step
    monkeypatch.setattr(models, "expert", lambda task, split, seed, camera: expert)
    built = build(
        arm_spec("oracle-plan"), models, Job("Lift", "oracle-plan", "train", 3), VirtualClock()
    )
    assert isinstance(built.plans.planner, OraclePlanner) and built.tracker is not None
    assert built.plans.latency_s == models.config.runtime.plan_latency_s
    observation = _observation(5.0)  # late on the clock, but where the expert was at step 10
    observation.proprio[:5] = expert.proprio[10, :5]
    plan = built.plans.planner.plan(observation, "lift")
    step = models.config.planner.horizon_s / models.config.planner.horizon  # s between frames
    expected = np.minimum(10 + np.round(step * np.arange(1, plan.horizon + 1) * 20), 29)
    assert np.array_equal(plan.frames[:, 0, 0, 0], expected)
    assert np.allclose(plan.times, 5.0 + step * np.arange(1, plan.horizon + 1))
    observation.proprio[:5] = expert.proprio[4, :5]  # a state matched earlier: never go back
    assert built.plans.planner.progress(observation) == 10


@pytest.mark.parametrize("delay_ms", [0, 250, 2000])
def test_delay_arms_inject_that_latency_on_the_virtual_clock(models, monkeypatch, delay_ms):
    base = models.config.runtime.plan_latency_s
    spec = arm_spec(f"delay-{delay_ms}")
    assert plan_latency_s(spec, models.config) == pytest.approx(base + delay_ms / 1000)
    clock = VirtualClock(start=10.0)
    built = build(spec, models, Job("Lift", spec.name, "train", 0), clock)
    result = clock.run(built.plans.plan(_observation(10.0), "lift"))
    assert result.arrived_at - result.requested_at == pytest.approx(base + delay_ms / 1000)
    assert clock.now() == pytest.approx(10.0 + base + delay_ms / 1000)


def test_drivers_match_arms(models, monkeypatch):
    monkeypatch.setattr(models, "inverse", lambda: "inverse-dynamics")
    monkeypatch.setattr(models, "baseline", lambda: "baseline-policy")
    clock = VirtualClock()
    planner_only = build(
        arm_spec("planner-only"), models, Job("Lift", "planner-only", "train", 0), clock
    )
    assert planner_only.tracker is None and planner_only.inverse == "inverse-dynamics"
    assert planner_only.plans is not None
    baseline = build(arm_spec("baseline"), models, Job("Lift", "baseline", "train", 0), clock)
    assert (baseline.policy, baseline.tracker, baseline.plans) == ("baseline-policy", None, None)
    assert {arm_spec(a).driver for a in NAMED_ARMS} == {HIERARCHY, OPEN_LOOP_PLAN, SINGLE_RATE}
    assert {arm_spec(a).reference for a in NAMED_ARMS} == {PLANNER, GOAL, ORACLE}


def test_runtime_lookahead_reaches_the_arms_trackers_within_the_trained_range(models):
    folder = models.config.ablate.tracker_checkpoint  # trained at exactly 0.5 s
    same = Models(load_config([f"ablate.tracker_checkpoint={folder}", "runtime.lookahead_s=0.5"]))
    assert same.tracker("head", ("force", "tactile")).lookahead_s == 0.5
    further = Models(
        load_config([f"ablate.tracker_checkpoint={folder}", "runtime.lookahead_s=0.8"])
    )
    with pytest.raises(CheckpointError, match=r"lookahead_s=0.8 .checkpoint trained for 0.5..0.5"):
        further.tracker("head", ("force", "tactile"))


def test_the_ablation_ensemble_runs_every_member_with_the_arms_choices(models):
    folder = models.config.ablate.tracker_checkpoint
    ensemble = Models(
        load_config([f"ablate.tracker_checkpoint={folder}", f"ablate.tracker_ensemble=[{folder}]"])
    )
    tracker = ensemble.tracker("mpc", ("force",))
    assert isinstance(tracker, EnsembleTracker) and len(tracker.members) == 2
    assert all(m.mpc is not None and m.tactile_missing for m in tracker.members)
    assert not any(m.force_missing for m in tracker.members)
    assert tracker.latent_dim == 2 * models.tracker("head", ("force",)).latent_dim


def test_expert_reference_arms_show_the_trackers_own_camera(tmp_path, monkeypatch):
    config = TrackerConfig(image_size=32, latent_dim=16, hidden_dim=32, sensor_dim=8,
                           camera="overhead")  # fmt: skip
    save_checkpoint(tmp_path, TrackerNet(config, load_encoder_weights=False), config)
    models = Models(load_config([f"ablate.tracker_checkpoint={tmp_path}"]))
    asked = []
    expert = _expert()
    expert.images["overhead"] = 255 - expert.images.pop("scene")

    def recorded(task, split, seed, camera):
        asked.append(camera)
        return expert

    monkeypatch.setattr(models, "expert", recorded)
    for arm in ("oracle-plan", "tracker-only-head"):
        built = build(arm_spec(arm), models, Job("Lift", arm, "train", 3), VirtualClock())
        plan = built.plans.planner.plan(_observation(), "lift")
        assert plan.camera == "overhead" and plan.frames[0, 0, 0, 1] == 255  # overhead frames
    assert asked == ["overhead", "overhead"]


def test_the_ablations_planner_paints_plans_as_the_runtime_does(monkeypatch):
    import dualctl.planner.diffusion_planner as diffusion_planner

    loaded = []
    monkeypatch.setattr(
        diffusion_planner, "load_planner", lambda path, **kwargs: loaded.append((path, kwargs))
    )
    Models(load_config([])).planner()
    Models(load_config(["planner.composite=blend"])).planner()
    assert [kwargs["composite"] for _, kwargs in loaded] == ["add", "blend"]
