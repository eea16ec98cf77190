"""Synthetic MOT + action benchmark: articulated people on textured backgrounds, written in
MOTChallenge layout with a per-box action sidecar.

Why synthetic: the whole network (detection, ReID, per-track action) must be able to learn on a
2-core CPU in minutes, with exact ground truth for every box, identity and action. The generator
is built so that each task is learnable but not trivial:

* **Detection**: articulated figures (head, torso, two arms, two legs) at perspective scale, on a
  cluttered background, with non-person moving distractors (balls, carts, person-sized poles).
* **ReID**: each identity has its own clothing colours, skin, hair, height and build; shirt and
  pants colours come from a small palette, so identities share colours and no single colour
  identifies a person.
* **Action**: every action passes through the same neutral pose and differs from the others only
  in how the pose changes over time (walking and running share one leg swing and differ in cadence
  and speed; jumping, waving and crouching leave and return to the standing pose), so one frame
  cannot tell them apart. Each person switches action every 1-4 s.
* **Tracking**: 3-10 people per sequence walking across one another at different depths (drawn
  far to near, so occlusion is real), entering and leaving the frame, with camera jitter.

Layout written by :func:`generate_dataset` (``DIR`` is ``--out``)::

    DIR/meta.json                     generator config, seed, splits, per-split summary
    DIR/label_map.txt                 action ids -> names ("0: standing", V-ICR format)
    DIR/{train,val,test}/SYN-<split>-NN/
        seqinfo.ini                   MOTChallenge sequence info
        img1/000001.jpg ...           frames
        gt/gt.txt                     MOT16 layout: frame,id,left,top,w,h,conf,class,visibility
        gt/actions.txt                frame,id,action_id for every pedestrian row of gt.txt
        gt/identities.json            per-identity appearance (colours BGR, height, build)

In ``gt.txt``: pedestrians are class 1 with conf 1; distractors are class 8 (MOT's "distractor")
with conf 0 and ids from 1000, so MOTChallenge evaluation ignores them. Boxes are the tight box of
the full (unoccluded) figure clipped to the frame; ``visibility`` is the fraction of the figure's
pixels that are visible, so occlusion by nearer objects and truncation at the frame edge both
lower it. People fully outside the frame are not written.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from common.errors import InputError
from common.io import atomic_write_json, is_partial_name
from data.formats.mot import MotRows, SeqInfo, write_action_sidecar, write_mot_file, write_seqinfo
from data.formats.vicr import LabelMap, write_label_map

ACTIONS = ("standing", "walking", "running", "jumping", "waving", "crouching")
# Actions that move the person across the ground; speeds are in body heights per second.
_SPEED = {"walking": 0.55, "running": 1.4}
# Period (s) of each action's cycle. Walking and running share one leg-swing amplitude and differ
# only in cadence and speed, so single frames of the two are the same set of poses.
_PERIOD = {"standing": 3.0, "walking": 1.1, "running": 0.55, "jumping": 0.7, "waving": 0.8, "crouching": 1.3}

SPLITS = ("train", "val", "test")
PEDESTRIAN, DISTRACTOR_CLASS, DISTRACTOR_ID_BASE = 1, 8, 1000

# A deliberately small palette (BGR): with 3-10 people per sequence, identities share colours.
_CLOTHES = [(40, 40, 200), (200, 60, 40), (40, 160, 40), (30, 200, 230), (160, 50, 160), (220, 220, 220),
            (50, 50, 50), (0, 120, 240)]
_SKIN = [(160, 190, 230), (110, 150, 200), (70, 100, 150), (50, 70, 110)]
_HAIR = [(20, 20, 20), (30, 60, 110), (60, 160, 210), (200, 200, 200)]


@dataclass
class SyntheticConfig:
    """Knobs of the benchmark. Defaults generate the three splits in well under a minute."""

    width: int = 320  # frame width in pixels
    height: int = 192  # frame height in pixels
    fps: float = 10.0  # frames per second (action durations and speeds are in seconds)
    length: int = 150  # frames per sequence
    min_people: int = 3  # people per sequence (inclusive range; all appear at some point)
    max_people: int = 10
    occlusion: float = 0.5  # 0..1: how tightly people share one depth band (more crossings in front of each other)
    min_distractors: int = 1  # non-person moving objects per sequence (inclusive range)
    max_distractors: int = 3
    enter_exit: float = 0.4  # fraction of people who enter from outside or leave the frame mid-sequence
    camera_jitter: float = 1.0  # std of the camera's per-frame shake, pixels
    noise: float = 3.0  # std of per-pixel sensor noise
    actions: tuple[str, ...] = ACTIONS  # subset (in this order) of ACTIONS
    min_action_s: float = 1.0  # each action lasts between these (seconds)
    max_action_s: float = 4.0
    sequences: dict = field(default_factory=lambda: {"train": 8, "val": 2, "test": 2})
    jpeg_quality: int = 90

    def validate(self) -> None:
        unknown = [a for a in self.actions if a not in ACTIONS]
        if unknown or len(self.actions) < 2:
            raise ValueError(f"actions must be at least two of {ACTIONS}, got {list(self.actions)}")
        if not 1 <= self.min_people <= self.max_people:
            raise ValueError(f"need 1 <= min_people <= max_people, got {self.min_people}, {self.max_people}")
        if not 0 <= self.min_distractors <= self.max_distractors:
            raise ValueError("need 0 <= min_distractors <= max_distractors")
        if not 0.0 <= self.occlusion <= 1.0 or not 0.0 <= self.enter_exit <= 1.0:
            raise ValueError("occlusion and enter_exit must be in [0, 1]")
        if self.width < 64 or self.height < 64 or self.length < 2 or self.fps <= 0:
            raise ValueError("frames must be at least 64x64, sequences at least 2 frames, fps > 0")
        if not 0 < self.min_action_s <= self.max_action_s:
            raise ValueError("need 0 < min_action_s <= max_action_s")
        unknown_splits = set(self.sequences) - set(SPLITS)
        if unknown_splits:
            raise ValueError(f"sequences keys must be among {SPLITS}, got {sorted(unknown_splits)}")


# ----------------------------------------------------------------------------------- appearance
@dataclass
class Identity:
    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    height_scale: float  # x the perspective height at its depth
    build: float  # x the default limb and torso thickness


def sample_identity(rng: np.random.Generator) -> Identity:
    shirt, pants = rng.choice(len(_CLOTHES), size=2, replace=False)
    return Identity(shirt=_CLOTHES[shirt], pants=_CLOTHES[pants], skin=_SKIN[rng.integers(len(_SKIN))],
                    hair=_HAIR[rng.integers(len(_HAIR))], height_scale=float(rng.uniform(0.82, 1.18)),
                    build=float(rng.uniform(0.8, 1.3)))


# ----------------------------------------------------------------------------------------- pose
@dataclass
class Pose:
    """Joint angles of a side-view figure; all zero is the neutral standing pose."""

    leg_swing: float = 0.0  # radians, front leg forward (the other leg mirrors it)
    arm_swing: float = 0.0  # radians, counter-swing of the arms while walking
    front_arm_raise: float = 0.0  # radians, front arm raised forward/up (waving)
    crouch: float = 0.0  # 0..1, hips lowered with knees bent forward
    lift: float = 0.0  # body heights off the ground (jumping)


def action_pose(action: str, t: float) -> Pose:
    """Pose at ``t`` seconds into an action. At ``t = 0`` every action is the neutral pose."""
    phase = 2 * math.pi * t / _PERIOD[action]
    if action == "standing":
        return Pose()
    if action in ("walking", "running"):
        return Pose(leg_swing=math.radians(26) * math.sin(phase), arm_swing=math.radians(22) * math.sin(phase))
    if action == "jumping":
        return Pose(lift=0.22 * abs(math.sin(phase / 2)))
    if action == "waving":
        return Pose(front_arm_raise=math.radians(85) * (1 - math.cos(phase)))
    if action == "crouching":
        return Pose(crouch=0.5 * (1 - math.cos(phase)))
    raise ValueError(f"unknown action {action!r}")


# Body proportions in units of the standing height H (feet at 0, head top at 1).
_HEAD_R, _SHOULDER, _HIP, _THIGH, _SHIN = 0.075, 0.80, 0.50, 0.25, 0.25
_UPPER_ARM, _FOREARM = 0.17, 0.16


def figure_parts(pose: Pose, identity: Identity, foot_x: float, foot_y: float, height: float, facing: int):
    """Drawing primitives of a figure whose feet touch ``(foot_x, foot_y)`` (image pixels).

    Returns a list of ``(kind, colour, points, thickness)`` back to front, where kind is
    ``"line"`` (two points), ``"circle"`` (centre, radius in ``thickness``) or ``"poly"``.
    """
    H = height
    b = identity.build

    def pt(x_units: float, y_units: float) -> tuple[float, float]:
        return foot_x + facing * x_units * H, foot_y - y_units * H

    leg_len = _THIGH + _SHIN
    hip_y = leg_len * math.cos(pose.leg_swing) - 0.22 * pose.crouch + pose.lift
    # Crouching: both knees bend forward so the feet stay under the hips.
    half = (hip_y - pose.lift) / 2
    knee_dx = math.sqrt(max(_THIGH ** 2 - min(half, _THIGH) ** 2, 0.0)) if pose.crouch > 0 else 0.0
    hip = (0.0, hip_y)
    legs = []
    for sign in (-1, 1):  # back leg first
        foot = (sign * leg_len * math.sin(pose.leg_swing), pose.lift)
        knee = ((hip[0] + foot[0]) / 2 + knee_dx, (hip[1] + foot[1]) / 2)
        legs.append((pt(*hip), pt(*knee), pt(*foot)))
    shoulder_y = hip_y + (_SHOULDER - _HIP)
    neck = (0.0, shoulder_y + 0.04)
    head = pt(0.02, shoulder_y + 0.04 + _HEAD_R)
    torso_w = 0.15 * b
    torso = [pt(-torso_w / 2, shoulder_y), pt(torso_w / 2, shoulder_y), pt(torso_w / 2 * 0.9, hip_y),
             pt(-torso_w / 2 * 0.9, hip_y)]

    def arm(angle: float):
        elbow = (_UPPER_ARM * math.sin(angle), shoulder_y - _UPPER_ARM * math.cos(angle))
        bend = angle + 0.25 * min(angle, 1.0)
        hand = (elbow[0] + _FOREARM * math.sin(bend), elbow[1] - _FOREARM * math.cos(bend))
        return pt(0.0, shoulder_y), pt(*elbow), pt(*hand)

    back_arm = arm(-pose.arm_swing)
    front_arm = arm(pose.arm_swing + pose.front_arm_raise)
    leg_t, arm_t = max(0.075 * b * H, 1.5), max(0.055 * b * H, 1.2)
    darker = tuple(int(c * 0.7) for c in identity.shirt)
    parts = []
    for sh, el, ha in (back_arm,):
        parts += [("line", darker, (sh, el), arm_t), ("line", darker, (el, ha), arm_t * 0.9),
                  ("circle", identity.skin, (ha,), arm_t * 0.6)]
    for hp, kn, ft in legs:
        parts += [("line", identity.pants, (hp, kn), leg_t), ("line", identity.pants, (kn, ft), leg_t * 0.9),
                  ("circle", (30, 30, 30), (ft,), leg_t * 0.55)]
    parts.append(("poly", identity.shirt, tuple(torso), 0))
    parts.append(("line", identity.skin, (pt(*neck), pt(0.0, shoulder_y - 0.02)), max(0.05 * H, 1.2)))
    parts.append(("circle", identity.skin, (head,), _HEAD_R * H))
    parts.append(("circle", identity.hair, ((head[0] - facing * 0.01 * H, head[1] - 0.03 * H),), _HEAD_R * H * 0.75))
    sh, el, ha = front_arm
    parts += [("line", identity.shirt, (sh, el), arm_t), ("line", identity.shirt, (el, ha), arm_t * 0.9),
              ("circle", identity.skin, (ha,), arm_t * 0.6)]
    return parts


_SHIFT = 4  # OpenCV sub-pixel drawing: coordinates carry 4 fractional bits
_ONE = 1 << _SHIFT


def draw_parts(image: np.ndarray, parts, offset=(0.0, 0.0), colour=None, antialias: bool = True) -> None:
    """Draw primitives onto ``image`` (shifted by ``-offset``), in their colours or all in ``colour``."""
    ox, oy = offset
    line_type = cv2.LINE_AA if antialias else cv2.LINE_8

    def fx(p):
        return int(round((p[0] - ox) * _ONE)), int(round((p[1] - oy) * _ONE))

    for kind, col, pts, thick in parts:
        c = col if colour is None else colour
        if kind == "line":
            cv2.line(image, fx(pts[0]), fx(pts[1]), c, max(int(round(thick)), 1), line_type, _SHIFT)
        elif kind == "circle":
            cv2.circle(image, fx(pts[0]), max(int(round(thick * _ONE)), _ONE), c, -1, line_type, _SHIFT)
        else:
            cv2.fillPoly(image, [np.array([fx(p) for p in pts], dtype=np.int32)], c, line_type, _SHIFT)


def parts_extent(parts) -> tuple[float, float, float, float]:
    """Conservative xyxy extent of the primitives (line thickness and radii included)."""
    xs, ys = [], []
    for kind, _, pts, thick in parts:
        pad = thick if kind == "circle" else thick / 2 + 1
        for x, y in pts:
            xs += [x - pad, x + pad]
            ys += [y - pad, y + pad]
    return min(xs), min(ys), max(xs), max(ys)


# ------------------------------------------------------------------------------------ the scene
def render_background(rng: np.random.Generator, width: int, height: int, horizon: int) -> np.ndarray:
    """A static textured scene: sky/wall gradient, building blocks, windows, tiled ground, noise."""
    img = np.zeros((height, width, 3), np.float32)
    top = rng.uniform(120, 220, 3)
    bottom = rng.uniform(70, 150, 3)
    ramp = np.linspace(0, 1, horizon)[:, None, None]
    img[:horizon] = top * (1 - ramp) + (top * 0.8) * ramp
    ground = rng.uniform(60, 140, 3)
    gramp = np.linspace(0, 1, height - horizon)[:, None, None]
    img[horizon:] = ground * (1 - gramp) + bottom * gramp
    img = img.astype(np.uint8)
    for _ in range(rng.integers(4, 9)):  # buildings with windows
        x1 = int(rng.integers(-20, width)); w = int(rng.integers(width // 10, width // 3))
        y1 = int(rng.integers(horizon // 5, horizon - 5))
        colour = tuple(int(c) for c in rng.uniform(60, 200, 3))
        cv2.rectangle(img, (x1, y1), (x1 + w, horizon), colour, -1)
        win = tuple(int(c * 0.6) for c in colour)
        step = max(6, w // 5)
        for wx in range(x1 + 3, x1 + w - 4, step):
            for wy in range(y1 + 3, horizon - 6, step):
                cv2.rectangle(img, (wx, wy), (wx + step // 2, wy + step // 2), win, -1)
    for k in range(0, width, int(rng.integers(18, 34))):  # paving lines converging to the horizon
        cv2.line(img, (k, horizon), (int((k - width / 2) * 2.5 + width / 2), height), (90, 90, 90), 1, cv2.LINE_AA)
    for _ in range(rng.integers(6, 14)):  # clutter: benches, bins, signs in clothing-like colours
        cx, cy = int(rng.integers(0, width)), int(rng.integers(horizon, height))
        s = int(rng.integers(3, 10))
        colour = _CLOTHES[rng.integers(len(_CLOTHES))]
        cv2.rectangle(img, (cx - s, cy - s // 2), (cx + s, cy + s // 2), colour, -1)
    noise = rng.normal(0, 6, img.shape)
    texture = cv2.GaussianBlur(noise, (0, 0), 1.2)
    return np.clip(img + texture, 0, 255).astype(np.uint8)


@dataclass
class _Person:
    track_id: int
    identity: Identity
    x: float  # foot position, world pixels (frame pixels before camera jitter)
    y: float
    facing: int  # +1 right, -1 left
    drift: float  # vertical drift per horizontal pixel while moving (changes depth order)
    start: int  # first frame (0-based) the person exists
    leave_at: int | None  # frame from which the person walks out and is removed once outside
    action: str = "standing"
    action_start: int = 0
    action_end: int = 0
    gone: bool = False
    has_been_inside: bool = False  # entering people do not turn back before they are in


@dataclass
class _Distractor:
    kind: str  # ball | cart | pole
    x: float
    y: float  # ground contact y (depth)
    vx: float
    vy: float
    size: float
    colour: tuple[int, int, int]
    phase: float


class SequenceGenerator:
    """Simulates and renders one sequence. All randomness comes from the given generator."""

    def __init__(self, config: SyntheticConfig, rng: np.random.Generator):
        self.cfg = config
        self.rng = rng
        W, H = config.width, config.height
        self.horizon = int(H * 0.38)
        self.margin = int(math.ceil(4 * config.camera_jitter)) + 2
        self.background = render_background(rng, W + 2 * self.margin, H + 2 * self.margin, self.horizon + self.margin)
        band = (0.55 * H, 0.97 * H)  # feet between these rows
        width = (band[1] - band[0]) * (1.0 - 0.7 * config.occlusion)
        low = rng.uniform(band[0], band[1] - width)
        self.ground = (low, low + width)
        self.people = self._spawn_people()
        self.distractors = self._spawn_distractors()

    # -- simulation -------------------------------------------------------------------------
    def person_height(self, foot_y: float, identity: Identity) -> float:
        """Perspective: people further up the ground (further away) are smaller."""
        H = self.cfg.height
        depth = (foot_y - self.horizon) / (H - self.horizon)
        return H * (0.16 + 0.34 * depth) * identity.height_scale

    def _new_action(self, person: _Person, frame: int, forced: str | None = None) -> None:
        cfg, rng = self.cfg, self.rng
        if forced is None:
            choices = [a for a in cfg.actions if a != person.action] or list(cfg.actions)
            forced = choices[rng.integers(len(choices))]
        person.action = forced
        person.action_start = frame
        seconds = rng.uniform(cfg.min_action_s, cfg.max_action_s)
        person.action_end = frame + max(1, int(round(seconds * cfg.fps)))

    def _moving_action(self) -> str | None:
        moving = [a for a in self.cfg.actions if a in _SPEED]
        return moving[self.rng.integers(len(moving))] if moving else None

    def _spawn_people(self) -> list[_Person]:
        cfg, rng = self.cfg, self.rng
        count = int(rng.integers(cfg.min_people, cfg.max_people + 1))
        identities = [sample_identity(rng) for _ in range(count)]
        if count >= 2:  # make sure at least two people share a shirt colour
            identities[1].shirt = identities[0].shirt
            rng.shuffle(identities)
        people = []
        movable = self._moving_action() is not None
        for k, ident in enumerate(identities):
            y = rng.uniform(*self.ground)
            facing = 1 if rng.random() < 0.5 else -1
            enters = movable and rng.random() < cfg.enter_exit and k > 0
            leaves = movable and rng.random() < cfg.enter_exit
            start = int(rng.integers(0, max(cfg.length // 2, 1))) if enters else 0
            h = self.person_height(y, ident)
            if enters:  # start just outside the side it walks in from
                x = -0.3 * h if facing > 0 else cfg.width + 0.3 * h
            else:
                x = rng.uniform(0.1 * cfg.width, 0.9 * cfg.width)
            leave_at = int(rng.integers(start + cfg.length // 3, cfg.length)) if leaves and start + cfg.length // 3 < cfg.length else None
            p = _Person(track_id=k + 1, identity=ident, x=x, y=y, facing=facing,
                        drift=float(rng.uniform(-0.12, 0.12)), start=start, leave_at=leave_at)
            self._new_action(p, start, forced=self._moving_action() if enters else None)
            people.append(p)
        return people

    def _spawn_distractors(self) -> list[_Distractor]:
        cfg, rng = self.cfg, self.rng
        out = []
        for _ in range(int(rng.integers(cfg.min_distractors, cfg.max_distractors + 1))):
            kind = ("ball", "cart", "pole")[rng.integers(3)]
            y = rng.uniform(*self.ground)
            scale = self.person_height(y, Identity((0,) * 3, (0,) * 3, (0,) * 3, (0,) * 3, 1.0, 1.0))
            size = {"ball": 0.15, "cart": 0.45, "pole": 0.9}[kind] * scale
            speed = rng.uniform(0.3, 1.2) * scale / cfg.fps * (1 if rng.random() < 0.5 else -1)
            x = rng.uniform(0, cfg.width)
            out.append(_Distractor(kind, x, y, speed, 0.0, size, _CLOTHES[rng.integers(len(_CLOTHES))],
                                   float(rng.uniform(0, 2 * math.pi))))
        return out

    def _step_person(self, p: _Person, frame: int) -> None:
        cfg = self.cfg
        if frame >= p.action_end:
            if p.leave_at is not None and frame >= p.leave_at:
                self._new_action(p, frame, forced=self._moving_action())
                p.facing = 1 if p.x > cfg.width / 2 else -1  # head for the nearer edge
            else:
                self._new_action(p, frame)
        if p.action in _SPEED:
            h = self.person_height(p.y, p.identity)
            dx = p.facing * _SPEED[p.action] * h / cfg.fps
            p.x += dx
            p.y = float(np.clip(p.y + abs(dx) * p.drift, *self.ground))
            if p.y in self.ground:
                p.drift = -p.drift
            leaving = p.leave_at is not None and frame >= p.leave_at
            inside = 0.05 * cfg.width < p.x < 0.95 * cfg.width
            p.has_been_inside |= inside
            if not leaving and not inside and p.has_been_inside and (p.x - cfg.width / 2) * p.facing > 0:
                p.facing = -p.facing  # turn back at the edge
            if leaving and (p.x < -0.6 * h or p.x > cfg.width + 0.6 * h):
                p.gone = True

    # -- rendering --------------------------------------------------------------------------
    def _person_parts(self, p: _Person, frame: int, jitter):
        t = (frame - p.action_start) / self.cfg.fps
        pose = action_pose(p.action, t)
        h = self.person_height(p.y, p.identity)
        return figure_parts(pose, p.identity, p.x - jitter[0], p.y - jitter[1], h, p.facing)

    def _distractor_parts(self, d: _Distractor, frame: int, jitter):
        x, y = d.x - jitter[0], d.y - jitter[1]
        s = d.size
        if d.kind == "ball":
            bounce = abs(math.sin(d.phase + frame * 0.35)) * s * 2.5
            return [("circle", d.colour, ((x, y - s / 2 - bounce),), s / 2)]
        if d.kind == "cart":
            body = [(x - s, y - 0.9 * s), (x + s, y - 0.9 * s), (x + s, y - 0.25 * s), (x - s, y - 0.25 * s)]
            return [("poly", d.colour, tuple(body), 0), ("circle", (25, 25, 25), ((x - 0.6 * s, y - 0.15 * s),), 0.15 * s),
                    ("circle", (25, 25, 25), ((x + 0.6 * s, y - 0.15 * s),), 0.15 * s)]
        return [("line", d.colour, ((x, y), (x, y - s)), max(0.09 * s, 1.5)),
                ("circle", d.colour, ((x, y - s),), 0.08 * s)]

    def run(self):
        """Yield ``(frame_bgr, rows, actions)`` per frame; rows hold people and distractors."""
        cfg, rng = self.cfg, self.rng
        W, H, m = cfg.width, cfg.height, self.margin
        jitter = np.zeros(2)
        for frame in range(cfg.length):
            jitter = 0.7 * jitter + rng.normal(0, cfg.camera_jitter, 2) * math.sqrt(1 - 0.49)
            jx, jy = np.clip(np.round(jitter), -m, m).astype(int)
            image = self.background[m + jy:m + jy + H, m + jx:m + jx + W].copy()
            objects = []  # (depth y, kind, key, parts)
            for p in self.people:
                if frame >= p.start and not p.gone:
                    if frame > p.start:
                        self._step_person(p, frame)
                    if not p.gone:
                        objects.append((p.y, "person", p, self._person_parts(p, frame, (jx, jy))))
            for d in self.distractors:
                d.x += d.vx
                if d.x < -d.size * 2 or d.x > W + d.size * 2:
                    d.vx = -d.vx
                objects.append((d.y, "distractor", d, self._distractor_parts(d, frame, (jx, jy))))
            objects.sort(key=lambda o: o[0])  # far (small foot y) first
            owner = np.zeros((H, W), np.uint8)
            records = []
            for index, (_, kind, key, parts) in enumerate(objects, start=1):
                draw_parts(image, parts)
                draw_parts(owner, parts, colour=index, antialias=False)
                x1, y1, x2, y2 = parts_extent(parts)
                ox, oy = math.floor(x1), math.floor(y1)
                local = np.zeros((int(math.ceil(y2)) - oy + 1, int(math.ceil(x2)) - ox + 1), np.uint8)
                draw_parts(local, parts, offset=(ox, oy), colour=1, antialias=False)
                ys, xs = np.nonzero(local)
                if len(xs) == 0:
                    continue
                box = np.array([xs.min() + ox, ys.min() + oy, xs.max() + ox + 1, ys.max() + oy + 1], np.float64)
                records.append((index, kind, key, box, len(xs)))
            if cfg.noise > 0:
                image = np.clip(image + rng.normal(0, cfg.noise, image.shape), 0, 255).astype(np.uint8)
            visible_counts = np.bincount(owner.ravel(), minlength=len(objects) + 1)
            rows, actions = [], {}
            for index, kind, key, box, area in records:
                clipped = np.clip(box, 0, [W, H, W, H])
                if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
                    continue  # entirely outside the frame
                vis = float(min(visible_counts[index] / area, 1.0))
                if kind == "person":
                    rows.append((frame + 1, key.track_id, clipped, 1.0, PEDESTRIAN, vis))
                    actions[(frame + 1, key.track_id)] = cfg.actions.index(key.action)
                else:
                    rows.append((frame + 1, DISTRACTOR_ID_BASE + self.distractors.index(key), clipped, 0.0,
                                 DISTRACTOR_CLASS, vis))
            yield image, rows, actions


def _rows_to_mot(rows) -> MotRows:
    if not rows:
        return MotRows.empty()
    f, t, b, c, k, v = zip(*rows)
    return MotRows(np.array(f), np.array(t), np.stack(b), np.array(c), np.array(k), np.array(v))


def generate_sequence(config: SyntheticConfig, rng: np.random.Generator, out_dir: Path, name: str) -> dict:
    """Render one sequence into ``out_dir`` (MOTChallenge layout). Returns its summary."""
    img_dir = out_dir / "img1"
    img_dir.mkdir(parents=True, exist_ok=True)
    gen = SequenceGenerator(config, rng)
    all_rows, all_actions = [], {}
    for frame, (image, rows, actions) in enumerate(gen.run(), start=1):
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
        (img_dir / f"{frame:06d}.jpg").write_bytes(buf.tobytes())
        all_rows += rows
        all_actions.update(actions)
    gt = _rows_to_mot(all_rows)
    write_mot_file(out_dir / "gt" / "gt.txt", gt, layout="mot16")
    write_action_sidecar(out_dir / "gt" / "actions.txt", all_actions)
    identities = {str(p.track_id): asdict(p.identity) for p in gen.people}
    (out_dir / "gt" / "identities.json").write_text(json.dumps(identities, indent=1) + "\n", encoding="utf-8")
    write_seqinfo(out_dir / "seqinfo.ini", SeqInfo(name=name, frame_rate=config.fps, seq_length=config.length,
                                                   width=config.width, height=config.height))
    return summarize_sequence(gt, all_actions, len(config.actions), len(gen.people))


def summarize_sequence(gt: MotRows, actions: dict, num_actions: int, num_people: int) -> dict:
    person = gt.class_id == PEDESTRIAN
    ped = gt.select(person)
    first_frames = {t: ped.frame[ped.track_id == t].min() for t in np.unique(ped.track_id)}
    last_frames = {t: ped.frame[ped.track_id == t].max() for t in np.unique(ped.track_id)}
    switches = 0
    for t in np.unique(ped.track_id):
        seq = [actions[(f, t)] for f in sorted(ped.frame[ped.track_id == t])]
        switches += sum(a != b for a, b in zip(seq, seq[1:]))
    return {
        "frames": int(gt.frame.max()) if len(gt) else 0,
        "people": num_people,
        "person_boxes": int(person.sum()),
        "distractor_boxes": int((~person).sum()),
        "occluded_boxes": int((ped.visibility < 0.9).sum()),
        "heavily_occluded_boxes": int((ped.visibility < 0.5).sum()),
        "entering": int(sum(f > 1 for f in first_frames.values())),
        "leaving": int(sum(f < gt.frame.max() for f in last_frames.values())),
        "action_switches": int(switches),
        "action_counts": np.bincount(list(actions.values()), minlength=num_actions).tolist(),
    }


def generate_dataset(out: str | Path, seed: int = 0, config: SyntheticConfig | None = None) -> dict:
    """Write the benchmark to ``out``; same seed and config give byte-identical files."""
    config = config or SyntheticConfig()
    config.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    for split_index, split in enumerate(SPLITS):
        for k in range(config.sequences.get(split, 0)):
            # One independent stream per sequence: adding sequences never changes existing ones.
            rng = np.random.default_rng(np.random.SeedSequence([seed, split_index, k]))
            name = f"SYN-{split}-{k + 1:02d}"
            summary.setdefault(split, {})[name] = generate_sequence(config, rng, out / split / name, name)
    write_label_map(out / "label_map.txt", LabelMap.from_names(list(config.actions)))
    meta = {"generator": GENERATOR, "version": 1, "seed": seed, "config": _config_record(config), "summary": summary}
    # Written last and atomically: a folder with a meta.json holds a complete benchmark.
    atomic_write_json(out / "meta.json", meta, indent=1)
    return meta


GENERATOR = "synthetic-mot-action"


def _config_record(config: SyntheticConfig) -> dict:
    """The config as meta.json stores it (JSON types), to compare a folder's dataset with a request."""
    return json.loads(json.dumps({**asdict(config), "actions": list(config.actions)}))


