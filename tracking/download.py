"""HTTP downloads that survive interruption: `download(url, target)` writes `target`.part and
renames it into place once complete. A later call resumes an existing .part with a Range request;
a server that ignores the range (200) or no longer has that prefix (416) makes it start over.
Checking what was downloaded is the caller's job (a checksum)."""
from __future__ import annotations

import logging
import os
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

logger = logging.getLogger(__name__)

TIMEOUT_S = 30.0
BLOCK = 1 << 20


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def download(url: str, target: Path, label: str, progress: bool = True, timeout: float = TIMEOUT_S) -> bool:
    """Fetch `url` into `target`, resuming `target`.part if one is there; `label` names it in the
    log line (written once the server answers) and the progress bar. Returns whether it resumed.
    Network and HTTP failures raise OSError (URLError, HTTPError, timeouts) or HTTPException."""
    from tqdm import tqdm

    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "splatcam"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as e:
        if e.code != 416 or not have:
            raise
        part.unlink()  # the partial file is not a prefix of what the server has now: start over
        return download(url, target, label, progress, timeout)
    with response:
        resumed = response.status == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        start = have if resumed else 0  # a server that ignores Range sends everything again
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        logger.info("downloading %s from %s (%s%s)", label, url, megabytes(total) if total else "size unknown",
                    f", resuming at {megabytes(start)}" if resumed else "")
        with open(part, "ab" if resumed else "wb") as f, \
                tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=label,
                     disable=not progress, mininterval=1.0) as bar:
            while block := response.read(BLOCK):
                f.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size != total:
        raise HTTPException(f"connection closed after {megabytes(size)} of {megabytes(total)}")
    os.replace(part, target)
    return resumed
