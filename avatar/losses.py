"""Training losses: the mesh stage of seed section 2.1 and the Gaussian stage of section 2.2.

Mesh stage (geometry-guided initialisation):
    L_total = L_RGB + λ_sil L_sil + λ_def L_def + λ_offset L_offset + λ_lmk L_lmk + λ_lap L_lap
    L_RGB    = mean |I_rgb - I_gt|                      (L1, per pixel and channel)
    L_sil    = 1 - IoU(M, M_gt), soft IoU Σ M·M_gt / Σ (M + M_gt - M·M_gt); the seed writes
               "IOU(M, M_gt)" for a quantity to *minimise*, so the loss is one minus it
    L_def    = mean |P - P_gt|, P = P0 + f_def^exp(P0, θ) (the deformed neutral landmarks)
    L_offset = mean |Δx|² of the per-vertex deformation offsets (no global constant offset)
    L_lmk    = mean SDF(P0)² (the neutral landmarks lie on the zero level set)
    L_lap    = mean |v_i - mean of v_i's neighbours|² (uniform Laplacian: a smooth mesh)
Gaussian stage:
    L = |I_hr - I_gt|_1 + λ_vgg VGG(I_hr, I_gt) + λ_lr |I_lr - I_gt|_1
(the seed's "||I_lr + I_gt||" is a typo for the difference). Images are (..., H, W, C) or
(B, C, H, W); L1 terms are means, so weights do not depend on the resolution. The CPU profiles
put `scaled_squared` (10 x the mean squared error) in place of both L1 terms: where a pixel is
hair in one frame and background in the next, L1 learns the median (either), a squared error
the mean, and the mean is what scores best in PSNR.

The VGG term is the perceptual loss of the reference: L1 between VGG16 feature maps (relu1_2,
relu2_2, relu3_3, relu4_3) of the ImageNet-normalised images. Its weights cannot be downloaded
here; `load_vgg16_features` reads torchvision's file `vgg16-397923af.pth` from the torch hub
cache ($TORCH_HOME/hub/checkpoints, default ~/.cache/torch/hub/checkpoints) when present, with
`torch.load(weights_only=True)` (tensors only, no code), and returns None otherwise.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

VGG16_FILE = "vgg16-397923af.pth"
# ImageNet statistics the VGG weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


# An error of 0.05 (13 levels) pulls as hard under the scaled squared error as under L1.
SQUARED_SCALE = 10.0


def scaled_squared(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return SQUARED_SCALE * (pred - target).square().mean()


PHOTOMETRIC = {"l1": l1, "l2": scaled_squared}


def rgb_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_RGB."""
    return l1(pred, target)


def silhouette_loss(mask: torch.Tensor, mask_gt: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """L_sil = 1 - soft IoU of two masks in [0, 1] of the same shape."""
    inter = (mask * mask_gt).sum()
    union = (mask + mask_gt - mask * mask_gt).sum()
    return 1 - inter / (union + eps)


def deformation_loss(landmarks: torch.Tensor, landmarks_gt: torch.Tensor) -> torch.Tensor:
    """L_def: mean absolute difference of deformed and tracked 3D landmarks (68, 3)."""
    return l1(landmarks, landmarks_gt)


def offset_loss(offsets: torch.Tensor) -> torch.Tensor:
    """L_offset: mean squared length of the (N, 3) deformation offsets."""
    return (offsets * offsets).sum(-1).mean()


def landmark_sdf_loss(sdf_at_landmarks: torch.Tensor) -> torch.Tensor:
    """L_lmk: mean squared SDF at the neutral landmarks P0."""
    return (sdf_at_landmarks * sdf_at_landmarks).mean()


def laplacian_loss(vertices: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """L_lap: mean squared uniform-Laplacian vector of a mesh given its (E, 2) unique edges."""
    n = vertices.shape[0]
    i, j = edges[:, 0], edges[:, 1]
    neighbour_sum = torch.zeros_like(vertices).index_add(0, i, vertices[j]).index_add(0, j, vertices[i])
    degree = torch.zeros(n, dtype=vertices.dtype, device=vertices.device)
    degree = degree.index_add(0, i, torch.ones_like(i, dtype=vertices.dtype))
    degree = degree.index_add(0, j, torch.ones_like(j, dtype=vertices.dtype))
    used = degree > 0
    lap = vertices[used] - neighbour_sum[used] / degree[used, None]
    return (lap * lap).sum(-1).mean()


def vgg_weights_path() -> Path:
    home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    return home / "hub" / "checkpoints" / VGG16_FILE


class VGGFeatures(nn.Module):
    """VGG16's convolutional trunk up to relu4_3, built without torchvision (same layer indices,
    so torchvision's `features.N.weight` keys load directly)."""

    CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
    TAPS = (3, 8, 15, 22)  # relu1_2, relu2_2, relu3_3, relu4_3

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in self.CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> the four tapped feature maps."""
        y = (x - self.mean) / self.std
        taps = []
        for i, layer in enumerate(self.features):
            y = layer(y)
            if i in self.TAPS:
                taps.append(y)
        return taps


def load_vgg16_features(path: str | os.PathLike | None = None) -> VGGFeatures | None:
    """The frozen VGG16 trunk from torchvision's weight file, or None (with one warning) if absent."""
    file = Path(path) if path is not None else vgg_weights_path()
    if not file.is_file():
        warnings.warn(f"VGG16 weights not found at {file}; training without the VGG loss term", stacklevel=2)
        return None
    state = torch.load(file, map_location="cpu", weights_only=True)
    model = VGGFeatures()
    wanted = {k: v for k, v in state.items() if k.startswith("features.") and
              int(k.split(".")[1]) < len(model.features)}
    missing, _ = model.load_state_dict(wanted, strict=False)
    if [k for k in missing if k not in ("mean", "std")]:
        raise ValueError(f"{file}: not torchvision's VGG16 weights (missing {missing[:3]})")
    model.eval().requires_grad_(False)
    return model


def vgg_loss(vgg: VGGFeatures, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 between VGG feature maps of (B, 3, H, W) images."""
    return sum(l1(a, b) for a, b in zip(vgg(pred), vgg(target)))


def gaussian_stage_loss(hr: torch.Tensor, lr: torch.Tensor, gt_hr: torch.Tensor, gt_lr: torch.Tensor,
                        lambda_vgg: float, lambda_lr: float, vgg: VGGFeatures | None, photometric: str = "l1"
                        ) -> tuple[torch.Tensor, dict[str, float]]:
    """Section 2.2's loss on (B, 3, H, W) images; returns the total and its terms (floats).
    `photometric` "l2" puts the scaled squared error in place of both L1 terms."""
    distance = PHOTOMETRIC[photometric]
    image_hr, image_lr = distance(hr, gt_hr), distance(lr, gt_lr)
    terms = {f"{photometric}_hr": image_hr, f"{photometric}_lr": image_lr}
    total = image_hr + lambda_lr * image_lr
    if vgg is not None and lambda_vgg > 0:
        terms["vgg"] = vgg_loss(vgg, hr, gt_hr)
        total = total + lambda_vgg * terms["vgg"]
    return total, {k: float(v.detach()) for k, v in terms.items()}
