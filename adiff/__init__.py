"""adiff: a small, correct PyTorch diffusion library for learning and teaching diffusion models.

    from adiff import DiffusionModel
    model = DiffusionModel({"model_type": "unconditional", "embedding_dim": 64, "hidden_dim": 64,
                            "num_layers": 3, "num_diffusion_steps": 1000, "data_shape": [2]})

The library never imports a UI toolkit; the Gradio app in app.py/components drives it.
"""
from .steering.buffer import TrajectoryBuffer
from .nn.config import ModelConfig
from .model import DiffusionModel
from .diffusion.schedules import (
    CosineNoiseSchedule,
    CustomNoiseSchedule,
    LinearNoiseSchedule,
    NoiseSchedule,
    SigmoidNoiseSchedule,
    make_schedule,
)

__all__ = [
    "DiffusionModel",
    "ModelConfig",
    "NoiseSchedule",
    "LinearNoiseSchedule",
    "CosineNoiseSchedule",
    "SigmoidNoiseSchedule",
    "CustomNoiseSchedule",
    "TrajectoryBuffer",
    "make_schedule",
]
__version__ = "0.1.0"
