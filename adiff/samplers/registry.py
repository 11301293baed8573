"""The solver registry: one explicit dict, listing what exists, and the one default-solver table.  The app reads both
(names, one-line summaries and facts, options, default step counts, which processes each serves).  A new solver is
one file plus one line here."""

from __future__ import annotations

from ..diffusion.processes import PROCESSES, Process
from .base import Solver
from .ddim import DDIM
from .ddpm import DDPM
from .dpmpp_2m import DPMSolverPP2M
from .euler import Euler
from .heun import Heun

__all__ = ["SOLVERS", "DEFAULT_SOLVER", "default_solver", "get_solver", "solvers_for"]

SOLVERS: dict[str, Solver] = {s.name: s for s in (DDPM(), DDIM(), DPMSolverPP2M(), Euler(), Heun())}

# The solver a run gets when none is named: the lowest MMD² at about 10 network calls on the exact 8-gaussians
# mixture, on both processes (bench/results/bench_solvers_grids.txt).
DEFAULT_SOLVER: dict[str, str] = {"vp": "dpmpp_2m", "flow": "dpmpp_2m"}


def _process_name(process: Process | str) -> str:
    name = process if isinstance(process, str) else process.name
    if name not in PROCESSES:
        raise ValueError(f"process must be one of {list(PROCESSES)}, got {name!r}")
    return name


def solvers_for(process: Process | str) -> list[str]:
    """The solver names that serve a process ("vp" or "flow", or a Process)."""
    name = _process_name(process)
    return [k for k, s in SOLVERS.items() if name in s.processes]


def default_solver(process: Process | str) -> str:
    """The name of the default solver for a process ("vp" or "flow", or a Process)."""
    return DEFAULT_SOLVER[_process_name(process)]


def get_solver(name, process: Process | None = None, field: str = "sampler") -> Solver:
    """The solver called ``name``; with a process, it must serve it.  Errors name the field and the value."""
    if name not in SOLVERS:
        raise ValueError(f"{field} must be one of {list(SOLVERS)}, got {name!r}")
    solver = SOLVERS[name]
    if process is not None and process.name not in solver.processes:
        raise ValueError(
            f"{field} {name!r} does not serve the {process.name} process; use one of {solvers_for(process)}"
        )
    return solver
