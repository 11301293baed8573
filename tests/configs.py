"""Model configs the tests share (one place, DESIGN.md habit 19): a tiny 2-D denoiser that trains and samples in
seconds on a CPU.  Import it (``from tests.configs import tiny``) or use conftest's ``small_config`` fixture."""

from __future__ import annotations

TINY_2D = {
    "model_type": "unconditional",
    "embedding_dim": 32,
    "hidden_dim": 32,
    "num_layers": 2,
    "num_heads": 4,
    "num_diffusion_steps": 50,
    "data_shape": [2],
    "device": "cpu",
}


def tiny(**changes) -> dict:
    """A fresh copy of TINY_2D with ``changes`` applied (e.g. num_diffusion_steps=100, model_type="conditional")."""
    return {**TINY_2D, **changes}
