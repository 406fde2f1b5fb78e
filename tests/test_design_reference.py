"""The profiles that claim the reference configuration hold DESIGN.md's numbers, read from
DESIGN.md's own text ("The avatar" section) rather than from a copy typed into this test."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from avatar.head_model import INITIAL_OPACITY
from avatar.profiles import get_profile
from tracking.params import N_EXPRESSION

DESIGN = Path(__file__).resolve().parents[2] / "shared" / "DESIGN.md"
NUMBER = r"(\d+(?:\.\d+)?(?:e-?\d+)?)"
# The profiles that keep the reference's scales and blend radii (`cpu` widens the radii on purpose).
REFERENCE_SCALE_PROFILES = ("full", "small", "tiny")


@pytest.fixture(scope="module")
def design() -> str:
    if not DESIGN.is_file():
        pytest.skip(f"DESIGN.md not found at {DESIGN} (clone with ../shared beside it)")
    return " ".join(DESIGN.read_text().split())  # one line: the sentences wrap anywhere


def find(design: str, pattern: str) -> tuple[float, ...]:
    match = re.search(pattern, design)
    assert match, f"DESIGN.md no longer says /{pattern}/"
    return tuple(float(g) for g in match.groups())


def widths(spec: str) -> list[int]:
    """DESIGN.md's layer list, e.g. '27+θ, 256×5, 3' -> [80, 256, 256, 256, 256, 256, 3]."""
    out: list[int] = []
    for item in spec.split(","):
        item = item.strip().replace("θ", str(N_EXPRESSION))
        if "×" in item:
            width, count = item.split("×")
            out += [int(width)] * int(count)
        else:
            out.append(sum(int(term) for term in item.split("+")))
    return out


def test_scales_and_blend_radii(design):
    deform, attributes, t1, t2 = find(design, rf"reference values: deform {NUMBER}, attributes {NUMBER}, "
                                              rf"t1 {NUMBER}, t2 {NUMBER}")
    channels, = find(design, rf"The rendered image has {NUMBER} channels")
    for name in REFERENCE_SCALE_PROFILES:
        cfg = get_profile(name).model
        assert (cfg.deform_scale, cfg.attributes_scale, cfg.blend_near, cfg.blend_far) == (deform, attributes, t1, t2)
        assert cfg.color_channels == channels


def test_full_profile_sizes(design):
    full = get_profile("full").model
    assert (full.feature_dim,) == find(design, rf"F0 \(N,{NUMBER}\)")
    assert (full.num_mouth_points,) == find(design, rf"{NUMBER} extra points in a box around the mouth")
    assert (full.sr_channels,) == find(design, rf"c = {NUMBER}\)")
    assert (full.sr_factor,) == find(design, rf"to RGB at {NUMBER}R")
    assert (INITIAL_OPACITY,) == find(design, rf"initial opacity {NUMBER}")


def test_full_profile_mlp_sizes(design):
    sizes = {f"{kind}_{part}": widths(spec)
             for kind, part, spec in re.findall(r"(exp|pose) (color|attributes|deform) \[([^\]]+)\]", design)}
    assert sizes == get_profile("full").model.mlp_dims()


def test_full_profile_gaussian_stage_rates(design):
    mlp_sr, small, scale, opacity = find(
        design, rf"Gaussian-stage Adam rates: MLPs and SR {NUMBER}, positions, features, rotations and per-frame "
                rf"pose offsets {NUMBER}, scales {NUMBER}, opacity {NUMBER}")
    t = get_profile("full").training
    assert (t.lr_mlp, t.lr_sr) == (mlp_sr, mlp_sr) and t.lr_pose_mlp is None
    assert (t.lr_position, t.lr_feature, t.lr_rotation, t.lr_pose_offset) == (small,) * 4
    assert (t.lr_scale, t.lr_opacity) == (scale, opacity)
