"""The ICT-FaceKit OBJ -> npz converter against the shared, already converted model."""
from __future__ import annotations

import numpy as np
import pytest

from runtime.cli import main
from tracking.convert_ict import (
    ICTConversionError, convert_ict, identity_file, read_obj_vertices, write_face_model)
from tracking.face_model import load_face_model_data
from tracking.params import EXPRESSION_NAMES, N_IDENTITY, expression_index

JAW = expression_index("jawOpen")


@pytest.fixture(scope="module")
def sample(shared_data):
    return shared_data / "ict_sample_obj"


@pytest.fixture(scope="module")
def reference(shared_data):
    with np.load(shared_data / "ict_face_model.npz") as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="module")
def partial(sample):
    return convert_ict(sample, allow_partial=True)


def test_partial_sample_matches_the_shared_model(partial, reference):
    a = partial.arrays
    assert set(a) == set(reference)
    for key in reference:
        assert a[key].dtype.kind == reference[key].dtype.kind and a[key].shape == reference[key].shape, key
        assert a[key].dtype.itemsize == reference[key].dtype.itemsize, key
    for key in ("quads", "triangles", "landmarks68", "region_names", "region_ranges", "source_vertex_index",
                "expression_names"):
        np.testing.assert_array_equal(a[key], reference[key], err_msg=key)
    np.testing.assert_allclose(a["neutral"], reference["neutral"], atol=1e-5)
    np.testing.assert_allclose(a["identity_basis"][0], reference["identity_basis"][0], atol=1e-5)
    np.testing.assert_allclose(a["expression_basis"][JAW], reference["expression_basis"][JAW], atol=1e-5)
    others = np.ones(len(EXPRESSION_NAMES), bool)
    others[JAW] = False
    assert not a["expression_basis"][others].any() and not a["identity_basis"][1:].any()


def test_partial_report_names_what_is_missing(partial):
    assert len(partial.missing) == len(EXPRESSION_NAMES) - 1 + N_IDENTITY - 1
    report = partial.report()
    assert "1 of 53 expression shapes, 1 of 100 identity modes" in report and "PARTIAL" in report
    assert "\n" not in report


def test_written_model_loads(partial, tmp_path):
    out = tmp_path / "m" / "ict_face_model.npz"
    write_face_model(out, partial)
    data = load_face_model_data(out)
    assert data.neutral.shape == (17202, 3) and data.region("face") == slice(0, 9409)
    assert [p.name for p in out.parent.iterdir()] == ["ict_face_model.npz"]  # no temporary left


def test_complete_release_orders_every_mode(sample, tmp_path):
    """A full-size release made of links (every expression -> jawOpen, every identity -> identity000)
    except one identity, so the order of the 153 files is checked."""
    (tmp_path / "FaceXModel").mkdir()
    folder = tmp_path / "FaceXModel"
    for name in ("generic_neutral_mesh.obj", "vertex_indices.json"):
        (folder / name).symlink_to(sample / name)
    for name in EXPRESSION_NAMES:
        (folder / f"{name}.obj").symlink_to(sample / ("jawOpen.obj" if name != "eyeBlink_L" else "identity000.obj"))
    for i in range(N_IDENTITY):
        (folder / identity_file(i)).symlink_to(sample / ("identity000.obj" if i != 7 else "jawOpen.obj"))
    model = convert_ict(tmp_path)  # the repository root: its FaceXModel/ is used
    assert model.missing == []
    e, ident = model.arrays["expression_basis"], model.arrays["identity_basis"]
    np.testing.assert_array_equal(e[expression_index("eyeBlink_L")], ident[0])
    np.testing.assert_array_equal(ident[7], e[JAW])
    assert (e[expression_index("mouthClose")] == e[JAW]).all() and (ident[99] == ident[0]).all()
    assert not np.array_equal(e[JAW], ident[0])


def test_cli_refuses_a_partial_release_unless_asked(sample, tmp_path, capsys):
    out = tmp_path / "ict.npz"
    assert main(["convert-ict", str(sample), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "151 of 153 shape files missing" in err and "--allow-partial" in err and len(err.splitlines()) == 1
    assert not out.exists()
    assert main(["convert-ict", str(sample), "--out", str(out), "--allow-partial"]) == 0
    assert "PARTIAL" in capsys.readouterr().out and out.is_file()


def _release_with(tmp_path, sample, jaw_text: str | None = None, neutral_text: str | None = None):
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "vertex_indices.json").symlink_to(sample / "vertex_indices.json")
    if neutral_text is None:
        (folder / "generic_neutral_mesh.obj").symlink_to(sample / "generic_neutral_mesh.obj")
    else:
        (folder / "generic_neutral_mesh.obj").write_text(neutral_text)
    if jaw_text is not None:
        (folder / "jawOpen.obj").write_text(jaw_text)
    return folder


@pytest.mark.parametrize("case, message", [
    ("missing", "no such folder"),
    ("not_ict", "not an ICT-FaceKit model folder"),
    ("malformed", "malformed OBJ vertex line 'v 1.0 oops 2.0'"),
    ("few_vertices", "jawOpen.obj: 3 vertices, the neutral mesh has 26719"),
    ("small_neutral", "generic_neutral_mesh.obj: 2 vertices, expected 26719"),
])
def test_bad_input_is_one_clear_line(case, message, sample, tmp_path, capsys):
    if case == "missing":
        folder = tmp_path / "nowhere"
    elif case == "not_ict":
        folder = tmp_path
    elif case == "malformed":
        folder = _release_with(tmp_path, sample, jaw_text="# broken\nv 0 0 0\nv 1.0 oops 2.0\n")
    elif case == "few_vertices":
        folder = _release_with(tmp_path, sample, jaw_text="v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    else:
        folder = _release_with(tmp_path, sample, neutral_text="v 0 0 0\nv 1 0 0\n")
    out = tmp_path / "out.npz"
    assert main(["convert-ict", str(folder), "--out", str(out), "--allow-partial"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert err.startswith("splatcam convert-ict: error: ") and message in err
    assert not out.exists()


def test_obj_vertices_are_read_exactly(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal(0, 10, (50, 3))
    path = tmp_path / "m.obj"
    path.write_text("# c\nvt 0.1 0.2\nvn 0 0 1\n" + "".join(f"v {x!r} {y!r} {z!r}\n" for x, y, z in v) + "f 1 2 3\n")
    np.testing.assert_array_equal(read_obj_vertices(path), v)
    with pytest.raises(ICTConversionError, match="no vertex lines"):
        (tmp_path / "e.obj").write_text("# nothing\n")
        read_obj_vertices(tmp_path / "e.obj")
