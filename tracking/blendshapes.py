"""MediaPipe Face Landmarker as a tracker: ARKit blendshape scores and the facial transform.

The second tracker beside the ICT fitter (`splatcam track --tracker blendshapes`). One model
bundle (`face_landmarker.task`: face detector, 478-point mesh, 52-score blendshape model) gives
per frame the landmarks, 52 blendshape scores and a rigid 4x4 "facial transformation matrix".

Expression. MediaPipe's scores are ARKit's blendshapes without `tongueOut`, plus `_neutral`.
ICT-FaceKit's 53 expression shapes are the same ARKit set with `_L`/`_R` suffixes, except that
ICT splits two of ARKit's symmetric shapes into halves. The mapping (`MEDIAPIPE_TO_ICT`):
  * `xxxLeft` / `xxxRight` -> `xxx_L` / `xxx_R`. Both use the subject's own left and right (ICT's
    `_L` shapes move the +x side, the subject's left; checked on d14's one-sided blinks in the tests);
  * `browInnerUp` -> both `browInnerUp_L` and `browInnerUp_R`; `cheekPuff` -> both `cheekPuff_L`
    and `cheekPuff_R` (ARKit has one symmetric score; each ICT half takes the full score, since
    both halves together make the symmetric ARKit shape);
  * everything else by the same name (`jawOpen`, `jawLeft`, `mouthLeft`, `mouthClose`, ...);
  * `_neutral` is not a shape (it is the "no expression" score) and is dropped.
So every ICT name has an ARKit counterpart; nothing is left at zero.

Head pose. MediaPipe's matrix M takes its canonical face model (cm; +x the subject's left, +y up,
+z out of the face, the same axes as ICT's) into a metric OpenGL camera (+y up, looking along -z)
whose vertical field of view is 63 degrees (measured on the test videos: reprojection is best at
63 deg for square and portrait frames alike). Our canonical head (tracking/face_model.py) is
0.04 F (ICT) with F = diag(1, -1, -1), and ICT's origin sits at o = `ICT_ORIGIN_IN_MEDIAPIPE_CM`
in MediaPipe's model frame (the mean offset between the two models' eye corners and nose, the
rigid part of the face; the best rotation between them is 0.4 deg, so none is applied;
tests/test_blendshapes.py recomputes o). With p_mp = p_ict + o, p_gl = R_mp p_mp + t_mp and our
OpenCV camera p_cv = F p_gl, a canonical point c = 0.04 F p_ict lands at
    0.04 p_cv = (F R_mp F) c + 0.04 F (R_mp o + t_mp),
so rotation = log(F R_mp F) and translation = 0.04 F (R_mp o + t_mp) in canonical units, z > 0 in
front of the camera. Finally the head is moved for the tracker's own pinhole camera (`fov_deg`
diagonal, focal f) instead of MediaPipe's (focal f_mp): the point MediaPipe fits the pose to
(`POSE_ANCHOR_IN_MEDIAPIPE_CM`) keeps its x and y and has its depth scaled by f / f_mp, so it
stays on the same pixel and the face keeps its size in the image; rotation is unchanged. (The
ICT head, average identity, then reprojects onto the detected eye corners and nose within ~5 %
of the eye distance for any field of view from 45 to 80 degrees; tests/test_blendshapes.py.)
Signs, as for any pose in this project: a positive rotation about the camera's y axis (down)
turns the face towards the image's left (the subject's right), one about x tilts it down.

The model bundle is found on the asset lookup path (tracking/assets.py). When it is nowhere it is
downloaded once from Google's model storage into the user cache; every bundle used is checked
against the sha256 of that release.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import cv2
import numpy as np

from core.paths import file_checksum, user_cache_dir
from core.rotations import matrix_to_rotvec
from tracking.assets import AssetNotFoundError, find_asset
from tracking.download import download
from tracking.face_model import CM_TO_CANONICAL, ICT_TO_CANONICAL_AXES
from tracking.native_log import FirstFacesHush, quiet_native_stderr
from tracking.params import EXPRESSION_NAMES, N_EXPRESSION
from tracking.pinhole import PinholeCamera

logger = logging.getLogger(__name__)

FACE_LANDMARKER_FILE = "face_landmarker.task"
# Relative to each asset folder, as in the shared data (`shared/data/mediapipe/`).
FACE_LANDMARKER_ASSET = f"mediapipe/{FACE_LANDMARKER_FILE}"
FACE_LANDMARKER_URL = ("https://storage.googleapis.com/mediapipe-models/face_landmarker/"
                       "face_landmarker/float16/1/face_landmarker.task")
FACE_LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"

MEDIAPIPE_VERTICAL_FOV_DEG = 63.0
# ICT-FaceKit's origin in MediaPipe's canonical face model frame, cm (see the module docstring).
ICT_ORIGIN_IN_MEDIAPIPE_CM = np.array([0.0, -0.72, -5.35])
# The weighted centroid of the landmarks MediaPipe fits the pose to (its Procrustes basis, cm):
# the point whose depth scales with the focal length (see the module docstring).
POSE_ANCHOR_IN_MEDIAPIPE_CM = np.array([0.0, -0.26, 3.74])

# The 52 categories of the Face Landmarker blendshape model, in its output order.
MEDIAPIPE_BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
IGNORED_BLENDSHAPES = ("_neutral",)
SPLIT_BLENDSHAPES = {"browInnerUp": ("browInnerUp_L", "browInnerUp_R"),
                     "cheekPuff": ("cheekPuff_L", "cheekPuff_R")}


def _ict_names(mediapipe_name: str) -> tuple[str, ...]:
    if mediapipe_name in SPLIT_BLENDSHAPES:
        return SPLIT_BLENDSHAPES[mediapipe_name]
    for side, suffix in (("Left", "_L"), ("Right", "_R")):
        stem = mediapipe_name[:-len(side)]
        if mediapipe_name.endswith(side) and stem + suffix in EXPRESSION_NAMES:
            return (stem + suffix,)
    return (mediapipe_name,)


MEDIAPIPE_TO_ICT: dict[str, tuple[str, ...]] = {
    n: _ict_names(n) for n in MEDIAPIPE_BLENDSHAPE_NAMES if n not in IGNORED_BLENDSHAPES}


class ModelChecksumError(ValueError):
    """A Face Landmarker bundle whose sha256 is not the pinned release's."""


