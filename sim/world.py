"""One episode's MuJoCo world: builds the scene for a task variation, turns Actions into servo
targets, steps physics, reads the sensors and follows the task.

Control runs inside the physics loop at ``sim.control_hz``: each control tick moves the stage
targets by the commanded velocity and ramps the finger targets toward the commanded width at
the commanded speed, then physics runs for the rest of the tick. Commands are held between
calls (zero-order hold), so an action means the same at 20 Hz as at 200 Hz.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
from dualctl.sim import scene
from dualctl.sim.config import SimConfig
from dualctl.sim.tactile import pad_normal_forces, read_tactile
from dualctl.sim.tasks import TaskMonitor, Variation, WorldState

from dualctl.types import GRIPPER_STROKE_M, Action, GripperCommand

#: Stage speed limits (m/s, m/s, m/s, rad/s) of the Cartesian stage.
MAX_EE_VELOCITY = np.array([0.3, 0.3, 0.3, 2.0], np.float32)
#: Where the grasp point starts each episode (m, rad): above the table centre.
HOME = np.array([0.0, 0.0, 0.2, 0.0])
#: Stage targets may lead the stage by at most this much (m, rad) so a blocked stage does not
#: wind up a large error that snaps free later.
STAGE_LEAD = np.array([0.01, 0.01, 0.01, 0.05])
SETTLE_S = 0.2
#: Time constant (s) of the grip-force filter the task judges breakage by: box-on-box contacts
#: in MuJoCo can spike for a few milliseconds when their contact points regenerate, which is
#: a solver artefact, not a load an object would feel.
GRIP_FORCE_TAU = 0.02


def clip_action(action: Action) -> Action:
    """The command the stage and gripper can execute: speeds and gripper registers in range."""
    velocity = np.clip(np.nan_to_num(action.ee_velocity), -MAX_EE_VELOCITY, MAX_EE_VELOCITY)
    return Action(velocity, action.gripper.clipped(), action.timestamp)


class World:
    """Physics, sensors and task monitor of one episode. Time is physics time since reset (s)."""

    def __init__(self, task: str, variation: Variation, config: SimConfig):
        self.task, self.variation, self.config = task, variation, config
        spec = scene.SceneSpec(
            object_half=variation.object_half,
            object_mass=variation.mass,
            object_friction=variation.friction,
            object_rgba=variation.object_rgba,
            table_rgba=variation.table_rgba,
            light_pos=variation.light_pos,
            light_diffuse=variation.light_diffuse,
            pad_xy=variation.pad_xy,
            camera_size=config.camera_size,
            physics_hz=config.physics_hz,
        )
        self.model = mujoco.MjModel.from_xml_string(scene.scene_xml(spec))
        self.data = mujoco.MjData(self.model)
        self._ids()
        self._substeps = max(1, round(config.physics_hz / config.control_hz))
        self._renderer: mujoco.Renderer | None = None
        self.cameras = config.cameras
        self.monitor = TaskMonitor(task, variation)
        self.command = Action.hold(GRIPPER_STROKE_M)
        self._reset()

    def _ids(self) -> None:
        m = self.model
        name = mujoco.mj_name2id
        self._stage_qpos = [m.jnt_qposadr[name(m, mujoco.mjtObj.mjOBJ_JOINT, j)]
                            for j in scene.STAGE_JOINTS]  # fmt: skip
        self._stage_dof = [m.jnt_dofadr[name(m, mujoco.mjtObj.mjOBJ_JOINT, j)]
                           for j in scene.STAGE_JOINTS]  # fmt: skip
        self._finger_qpos = [m.jnt_qposadr[name(m, mujoco.mjtObj.mjOBJ_JOINT, j)]
                             for j in scene.FINGER_JOINTS]  # fmt: skip
        self._finger_dof = [m.jnt_dofadr[name(m, mujoco.mjtObj.mjOBJ_JOINT, j)]
                            for j in scene.FINGER_JOINTS]  # fmt: skip
        self._object_qpos = m.jnt_qposadr[name(m, mujoco.mjtObj.mjOBJ_JOINT, scene.OBJECT_NAME)]
        self._object_geom = name(m, mujoco.mjtObj.mjOBJ_GEOM, scene.OBJECT_NAME)
        self._pad_geoms = [name(m, mujoco.mjtObj.mjOBJ_GEOM, g) for g in scene.PAD_GEOMS]
        self._finger_act = [name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, j)
                            for j in scene.FINGER_JOINTS]  # fmt: skip
        self._stage_act = [name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, j) for j in scene.STAGE_JOINTS]
        self._stage_actadr = m.actuator_actadr[self._stage_act]

    # --- episode lifecycle ----------------------------------------------------------------------
    def _reset(self) -> None:
        d, v = self.data, self.variation
        d.qpos[self._stage_qpos] = HOME
        d.qpos[self._finger_qpos] = GRIPPER_STROKE_M / 2
        yaw = v.object_yaw
        d.qpos[self._object_qpos : self._object_qpos + 7] = [
            *v.object_xy, v.object_half[2], math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2),
        ]  # fmt: skip
        d.act[self._stage_actadr] = HOME
        self._finger_target = np.full(2, GRIPPER_STROKE_M / 2)
        self._set_ctrl()
        mujoco.mj_forward(self.model, self.data)
        # Let the object settle on the table, then zero the wrist sensor as a real one is biased.
        mujoco.mj_step(self.model, self.data, nstep=round(SETTLE_S * self.config.physics_hz))
        self._ft_bias = self.data.sensordata[:6].copy()
        self.object_start_z = float(d.qpos[self._object_qpos + 2])
        d.time = 0.0
        self._grip_force = np.zeros(2)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    @property
    def time(self) -> float:
        return float(self.data.time)

    # --- commands -------------------------------------------------------------------------------
    def apply(self, action: Action) -> Action:
        """Hold ``action`` from now on; returns it as executed (clipped)."""
        self.command = clip_action(action)
        self._set_force_limit(self.command.gripper.force_n)
        return self.command

    def _set_force_limit(self, force: float) -> None:
        for act in self._finger_act:
            self.model.actuator_forcerange[act] = (-force, force)

    def _set_ctrl(self) -> None:
        self.data.ctrl[self._stage_act] = self.command.ee_velocity
        self.data.ctrl[self._finger_act] = self._finger_target

    def _control_tick(self, dt: float) -> None:
        cmd = self.command
        stage = self.data.qpos[self._stage_qpos]
        act = self.data.act[self._stage_actadr]
        self.data.act[self._stage_actadr] = np.clip(act, stage - STAGE_LEAD, stage + STAGE_LEAD)
        grip: GripperCommand = cmd.gripper
        fingers = self.data.qpos[self._finger_qpos]
        step = grip.speed_mps / 2 * dt
        target = self._finger_target + np.clip(grip.width_m / 2 - self._finger_target, -step, step)
        # Anti-windup: a finger blocked by an object sits no deeper than the force limit needs.
        lead = grip.force_n / scene.FINGER_KP + 0.002
        self._finger_target = np.clip(target, fingers - lead, GRIPPER_STROKE_M / 2)
        self._set_ctrl()

    def advance_to(self, t: float) -> None:
        """Run control and physics until the physics time reaches ``t`` (s) or the task ends."""
        dt = self.model.opt.timestep
        while self.data.time + 0.5 * dt < t:
            steps = min(self._substeps, max(1, round((t - self.data.time) / dt)))
            self._control_tick(steps * dt)
            mujoco.mj_step(self.model, self.data, nstep=steps)
            forces = pad_normal_forces(self.model, self.data, self._pad_geoms, self._object_geom)
            alpha = 1.0 - math.exp(-steps * dt / GRIP_FORCE_TAU)
            self._grip_force += alpha * (np.asarray(forces) - self._grip_force)
            self._grip_force[np.asarray(forces) == 0.0] = 0.0  # contact lost: no force at all
            self.monitor.update(self.state())

    # --- sensors --------------------------------------------------------------------------------
    def proprio(self) -> np.ndarray:
        """Fields in ``PROPRIO_FIELDS`` order: grasp-point pose, opening, their velocities."""
        d = self.data
        pose = d.qpos[self._stage_qpos]
        vel = d.qvel[self._stage_dof]
        width = d.qpos[self._finger_qpos].sum()
        width_vel = d.qvel[self._finger_dof].sum()
        return np.concatenate([pose, [width], vel, [width_vel]]).astype(np.float32)

    def wrench(self) -> np.ndarray:
        """Wrist force (N) and torque (N·m) the stage exerts on the gripper, in the sensor frame
        (z up), zeroed at reset: holding an object of mass m reads fz = +m g."""
        return (self.data.sensordata[:6] - self._ft_bias).astype(np.float32)

    def tactile(self) -> np.ndarray:
        return read_tactile(self.model, self.data, self._pad_geoms)

    def render(self) -> dict[str, np.ndarray]:
        if self._renderer is None:
            size = self.config.camera_size
            self._renderer = mujoco.Renderer(self.model, size, size)
        images = {}
        for camera in self.cameras:
            self._renderer.update_scene(self.data, camera)
            images[camera] = self._renderer.render().copy()
        return images

    # --- privileged state -----------------------------------------------------------------------
    def state(self) -> WorldState:
        return WorldState(
            time=self.time,
            object_pos=self.data.qpos[self._object_qpos : self._object_qpos + 3].copy(),
            object_start_z=self.object_start_z,
            ee_pose=self.data.qpos[self._stage_qpos].copy(),
            width=float(self.data.qpos[self._finger_qpos].sum()),
            pad_force=(float(self._grip_force[0]), float(self._grip_force[1])),
        )

    def object_yaw(self) -> float:
        w, x, y, z = self.data.qpos[self._object_qpos + 3 : self._object_qpos + 7]
        return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
