import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Two cores in CI: more threads only add contention.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (clone with ../shared beside it)")
    return SHARED_DATA


def requires_cuda(reason: str = "needs a CUDA GPU"):
    return pytest.mark.skipif(not torch.cuda.is_available(), reason=f"{reason}; no CUDA device here")
