"""Training datasets: the folder `splatcam prepare` writes, and how it is made from a video.

Dataset folder (format "splatcam-dataset", version 1):

    DS/dataset.json   {"format", "version", "size", "fps", "source", "frames", "train", "heldout",
                       "dropped", "face_model_checksum" (sha256 of the ICT npz tracked with),
                       "fov_deg" (the tracker's assumed field of view), "crop": [x0, y0, side] in
                       source pixels or null, "source_size": [width, height] of the video (absent
                       in datasets made before it was recorded), "pose_refinement" (see below) and
                       "cameras" (names) for multi-view data}
    DS/frames.npz     per sample i (T samples):
                        expression (T, 53), rotation (T, 3), translation (T, 3)   head pose β, camera
                                                                                 space of `camera`
                        landmarks3d (T, 68, 3)  the 3DMM's landmarks, canonical (unposed) space
                        camera (T,) int         index into K / viewmat
                        source_frame (T,) int   frame number in the source video
                        heldout (T,) bool       the last `holdout` fraction of frames
                      and per camera c: K (C, 3, 3) pixels at `size`, viewmat (C, 4, 4) world ->
                      camera (OpenCV axes); identity (100,) the person's ICT identity.
    DS/images/000123.png   sample i's RGB, composited on white, size x size; where the crop reaches
                           past the video's frame it is white padding (avatar.video_frame)
    DS/masks/000123.png    its foreground mask (8-bit), the segmentation the image was composited with

A monocular video gives one camera at the world origin (viewmat = identity), so the head pose is
the tracked pose. Multi-view data gives one camera per view and the pose in the world frame.

`prepare_video` makes one from a video: the 3DMM tracker (one identity for the whole video, raw
per-frame pose and expression), one square head crop for the whole video (fixed, so the camera is
the same for every frame: the intrinsics stay exact and nothing jitters), MediaPipe selfie
segmentation, compositing on white, resize, the hold-out split, and (unless turned off) a photometric
refinement of the head poses on the skin's texture (tracking/photometric_pose.py;
`pose_refinement` in dataset.json holds its colour residual before and after, null when not
run). Frames without a face are dropped and counted.

Multi-view input (`prepare_multiview`): a folder with `calibration.json`

    {"reference": "cam0",
     "cameras": {"cam0": {"K": [[fx,0,cx],[0,fy,cy],[0,0,1]], "viewmat": 4x4 world->camera,
                          "width": W, "height": H}, ...}}

and one video per camera, `<name>.mp4`, frame-synchronised. The reference camera's video is
tracked; its head pose is moved into the world frame with that camera's extrinsics, and every
camera's frames become samples with their own K (scaled to `size`, no crop: multi-view rigs are
already framed on the head) and viewmat.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from avatar.video_frame import Rectangle, covers, frame_rectangle, rectangle_coverage
from core.atomic import atomic_directory

FORMAT_NAME = "splatcam-dataset"
FORMAT_VERSION = 1
# Square crop side as a multiple of the landmarks' extent, and how far above their centre it sits
# (the 68 landmarks span brows to chin; hair and the top of the head lie above them).
CROP_SCALE = 2.0
CROP_UP = 0.22


@dataclass
class DatasetFrames:
    """The arrays of frames.npz (see the module doc)."""

    expression: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    landmarks3d: np.ndarray
    camera: np.ndarray
    source_frame: np.ndarray
    heldout: np.ndarray
    K: np.ndarray
    viewmat: np.ndarray
    identity: np.ndarray

    @property
    def count(self) -> int:
        return self.expression.shape[0]


@dataclass
class Dataset:
    root: Path
    size: int
    fps: float
    frames: DatasetFrames
    meta: dict

    @property
    def train_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.frames.heldout)

    @property
    def heldout_indices(self) -> np.ndarray:
        return np.flatnonzero(self.frames.heldout)

    def image_path(self, i: int) -> Path:
        return self.root / "images" / f"{i:06d}.png"

    def mask_path(self, i: int) -> Path:
        return self.root / "masks" / f"{i:06d}.png"

    def load_image(self, i: int, size: int | None = None) -> np.ndarray:
        """Sample i's RGB as uint8 (size, size, 3) (resized with area averaging if asked)."""
        return _read_png(self.image_path(i), size, color=True)

    def load_mask(self, i: int, size: int | None = None) -> np.ndarray:
        return _read_png(self.mask_path(i), size, color=False)

    def frame_rectangle(self, size: int) -> Rectangle | None:
        """The source video's frame in pixels of the samples at size x size (avatar.video_frame),
        or None where it holds every pixel (a crop inside the frame, no crop, or a dataset made
        before the video's size was recorded)."""
        crop, source = self.meta.get("crop"), self.meta.get("source_size")
        if not crop or not source:
            return None
        rect = frame_rectangle(tuple(crop), tuple(source), size)
        return None if covers(rect, size, size) else rect

    def frame_window(self, size: int) -> np.ndarray | None:
        """(size, size) share of each pixel inside the source video's frame, or None (all of it)."""
        rect = self.frame_rectangle(size)
        return None if rect is None else rectangle_coverage(rect, size, size)


