"""The CPU rasterizer against a slow dense reference, finite differences and gsplat.

The reference below is written from gsplat 1.5.3's rules (see avatar/raster/projection.py and
tile_raster.cpp) without sharing any code with the backend: scipy for the quaternion,
numpy float64 matrices for the EWA projection, and a plain loop over pixels and depth-sorted
Gaussians with the "every pixel of every touched 16x16 tile" rule.
"""
import math
import sys
import types

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from avatar.camera import Camera
from avatar.raster import RenderResult, rasterize
from tests.conftest import requires_cuda

TILE = 16


def reference_render(means, quats, scales, opacities, features, viewmat, K, width, height, background):
    """Dense float64 reference. Returns (image, alpha, depth, stats)."""
    means, quats, scales, opacities, features, viewmat, K = (
        np.asarray(t, dtype=np.float64) for t in (means, quats, scales, opacities, features, viewmat, K))
    rot_w2c, trans_w2c = viewmat[:3, :3], viewmat[:3, 3]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lim_x = (cx / fx + 0.3 * 0.5 * width / fx, (width - cx) / fx + 0.3 * 0.5 * width / fx)
    lim_y = (cy / fy + 0.3 * 0.5 * height / fy, (height - cy) / fy + 0.3 * 0.5 * height / fy)
    tiles_x, tiles_y = math.ceil(width / TILE), math.ceil(height / TILE)
    splats = []
    for i in range(len(means)):
        x, y, z = rot_w2c @ means[i] + trans_w2c
        if z < 0.01 or z > 1e10:
            continue
        r = Rotation.from_quat(quats[i, [1, 2, 3, 0]]).as_matrix()  # scipy is x-y-z-w and normalises
        cov = rot_w2c @ r @ np.diag(scales[i] ** 2) @ r.T @ rot_w2c.T
        # The Jacobian is taken at x/z, y/z clamped to 1.3x the image's half-extents.
        u = np.clip(x / z, -lim_x[0], lim_x[1])
        v = np.clip(y / z, -lim_y[0], lim_y[1])
        jac = np.array([[fx / z, 0, -fx * u / z], [0, fy / z, -fy * v / z]])
        cov2d = jac @ cov @ jac.T + 0.3 * np.eye(2)
        mean2d = np.array([fx * x / z + cx, fy * y / z + cy])
        if np.linalg.det(cov2d) <= 0 or opacities[i] < 1 / 255:
            continue
        extend = min(3.33, math.sqrt(2 * math.log(255 * opacities[i])))
        radius = np.ceil(extend * np.sqrt(np.diag(cov2d)))
        if (radius <= 0).any() or (mean2d + radius <= 0).any() or mean2d[0] - radius[0] >= width \
                or mean2d[1] - radius[1] >= height:
            continue
        lo = np.clip(np.floor((mean2d - radius) / TILE), 0, [tiles_x, tiles_y]).astype(int)
        hi = np.clip(np.ceil((mean2d + radius) / TILE), 0, [tiles_x, tiles_y]).astype(int)
        splats.append((z, i, mean2d, np.linalg.inv(cov2d), opacities[i], features[i], lo, hi))
    splats.sort(key=lambda s: (s[0], s[1]))

    channels = features.shape[1]
    image = np.zeros((height, width, channels))
    alpha = np.zeros((height, width, 1))
    depth = np.zeros((height, width, 1))
    stats = {"terminated": 0, "clamped": 0}
    for py in range(height):
        for px in range(width):
            tx, ty = px // TILE, py // TILE
            T, color, z_sum = 1.0, np.zeros(channels), 0.0
            for z, _, mean2d, conic, opacity, feature, lo, hi in splats:
                if not (lo[0] <= tx < hi[0] and lo[1] <= ty < hi[1]):
                    continue
                d = mean2d - (px + 0.5, py + 0.5)
                sigma = 0.5 * d @ conic @ d
                a = min(0.999, opacity * math.exp(-sigma))
                if sigma < 0 or a < 1 / 255:
                    continue
                stats["clamped"] += a == 0.999
                if T * (1 - a) <= 1e-4:
                    stats["terminated"] += 1
                    break
                color += a * T * feature
                z_sum += a * T * z
                T *= 1 - a
            image[py, px] = color + (T * background if background is not None else 0)
            alpha[py, px] = 1 - T
            depth[py, px] = z_sum / max(1 - T, 1e-10)
    return image, alpha, depth, stats


