import os

# As runtime/cli.py: idle OpenMP workers sleep rather than spin (must precede the torch import).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Two cores in CI: more threads only add contention.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (clone with ../shared beside it)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def dlib_backend():
    """dlib's 68-point detector (the `dlib` extra), closed after the module; skips without it."""
    from tracking.landmarks.base import BackendUnavailable
    from tracking.landmarks.registry import create_backend

    try:
        backend = create_backend("dlib")
    except BackendUnavailable as e:
        pytest.skip(f"dlib backend not available: {e}")
    yield backend
    backend.close()


def requires_cuda(reason: str = "needs a CUDA GPU"):
    return pytest.mark.skipif(not torch.cuda.is_available(), reason=f"{reason}; no CUDA device here")


@pytest.fixture(scope="session")
def demo_avatar() -> Path:
    """The demo mannequin avatar directory: the one shipped in avatar/data/demo_avatar (or, should
    that be of an older mannequin version, one built into the user cache; skips when that needs
    the face model and none is at hand)."""
    from avatar.demo_avatar import ensure_demo_avatar
    from tracking.assets import AssetNotFoundError

    try:
        return ensure_demo_avatar(progress=False)
    except AssetNotFoundError as e:
        pytest.skip(f"the demo avatar needs the ICT face model: {e}")


@pytest.fixture
def fake_virtual_camera():
    """tests/fake_virtual_camera.py registered as a pyvirtualcam backend for one test."""
    import pyvirtualcam

    from tests.fake_virtual_camera import FakeVirtualCamera

    pyvirtualcam.register_backend(FakeVirtualCamera.NAME, FakeVirtualCamera)
    FakeVirtualCamera.instances.clear()
    yield FakeVirtualCamera
    pyvirtualcam.camera.BACKENDS.pop(FakeVirtualCamera.NAME)


@pytest.fixture
def one_torch_thread():
    """torch on one thread for a test: many small ops (training steps, the live loop beside
    MediaPipe's threads) stall on a second thread of two shared cores, and single-threaded
    reductions sum in a fixed order, so two identical runs agree to the last bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