def _read_png(path: Path, size: int | None, color: bool) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"{path}: missing or unreadable image")
    if color:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if size is not None and img.shape[0] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


def load_dataset(root: str | os.PathLike) -> Dataset:
    """Read a dataset folder; a missing or malformed one raises ValueError with one line."""
    root = Path(root)
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise ValueError(f"{root}: not a splatcam dataset (no dataset.json); make one with `splatcam prepare`")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{meta_path}: unreadable ({' '.join(str(e).split())})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ValueError(f"{meta_path}: not a splatcam dataset description")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{meta_path}: dataset format version {meta.get('version')!r}, this splatcam reads {FORMAT_VERSION}")
    try:
        with np.load(root / "frames.npz", allow_pickle=False) as z:
            frames = DatasetFrames(**{k: z[k] for k in DatasetFrames.__dataclass_fields__})
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{root / 'frames.npz'}: missing or malformed ({' '.join(str(e).split())})") from None
    t = frames.count
    shapes = {"rotation": (t, 3), "translation": (t, 3), "landmarks3d": (t, 68, 3), "camera": (t,),
              "source_frame": (t,), "heldout": (t,), "identity": (100,), "expression": (t, 53)}
    for name, shape in shapes.items():
        if getattr(frames, name).shape != shape:
            raise ValueError(f"{root / 'frames.npz'}: {name} has shape {getattr(frames, name).shape}, expected {shape}")
    c = frames.K.shape[0]
    if frames.K.shape != (c, 3, 3) or frames.viewmat.shape != (c, 4, 4) or (t and frames.camera.max() >= c):
        raise ValueError(f"{root / 'frames.npz'}: camera arrays are inconsistent")
    if t == 0:
        raise ValueError(f"{root}: the dataset has no frames")
    source = meta.get("source_size")
    if source is not None and not (isinstance(source, list) and len(source) == 2
                                   and all(isinstance(v, int) and v > 0 for v in source)):
        raise ValueError(f"{meta_path}: source_size must be [width, height] in pixels, got {source!r}")
    frames.heldout = frames.heldout.astype(bool)
    return Dataset(root, int(meta["size"]), float(meta.get("fps", 30.0)), frames, meta)


# --------------------------------------------------------------------------------------------
# Preparation


@dataclass
class PrepareReport:
    frames: int  # samples written
    dropped: int  # video frames without a usable face
    train: int
    heldout: int
    crop: tuple[int, int, int] | None  # x0, y0, side in source pixels

    def summary(self) -> str:
        crop = f", crop x0={self.crop[0]} y0={self.crop[1]} side={self.crop[2]}" if self.crop else ""
        return (f"{self.frames} frames ({self.train} train, {self.heldout} held out), "
                f"{self.dropped} dropped without a face{crop}")


