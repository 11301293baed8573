"""The solver interface: the times a solver visits for ``num_steps``, and a step that may carry state.

A solver is a small stateless object; whatever it carries between steps (a multistep history) lives in a ``state``
dict that the sampling loop owns and passes in and out, so one solver object serves every run at once (diffusers'
scheduler contract in spirit, without state on the object).  Every step is written in the process's
alpha(t), sigma(t) and takes the model's (x0_hat, eps_hat) pair, so it works for every process and prediction type
the solver declares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..diffusion.parameterization import Prediction
from ..diffusion.processes import Process

__all__ = ["Solver", "PredictFn", "gaussian"]

PredictFn = Callable[[torch.Tensor, Any], Prediction]  # (x_t [B, *shape], t) -> Prediction


def gaussian(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``like`` from ``generator`` (on like's device)."""
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


class Solver:
    """Base class.  Subclasses set the class attributes and implement ``step``."""

    name: str = ""
    processes: tuple[str, ...] = ("vp",)  # the processes it serves
    order: int = 1  # convergence order of the deterministic update
    summary: str = ""  # one line for people: what the step does
    default_steps: int | None = 50  # a sensible step count (None: every step the process has, e.g. DDPM's T)
    default_spacing: dict[str, str] = {"vp": "angle", "flow": "uniform"}
    options: tuple[str, ...] = ()  # keyword options the step takes (e.g. "eta")

    def nfe(self, num_steps: int) -> int:
        """Network evaluations for ``num_steps`` steps (without guidance recurrence)."""
        return num_steps

    def default_num_steps(self, process: Process) -> int:
        return process.max_steps if self.default_steps is None else min(self.default_steps, process.max_steps)

    def timesteps(self, process: Process, num_steps: int, spacing: str | None = None) -> list:
        """Descending times, starting at the process's t_max; the loop steps to each next one and then to 0."""
        return process.timesteps(num_steps, spacing or self.default_spacing[process.name])

    def check_options(self, **options) -> dict:
        unknown = sorted(k for k, v in options.items() if k not in self.options and v not in (None, 0, 0.0))
        if unknown:
            raise ValueError(f"{unknown[0]} does not apply to sampler {self.name!r} (got {options[unknown[0]]!r})")
        return {k: v for k, v in options.items() if k in self.options}

    def init_state(self) -> dict:
        return {}

    def restart(self, state: dict) -> dict:
        """The state to use when the loop repeats a step from a re-noised x_t (self-recurrence): a history belongs
        to the trajectory it was made on, so multistep solvers drop it and take a first-order step."""
        return state

    def step(
        self,
        model: PredictFn,
        process: Process,
        x: torch.Tensor,
        t,
        s,
        pred: Prediction,
        state: dict,
        generator: torch.Generator | None,
        **options,
    ) -> tuple[torch.Tensor, dict]:  # pragma: no cover
        """x_t -> x_s for s < t, given the prediction at (x_t, t).  Returns (x_s, new state)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
