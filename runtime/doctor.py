"""What this machine has for splatcam, and what each missing piece costs (`splatcam doctor`).

`probe()` looks at the machine once (nothing is imported that compiles or downloads: gsplat and
TensorRT are only looked up, not imported); `diagnose(probe)` turns that into rows. Keeping the
two apart lets tests describe any machine.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

MIN_FREE_CACHE_MB = 500  # the demo avatar, ONNX files and TensorRT engines


@dataclass(frozen=True)
class Probe:
    platform: str
    cuda_device: str | None  # GPU name, None without CUDA
    cuda_version: str | None
    gsplat_installed: bool
    tensorrt_version: str | None
    onnxruntime_providers: tuple[str, ...] | None  # None when onnxruntime is missing
    backends: dict[str, str]  # inference backend -> "" if usable, else why not
    webcams: tuple[str, ...]  # capture devices (/dev/videoN 'name')
    loopbacks: tuple[str, ...]  # v4l2loopback devices
    display: bool
    face_model: str | None  # where the ICT model was found
    face_model_error: str | None
    mediapipe_version: str | None
    demo_avatar: str | None  # the current demo avatar (shipped, else cached), None if neither is current
    cache_dir: str
    cache_free_mb: float


@dataclass(frozen=True)
class Row:
    component: str
    ok: bool
    detail: str
    cost: str = ""  # what is lost without it
    fix: str = ""  # one line: how to get it
    required: bool = False  # the live loop cannot run without it


@dataclass
class Diagnosis:
    rows: list[Row] = field(default_factory=list)

    @property
    def live_ready(self) -> bool:
        return all(r.ok for r in self.rows if r.required)

    @property
    def missing(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _free_mb(path: Path) -> float:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free / 2**20


def probe() -> Probe:
    import torch

    from capture.devices import list_video_devices
    from core.paths import user_cache_dir
    from runtime.inference import backend_status
    from tracking.face_model import FACE_MODEL_FILE, find_asset

    cuda = torch.cuda.is_available()
    try:
        import onnxruntime
        providers = tuple(onnxruntime.get_available_providers())
    except ImportError:
        providers = None
    devices = list_video_devices()
    try:
        face_model, face_error = str(find_asset(FACE_MODEL_FILE)), None
    except FileNotFoundError as e:
        face_model, face_error = None, str(e)
    from avatar.demo_avatar import SHIPPED_DIR, cached_demo_avatar_dir, demo_avatar_problem
    demo = next((d for d in (SHIPPED_DIR, cached_demo_avatar_dir()) if demo_avatar_problem(d) is None), None)
    cache = user_cache_dir()
    return Probe(
        platform=sys.platform,
        cuda_device=torch.cuda.get_device_name(0) if cuda else None,
        cuda_version=torch.version.cuda,
        gsplat_installed=importlib.util.find_spec("gsplat") is not None,
        tensorrt_version=_version("tensorrt") if importlib.util.find_spec("tensorrt") else None,
        onnxruntime_providers=providers,
        backends=backend_status("cuda" if cuda else "cpu"),
        webcams=tuple(d.describe() for d in devices if d.can_capture and not d.loopback),
        loopbacks=tuple(d.describe() for d in devices if d.loopback),
        display=bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("win32", "darwin"),
        face_model=face_model, face_model_error=face_error,
        mediapipe_version=_version("mediapipe"),
        demo_avatar=str(demo) if demo is not None else None,
        cache_dir=str(cache), cache_free_mb=_free_mb(cache),
    )


def _virtual_camera_row(p: Probe) -> Row:
    from runtime.sinks.virtual_camera import INSTALL, MODPROBE

    cost = "calls can't see the avatar (use the preview window or --out FILE.mp4)"
    if p.platform.startswith("linux"):
        if p.loopbacks:
            return Row("virtual camera", True, "; ".join(p.loopbacks), required=True)
        return Row("virtual camera", False, "no v4l2loopback device", cost,
                   f"{INSTALL} && {MODPROBE}", required=True)
    return Row("virtual camera", True, "pyvirtualcam uses OBS Virtual Camera here (install OBS 30+ and "
               "start its virtual camera once)", required=True)


def diagnose(p: Probe) -> Diagnosis:
    d = Diagnosis()
    add = d.rows.append
    if p.cuda_device:
        add(Row("GPU / CUDA", True, f"{p.cuda_device}, CUDA {p.cuda_version}"))
    else:
        add(Row("GPU / CUDA", False, "no CUDA GPU", "CPU only: 256 px output at ~15-20 fps instead of 1024+ px at 30+",
                "an NVIDIA GPU with its driver, then a CUDA torch: pip install torch "
                "--index-url https://download.pytorch.org/whl/cu124"))
    if p.cuda_device and p.gsplat_installed:
        add(Row("gsplat", True, "installed (kernels compile on first use, a few minutes, then cached)"))
    else:
        why = "needs CUDA" if not p.cuda_device else "not installed"
        add(Row("gsplat", False, why, "the slower CPU rasterizer is used",
                "pip install -e '.[gpu]' (gsplat==1.5.3; needs CUDA and nvcc)"))
    if p.tensorrt_version and p.cuda_device:
        add(Row("TensorRT", True, p.tensorrt_version))
    else:
        add(Row("TensorRT", False, "not installed" if not p.tensorrt_version else "needs CUDA",
                "no FP16 engines: generator and SR run in torch or ONNX Runtime",
                "pip install tensorrt --extra-index-url https://pypi.nvidia.com (needs CUDA)"))
    if p.onnxruntime_providers is None:
        add(Row("ONNX Runtime", False, "not installed", "the onnxruntime backend (fastest on CPU) is unavailable",
                "pip install onnxruntime (or onnxruntime-gpu with CUDA)"))
    else:
        add(Row("ONNX Runtime", True, ", ".join(p.onnxruntime_providers)))
    usable = [name for name, why in p.backends.items() if not why]
    add(Row("inference backends", bool(usable), ", ".join(usable) or "none",
            "nothing can run the avatar", "reinstall: make venv", required=True))
    if p.webcams:
        add(Row("webcam", True, "; ".join(p.webcams), required=True))
    else:
        add(Row("webcam", False, "no camera found", "no live driving (the demo uses its scripted driver)",
                "plug in a webcam (Linux: it appears as /dev/videoN; check permissions with `v4l2-ctl --list-devices`)",
                required=True))
    add(_virtual_camera_row(p))
    add(Row("display", p.display, "preview window available" if p.display else "no display (DISPLAY unset)",
            "" if p.display else "no preview window (use the virtual camera or --out FILE.mp4)",
            "" if p.display else "run in a desktop session"))
    if p.face_model:
        add(Row("ICT face model", True, p.face_model, required=True))
    else:
        add(Row("ICT face model", False, "not found yet", "no tracking until the first tracking command "
                "downloads it (ICT-FaceKit, about 130 MB)",
                "be online for the first `splatcam live` or `track`, or: git clone https://github.com/ICT-VGL/ICT-FaceKit "
                "&& splatcam convert-ict ICT-FaceKit/FaceXModel", required=True))
    add(Row("MediaPipe", p.mediapipe_version is not None, p.mediapipe_version or "not installed",
            "" if p.mediapipe_version else "no face tracking",
            "" if p.mediapipe_version else "pip install mediapipe==0.10.21", required=True))
    add(Row("demo avatar", True, p.demo_avatar or "the shipped one is stale: built into the cache on first use "
            "(or: splatcam make-demo-avatar)"))
    cache_ok = p.cache_free_mb >= MIN_FREE_CACHE_MB
    add(Row("disk cache", cache_ok, f"{p.cache_dir} ({p.cache_free_mb:,.0f} MB free)",
            "" if cache_ok else "the demo avatar, ONNX files and engines cannot be cached",
            "" if cache_ok else f"free {MIN_FREE_CACHE_MB} MB or set SPLATCAM_CACHE to a roomier folder",
            required=True))
    return d


def format_table(d: Diagnosis) -> str:
    headers = ("component", "status", "details", "without it")
    rows = [(r.component, "ok" if r.ok else ("MISSING" if r.required else "missing"), r.detail,
             "" if r.ok else r.cost) for r in d.rows]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers[:-1])]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers[:-1], widths)) + "  " + headers[-1]]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + "  " + row[-1] for row in rows]
    return "\n".join(lines)