class BlendshapeMapping:
    """ICT expression weights (53,) from MediaPipe scores, for one order of category names."""

    def __init__(self, category_names: tuple[str, ...] | list[str]) -> None:
        position = {n: i for i, n in enumerate(category_names)}
        source = np.full(N_EXPRESSION, -1, np.int64)
        for mp_name, ict_names in MEDIAPIPE_TO_ICT.items():
            if mp_name not in position:
                raise ValueError(f"Face Landmarker gave no '{mp_name}' score (got {len(category_names)} categories)")
            for ict in ict_names:
                source[EXPRESSION_NAMES.index(ict)] = position[mp_name]
        assert (source >= 0).all(), "MEDIAPIPE_TO_ICT leaves an ICT expression without a source"
        self.category_names = tuple(category_names)
        self._source = source

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(scores, np.float32)[self._source], 0.0, 1.0)


def check_model(path: Path) -> Path:
    got = file_checksum(path)
    if got != FACE_LANDMARKER_SHA256:
        raise ModelChecksumError(
            f"{path}: sha256 {got[:16]}... is not the Face Landmarker bundle this version expects "
            f"({FACE_LANDMARKER_SHA256[:16]}...); delete it so it is downloaded again, or put the file "
            f"from {FACE_LANDMARKER_URL} there")
    return path


