"""The forward processes (what x_t is) and what a network predicts: schedules, processes, parameterisation, losses."""

from .losses import diffusion_loss, per_sample_loss
from .parameterization import (
    DEFAULT_PREDICTION_TYPE,
    PREDICTION_TYPES,
    PROCESS_PREDICTION_TYPES,
    Prediction,
    Predictor,
    to_prediction,
    training_target,
)
from .processes import PROCESSES, FlowProcess, Process, VPProcess, make_process
from .schedules import SCHEDULES, NoiseSchedule, make_schedule

__all__ = [
    "Process",
    "VPProcess",
    "FlowProcess",
    "PROCESSES",
    "make_process",
    "NoiseSchedule",
    "SCHEDULES",
    "make_schedule",
    "PREDICTION_TYPES",
    "PROCESS_PREDICTION_TYPES",
    "DEFAULT_PREDICTION_TYPE",
    "Prediction",
    "Predictor",
    "to_prediction",
    "training_target",
    "per_sample_loss",
    "diffusion_loss",
]
