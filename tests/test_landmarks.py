"""Landmark backends, the iBUG-68 table and the MediaPipe -> ICT correspondence."""
from __future__ import annotations

import numpy as np
import pytest

from tracking.correspondence import (CANONICAL_MESH_FILE, DEFAULT_PATH, MAX_DISTANCE, align_to_ict,
                                     build_correspondence, canonical_mediapipe_mesh,
                                     closest_points_on_triangles, load_correspondence, umeyama,
                                     CorrespondenceError)
from tracking.face_model import load_face_model_data
from tracking.landmarks.base import BackendUnavailable
from tracking.landmarks.ibug68 import MEDIAPIPE_TO_IBUG68
from tracking.landmarks.registry import create_backend


@pytest.fixture(scope="module")
def face_data(shared_data):
    return load_face_model_data(shared_data / "ict_face_model.npz")


@pytest.fixture(scope="module")
def mediapipe_mesh(shared_data):
    return canonical_mediapipe_mesh(shared_data / CANONICAL_MESH_FILE)


def test_canonical_mesh_is_in_landmark_order(mediapipe_mesh):
    # FaceMesh's left/right landmark pairs mirror each other in x on the canonical mesh; a mesh
    # read in any other vertex order would not show this.
    ids = np.asarray(MEDIAPIPE_TO_IBUG68)
    pairs = [(36, 45), (39, 42), (48, 54), (17, 26), (31, 35), (0, 16)]
    for a, b in pairs:
        pa, pb = mediapipe_mesh[ids[a]], mediapipe_mesh[ids[b]]
        np.testing.assert_allclose(pa * [-1, 1, 1], pb, atol=1e-5)
    assert np.all(np.abs(mediapipe_mesh[ids[27:31], 0]) < 1e-6)  # the nose ridge is on the midline


def test_ibug68_table_lands_on_ict_landmarks(face_data, mediapipe_mesh):
    # An independent check of the hand-made table: after the least-squares similarity, each
    # MediaPipe point sits on the ICT landmark of the same number (inner points within 1 cm; the
    # jaw outline, defined differently by the two, within 3 cm).
    ids = np.asarray(MEDIAPIPE_TO_IBUG68)
    target = face_data.neutral[face_data.landmarks68]
    s, r, t = umeyama(mediapipe_mesh[ids[17:]], target[17:])
    moved = s * mediapipe_mesh[ids] @ r.T + t
    err_mm = np.linalg.norm(moved - target, axis=1) / 0.04 * 10
    assert err_mm[17:].max() < 10, err_mm[17:]
    assert err_mm[:17].max() < 30, err_mm[:17]