def download_model(url: str = FACE_LANDMARKER_URL, folder: Path | None = None) -> Path:
    """Fetch the bundle into the user cache; checked before it is moved into place."""
    folder = user_cache_dir() / "mediapipe" if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / FACE_LANDMARKER_FILE
    tmp = folder / f".{FACE_LANDMARKER_FILE}.partial"
    logger.warning("downloading the MediaPipe Face Landmarker model (3.8 MB) from %s to %s", url, target)
    try:
        try:
            download(url, tmp, "Face Landmarker", progress=False)
        except (OSError, HTTPException) as e:  # URLError, timeouts, refused or cut connections
            raise AssetNotFoundError(
                f"{FACE_LANDMARKER_FILE} is not on this machine and downloading it from {url} failed "
                f"({' '.join(str(e).split())}); put the file in {folder}") from None
        check_model(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def face_landmarker_model(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The checked model bundle: `path` (the file or a folder holding it), else the asset lookup
    path (tracking/assets.py), else a download into the user cache."""
    if path is not None:
        path = Path(path)
        candidates = [path, path / FACE_LANDMARKER_FILE, path / FACE_LANDMARKER_ASSET]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise AssetNotFoundError(f"{path}: no {FACE_LANDMARKER_FILE} there")
        return check_model(found)
    try:
        found = find_asset(FACE_LANDMARKER_ASSET)
    except AssetNotFoundError:
        if not download:
            raise
        found = download_model()
    return check_model(found)


def mediapipe_focal(height: int) -> float:
    """Focal length (pixels) of the camera MediaPipe's transform assumes for a frame this tall."""
    return 0.5 * height / math.tan(math.radians(MEDIAPIPE_VERTICAL_FOV_DEG) / 2)


_F = np.diag(ICT_TO_CANONICAL_AXES).astype(np.float64)


def head_pose_from_matrix(matrix: np.ndarray, focal_ratio: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's facial transformation (4, 4) -> (rotation axis-angle, translation canonical units).

    `focal_ratio` = our camera's focal / MediaPipe's (see the module docstring).
    """
    m = np.asarray(matrix, np.float64)
    r_mp, t_mp = m[:3, :3], m[:3, 3]
    rotation = matrix_to_rotvec(_F @ r_mp @ _F)
    anchor = r_mp @ POSE_ANCHOR_IN_MEDIAPIPE_CM + t_mp
    anchor[2] *= focal_ratio  # same pixel and same image size through a camera k times longer
    origin = anchor + r_mp @ (ICT_ORIGIN_IN_MEDIAPIPE_CM - POSE_ANCHOR_IN_MEDIAPIPE_CM)
    translation = CM_TO_CANONICAL * (_F @ origin)
    return rotation.astype(np.float32), translation.astype(np.float32)


@dataclass
class BlendshapeFrame:
    expression: np.ndarray  # (53,) float32 ICT weights, 0..1
    rotation: np.ndarray  # (3,) float32 axis-angle, canonical head -> camera
    translation: np.ndarray  # (3,) float32 canonical units, for the tracker's pinhole camera
    points: np.ndarray  # (478, 2) float32 landmarks in the input frame's pixels
    scores: np.ndarray  # (52,) float32 MediaPipe's own scores, MEDIAPIPE_BLENDSHAPE_NAMES order


class FaceLandmarkerTracker:
    """MediaPipe Face Landmarker in VIDEO mode (it follows the face from frame to frame).

    Frames larger than `max_side` are downscaled for the model; the pose does not depend on the
    resolution and the points are returned in the frame's own pixels.
    """

    def __init__(self, fov_deg: float, model_path: str | os.PathLike | None = None, max_side: int = 640,
                 download: bool = True) -> None:
        from mediapipe.tasks import python as mp_tasks
        from mediapipe.tasks.python import vision

        model = face_landmarker_model(model_path, download)
        options = vision.FaceLandmarkerOptions(
            base_options=mp_tasks.BaseOptions(model_asset_path=str(model)),
            running_mode=vision.RunningMode.VIDEO, num_faces=1,
            output_face_blendshapes=True, output_facial_transformation_matrixes=True)
        with quiet_native_stderr():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self.fov_deg = fov_deg
        self.max_side = max_side
        self._mapping: BlendshapeMapping | None = None
        self._last_ms = -1
        self._hush = FirstFacesHush()

    def process(self, rgb: np.ndarray, timestamp_ms: int) -> BlendshapeFrame | None:
        """Track one RGB uint8 frame; None when there is no face."""
        import mediapipe as mp

        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)),
                                                    interpolation=cv2.INTER_AREA)
        # VIDEO mode rejects a timestamp that does not increase (rounded ms can repeat).
        timestamp_ms = max(int(timestamp_ms), self._last_ms + 1)
        self._last_ms = timestamp_ms
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(small))
        # The first frames with a face print the runtime's start-up notices (tracking/native_log.py).
        with self._hush.around_call():
            result = self._landmarker.detect_for_video(image, timestamp_ms)
        self._hush.saw_face(bool(result.face_landmarks))
        if not result.face_landmarks or not result.face_blendshapes or not result.facial_transformation_matrixes:
            return None
        categories = result.face_blendshapes[0]
        if self._mapping is None:
            self._mapping = BlendshapeMapping([c.category_name for c in categories])
        scores = np.array([c.score for c in categories], np.float32)
        points = np.array([[p.x * w, p.y * h] for p in result.face_landmarks[0]], np.float32)
        ratio = PinholeCamera(w, h, self.fov_deg).focal / mediapipe_focal(h)
        rotation, translation = head_pose_from_matrix(result.facial_transformation_matrixes[0], ratio)
        return BlendshapeFrame(self._mapping(scores), rotation, translation, points, scores)

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> "FaceLandmarkerTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
