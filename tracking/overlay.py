"""Diagnostic overlay for `splatcam track --overlay`: what the tracker fitted, drawn on each frame.

On every frame: the fitted model's 68 landmarks projected with the tracking camera (green), and
in the top-right corner a shaded render of the fitted face mesh (face and eyeballs) in the same
pose, cropped around the face. Frames without a face get a red border and a "no face" label; the
landmarks and mesh drawn there are the held values the params file carries for that frame.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from tracking.driving_frame import DrivingFrame
from tracking.face_model import FaceModel, FaceModelData
from tracking.mesh_render import face_normals_z, rasterize_mesh
from tracking.pinhole import PinholeCamera

LANDMARK_COLOUR = (40, 230, 40)
MISSING_COLOUR = (230, 30, 30)
MESH_TINT = np.array([205, 190, 180], np.float64)


class OverlayRenderer:
    def __init__(self, data: FaceModelData, camera: PinholeCamera, identity: np.ndarray,
                 inset_height: int = 160) -> None:
        regions = [data.region(n) for n in ("face", "eyeball_left", "eyeball_right")]
        vertex_ids = np.concatenate([np.arange(r.start, r.stop) for r in regions])
        remap = np.full(data.neutral.shape[0], -1)
        remap[vertex_ids] = np.arange(vertex_ids.size)
        faces = remap[data.faces]
        self._faces = faces[(faces >= 0).all(1)]
        self._landmarks = remap[data.landmarks68]
        self._model = FaceModel.from_data(data, vertex_ids)
        self._identity = torch.as_tensor(np.asarray(identity, np.float32))[None]
        self.camera = camera
        self.inset_height = inset_height

    def _camera_vertices(self, frame: DrivingFrame) -> np.ndarray:
        with torch.no_grad():
            v = self._model.vertices(self._identity, torch.as_tensor(frame.expression)[None])
            v = FaceModel.posed(v, torch.as_tensor(frame.rotation)[None], torch.as_tensor(frame.translation)[None])
        return v[0].numpy().astype(np.float64)

    def __call__(self, rgb: np.ndarray, frame: DrivingFrame, valid: bool) -> np.ndarray:
        out = rgb.copy()
        vertices = self._camera_vertices(frame)
        if (vertices[:, 2] > 0).all():
            pixels = self.camera.project(vertices)
            for x, y in pixels[self._landmarks]:
                cv2.circle(out, (int(round(x - 0.5)), int(round(y - 0.5))), max(1, out.shape[0] // 240),
                           LANDMARK_COLOUR, -1, cv2.LINE_AA)
            self._draw_inset(out, vertices, pixels)
        if not valid:
            h, w = out.shape[:2]
            cv2.rectangle(out, (0, 0), (w - 1, h - 1), MISSING_COLOUR, max(2, h // 100))
            cv2.putText(out, "no face", (10, 30 * max(1, h // 480)), cv2.FONT_HERSHEY_SIMPLEX,
                        max(0.6, h / 480), MISSING_COLOUR, max(1, h // 240), cv2.LINE_AA)
        return out

    def _draw_inset(self, out: np.ndarray, vertices: np.ndarray, pixels: np.ndarray) -> None:
        """Render the mesh into a crop box around the face, scaled into the top-right corner."""
        lo, hi = pixels.min(0), pixels.max(0)
        centre, half = (lo + hi) / 2, (hi - lo).max() * 0.55
        size = min(self.inset_height, out.shape[0] // 2, out.shape[1] // 2)
        if half <= 0 or size < 16:
            return
        scale = size / (2 * half)
        inset_pixels = (pixels - (centre - half)) * scale
        shade, mask = rasterize_mesh(inset_pixels, vertices[:, 2], face_normals_z(vertices, self._faces),
                                     self._faces, size, size)
        inset = np.full((size, size, 3), 40.0)
        lit = (0.25 + 0.75 * shade[..., None]) * MESH_TINT
        inset[mask] = lit[mask]
        x0 = out.shape[1] - size - 4
        out[4:4 + size, x0:x0 + size] = inset.astype(np.uint8)
        cv2.rectangle(out, (x0 - 1, 3), (x0 + size, 4 + size), (255, 255, 255), 1)