def stable_crop(points68: np.ndarray, width: int, height: int) -> tuple[int, int, int]:
    """One square crop (x0, y0, side) for the whole video from (T, 68, 2) landmark pixels.

    Centre: the median landmark centre, moved up by CROP_UP of the face height; side: CROP_SCALE
    times the median face extent plus the range the centre moves over (5th to 95th percentile),
    so the head stays inside the crop however it moves. The crop may reach past the frame: that
    part is filled with white (the composite background).
    """
    if points68.ndim != 3 or points68.shape[0] == 0:
        raise ValueError("a head crop needs landmarks from at least one frame")
    lo, hi = points68.min(1), points68.max(1)  # (T, 2)
    centers = (lo + hi) / 2
    extent = (hi - lo).max(1)
    face = float(np.median(extent))
    center = np.median(centers, 0)
    center[1] -= CROP_UP * face
    motion = float((np.percentile(centers, 95, 0) - np.percentile(centers, 5, 0)).max())
    side = int(round(CROP_SCALE * face + motion))
    side = max(16, min(side, 2 * max(width, height)))
    x0 = int(round(center[0] - side / 2))
    y0 = int(round(center[1] - side / 2))
    return x0, y0, side


def crop_intrinsics(K: np.ndarray, crop: tuple[int, int, int], size: int) -> np.ndarray:
    """Intrinsics after cropping the square (x0, y0, side) and resizing it to size x size.

    Pixel coordinates (centres at +0.5) map as u' = (u - x0) · size / side, so
    f' = f · size / side and c' = (c - x0) · size / side.
    """
    x0, y0, side = crop
    s = size / side
    out = K.astype(np.float64).copy()
    out[0, 0] *= s
    out[1, 1] *= s
    out[0, 2] = (K[0, 2] - x0) * s
    out[1, 2] = (K[1, 2] - y0) * s
    return out.astype(np.float32)