_FRAME_NAME = re.compile(r"\d{6}\.jpg")
_OWN_IN_GT = ("gt.txt", "actions.txt", "identities.json")


def _foreign_in_sequence(seq: Path, where: str) -> list[str]:
    """What in a generated sequence folder ``seq`` (``where``: its relative path) the generator
    did not write."""
    foreign = []
    for entry in sorted(seq.iterdir()):
        if is_partial_name(entry.name) or (entry.name == "seqinfo.ini" and entry.is_file()):
            continue
        if entry.name in ("img1", "gt") and entry.is_dir() and not entry.is_symlink():
            own = _FRAME_NAME.fullmatch if entry.name == "img1" else _OWN_IN_GT.__contains__
            foreign += [f"{where}/{entry.name}/{f.name}" for f in sorted(entry.iterdir())
                        if not (f.is_file() and not f.is_symlink() and (own(f.name) or is_partial_name(f.name)))]
        else:
            foreign.append(f"{where}/{entry.name}")
    return foreign


def _foreign_entries(out: Path, deep: bool = False) -> list[str]:
    """What in ``out`` the generator did not write (a user's files), by relative path; ``deep``
    looks inside the sequence folders too (before deleting them: a file a user put there was
    once deleted with them without a word)."""
    own_top = {"meta.json", "label_map.txt", *SPLITS}
    foreign = []
    for entry in sorted(out.iterdir()):
        if entry.name not in own_top or (entry.name in SPLITS and not entry.is_dir()):
            foreign.append(entry.name)
        elif entry.is_dir():
            for sub in sorted(entry.iterdir()):
                if not (sub.is_dir() and sub.name.startswith(f"SYN-{entry.name}-")):
                    foreign.append(f"{entry.name}/{sub.name}")
                elif deep:
                    foreign += _foreign_in_sequence(sub, f"{entry.name}/{sub.name}")
    return foreign


