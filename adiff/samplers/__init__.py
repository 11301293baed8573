"""Solvers of the reverse process and the progressive sampling loop.

``SOLVERS`` (the registry) maps a name to a solver object and ``default_solver(process)`` names the one a run gets
when none is chosen; ``sample_progressive`` runs any of them for any process and prediction type, one ``StepRecord``
per step."""

from .base import Solver, SolverOptions, StepResult
from .loop import (
    MAX_RECURRENCE,
    StepRecord,
    Trajectory,
    TrajectoryRecorder,
    as_process,
    sample,
    sample_progressive,
    sampling_timesteps,
)
from .registry import DEFAULT_SOLVER, SOLVERS, default_solver, get_solver, solvers_for

__all__ = [
    "Solver",
    "SolverOptions",
    "StepResult",
    "SOLVERS",
    "DEFAULT_SOLVER",
    "default_solver",
    "get_solver",
    "solvers_for",
    "StepRecord",
    "Trajectory",
    "TrajectoryRecorder",
    "sample",
    "sample_progressive",
    "sampling_timesteps",
    "as_process",
    "MAX_RECURRENCE",
]
