"""Each eye's blink weight re-solved so the fitted lids open as far as the detected ones.

Why a separate step: in the ICT blink the lower lid rises to meet the upper one, and the dense
points on the upper-lid crease move with it; in a real blink mostly the upper lid falls. Fitting
every point at once, those points outvote the few on the lid margins, so a blink that the
detector sees shut to 5 % of the eye's width (eye aspect ratio 0.05, d0 frame 66) was fitted at
eyeBlink 0.4-0.8 with the model's lids still 13-18 % apart. Removing the priors does not
change that; the lid gap itself is what the fit must honour. The eye aspect ratio (mean lid gap
over eye width, from iBUG's six eye points) is one number per eye that detectors measure well and
that the ICT blink spans fully (0.32 open, 0.04 at eyeBlink 1), so after the fit each eye's
eyeBlink weight is solved in one dimension, head pose and other weights kept, until the fitted
model's projected ratio matches the detected one.
"""
from __future__ import annotations

import numpy as np

from core.rotations import rotvec_to_matrix
from tracking.face_model import CanonicalLandmarks
from tracking.params import EXPRESSION_NAMES
from tracking.pinhole import PinholeCamera

# iBUG-68 eye points (corner, two upper lid, corner, two lower lid) and the blink channel that
# closes that eye (the subject's right eye is on the image's left).
EYES = (((36, 37, 38, 39, 40, 41), "eyeBlink_R"), ((42, 43, 44, 45, 46, 47), "eyeBlink_L"))
GRID = np.linspace(0.0, 1.0, 21)  # blink weights at which the ratio is evaluated, then interpolated


def eye_aspect_ratios(points68: np.ndarray) -> np.ndarray:
    """(..., 68, 2) points -> (..., 2) eye aspect ratios (right eye, left eye): the mean gap between
    the two upper and two lower lid points over the corner-to-corner width. The gap is measured
    along the normal of the corner line, signed, so lids that pass each other (a model pushed past
    closing) give a negative ratio and the ratio stays monotone in the blink weight."""
    out = []
    for ids, _ in EYES:
        p = points68[..., list(ids), :]
        across = p[..., 3, :] - p[..., 0, :]  # both eyes' corners run left to right in the image
        width = np.maximum(np.linalg.norm(across, axis=-1), 1e-9)
        down = np.stack([-across[..., 1], across[..., 0]], -1) / width[..., None]
        gap = (((p[..., 5, :] - p[..., 1, :]) * down).sum(-1) + ((p[..., 4, :] - p[..., 2, :]) * down).sum(-1)) / 2
        out.append(gap / width)
    return np.stack(out, -1)


class EyeOpeningMatcher:
    """Solves both eyes' blink weights of a fit against detected iBUG-68 points (module docstring)."""

    def __init__(self, landmarks: CanonicalLandmarks, camera: PinholeCamera) -> None:
        self._landmarks = landmarks
        self._camera = camera
        self._channels = np.array([EXPRESSION_NAMES.index(name) for _, name in EYES])

    def _ratios(self, identity: np.ndarray, expressions: np.ndarray, rotation: np.ndarray,
                translation: np.ndarray) -> np.ndarray:
        """(B, 53) expressions of one posed head -> (B, 2) projected eye aspect ratios."""
        canonical = self._landmarks(identity, expressions).astype(np.float64)
        r = rotvec_to_matrix(rotation)
        return eye_aspect_ratios(self._camera.project(canonical @ r.T + translation))

    def match(self, identity: np.ndarray, expression: np.ndarray, rotation: np.ndarray,
              translation: np.ndarray, detected68: np.ndarray) -> np.ndarray:
        """The (53,) expression with its two blink weights moved so the fitted ratios meet the
        detected ones (within [0, 1]); unchanged if the detection holds a non-finite eye point.

        Both eyes are swept over GRID at once (each blink channel moves only its own eye) and the
        ratio is inverted by linear interpolation: one batched evaluation, and a detected gap beyond
        what the model reaches lands on the bound without special cases."""
        target = eye_aspect_ratios(np.asarray(detected68, np.float64))
        if not np.isfinite(target).all():
            return expression
        sweep = np.repeat(np.asarray(expression, np.float64)[None], GRID.size, 0)
        sweep[:, self._channels] = GRID[:, None]
        ratios = self._ratios(identity, sweep, rotation, translation)  # (G, 2)
        out = expression.copy()
        for eye, channel in enumerate(self._channels):
            # The ratio falls as the lid closes; the running minimum makes it monotone for np.interp.
            falling = np.minimum.accumulate(ratios[:, eye])
            out[channel] = np.interp(target[eye], falling[::-1], GRID[::-1])
        return out