def random_scene(seed, n, channels, width, height, dtype=torch.float64, background=True):
    """Gaussians in front of, beside and behind a rotated, off-centre camera."""
    rng = np.random.default_rng(seed)
    fx, fy = 0.9 * width, 0.95 * width
    K = np.array([[fx, 0, 0.45 * width], [0, fy, 0.55 * height], [0, 0, 1]])
    z = rng.uniform(-0.5, 4.0, n)  # some behind the camera or the near plane
    x = z * rng.uniform(-0.8, 0.8, n)  # some beyond the image edges
    y = z * rng.uniform(-0.8, 0.8, n)
    cam_points = np.stack([x, y, z], 1)
    # A cluster of big opaque Gaussians in front of the centre makes pixels terminate early.
    cam_points[:12] = np.array([0.0, 0.0, 1.0]) + rng.normal(size=(12, 3)) * [0.05, 0.05, 0.2]
    # Footprints from a pixel to a few tiles wide.
    scales = np.exp(rng.uniform(np.log(0.005), np.log(0.06), (n, 3))) * np.abs(z)[:, None].clip(0.2)
    scales[:12] = rng.uniform(0.05, 0.1, (12, 3))
    opacities = rng.uniform(0.05, 1.0, n)
    opacities[:12] = rng.uniform(0.9, 1.0, 12)
    # Opacity above 1 (outside the contract, but gsplat renders it) drives alpha into the 0.999
    # clamp, and makes the visible ellipse larger than the footprint box, so only the "every
    # pixel of each touched tile" rule gets these right.
    z[12:16] = rng.uniform(1.5, 3.0, 4)
    cam_points[12:16] = np.stack([z[12:16] * rng.uniform(-0.3, 0.3, 4), z[12:16] * rng.uniform(-0.3, 0.3, 4),
                                  z[12:16]], 1)
    scales[12:16] = rng.uniform(0.08, 0.15, (4, 3))
    opacities[12:16] = 1.6
    opacities[16:18] = 0.002  # below 1/255: culled
    # Random rigid camera: world = cam_to_world(camera space).
    rot = Rotation.from_rotvec(rng.normal(size=3) * 0.4).as_matrix()
    trans = rng.normal(size=3)
    viewmat = np.eye(4)
    viewmat[:3, :3] = rot.T
    viewmat[:3, 3] = -rot.T @ trans
    scene = {
        "means": cam_points @ rot.T + trans,
        "quats": rng.normal(size=(n, 4)) * rng.uniform(0.5, 2.0, (n, 1)),  # any norm
        "scales": scales,
        "opacities": opacities,
        "features": rng.uniform(0, 1, (n, channels)),
        "viewmat": viewmat,
        "K": K,
        "width": width,
        "height": height,
        "background": rng.uniform(0, 1, channels) if background else None,
    }
    return {k: torch.tensor(v, dtype=dtype) if isinstance(v, np.ndarray) else v for k, v in scene.items()}


def render(scene, **kw) -> RenderResult:
    return rasterize(**scene, **kw)


CASES = [  # seed, channels, width, height, background
    (0, 3, 45, 38, True),
    (1, 32, 40, 50, False),
    (2, 32, 33, 20, True),
    (3, 3, 64, 16, False),
]


