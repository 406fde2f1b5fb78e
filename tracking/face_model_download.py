"""The face model's last resort (DESIGN.md lookup order): download ICT-FaceKit, convert, cache.

`fetch_face_model()` fetches the GitHub archive of one pinned commit of ICT-FaceKit (MIT), checks
the size and sha256 of every file the converter reads against `data/ict_facekit_release.json`
(155 files: the neutral mesh, the landmark index, 53 expressions, 100 identities), converts them
with tracking/convert_ict.py and writes `ict_face_model.npz` into the user cache, where the
asset lookup finds it from then on.

The archive (about 130 MB) is downloaded to `<cache>/downloads/*.zip.part`; an interrupted
download resumes on the next run (tracking/download.py). A damaged or altered archive fails its
checksums and is deleted; one that was resumed is then fetched once more from the start. `SPLATCAM_ICT_BASE_URL` replaces
`https://github.com/ICT-VGL/ICT-FaceKit` (a mirror, or a local server in the tests).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from tracking.assets import FACE_MODEL_FILE, AssetNotFoundError, user_cache_dir
from tracking.download import BLOCK, download

logger = logging.getLogger(__name__)

RELEASE_FILE = Path(__file__).resolve().parent / "data" / "ict_facekit_release.json"
BASE_URL_ENV = "SPLATCAM_ICT_BASE_URL"
DEFAULT_BASE_URL = "https://github.com/ICT-VGL/ICT-FaceKit"
MANUAL_ROUTE = ("put ict_face_model.npz in a folder and set SPLATCAM_ASSETS to it, or run: "
                "git clone https://github.com/ICT-VGL/ICT-FaceKit && splatcam convert-ict ICT-FaceKit/FaceXModel")


class FaceModelDownloadError(AssetNotFoundError):
    """The download or its check failed; the message is one line and names the manual route."""


class ReleaseCheckError(ValueError):
    """A downloaded archive lacks a release file or holds a different one."""


@dataclass(frozen=True)
class Release:
    commit: str
    folder: str  # the files' folder inside the repository
    files: dict[str, tuple[int, str]]  # file name -> (bytes, sha256)


def load_release(path: Path = RELEASE_FILE) -> Release:
    doc = json.loads(Path(path).read_text())
    return Release(doc["commit"], doc["folder"],
                   {name: (int(f["bytes"]), f["sha256"]) for name, f in doc["files"].items()})


def archive_url(release: Release, base_url: str | None = None) -> str:
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/archive/{release.commit}.zip"


def _member_names(archive: zipfile.ZipFile, release: Release) -> dict[str, zipfile.ZipInfo]:
    """The release's files in the archive, wherever the archive puts its top folder."""
    found = {}
    for info in archive.infolist():
        folder, _, name = info.filename.rpartition("/")
        if name in release.files and (folder == release.folder or folder.endswith("/" + release.folder)):
            found[name] = info
    return found


def extract_release(archive_path: Path, release: Release, dest: Path) -> None:
    """Extract the release's files into `dest`, checking each one's size and sha256.
    Raises ReleaseCheckError naming the first file that is missing or differs."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = _member_names(archive, release)
            missing = sorted(set(release.files) - set(members))
            if missing:
                raise ReleaseCheckError(f"{len(missing)} of the {len(release.files)} model files are missing "
                                 f"(first: {missing[0]})")
            for name, (size, sha256) in release.files.items():
                digest, written = hashlib.sha256(), 0
                with archive.open(members[name]) as src, open(dest / name, "wb") as out:
                    while block := src.read(BLOCK):
                        digest.update(block)
                        written += len(block)
                        out.write(block)
                if written != size or digest.hexdigest() != sha256:
                    raise ReleaseCheckError(f"{name} differs from the pinned release ({written} bytes, "
                                     f"sha256 {digest.hexdigest()[:12]}...)")
    except zipfile.BadZipFile as e:
        raise ReleaseCheckError(f"not a readable zip archive ({e})") from None


def _checked_model(archive: Path, release: Release, work_dir: Path, progress: bool):
    """The converted model of a downloaded archive; ReleaseCheckError (archive deleted) if a check fails."""
    from tqdm import tqdm

    from tracking.convert_ict import convert_ict

    with tempfile.TemporaryDirectory(prefix="ict-", dir=work_dir) as tmp:
        try:
            extract_release(archive, release, Path(tmp))
        except ReleaseCheckError:
            archive.unlink()
            raise
        files = lambda names: tqdm(names, desc="convert-ict", unit="obj", disable=not progress)  # noqa: E731
        # The pinned release defines completeness (every file in it was checked above); files
        # outside it become zero modes, which the report names.
        return convert_ict(tmp, allow_partial=True, progress=files)


def fetch_face_model(cache_dir: Path | None = None, base_url: str | None = None,
                     release: Release | None = None, progress: bool = True) -> Path:
    """Download, check, convert and cache the face model (module docstring); its path."""
    from tracking.convert_ict import write_face_model

    release = release or load_release()
    cache = Path(cache_dir) if cache_dir is not None else user_cache_dir()
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    url = archive_url(release, base_url)
    archive = downloads / f"ICT-FaceKit-{release.commit[:12]}.zip"

    def fetch() -> bool:
        try:
            return download(url, archive, "ICT-FaceKit", progress)
        except (OSError, HTTPException) as e:
            reason = getattr(e, "reason", None) or e
            again = "run again to resume" if archive.with_name(archive.name + ".part").is_file() else \
                "run again when online"
            raise FaceModelDownloadError(f"downloading {url} failed ({reason}); {again}, or {MANUAL_ROUTE}") from None

    def damaged(e: ReleaseCheckError) -> FaceModelDownloadError:
        return FaceModelDownloadError(f"the archive downloaded from {url} failed its check ({e}) and was "
                                      f"deleted; run again, or {MANUAL_ROUTE}")

    # An archive left by an earlier run (interrupted while converting) counts as resumed.
    resumed = archive.is_file() or fetch()
    try:
        model = _checked_model(archive, release, downloads, progress)
    except ReleaseCheckError as e:
        if not resumed:
            raise damaged(e) from None
        logger.warning("the resumed download is damaged (%s); downloading it again from the start", e)
        fetch()
        try:
            model = _checked_model(archive, release, downloads, progress)
        except ReleaseCheckError as e:
            raise damaged(e) from None
    out = cache / FACE_MODEL_FILE
    write_face_model(out, model)
    archive.unlink()
    (logger.warning if model.missing else logger.info)("face model converted into %s: %s", out, model.report())
    return out
