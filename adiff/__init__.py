"""adiff: a small, correct PyTorch diffusion library for learning and teaching diffusion models.

    from adiff import DiffusionModel
    model = DiffusionModel({"model_type": "unconditional", "embedding_dim": 64, "hidden_dim": 64,
                            "num_layers": 3, "num_diffusion_steps": 1000, "data_shape": [2]})

Layout (the arrows point one way: steering -> samplers -> diffusion, with nn, data and eval beside them):
    diffusion/  processes (VP schedules, rectified flow), prediction types, the denoising loss
    samplers/   one file per solver, the registry (SOLVERS, default_solver), the progressive sampling loop
    nn/         denoisers, EMA, the typed config, checkpoints
    steering/   reward guidance, classifier-free guidance, rewards, the expression language, buffer, adaptation,
                reflow (straightening a flow on its own couplings), inpainting (known pixels kept)
    data/       datasets made by code, Gaussian mixtures with their exact denoisers
    eval/       distances between sample sets, the glyph classifier, the learned density (log p_theta)
    cli/        preset and classifier training (python -m adiff.train)
The library never imports a UI toolkit; the Gradio app in app.py/components drives it.
"""

from .diffusion.parameterization import PREDICTION_TYPES, Prediction, Predictor
from .diffusion.processes import PROCESSES, FlowProcess, Process, VPProcess, make_process
from .diffusion.schedules import (
    CosineNoiseSchedule,
    CustomNoiseSchedule,
    LinearNoiseSchedule,
    NoiseSchedule,
    SigmoidNoiseSchedule,
    make_schedule,
)
from .model import DiffusionModel
from .nn.config import ModelConfig
from .samplers import SOLVERS, default_solver, sample, sample_progressive, solvers_for
from .steering.buffer import TrajectoryBuffer

__all__ = [
    "DiffusionModel",
    "ModelConfig",
    "Process",
    "VPProcess",
    "FlowProcess",
    "PROCESSES",
    "make_process",
    "PREDICTION_TYPES",
    "Prediction",
    "Predictor",
    "SOLVERS",
    "default_solver",
    "solvers_for",
    "sample",
    "sample_progressive",
    "NoiseSchedule",
    "LinearNoiseSchedule",
    "CosineNoiseSchedule",
    "SigmoidNoiseSchedule",
    "CustomNoiseSchedule",
    "TrajectoryBuffer",
    "make_schedule",
]
__version__ = "0.2.0"