@pytest.mark.parametrize("seed,channels,width,height,background", CASES)
def test_cpu_forward_matches_dense_reference(seed, channels, width, height, background):
    scene = random_scene(seed, 70, channels, width, height, background=background)
    out = render(scene)
    image, alpha, depth, stats = reference_render(**{k: (v.numpy() if isinstance(v, torch.Tensor) else v)
                                                     for k, v in scene.items()})
    assert out.image.shape == (height, width, channels) and out.alpha.shape == out.depth.shape == (height, width, 1)
    assert alpha.max() > 0.99 and (alpha == 0).any()  # the scene covers some pixels fully, others not at all
    np.testing.assert_allclose(out.image.numpy(), image, rtol=0, atol=1e-4)
    np.testing.assert_allclose(out.alpha.numpy(), alpha, rtol=0, atol=1e-4)
    np.testing.assert_allclose(out.depth.numpy(), depth, rtol=0, atol=1e-4)
    assert stats["terminated"] > 0 and stats["clamped"] > 0  # early termination and the alpha clamp happen


def test_float32_forward_matches_dense_reference():
    scene = random_scene(4, 70, 32, 48, 40, dtype=torch.float32)
    out = render(scene)
    image, alpha, depth, _ = reference_render(**{k: (v.double().numpy() if isinstance(v, torch.Tensor) else v)
                                                 for k, v in scene.items()})
    np.testing.assert_allclose(out.image.numpy(), image, rtol=0, atol=1e-4)
    np.testing.assert_allclose(out.alpha.numpy(), alpha, rtol=0, atol=1e-4)
    # Expected depth divides by alpha, so float32 rounding grows where almost nothing is drawn.
    seen = alpha[..., 0] > 1e-2
    np.testing.assert_allclose(out.depth.numpy()[seen], depth[seen], rtol=0, atol=1e-4)


def test_nothing_visible_gives_background_and_zero_gradients():
    scene = random_scene(6, 30, 3, 20, 20)
    scene["means"] = scene["means"].clone()
    scene["viewmat"] = scene["viewmat"].clone()
    scene["viewmat"][:3, 3] -= 100 * scene["viewmat"][2, :3]  # move everything far behind the camera
    means = scene["means"].requires_grad_()
    out = render(scene)
    torch.testing.assert_close(out.image, scene["background"].expand(20, 20, 3))
    assert (out.alpha == 0).all() and (out.depth == 0).all()
    (out.image.sum() + out.alpha.sum()).backward()
    assert torch.equal(means.grad, torch.zeros_like(means))


def test_no_gaussians_gives_background():
    cam = Camera.looking_at_origin(20, 12)
    means = torch.zeros(0, 3, requires_grad=True)
    out = rasterize(means, torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, 4), cam.viewmat,
                    cam.K, np.int64(20), 12, background=torch.full((4,), 0.5))
    assert out.image.shape == (12, 20, 4) and (out.image == 0.5).all() and (out.alpha == 0).all()
    out.image.sum().backward()
    assert means.grad.shape == (0, 3)


def test_result_does_not_depend_on_thread_count():
    scene = random_scene(7, 70, 32, 64, 48, dtype=torch.float32)
    runs = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            leaves = {k: scene[k].clone().requires_grad_() for k in ("means", "scales", "features")}
            out = render({**scene, **leaves})
            (out.image.sum() + out.depth.sum()).backward()
            runs.append([out.image, out.depth] + [leaves[k].grad for k in leaves])
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*runs):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- gradients


