"""The optional 68-point backends (face-alignment, dlib) fail here with one clear line and never
start a download: neither package is a dependency and their weights are not on this machine."""
from __future__ import annotations

import importlib.util
import sys
import types

import pytest

import tracking.landmarks.face_alignment_backend as fab
from tracking.landmarks.base import BackendUnavailable
from tracking.landmarks.dlib_backend import PREDICTOR_FILE, PREDICTOR_URL
from tracking.landmarks.registry import create_backend

HAS_DLIB = importlib.util.find_spec("dlib") is not None
HAS_FACE_ALIGNMENT = importlib.util.find_spec("face_alignment") is not None


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text
    return text


@pytest.mark.skipif(HAS_DLIB, reason="dlib is installed here")
def test_dlib_not_installed():
    with pytest.raises(BackendUnavailable) as e:
        create_backend("dlib")
    assert "pip install dlib" in _one_line(e.value)


@pytest.mark.skipif(HAS_FACE_ALIGNMENT, reason="face-alignment is installed here")
def test_face_alignment_not_installed():
    with pytest.raises(BackendUnavailable) as e:
        create_backend("face-alignment")
    assert "pip install face-alignment" in _one_line(e.value)


def test_dlib_without_its_predictor_file(monkeypatch, tmp_path):
    if not HAS_DLIB:  # the file check comes after the import: a bare stand-in module gets past it
        monkeypatch.setitem(sys.modules, "dlib", types.ModuleType("dlib"))
    monkeypatch.setenv("SPLATCAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPLATCAM_ASSETS", raising=False)
    with pytest.raises(BackendUnavailable) as e:
        create_backend("dlib", predictor_path=tmp_path / "nowhere")
    message = _one_line(e.value)
    assert PREDICTOR_FILE in message and PREDICTOR_URL in message and str(tmp_path / "cache") in message


def test_face_alignment_weights_are_looked_for_before_anything_downloads(monkeypatch, tmp_path):
    if not HAS_FACE_ALIGNMENT:  # a stand-in without FaceAlignment: reaching the constructor would fail
        stub = types.ModuleType("face_alignment")
        stub.LandmarksType = types.SimpleNamespace(TWO_D=1)
        monkeypatch.setitem(sys.modules, "face_alignment", stub)
    monkeypatch.setattr(fab, "checkpoint_dir", lambda: tmp_path)
    with pytest.raises(BackendUnavailable) as e:
        create_backend("face-alignment")
    message = _one_line(e.value)
    assert str(tmp_path) in message and "s3fd-619a316812.pth" in message and "2DFAN4" in message
    assert "https://www.adrianbulat.com/downloads/python-fan/" in message
    assert list(tmp_path.iterdir()) == []


def test_face_alignment_weight_files_per_torch_version(tmp_path):
    urls = fab.required_weights("2.13.0+cpu")
    assert [u.rsplit("/", 1)[-1] for u in urls][1] == "s3fd-619a316812.pth"
    if not HAS_FACE_ALIGNMENT:  # the package's own table decides when it is installed
        assert urls[0].endswith("/2DFAN4-cd938726ad.zip")
        assert fab.required_weights("1.6.0")[0].endswith("/2DFAN4_1.6-c827573f02.zip")
    assert fab.missing_weights(tmp_path, urls) == urls
    for u in urls:
        (tmp_path / u.rsplit("/", 1)[-1]).write_bytes(b"")
    assert fab.missing_weights(tmp_path, urls) == []