def crop_square(image: np.ndarray, crop: tuple[int, int, int], fill: float | int) -> np.ndarray:
    """The square (x0, y0, side) of an (H, W[, C]) image; outside the frame is `fill`."""
    x0, y0, side = crop
    h, w = image.shape[:2]
    out = np.full((side, side) + image.shape[2:], fill, image.dtype)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(w, x0 + side), min(h, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


class Segmenter:
    """MediaPipe selfie segmentation (bundled with mediapipe 0.10.21): RGB -> soft mask in [0, 1]."""

    def __init__(self) -> None:
        import mediapipe as mp

        # model 0: the "general" 256x256 model, better on close-up heads than the landscape one.
        self._seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        result = self._seg.process(np.ascontiguousarray(rgb))
        if result.segmentation_mask is None:
            return np.zeros(rgb.shape[:2], np.float32)
        return np.clip(result.segmentation_mask.astype(np.float32), 0.0, 1.0)

    def close(self) -> None:
        self._seg.close()


def composite_white(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 RGB over white with a [0, 1] mask."""
    m = mask[..., None]
    return np.clip(rgb.astype(np.float32) * m + 255.0 * (1 - m) + 0.5, 0, 255).astype(np.uint8)


def heldout_mask(count: int, holdout: float) -> np.ndarray:
    """The last ceil(holdout · count) samples held out (at least one if holdout > 0 and count > 1)."""
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"--holdout must be in [0, 1), got {holdout}")
    n = int(math.ceil(holdout * count)) if count > 1 else 0
    mask = np.zeros(count, bool)
    if n:
        mask[count - n:] = True
    return mask


def _write_dataset(out: Path, build: Callable[[Path], dict]) -> None:
    """Build into a temporary folder that replaces `out` when complete: never a half-written dataset."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not (out / "dataset.json").is_file():
        raise ValueError(f"{out}: exists and is not a splatcam dataset; refusing to overwrite it")
    with atomic_directory(out) as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        meta = build(tmp)
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")


def _save_sample(root: Path, i: int, rgb_white: np.ndarray, mask: np.ndarray) -> None:
    import cv2

    cv2.imwrite(str(root / "images" / f"{i:06d}.png"), cv2.cvtColor(rgb_white, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "masks" / f"{i:06d}.png"), _mask_u8(mask))


def _mask_u8(mask: np.ndarray) -> np.ndarray:
    """A [0, 1] mask as the 8-bit image the dataset stores."""
    return np.clip(mask * 255 + 0.5, 0, 255).astype(np.uint8)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if image.shape[0] == size:
        return image
    interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def prepare_video(video: str | os.PathLike, out: str | os.PathLike, size: int = 512, holdout: float = 0.1,
                  max_frames: int | None = None, fov_deg: float | None = None, refine_pose: bool = True,
                  progress: Callable[[Iterator, str, int], Iterator] | None = None) -> PrepareReport:
    """Video -> dataset folder (see the module doc). `progress(iterable, label, total)` wraps loops.
    `refine_pose`: refine the landmark poses photometrically (tracking/photometric_pose.py)."""
    from tracking.face_model import CanonicalLandmarks, load_face_model_data
    from tracking.fit_config import FitConfig
    from tracking.photometric_pose import PhotometricConfig, refine_face_poses
    from tracking.tracker import TrackConfig, track_video
    from tracking.video_frames import open_video

    if size < 16:
        raise ValueError(f"--size must be at least 16, got {size}")
    heldout_mask(2, holdout)  # validates holdout before the long work
    wrap = progress or (lambda it, label, total: it)
    clip = open_video(video)
    if max_frames is not None:
        clip = clip.clip(0, max_frames)
    data = load_face_model_data()
    fit = FitConfig() if fov_deg is None else FitConfig(fov_deg=fov_deg)
    track = track_video(clip, TrackConfig(fit=fit, smooth=False), data=data,
                        progress=lambda it: wrap(it, "track", clip.frame_count))
    if track.detections.interrupted:
        raise KeyboardInterrupt
    keep = [i for i, f in enumerate(track.raw) if f is not None and np.isfinite(track.fitted68[i]).all()]
    dropped = len(track.raw) - len(keep)
    if not keep:
        raise ValueError(f"{video}: no frame with a usable face; nothing to train on")
    crop = stable_crop(track.fitted68[keep], clip.width, clip.height)
    cam = track.camera
    K0 = np.array([[cam.focal, 0, cam.principal_point[0]], [0, cam.focal, cam.principal_point[1]], [0, 0, 1]],
                  np.float32)
    K = crop_intrinsics(K0, crop, size)
    raw = [track.raw[i] for i in keep]
    expression = np.stack([f.expression for f in raw]).astype(np.float32)
    identity = track.params.identity.astype(np.float32)
    frames = DatasetFrames(
        expression=expression,
        rotation=np.stack([f.rotation for f in raw]).astype(np.float32),
        translation=np.stack([f.translation for f in raw]).astype(np.float32),
        landmarks3d=CanonicalLandmarks(data)(identity, expression),
        camera=np.zeros(len(keep), np.int64),
        source_frame=np.asarray(keep, np.int64) + clip.start,
        heldout=heldout_mask(len(keep), holdout),
        K=K[None], viewmat=np.eye(4, dtype=np.float32)[None], identity=identity)
    sample_of = {src: j for j, src in enumerate(keep)}
    # The pose refinement reads every frame at up to its finest level, kept in memory at that
    # size (256 px: 260 KB a frame) rather than read back from the written PNGs.
    photometric = PhotometricConfig()
    side = min(size, photometric.levels[-1])
    photometric = PhotometricConfig(levels=tuple(sorted({min(s, side) for s in photometric.levels})))
    small_rgb = np.zeros((len(keep) if refine_pose else 0, side, side, 3), np.uint8)
    small_mask = np.zeros(small_rgb.shape[:3], np.uint8)

    def build(root: Path) -> dict:
        segmenter = Segmenter()
        try:
            for frame in wrap(clip.frames(), "segment", clip.frame_count):
                index = frame.index - clip.start
                j = sample_of.get(index)
                if j is None:
                    continue
                mask = segmenter(frame.rgb)
                rgb = _resize(crop_square(composite_white(frame.rgb, mask), crop, 255), size)
                alpha = _resize(crop_square(mask, crop, 0.0), size)
                _save_sample(root, j, rgb, alpha)
                if refine_pose:
                    small_rgb[j] = _resize(rgb, side)
                    small_mask[j] = _resize(_mask_u8(alpha), side)
        finally:
            segmenter.close()
        missing = [j for j in range(len(keep)) if not (root / "images" / f"{j:06d}.png").is_file()]
        if missing:
            raise ValueError(f"{video}: frames changed between passes ({len(missing)} not decoded again)")
        refinement = None
        if refine_pose:
            K_small = K.copy()
            K_small[:2] *= side / size
            result = refine_face_poses(small_rgb, small_mask, K_small, data, identity, expression, frames.rotation,
                                       frames.translation, photometric, progress=wrap)
            frames.rotation, frames.translation = result.rotation, result.translation
            refinement = {"rms_before": round(result.rms_before, 5), "rms_after": round(result.rms_after, 5)}
        np.savez(root / "frames.npz", **vars(frames))
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "size": size, "fps": clip.fps,
                "source": str(Path(video).resolve()), "frames": len(keep),
                "train": int((~frames.heldout).sum()), "heldout": int(frames.heldout.sum()),
                "dropped": dropped, "crop": list(crop), "source_size": [clip.width, clip.height],
                "face_model_checksum": data.checksum,
                "fov_deg": fit.fov_deg, "pose_refinement": refinement}

    _write_dataset(Path(out), build)
    return PrepareReport(len(keep), dropped, int((~frames.heldout).sum()), int(frames.heldout.sum()), crop)


def _read_calibration(folder: Path) -> tuple[str, dict[str, dict]]:
    path = folder / "calibration.json"
    if not path.is_file():
        raise ValueError(f"{folder}: a multi-view folder needs calibration.json (see avatar/dataset.py)")
    try:
        calib = json.loads(path.read_text())
        cameras = calib["cameras"]
        reference = calib.get("reference") or sorted(cameras)[0]
        parsed = {}
        for name, c in cameras.items():
            K = np.asarray(c["K"], np.float32)
            V = np.asarray(c["viewmat"], np.float32)
            if K.shape != (3, 3) or V.shape != (4, 4):
                raise ValueError(f"camera {name}: K must be 3x3 and viewmat 4x4")
            parsed[name] = {"K": K, "viewmat": V, "width": int(c["width"]), "height": int(c["height"])}
    except (OSError, KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: malformed calibration ({' '.join(str(e).split())})") from None
    if reference not in parsed:
        raise ValueError(f"{path}: reference camera {reference!r} is not among the cameras")
    for name in parsed:
        if not (folder / f"{name}.mp4").is_file():
            raise ValueError(f"{folder}: camera {name!r} has no video {name}.mp4")
    return reference, parsed


def pose_to_world(rotation: np.ndarray, translation: np.ndarray, viewmat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A head pose in a camera's frame -> the world frame of that camera's world-to-camera `viewmat`:
    x_cam = V (R x + t)  with V = [Rv | tv]  gives  R_w = Rv^T R, t_w = Rv^T (t - tv)."""
    import torch

    from core.rotations import axis_angle_to_matrix, matrix_to_axis_angle

    rv, tv = viewmat[:3, :3].astype(np.float64), viewmat[:3, 3].astype(np.float64)
    R = axis_angle_to_matrix(torch.as_tensor(rotation, dtype=torch.float64)).numpy()
    Rw = np.einsum("ji,njk->nik", rv, R)
    tw = (translation.astype(np.float64) - tv) @ rv
    return matrix_to_axis_angle(torch.as_tensor(Rw)).numpy().astype(np.float32), tw.astype(np.float32)


def prepare_multiview(folder: str | os.PathLike, out: str | os.PathLike, size: int = 512, holdout: float = 0.1,
                      max_frames: int | None = None,
                      progress: Callable[[Iterator, str, int], Iterator] | None = None) -> PrepareReport:
    """Multi-view folder -> dataset folder (format in the module doc)."""
    from tracking.face_model import CanonicalLandmarks, load_face_model_data
    from tracking.fit_config import FitConfig
    from tracking.tracker import TrackConfig, track_video
    from tracking.video_frames import open_video

    folder = Path(folder)
    if size < 16:
        raise ValueError(f"--size must be at least 16, got {size}")
    heldout_mask(2, holdout)
    reference, cameras = _read_calibration(folder)
    wrap = progress or (lambda it, label, total: it)
    names = sorted(cameras)
    ref = cameras[reference]
    # The tracker's pinhole is described by a diagonal field of view, centred: take it from K.
    fov = math.degrees(2 * math.atan(0.5 * math.hypot(ref["width"], ref["height"]) / float(ref["K"][0, 0])))
    clip = open_video(folder / f"{reference}.mp4")
    if max_frames is not None:
        clip = clip.clip(0, max_frames)
    data = load_face_model_data()
    track = track_video(clip, TrackConfig(fit=FitConfig(fov_deg=fov), smooth=False), data=data,
                        progress=lambda it: wrap(it, f"track {reference}", clip.frame_count))
    keep = [i for i, f in enumerate(track.raw) if f is not None]
    if not keep:
        raise ValueError(f"{folder / (reference + '.mp4')}: no frame with a usable face; nothing to train on")
    raw = [track.raw[i] for i in keep]
    rotation, translation = pose_to_world(np.stack([f.rotation for f in raw]), np.stack([f.translation for f in raw]),
                                          ref["viewmat"])
    expression = np.stack([f.expression for f in raw]).astype(np.float32)
    identity = track.params.identity.astype(np.float32)
    landmarks = CanonicalLandmarks(data)(identity, expression)
    held = heldout_mask(len(keep), holdout)
    n_cam, n = len(names), len(keep)
    Ks, crops = [], []
    for name in names:
        c = cameras[name]
        side = min(c["width"], c["height"])
        crop = ((c["width"] - side) // 2, (c["height"] - side) // 2, side)
        crops.append(crop)
        Ks.append(crop_intrinsics(c["K"], crop, size))
    frames = DatasetFrames(
        expression=np.tile(expression, (n_cam, 1)), rotation=np.tile(rotation, (n_cam, 1)),
        translation=np.tile(translation, (n_cam, 1)), landmarks3d=np.tile(landmarks, (n_cam, 1, 1)),
        camera=np.repeat(np.arange(n_cam), n), source_frame=np.tile(np.asarray(keep) + clip.start, n_cam),
        heldout=np.tile(held, n_cam), K=np.stack(Ks), viewmat=np.stack([cameras[m]["viewmat"] for m in names]),
        identity=identity)
    sample_of = {src: j for j, src in enumerate(keep)}

    def build(root: Path) -> dict:
        segmenter = Segmenter()
        try:
            for ci, name in enumerate(names):
                video = open_video(folder / f"{name}.mp4")
                video = video.clip(clip.start, clip.frame_count or len(track.raw))
                for frame in wrap(video.frames(), f"segment {name}", video.frame_count):
                    j = sample_of.get(frame.index - clip.start)
                    if j is None:
                        continue
                    mask = segmenter(frame.rgb)
                    white = composite_white(frame.rgb, mask)
                    _save_sample(root, ci * n + j, _resize(crop_square(white, crops[ci], 255), size),
                                 _resize(crop_square(mask, crops[ci], 0.0), size))
        finally:
            segmenter.close()
        missing = [j for j in range(n_cam * n) if not (root / "images" / f"{j:06d}.png").is_file()]
        if missing:
            raise ValueError(f"{folder}: the camera videos are not frame-synchronised "
                             f"({len(missing)} samples missing)")
        np.savez(root / "frames.npz", **vars(frames))
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "size": size, "fps": clip.fps,
                "source": str(folder.resolve()), "frames": n_cam * n, "cameras": names,
                "train": int((~frames.heldout).sum()), "heldout": int(frames.heldout.sum()),
                "dropped": len(track.raw) - n, "crop": None, "face_model_checksum": data.checksum,
                "fov_deg": fov}

    _write_dataset(Path(out), build)
    return PrepareReport(n_cam * n, len(track.raw) - n, int((~frames.heldout).sum()), int(frames.heldout.sum()), None)