def gradient_scene():
    """Small float64 scene away from the discontinuities: opacities below the 0.999 clamp, few
    enough layers that no pixel reaches transmittance 1e-4, everything well inside the image."""
    rng = np.random.default_rng(11)
    n, width, height = 7, 40, 34
    K = np.array([[60.0, 0, 19.0], [0, 62.0, 18.0], [0, 0, 1]])
    cam = np.stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-0.4, 0.4, n), rng.uniform(2.0, 3.5, n)], 1)
    cam[:, :2] *= cam[:, 2:] / 2.5
    rot = Rotation.from_rotvec([0.1, -0.2, 0.05]).as_matrix()
    viewmat = np.eye(4)
    viewmat[:3, :3] = rot.T
    viewmat[:3, 3] = -rot.T @ np.array([0.1, -0.1, 0.2])
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    return {
        "means": t(cam @ rot.T + [0.1, -0.1, 0.2]),
        "quats": t(rng.normal(size=(n, 4))),
        "scales": t(rng.uniform(0.03, 0.12, (n, 3))),
        "opacities": t(rng.uniform(0.3, 0.8, n)),
        "features": t(rng.uniform(0, 1, (n, 3))),
        "background": t(rng.uniform(0, 1, 3)),
        "viewmat": t(viewmat), "K": t(K), "width": width, "height": height,
    }


def test_backward_matches_finite_differences():
    scene = gradient_scene()
    rng = np.random.default_rng(12)
    h, w = scene["height"], scene["width"]
    weights = [torch.tensor(rng.normal(size=s)) for s in ((h, w, 3), (h, w, 1), (h, w, 1))]

    def loss(sc):
        out = render(sc)
        return (out.image * weights[0]).sum() + (out.alpha * weights[1]).sum() + (out.depth * weights[2]).sum()

    names = ["means", "quats", "scales", "opacities", "features", "background"]
    leaves = {k: scene[k].clone().requires_grad_() for k in names}
    loss({**scene, **leaves}).backward()
    assert render(scene).alpha.max() > 0.5
    eps = 1e-6
    for name in names:
        analytic = leaves[name].grad.flatten()
        numeric = torch.zeros_like(analytic)
        for i in range(analytic.numel()):
            values = []
            for sign in (1, -1):
                p = scene[name].clone()
                p.view(-1)[i] += sign * eps
                values.append(float(loss({**scene, name: p})))
            numeric[i] = (values[0] - values[1]) / (2 * eps)
        assert numeric.abs().max() > 1e-3, name  # the loss really depends on this parameter
        rel = (analytic - numeric).norm() / numeric.norm()
        assert rel < 1e-2, f"{name}: relative error {rel:.2e}"
        torch.testing.assert_close(analytic, numeric, rtol=1e-2, atol=1e-2 * float(numeric.abs().max()))


# ---------------------------------------------------------------- gsplat


@requires_cuda("the gsplat comparison needs CUDA")
def test_cpu_matches_gsplat_on_a_head_like_scene():
    from avatar.raster.gsplat_backend import gsplat_ready
    from runtime.benchmarks import head_like_scene

    if reason := gsplat_ready():
        pytest.skip(f"gsplat comparison skipped: {reason}")

    scene = head_like_scene(n=20000, channels=32, resolution=128, seed=0)
    names = ["means", "quats", "scales", "opacities", "features"]
    weights = torch.rand(128, 128, 32, generator=torch.Generator().manual_seed(1))
    results, grads = {}, {}
    for backend, device in (("cpu", "cpu"), ("gsplat", "cuda")):
        leaves = {k: scene[k].to(device).requires_grad_() for k in names}
        rest = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in scene.items() if k not in names}
        out = rasterize(**leaves, **rest, backend=backend)
        # Depth stays out of the loss: its 1/alpha makes silhouette pixels dominate the gradient.
        ((out.image * weights.to(device)).sum() + out.alpha.sum()).backward()
        results[backend] = [t.detach().cpu() for t in (out.image, out.alpha, out.depth)]
        grads[backend] = {k: leaves[k].grad.cpu() for k in names}
    for cpu, gpu in zip(results["cpu"][:2], results["gsplat"][:2]):
        assert (cpu - gpu).abs().max() < 1e-3
    seen = results["cpu"][1][..., 0] > 1e-2  # expected depth divides by alpha
    assert (results["cpu"][2][seen] - results["gsplat"][2][seen]).abs().max() < 1e-3
    for k in names:
        rel = (grads["cpu"][k] - grads["gsplat"][k]).norm() / grads["gsplat"][k].norm()
        assert rel < 1e-2, f"{k}: relative gradient difference {rel:.2e}"