def _refuse_foreign(out: Path, foreign: list[str]) -> None:
    if foreign:
        raise InputError(f"{out}: holds files the generator did not write ({', '.join(foreign[:4])}"
                         f"{', ...' if len(foreign) > 4 else ''}); choose an empty or new folder, or move them out")


def prepare_synthetic(out: str | Path, seed: int = 0, config: SyntheticConfig | None = None, force: bool = False,
                      log=print, use_existing: bool = False) -> tuple[dict, bool]:
    """Make sure ``out`` holds the benchmark of this seed and config: returns ``(meta, generated)``.

    A folder that already holds exactly this benchmark is used as it is. One that holds another
    synthetic dataset (other seed or knobs) is an :class:`InputError` naming what differs, unless
    ``force`` (which also regenerates a matching one) or ``use_existing`` (the trainer's case: the
    knobs only say how to generate a missing benchmark; what differs is logged); a folder holding anything the generator did not write is never deleted or written
    into (an interrupted generation, which leaves no ``meta.json``, is simply redone)."""
    config = config or SyntheticConfig()
    try:
        config.validate()
    except ValueError as exc:
        raise InputError(f"synthetic generator: {exc}") from None
    out = Path(out)
    meta_path = out / "meta.json"
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if out.is_dir():
        _refuse_foreign(out, _foreign_entries(out))
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{meta_path}: unreadable ({exc}); delete the folder to regenerate") from None
        wanted = _config_record(config)
        stored = meta.get("config", {}) if isinstance(meta, dict) else {}
        if meta.get("seed") == seed and stored == wanted and not force:
            return meta, False
        differ = [f"seed {meta.get('seed')} (asked {seed})"] if meta.get("seed") != seed else []
        differ += [f"{k} {stored.get(k)!r} (asked {wanted[k]!r})" for k in wanted if stored.get(k) != wanted[k]]
        if use_existing and not force:
            log(f"note: {out} holds a synthetic benchmark generated with other settings ({'; '.join(differ[:3])}); "
                "using it as it is")
            return meta, False
        if not force:
            raise InputError(f"{out}: holds a different synthetic dataset ({'; '.join(differ[:3])}); "
                             "choose another folder or regenerate it with --force")
    if out.is_dir():
        import shutil
        _refuse_foreign(out, _foreign_entries(out, deep=True))
        for entry in out.iterdir():  # only the generator's own files are left by the checks above
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    log(f"generating the synthetic benchmark in {out} (seed {seed}) ...")
    return generate_dataset(out, seed=seed, config=config), True