def test_umeyama_recovers_a_random_similarity():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(40, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    target = 1.7 * source @ q.T + [0.3, -2, 5]
    s, r, t = umeyama(source, target)
    assert s == pytest.approx(1.7, rel=1e-9)
    np.testing.assert_allclose(r, q, atol=1e-9)
    np.testing.assert_allclose(t, [0.3, -2, 5], atol=1e-9)


def test_closest_point_matches_dense_sampling():
    # Reference: the nearest of a fine barycentric grid over each triangle. Its distance can only
    # exceed the true minimum by at most the grid spacing times the longest edge.
    rng = np.random.default_rng(1)
    points = rng.normal(size=(30, 3))
    a, b, c = (rng.normal(size=(6, 3)) for _ in range(3))
    bary, dist2 = closest_points_on_triangles(points, a, b, c)
    assert np.all(bary >= -1e-9) and np.allclose(bary.sum(-1), 1)
    n = 150
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = i + j <= n
    u, v = i[keep] / n, j[keep] / n
    w = 1 - u - v
    samples = u[:, None, None] * a + v[:, None, None] * b + w[:, None, None] * c  # (S, T, 3)
    reference = np.sqrt(((samples[:, None] - points[None, :, None]) ** 2).sum(-1)).min(0)  # (P, T)
    edge = max(np.linalg.norm(a - b, axis=1).max(), np.linalg.norm(a - c, axis=1).max())
    dist = np.sqrt(dist2)
    assert np.all(dist <= reference + 1e-9)
    assert np.all(reference - dist <= edge / n)


def test_shipped_correspondence_is_what_the_builder_makes(face_data, mediapipe_mesh):
    # Compared as geometry, not ids: a point nearest to an edge or corner shared by two triangles
    # is a tie that the last bits of float rounding break, differently on different CPUs (Intel vs
    # AMD, AVX2 or not); either triangle gives the same surface point. Kept points must agree too,
    # except those whose distance to the surface sits on the MAX_DISTANCE cut within rounding.
    shipped = load_correspondence()
    built = build_correspondence(face_data, mediapipe_mesh)
    assert shipped.face_model_checksum == face_data.checksum
    warped = align_to_ict(mediapipe_mesh, face_data)
    differ = np.setxor1d(shipped.mediapipe_ids, built.mediapipe_ids)
    if differ.size:
        surface = np.concatenate([shipped.points_on(face_data.neutral), built.points_on(face_data.neutral)])
        ids = np.concatenate([shipped.mediapipe_ids, built.mediapipe_ids])
        for i in differ:
            d = np.linalg.norm(surface[ids == i][0] - warped[i])
            assert abs(d - MAX_DISTANCE) < 1e-6, (i, d)
    both, a, b = np.intersect1d(shipped.mediapipe_ids, built.mediapipe_ids, return_indices=True)
    assert both.size >= shipped.mediapipe_ids.size - 2
    on_shipped = np.einsum("kj,kjd->kd", shipped.barycentric[a], face_data.neutral[shipped.vertex_ids[a]])
    on_built = np.einsum("kj,kjd->kd", built.barycentric[b], face_data.neutral[built.vertex_ids[b]])
    # 1e-6 canonical units is 0.25 um; the head is ~1 unit long.
    np.testing.assert_allclose(on_shipped, on_built, atol=1e-6)
    assert np.all(shipped.barycentric >= -1e-9) and np.allclose(shipped.barycentric.sum(1), 1)


def test_correspondence_points_lie_where_mediapipe_puts_them(face_data, mediapipe_mesh):
    c = load_correspondence()
    assert 300 <= c.mediapipe_ids.size <= 400
    assert not set(c.mediapipe_ids) & set(MEDIAPIPE_TO_IBUG68)
    assert np.all(c.barycentric >= -1e-9) and np.allclose(c.barycentric.sum(1), 1)
    on_ict = c.points_on(face_data.neutral)
    warped = align_to_ict(mediapipe_mesh, face_data)[c.mediapipe_ids]
    assert np.linalg.norm(on_ict - warped, axis=1).max() <= MAX_DISTANCE + 1e-9
    face = face_data.region("face")
    assert c.vertex_ids.min() >= face.start and c.vertex_ids.max() < face.stop


def test_damaged_correspondence_file_is_one_line(tmp_path):
    bad = tmp_path / "c.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CorrespondenceError, match="unreadable") as e:
        load_correspondence(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(CorrespondenceError, match="build-correspondence"):
        load_correspondence(tmp_path / "missing.npz")


def test_mediapipe_backend_on_a_real_photo(shared_data):
    import cv2

    rgb = cv2.cvtColor(cv2.imread(str(shared_data / "images" / "s0.jpg")), cv2.COLOR_BGR2RGB)
    backend = create_backend("mediapipe", static_image_mode=True)
    try:
        found = backend.detect(rgb)
        assert found is not None and found.points.shape == (478, 2)
        h, w = rgb.shape[:2]
        assert found.image_size == (w, h)
        assert np.all((found.points >= 0) & (found.points <= [w, h]))
        # Landmark semantics: the subject's right eye (iBUG 36-41) is on the image's left.
        ids = np.asarray(MEDIAPIPE_TO_IBUG68)
        assert found.points[ids[36:42], 0].mean() < found.points[ids[42:48], 0].mean()
        assert backend.detect(np.full((240, 320, 3), 128, np.uint8)) is None
        with pytest.raises(ValueError, match="RGB uint8"):
            backend.detect(rgb.astype(np.float32))
    finally:
        backend.close()


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(BackendUnavailable, match="unknown landmark backend 'nope'"):
        create_backend("nope")


def test_default_correspondence_path_is_package_data():
    assert DEFAULT_PATH.is_file() and DEFAULT_PATH.parent.name == "data"
