"""The solver registry: one explicit dict, listing what exists.  The app reads it (names, one-line summaries,
default step counts, which processes each serves).  A new solver is one file plus one line here."""

from __future__ import annotations

from ..diffusion.processes import Process
from .base import Solver
from .ddim import DDIM
from .ddpm import DDPM
from .dpmpp_2m import DPMSolverPP2M
from .euler import Euler
from .heun import Heun

__all__ = ["SOLVERS", "SAMPLERS", "get_solver", "solvers_for"]

SOLVERS: dict[str, Solver] = {s.name: s for s in (DDPM(), DDIM(), DPMSolverPP2M(), Euler(), Heun())}
SAMPLERS = tuple(SOLVERS)


def solvers_for(process: Process | str) -> list[str]:
    """The solver names that serve a process ("vp" or "flow", or a Process)."""
    name = process if isinstance(process, str) else process.name
    return [k for k, s in SOLVERS.items() if name in s.processes]


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
