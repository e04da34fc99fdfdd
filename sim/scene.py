"""The MJCF scene, written from primitives: a table, one object, an optional target pad, and a
Robotiq 2F-85-like parallel gripper on a position-controlled Cartesian stage (x, y, z, yaw).

The stage frame's origin (site ``ee``) is the grasp point between the fingertip pads, so the
end-effector pose in the proprio vector is where an object is held. Each finger is a slide
joint whose value is the distance (m) from the grasp axis to the inner pad face, so the finger
opening is the sum of both joints. The fingers are driven by force-limited position servos:
the force limit is the 2F-85's grip force, and a stiff servo makes that limit the force that
actually squeezes an object.
"""

from __future__ import annotations

from dataclasses import dataclass

from dualctl.types import GRIPPER_STROKE_M

#: Stage travel of the grasp point (m, rad): x, y, z, yaw lower and upper bounds.
STAGE_LOW = (-0.2, -0.2, 0.02, -1.6)
STAGE_HIGH = (0.2, 0.2, 0.35, 1.6)
STAGE_JOINTS = ("stage_x", "stage_y", "stage_z", "stage_yaw")
FINGER_JOINTS = ("finger_l", "finger_r")
PAD_GEOMS = ("pad_l", "pad_r")
#: Half extents of a fingertip pad (m): across the finger, thickness, along the finger.
PAD_HALF = (0.011, 0.0035, 0.019)
#: Stiffness (N/m) of the finger servo: high enough that the force limit (<= 235 N) is
#: reached within ~12 mm of squeeze, so the commanded force is the force applied.
FINGER_KP = 20000.0
STAGE_KP = (60000.0, 60000.0, 120000.0, 400.0)
OBJECT_NAME = "object"


@dataclass(frozen=True)
class SceneSpec:
    """What varies between episodes' scenes (sizes m, mass kg, colours RGBA 0..1)."""

    object_half: tuple[float, float, float]
    object_mass: float
    object_friction: float
    object_rgba: tuple[float, float, float, float]
    table_rgba: tuple[float, float, float, float]
    light_pos: tuple[float, float, float]
    light_diffuse: float
    pad_xy: tuple[float, float] | None = None
    pad_half: float = 0.045
    pad_rgba: tuple[float, float, float, float] = (0.15, 0.7, 0.2, 1.0)
    camera_size: int = 64
    physics_hz: float = 500.0


def _v(values) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def _stage_actuators() -> str:
    """Integrated-velocity servos: the control is a velocity, MuJoCo integrates it into the
    position target every physics step (smooth, whatever rate commands arrive at), and the
    activation range is the stage's travel."""
    lines = []
    for joint, kp, lo, hi in zip(STAGE_JOINTS, STAGE_KP, STAGE_LOW, STAGE_HIGH):
        # Near-critical damping for the moving mass (~2 kg; ~0.01 kg m^2 in yaw).
        kv = 2.0 * (kp * (2.0 if joint != "stage_yaw" else 0.01)) ** 0.5
        lines.append(
            f'<intvelocity name="{joint}" joint="{joint}" kp="{kp:g}" kv="{kv:.4g}" '
            f'actrange="{lo:g} {hi:g}"/>'
        )
    return "\n    ".join(lines)


def _finger(side: str, sign: int) -> str:
    px, pt, pz = PAD_HALF
    link_half_z = 0.026
    return f"""
          <body name="finger_{side}">
            <joint name="finger_{side}" type="slide" axis="0 {sign} 0" range="0 {GRIPPER_STROKE_M / 2:g}"
                   damping="20" armature="0.05"/>
            <geom name="pad_{side}" type="box" size="{px} {pt} {pz}" pos="0 {sign * pt} 0"
                  mass="0.05" friction="0.05 0.005 0.0001" rgba="0.15 0.15 0.15 1"/>
            <geom name="link_{side}" type="box" size="0.012 0.005 {link_half_z}"
                  pos="0 {sign * (2 * pt + 0.005)} {pz + link_half_z}" mass="0.1"
                  rgba="0.25 0.25 0.28 1"/>
          </body>"""


