"""A prepared dataset held in memory for training: ground truth at the sizes the stages need."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from avatar.camera import Camera
from avatar.dataset import Dataset
from avatar.video_frame import cut_to_frame


@dataclass
class TrainingData:
    indices: np.ndarray  # (N,) dataset sample ids
    images: torch.Tensor  # (N, S, S, 3) uint8 ground truth on white, S = image_size
    masks: torch.Tensor  # (N, S, S) uint8
    expression: torch.Tensor  # (N, 53)
    pose: torch.Tensor  # (N, 6) β = (rotation, translation)
    landmarks3d: torch.Tensor  # (N, 68, 3) canonical
    K: torch.Tensor  # (N, 3, 3) at the dataset's size
    viewmat: torch.Tensor  # (N, 4, 4)
    dataset_size: int
    image_size: int
    # (S, S) share of each pixel inside the source video's frame (Dataset.frame_window), None
    # where every pixel is: outside it the ground truth is padding, and renders are cut the same way.
    window: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def camera(self, j: int, resolution: int) -> Camera:
        """Sample j's camera for a square render of `resolution` pixels."""
        native = Camera(K=self.K[j], viewmat=self.viewmat[j], width=self.dataset_size, height=self.dataset_size)
        return native.scaled(resolution / self.dataset_size)

    def image(self, j: int, resolution: int) -> torch.Tensor:
        """(R, R, 3) float ground truth in [0, 1] (area-averaged from the cached size)."""
        return resized(self.images[j].float() / 255, resolution)

    def mask(self, j: int, resolution: int) -> torch.Tensor:
        return resized(self.masks[j].float()[..., None] / 255, resolution)[..., 0]

    def frame_window(self, resolution: int) -> torch.Tensor | None:
        """(R, R) share of each pixel inside the source video's frame, or None (all of every pixel)."""
        return None if self.window is None else resized(self.window[..., None], resolution)[..., 0]

    def framed(self, image: torch.Tensor, background: float) -> torch.Tensor:
        """An (R, R, C) render cut to the source video's frame, as the ground truth is
        (avatar.video_frame); `background` past it."""
        window = self.frame_window(image.shape[0])
        return cut_to_frame(image, None if window is None else window[..., None], background)


def resized(img: torch.Tensor, resolution: int) -> torch.Tensor:
    """(S, S, C) float -> (R, R, C): average pooling when R divides S, else area interpolation."""
    if img.shape[0] == resolution:
        return img
    x = img.permute(2, 0, 1)[None]
    if img.shape[0] % resolution == 0:
        x = torch.nn.functional.avg_pool2d(x, img.shape[0] // resolution)
    else:
        x = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="area")
    return x[0].permute(1, 2, 0)


def load_training_data(dataset: Dataset, indices: np.ndarray, image_size: int,
                       progress: Callable[[Iterator, str, int], Iterator] | None = None) -> TrainingData:
    wrap = progress or (lambda it, label, total: it)
    f = dataset.frames
    images, masks = [], []
    for i in wrap(indices, "load", len(indices)):
        images.append(torch.from_numpy(dataset.load_image(int(i), image_size)))
        masks.append(torch.from_numpy(dataset.load_mask(int(i), image_size)))
    cam = f.camera[indices]
    window = dataset.frame_window(image_size)
    pose = np.concatenate([f.rotation[indices], f.translation[indices]], 1)
    return TrainingData(
        indices=np.asarray(indices), images=torch.stack(images), masks=torch.stack(masks),
        expression=torch.from_numpy(f.expression[indices]).float(), pose=torch.from_numpy(pose).float(),
        landmarks3d=torch.from_numpy(f.landmarks3d[indices]).float(),
        K=torch.from_numpy(f.K[cam]).float(), viewmat=torch.from_numpy(f.viewmat[cam]).float(),
        dataset_size=dataset.size, image_size=image_size,
        window=None if window is None else torch.from_numpy(window))


def subsample(indices: np.ndarray, limit: int | None) -> np.ndarray:
    """At most `limit` of `indices`, evenly spread (all of them when limit is None)."""
    if limit is None or len(indices) <= limit:
        return indices
    return indices[np.linspace(0, len(indices) - 1, limit).round().astype(int)]