def format_summary(meta: dict) -> str:
    """A short table of the dataset for the terminal."""
    actions = meta["config"]["actions"]
    lines = [f"synthetic benchmark (seed {meta['seed']}, {meta['config']['width']}x{meta['config']['height']}, "
             f"{meta['config']['fps']:g} fps)",
             f"{'split':6} {'seqs':>4} {'frames':>6} {'people':>6} {'boxes':>6} {'occl<0.9':>8} {'occl<0.5':>8} "
             f"{'enter':>5} {'leave':>5} {'distr':>5} {'switch':>6}"]
    for split, seqs in meta["summary"].items():
        tot = {k: sum(s[k] for s in seqs.values()) for k in ("frames", "people", "person_boxes", "occluded_boxes",
                                                              "heavily_occluded_boxes", "entering", "leaving",
                                                              "distractor_boxes", "action_switches")}
        lines.append(f"{split:6} {len(seqs):>4} {tot['frames']:>6} {tot['people']:>6} {tot['person_boxes']:>6} "
                     f"{tot['occluded_boxes']:>8} {tot['heavily_occluded_boxes']:>8} {tot['entering']:>5} "
                     f"{tot['leaving']:>5} {tot['distractor_boxes']:>5} {tot['action_switches']:>6}")
    counts = np.sum([s["action_counts"] for seqs in meta["summary"].values() for s in seqs.values()], axis=0)
    lines.append("boxes per action: " + ", ".join(f"{a} {int(c)}" for a, c in zip(actions, counts)))
    return "\n".join(lines)
