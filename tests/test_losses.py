import warnings

import pytest
import torch

from avatar import losses as L
from avatar.dmtet import mesh_edges


def test_rgb_loss_known_value():
    a = torch.zeros(4, 5, 3)
    b = torch.full((4, 5, 3), 0.25)
    b[0, 0, 0] = 1.25  # one entry off by 1.25 instead of 0.25
    assert float(L.rgb_loss(a, b)) == pytest.approx((59 * 0.25 + 1.25) / 60)


def test_silhouette_loss_is_one_minus_iou():
    m = torch.zeros(10, 10)
    g = torch.zeros(10, 10)
    m[:, :6] = 1  # 60 px
    g[:, 4:] = 1  # 60 px, overlap 20, union 100
    assert float(L.silhouette_loss(m, g)) == pytest.approx(1 - 20 / 100, abs=1e-6)
    assert float(L.silhouette_loss(g, g)) == pytest.approx(0.0, abs=1e-6)
    soft = torch.full((10, 10), 0.5)
    ones = torch.ones(10, 10)  # soft IoU: Σ0.5 / Σ(1.5 - 0.5) = 0.5
    assert float(L.silhouette_loss(soft, ones)) == pytest.approx(0.5, abs=1e-6)


def test_deformation_and_offset_losses():
    p = torch.zeros(68, 3)
    q = torch.zeros(68, 3)
    q[:, 1] = 0.3
    assert float(L.deformation_loss(p, q)) == pytest.approx(0.1)
    offsets = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    assert float(L.offset_loss(offsets)) == pytest.approx(12.5)


def test_landmark_sdf_loss():
    assert float(L.landmark_sdf_loss(torch.tensor([0.1, -0.2, 0.0, 0.3]))) == pytest.approx(0.14 / 4)


def test_laplacian_loss_known_on_an_octahedron_and_a_bump():
    # A regular octahedron centred at the origin: each vertex's 4 neighbours average to the
    # origin, so its uniform Laplacian is the vertex itself and |L v|² = 1 per vertex.
    v = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    f = torch.tensor([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    edges, _ = mesh_edges(f)
    assert float(L.laplacian_loss(v, edges)) == pytest.approx(1.0)
    # Pull vertex 4 out to (0,0,3): its Laplacian becomes (0,0,3); vertices 0..3 each see the
    # neighbour mean shift by (0,0,0.5): |L|² = 1 + 0.25; vertex 5 unchanged (1).
    v2 = v.clone()
    v2[4, 2] = 3.0
    expected = (9.0 + 4 * 1.25 + 1.0) / 6
    assert float(L.laplacian_loss(v2, edges)) == pytest.approx(expected)


def test_gaussian_stage_loss_without_vgg():
    hr = torch.zeros(1, 3, 8, 8)
    gt_hr = torch.full((1, 3, 8, 8), 0.5)
    lr = torch.zeros(1, 3, 2, 2)
    gt_lr = torch.full((1, 3, 2, 2), 0.2)
    total, terms = L.gaussian_stage_loss(hr, lr, gt_hr, gt_lr, lambda_vgg=0.1, lambda_lr=0.5, vgg=None)
    assert float(total) == pytest.approx(0.5 + 0.5 * 0.2)
    assert "vgg" not in terms


def test_gaussian_stage_loss_squared():
    # Random images against numpy's mean squared error, with the scale the docstring states.
    g = torch.Generator().manual_seed(3)
    hr, gt_hr = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    lr, gt_lr = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 3, 4, 4, generator=g)
    total, terms = L.gaussian_stage_loss(hr, lr, gt_hr, gt_lr, lambda_vgg=0.1, lambda_lr=0.5, vgg=None,
                                         photometric="l2")
    mse = lambda a, b: float(((a.double().numpy() - b.double().numpy()) ** 2).mean())  # noqa: E731
    assert terms["l2_hr"] == pytest.approx(10 * mse(hr, gt_hr), rel=1e-5)
    assert float(total) == pytest.approx(10 * (mse(hr, gt_hr) + 0.5 * mse(lr, gt_lr)), rel=1e-5)
    # An error of 0.05 has the same gradient under both distances (the scale's reason).
    x = torch.full((4,), 0.05, requires_grad=True)
    L.scaled_squared(x, torch.zeros(4)).backward()
    y = torch.full((4,), 0.05, requires_grad=True)
    L.l1(y, torch.zeros(4)).backward()
    assert torch.allclose(x.grad, y.grad)


def test_vgg_trunk_and_loss_with_random_weights(tmp_path):
    torch.manual_seed(0)
    net = L.VGGFeatures()
    # Save torchvision-style keys and reload through the loader (the real file has the same keys).
    state = {f"features.{k}": v for k, v in net.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)
    path = tmp_path / L.VGG16_FILE
    torch.save(state, path)
    loaded = L.load_vgg16_features(path)
    x = torch.rand(1, 3, 32, 32)
    taps = loaded(x)
    assert [t.shape[1] for t in taps] == [64, 128, 256, 512]
    assert [t.shape[-1] for t in taps] == [32, 16, 8, 4]
    assert float(L.vgg_loss(loaded, x, x)) == 0.0
    assert float(L.vgg_loss(loaded, x, 1 - x)) > 0
    assert not any(p.requires_grad for p in loaded.parameters())


def test_missing_vgg_weights_warns_and_returns_none(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert L.load_vgg16_features(tmp_path / "absent.pth") is None
    assert len(caught) == 1 and "without the VGG loss" in str(caught[0].message)
