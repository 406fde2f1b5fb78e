"""Offline driving of an avatar by a tracked sequence: which frames to show, where to put the
head, the driver's neutral, and the frames rendered (`splatcam render` and `splatcam reenact`).

Frames the tracker marked invalid repeat the nearest earlier valid frame (the first valid one
before any valid frame has been seen). Translation is anchored: the sequence's mean tracked
translation is moved onto the avatar's `anchor_translation` (the mean head position of its
training frames), so the head moves as the tracked head moved but stays framed the way the
avatar was trained, whatever camera and distance the driving video had.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from avatar.checkpoint import Avatar
from avatar.render_pipeline import ModuleStages, RenderPipeline, to_uint8
from avatar.video_frame import cut_to_frame
from runtime.options import NEUTRALS
from tracking.driving_frame import DrivingFrame
from tracking.params_file import ParamsSequence
from tracking.retarget import NeutralCalibrator, retarget


def held_frame_index(valid: np.ndarray) -> np.ndarray:
    """For each frame, the index of the frame to show: itself if valid, else the nearest earlier
    valid one (the first valid one before any valid frame)."""
    index = np.maximum.accumulate(np.where(valid, np.arange(len(valid)), -1))
    index[index < 0] = int(np.argmax(valid))
    return index


def frame_poses(seq: ParamsSequence, anchor_translation: np.ndarray, absolute: bool) -> np.ndarray:
    """(T, 6) head poses β = (rotation, translation) for the avatar's camera (see the module doc)."""
    translation = seq.translation
    if not absolute:
        translation = translation - translation[seq.valid].mean(0) + anchor_translation
    return np.concatenate([seq.rotation, translation], 1).astype(np.float32)


def driver_neutral(seq: ParamsSequence, how: str) -> DrivingFrame:
    """The driver's resting face: the mean over one second of tracked frames, either the first
    second or the `calmest` one (the lowest mean total expression weight)."""
    good = np.flatnonzero(seq.valid)
    window = max(1, int(round(seq.fps)))
    if how == "first-second" or len(good) <= window:
        chosen = good[:window]
    elif how == "calmest":
        energy = np.abs(seq.expression[good]).sum(1)
        means = np.convolve(energy, np.ones(window) / window, mode="valid")
        first = int(np.argmin(means))
        chosen = good[first:first + window]
    else:
        raise ValueError(f"the driver's neutral must be one of {', '.join(NEUTRALS)}, got {how!r}")
    calibrator = NeutralCalibrator(duration_s=len(chosen) / seq.fps + 1.0)  # window covers all chosen frames
    for i in chosen:
        calibrator.add(DrivingFrame(seq.expression[i], seq.rotation[i], seq.translation[i]), float(i) / seq.fps)
    return calibrator.neutral


def retargeted_sequence(seq: ParamsSequence, avatar_neutral: DrivingFrame, how: str) -> tuple[np.ndarray, np.ndarray]:
    """(T, 53) expressions and (T, 6) poses for the avatar (resting face `avatar_neutral`), one per
    driver frame: relative retargeting from the driver's neutral (tracking/retarget.py)."""
    neutral = driver_neutral(seq, how)
    expressions, poses = [], []
    for i in held_frame_index(seq.valid):
        out = retarget(DrivingFrame(seq.expression[i], seq.rotation[i], seq.translation[i]), neutral, avatar_neutral)
        expressions.append(out.expression)
        poses.append(np.concatenate([out.rotation, out.translation]))
    return np.asarray(expressions, np.float32), np.asarray(poses, np.float32)


def render_frames(avatar: Avatar, expressions: np.ndarray, poses: np.ndarray, raster: str,
                  device: torch.device) -> Iterator[np.ndarray]:
    """RGB uint8 frames (fH, fW, 3) of the avatar through its own camera, cut to its training
    video's frame (avatar.video_frame), one per row of (T, 53) expressions and (T, 6) poses; the
    avatar is moved to `device` and put in eval mode."""
    avatar.to(device)
    avatar.model.eval()
    avatar.sr.eval()
    pipeline = RenderPipeline(ModuleStages(avatar.model, avatar.sr), raster)
    expression = torch.from_numpy(expressions).to(device)
    pose = torch.from_numpy(poses).to(device)
    window = avatar.frame_window(avatar.sr.factor * avatar.camera.width)
    window = None if window is None else window.to(device)
    with torch.no_grad():
        for t in range(len(poses)):
            yield to_uint8(cut_to_frame(pipeline.render(expression[t], pose[t], avatar.camera).rgb, window, 1.0))
