"""The face model's download path against a server on 127.0.0.1 (tracking/face_model_download.py).

The server hands out a zip the test builds the way GitHub lays out a commit archive, holding the
four original ICT-FaceKit files of shared/data/ict_sample_obj. The release checked against is the
pinned one (tracking/data/ict_facekit_release.json) cut down to those four files, so the pinned
sizes and sha256 are themselves checked against the originals; the converted model is compared
with the shared, already converted ict_face_model.npz.
"""
from __future__ import annotations

import dataclasses
import io
import threading
import zipfile
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import tracking.assets
import tracking.face_model_download as fmd
from tracking.face_model import load_face_model_data
from tracking.params import expression_index

SAMPLE_FILES = ("generic_neutral_mesh.obj", "jawOpen.obj", "identity000.obj", "vertex_indices.json")


class ArchiveHandler(BaseHTTPRequestHandler):
    """GET /archive/<commit>.zip with optional Range support and a connection cut after N bytes."""

    def __init__(self, server_state: dict, *args, **kwargs) -> None:
        self.state = server_state
        super().__init__(*args, **kwargs)

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        state = self.state
        state["requests"].append(self.headers.get("Range"))
        if self.path != state["path"]:
            self.send_error(404)
            return
        body, start = state["body"], 0
        ranged = self.headers.get("Range")
        if ranged and state["honour_range"]:
            start = int(ranged.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = state.pop("cut_after", None)
        self.wfile.write(body[start:] if cut is None else body[start:start + cut])
        state["served"] += len(body) - start if cut is None else cut


@pytest.fixture(scope="module")
def release(shared_data):
    full = fmd.load_release()
    return dataclasses.replace(full, files={name: full.files[name] for name in SAMPLE_FILES})


def build_archive(shared_data, commit: str, replace: dict[str, bytes] | None = None) -> bytes:
    """A zip laid out as GitHub's archive of `commit`; the model files first (see the damage test)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name in SAMPLE_FILES:
            data = (replace or {}).get(name) or (shared_data / "ict_sample_obj" / name).read_bytes()
            z.writestr(f"ICT-FaceKit-{commit}/FaceXModel/{name}", data)
        z.writestr(f"ICT-FaceKit-{commit}/README.md", "not a model file")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def archive(shared_data, release):
    return build_archive(shared_data, release.commit)


@pytest.fixture
def server(archive, release):
    state = {"body": archive, "path": f"/archive/{release.commit}.zip", "honour_range": True,
             "requests": [], "served": 0}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(ArchiveHandler, state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def reference(shared_data):
    with np.load(shared_data / "ict_face_model.npz") as d:
        return {k: d[k] for k in ("neutral", "expression_basis", "identity_basis", "quads", "landmarks68")}


def check_model(path, reference) -> None:
    with np.load(path) as d:
        for key in ("neutral", "quads", "landmarks68"):
            np.testing.assert_allclose(d[key], reference[key], atol=1e-5, err_msg=key)
        jaw = expression_index("jawOpen")
        np.testing.assert_allclose(d["expression_basis"][jaw], reference["expression_basis"][jaw], atol=1e-5)
        np.testing.assert_allclose(d["identity_basis"][0], reference["identity_basis"][0], atol=1e-5)


def leftovers(cache):
    return sorted(p.name for p in (cache / "downloads").iterdir())


def test_pinned_release_matches_the_original_files(shared_data, release):
    import hashlib

    for name, (size, sha256) in release.files.items():
        data = (shared_data / "ict_sample_obj" / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha256), name
    full = fmd.load_release()
    assert len(full.files) == 2 + 53 + 100 and full.commit.startswith("da5f95a607f5")


def test_download_converts_and_caches(server, release, reference, tmp_path):
    out = fmd.fetch_face_model(tmp_path, server["url"], release, progress=False)
    assert out == tmp_path / "ict_face_model.npz"
    check_model(out, reference)
    assert leftovers(tmp_path) == []  # the archive and the extracted files are gone
    assert server["requests"] == [None]


def test_interrupted_download_resumes_with_a_range_request(server, release, reference, tmp_path):
    server["cut_after"] = 100_000
    with pytest.raises(fmd.FaceModelDownloadError, match="run again to resume") as e:
        fmd.fetch_face_model(tmp_path, server["url"], release, progress=False)
    assert "\n" not in str(e.value) and "SPLATCAM_ASSETS" in str(e.value)
    assert leftovers(tmp_path) == [f"ICT-FaceKit-{release.commit[:12]}.zip.part"]
    out = fmd.fetch_face_model(tmp_path, server["url"], release, progress=False)
    check_model(out, reference)
    assert server["requests"] == [None, "bytes=100000-"]
    assert server["served"] == len(server["body"])  # nothing fetched twice


def test_server_that_ignores_range_restarts_cleanly(server, release, reference, tmp_path):
    server["honour_range"] = False
    part = tmp_path / "downloads" / f"ICT-FaceKit-{release.commit[:12]}.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 5000)
    check_model(fmd.fetch_face_model(tmp_path, server["url"], release, progress=False), reference)
    assert server["requests"] == ["bytes=5000-"]


def test_damaged_resume_is_fetched_again_from_the_start(server, release, reference, tmp_path):
    part = tmp_path / "downloads" / f"ICT-FaceKit-{release.commit[:12]}.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # not the archive's first 1000 bytes: the first model file's header breaks
    check_model(fmd.fetch_face_model(tmp_path, server["url"], release, progress=False), reference)
    assert server["requests"] == ["bytes=1000-", None]


def test_altered_file_fails_its_checksum(server, shared_data, release, tmp_path):
    jaw = (shared_data / "ict_sample_obj" / "jawOpen.obj").read_bytes()
    server["body"] = build_archive(shared_data, release.commit, {"jawOpen.obj": jaw.replace(b"ICT", b"ict", 1)})
    with pytest.raises(fmd.FaceModelDownloadError, match="jawOpen.obj differs") as e:
        fmd.fetch_face_model(tmp_path, server["url"], release, progress=False)
    assert "\n" not in str(e.value)
    assert leftovers(tmp_path) == [] and not (tmp_path / "ict_face_model.npz").exists()


@pytest.fixture
def no_local_model(tmp_path, monkeypatch):
    """A fresh user: empty cache, no SPLATCAM_ASSETS, no ../shared beside the checkout."""
    monkeypatch.setenv("SPLATCAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPLATCAM_ASSETS", raising=False)
    monkeypatch.setattr(tracking.assets, "shared_data_dir", lambda: tmp_path / "no_shared")
    return tmp_path / "cache"


def test_offline_error_is_one_line_naming_the_manual_route(no_local_model, monkeypatch, shared_data, tmp_path,
                                                          capsys):
    import socket

    from runtime.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(fmd.BASE_URL_ENV, f"http://127.0.0.1:{port}")
    with pytest.raises(fmd.FaceModelDownloadError) as e:
        load_face_model_data()
    message = str(e.value)
    assert "\n" not in message
    for part in ("looked in", f"127.0.0.1:{port}/archive/", "run again when online", "SPLATCAM_ASSETS",
                 "splatcam convert-ict"):
        assert part in message, part
    # The same through `splatcam track`: exit 2, one line, nothing written.
    out = tmp_path / "p.npz"
    assert main(["track", str(shared_data / "video" / "d0.mp4"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SPLATCAM_ASSETS" in err and not out.exists()


def test_track_downloads_the_model_first(no_local_model, server, release, shared_data, tmp_path,
                                         monkeypatch, capsys):
    from runtime.cli import main

    monkeypatch.setenv(fmd.BASE_URL_ENV, server["url"])
    monkeypatch.setattr(fmd, "load_release", lambda: release)
    out = tmp_path / "p.npz"
    assert main(["track", str(shared_data / "video" / "d0.mp4"), "--out", str(out)]) == 0
    assert out.is_file() and (no_local_model / "ict_face_model.npz").is_file()
    with np.load(out) as p:
        assert p["valid"].all() and p["expression"].shape == (78, 53)
    # Offline afterwards: the cached model is used, nothing is fetched again.
    monkeypatch.setenv(fmd.BASE_URL_ENV, "http://127.0.0.1:9")
    load_face_model_data()
    assert len(server["requests"]) == 1
