import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for k, v in {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}.items():
    os.environ.setdefault(k, v)

# Small models run fastest on one thread, and one thread per process avoids oversubscribing the two cores
# when a test server, a browser and the test itself share them.
torch.set_num_threads(1)


@pytest.fixture
def small_config():
    """A tiny unconditional 2-D model config (fast on a CPU)."""
    from tests.configs import tiny

    return tiny(num_diffusion_steps=100)