def scene_xml(spec: SceneSpec) -> str:
    """The MJCF of one episode's scene."""
    sx, sy, sz = spec.object_half
    size = spec.camera_size
    pad = ""
    if spec.pad_xy is not None:
        pad = (
            f'<geom name="target_pad" type="box" size="{spec.pad_half} {spec.pad_half} 0.001" '
            f'pos="{_v(spec.pad_xy)} 0.0005" rgba="{_v(spec.pad_rgba)}" contype="0" '
            'conaffinity="0"/>'
        )
    return f"""
<mujoco model="dualctl">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{1.0 / spec.physics_hz:.6g}" integrator="implicitfast" cone="elliptic"
          impratio="10"/>
  <visual>
    <global offwidth="{max(size, 128)}" offheight="{max(size, 128)}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.25 0.25 0.25" diffuse="0.2 0.2 0.2" specular="0 0 0"/>
  </visual>
  <default>
    <!-- Stiff contacts (time constant 2 physics steps, impedance near 1): MuJoCo's soft
         friction otherwise lets a grasped object creep down at a slip speed proportional to
         its weight, and the grip force needed to hold it would sit far above m g / (2 mu). -->
    <geom solref="{2.0 / spec.physics_hz:.6g} 1" solimp="0.99 0.999 0.001"/>
  </default>
  <worldbody>
    <light name="key" pos="{_v(spec.light_pos)}" dir="{_v(-c for c in spec.light_pos)}"
           diffuse="{_v([spec.light_diffuse] * 3)}" castshadow="false" directional="true"/>
    <geom name="table" type="box" size="0.35 0.35 0.02" pos="0 0 -0.02"
          rgba="{_v(spec.table_rgba)}" friction="0.5 0.005 0.0001"/>
    {pad}
    <camera name="scene" pos="0.42 0 0.36" xyaxes="0 1 0 -0.62 0 0.78" fovy="50"/>
    <camera name="overhead" pos="0.2423 0 0.5121" xyaxes="0 1 0 -0.8829 0 0.4695" fovy="50"/>
    <body name="{OBJECT_NAME}" pos="0 0 {sz:g}">
      <freejoint name="{OBJECT_NAME}"/>
      <geom name="{OBJECT_NAME}" type="box" size="{sx:g} {sy:g} {sz:g}" mass="{spec.object_mass:g}"
            friction="{spec.object_friction:g} 0.005 0.0001" rgba="{_v(spec.object_rgba)}"/>
    </body>
    <body name="stage_x" gravcomp="1">
      <joint name="stage_x" type="slide" axis="1 0 0" range="{STAGE_LOW[0]} {STAGE_HIGH[0]}"/>
      <geom type="box" size="0.01 0.01 0.01" pos="0 0 0.5" mass="2" contype="0" conaffinity="0"
            rgba="0 0 0 0"/>
      <body name="stage_y" gravcomp="1">
        <joint name="stage_y" type="slide" axis="0 1 0" range="{STAGE_LOW[1]} {STAGE_HIGH[1]}"/>
        <geom type="box" size="0.01 0.01 0.01" pos="0 0 0.5" mass="2" contype="0"
              conaffinity="0" rgba="0 0 0 0"/>
        <body name="stage_z" gravcomp="1">
          <joint name="stage_z" type="slide" axis="0 0 1" range="{STAGE_LOW[2]} {STAGE_HIGH[2]}"/>
          <geom name="column" type="cylinder" size="0.012 0.2" pos="0 0 0.32" mass="1"
                contype="0" conaffinity="0" rgba="0.55 0.55 0.6 1"/>
          <body name="stage_yaw" gravcomp="1">
            <joint name="stage_yaw" type="hinge" axis="0 0 1" range="{STAGE_LOW[3]} {STAGE_HIGH[3]}"/>
            <geom type="cylinder" size="0.02 0.005" pos="0 0 0.11" mass="0.3" contype="0"
                  conaffinity="0" rgba="0.3 0.3 0.3 1"/>
            <site name="ee" size="0.004" rgba="1 0 0 0"/>
            <body name="gripper">
              <site name="wrist_ft" pos="0 0 0.105"/>
              <geom name="palm" type="box" size="0.02 0.06 0.0175" pos="0 0 0.0865" mass="0.6"
                    rgba="0.2 0.2 0.22 1"/>
              <camera name="wrist" pos="0.05 0 0.09" xyaxes="0 1 0 -0.85 0 0.53" fovy="70"/>
              {_finger("l", 1)}
              {_finger("r", -1)}
            </body>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <contact>
    <exclude body1="finger_l" body2="finger_r"/>
  </contact>
  <actuator>
    {_stage_actuators()}
    <position name="finger_l" joint="finger_l" kp="{FINGER_KP:g}" kv="150" forcelimited="true"
              forcerange="-235 235"/>
    <position name="finger_r" joint="finger_r" kp="{FINGER_KP:g}" kv="150" forcelimited="true"
              forcerange="-235 235"/>
  </actuator>
  <sensor>
    <force name="wrist_force" site="wrist_ft"/>
    <torque name="wrist_torque" site="wrist_ft"/>
  </sensor>
</mujoco>
"""