def test_gsplat_without_its_cuda_kernels_says_so_in_one_line(monkeypatch):
    """gsplat's wheel imports without a CUDA toolkit but leaves its kernels unset (None)."""
    from avatar.raster.gsplat_backend import _gsplat

    backend = types.ModuleType("gsplat.cuda._backend")
    backend._C = None
    cuda = types.ModuleType("gsplat.cuda")
    cuda._backend = backend
    package = types.ModuleType("gsplat")
    package.cuda = cuda
    for name, module in (("gsplat", package), ("gsplat.cuda", cuda), ("gsplat.cuda._backend", backend)):
        monkeypatch.setitem(sys.modules, name, module)
    with pytest.raises(ValueError, match="no CUDA kernels") as info:
        _gsplat()
    assert "\n" not in str(info.value)
    monkeypatch.setitem(sys.modules, "gsplat", None)  # makes `import gsplat` fail
    with pytest.raises(ValueError, match=r"needs the gsplat package \(pip install"):
        _gsplat()


# ---------------------------------------------------------------- bad input


def _bad(scene, **changes):
    return {**scene, **changes}


BAD = {
    "means not (N, 3)": lambda s: _bad(s, means=s["means"][:, :2]),
    "quats wrong N": lambda s: _bad(s, quats=s["quats"][:-1]),
    "scales not (N, 3)": lambda s: _bad(s, scales=s["scales"][:, :1]),
    "opacities (N, 1)": lambda s: _bad(s, opacities=s["opacities"][:, None]),
    "features 1-D": lambda s: _bad(s, features=s["features"][:, 0]),
    "viewmat 3x4": lambda s: _bad(s, viewmat=s["viewmat"][:3]),
    "K 4x4": lambda s: _bad(s, K=torch.eye(4)),
    "background wrong C": lambda s: _bad(s, background=torch.ones(5)),
    "width zero": lambda s: _bad(s, width=0),
    "height float": lambda s: _bad(s, height=20.0),
    "means numpy": lambda s: _bad(s, means=s["means"].numpy()),
    "integer means": lambda s: _bad(s, means=s["means"].long()),
    "zero focal length": lambda s: _bad(s, K=torch.diag(torch.tensor([0.0, 10.0, 1.0]))),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_one_line_value_error(case):
    scene = BAD[case](random_scene(8, 30, 3, 20, 20))
    with pytest.raises(ValueError) as info:
        render(scene)
    assert "\n" not in str(info.value) and str(info.value)


def test_unknown_backend_raises():
    with pytest.raises(ValueError, match="unknown rasterizer backend 'vulkan'"):
        render(random_scene(8, 30, 3, 20, 20), backend="vulkan")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error; this machine has CUDA")
def test_gsplat_without_cuda_raises():
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        render(random_scene(8, 30, 3, 20, 20), backend="gsplat")


# ---------------------------------------------------------------- benchmark command


def test_bench_raster_writes_its_table_and_json(tmp_path, capsys):
    import json

    from runtime.cli import main

    out = tmp_path / "bench.json"
    code = main(["bench-raster", "--gaussians", "300", "--channels", "4", "--resolutions", "32,48",
                 "--repeats", "2", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert [r["resolution"] for r in report["results"] if r["backend"] == "cpu"] == [32, 48]
    for r in report["results"]:
        for key in ("forward_ms", "forward_backward_ms"):
            assert 0 < r[key]["median"] <= r[key]["p90"]
    assert "cpu" in capsys.readouterr().out
    assert main(["bench-raster", "--resolutions", "8"]) == 2
