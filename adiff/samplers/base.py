"""The solver interface: the times a solver visits for ``num_steps``, its typed options, and a step that makes its own
network calls and may carry state.

A solver is a small stateless object; whatever it carries between steps (a multistep history) lives in a ``state``
dict that the sampling loop owns and passes in and out (``StepResult.state``), so one solver object serves every run
at once (diffusers' scheduler contract in spirit, without state on the object).  Every step is written in the
process's alpha(t), sigma(t) and reads the model's (x0_hat, eps_hat) pair, so it works for every process and
prediction type the solver declares.  A step calls ``model(x_t, t)`` itself (Heun a second time), so the loop only
drives steps.  Per-run options are a frozen dataclass per solver (``Solver.Options``), built and checked once when
the run starts (``Solver.make_options``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from ..diffusion.parameterization import Prediction
from ..diffusion.processes import Process

__all__ = ["Solver", "SolverOptions", "StepResult", "PredictFn", "gaussian"]

PredictFn = Callable[[torch.Tensor, Any], Prediction]  # (x_t [B, *shape], t) -> Prediction


def gaussian(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``like`` from ``generator`` (on like's device)."""
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


@dataclass(frozen=True)
class SolverOptions:
    """A solver's per-run options.  The base has none; a solver with options subclasses it with typed fields (one
    comment each) and checks them in ``check``, which raises ValueError naming the field and the value."""

    def check(self) -> SolverOptions:
        return self


@dataclass(frozen=True)
class StepResult:
    """What one step t -> s returns."""

    x_prev: torch.Tensor  # [B, *shape] the state at s (the sample itself when s = 0)
    pred: Prediction  # the prediction at (x_t, t): the one the step record shows
    state: dict  # the history to carry to the next step ({} for one-step solvers)


class Solver:
    """Base class.  Subclasses set the class attributes and implement ``step``."""

    name: str = ""
    processes: tuple[str, ...] = ("vp",)  # the processes it serves
    order: int = 1  # convergence order of the deterministic update (tests/test_solver_order.py measures it)
    nfe_per_step: int = 1  # network evaluations per step (the last step, to t = 0, always takes one)
    stochastic: bool = False  # draws fresh noise every step (then `order` says nothing about a single run)
    summary: str = ""  # one line for people: what the step does
    default_steps: int | None = 50  # a sensible step count (None: every step the process has, e.g. DDPM's T)
    # the grid that samples best at about 10 network calls (bench/bench_solvers.py --grids)
    default_spacing: dict[str, str] = {"vp": "angle", "flow": "uniform"}
    Options: type[SolverOptions] = SolverOptions

    @property
    def option_names(self) -> tuple[str, ...]:
        """The names of the options a run of this solver takes (e.g. ("eta",)); () when it takes none."""
        return tuple(f.name for f in fields(self.Options))

    @property
    def facts(self) -> str:
        """One line of facts read from the class: order and network calls per step."""
        calls = "1 NFE/step" if self.nfe_per_step == 1 else f"{self.nfe_per_step} NFE/step (1 on the last)"
        return f"order {self.order}, {calls}" + (", stochastic" if self.stochastic else "")

    def nfe(self, num_steps: int) -> int:
        """Network evaluations for ``num_steps`` steps (without guidance recurrence)."""
        return self.nfe_per_step * num_steps - (self.nfe_per_step - 1)

    def default_num_steps(self, process: Process) -> int:
        return process.max_steps if self.default_steps is None else min(self.default_steps, process.max_steps)

    def timesteps(self, process: Process, num_steps: int, spacing: str | None = None) -> list:
        """Descending times, starting at the process's t_max; the loop steps to each next one and then to 0."""
        return process.timesteps(num_steps, spacing or self.default_spacing[process.name])

    def make_options(self, options: Mapping[str, Any] | SolverOptions | None = None, **given) -> SolverOptions:
        """This solver's options for a run, checked: ``options`` (a mapping, or an instance of ``self.Options``),
        updated by the loop's own keywords (``eta``).  A keyword that is None, or 0 for a solver without that option
        (eta = 0 is no noise, which a deterministic solver already is), counts as not given; any other name the
        solver has no option for is an error."""
        names = self.option_names
        if isinstance(options, SolverOptions):
            if type(options) is not self.Options:
                raise ValueError(
                    f"options must be {self.Options.__name__} for sampler {self.name!r}, got {type(options).__name__}"
                )
            chosen = {n: getattr(options, n) for n in names}
        elif options is None or isinstance(options, Mapping):
            chosen = dict(options or {})
        else:
            raise ValueError(f"options must be a mapping or {self.Options.__name__}, got {type(options).__name__}")
        chosen.update({k: v for k, v in given.items() if v is not None and (k in names or v != 0)})
        unknown = sorted(k for k in chosen if k not in names)
        if unknown:
            raise ValueError(
                f"{unknown[0]} does not apply to sampler {self.name!r} (got {chosen[unknown[0]]!r}); "
                f"its options: {list(names)}"
            )
        return self.Options(**chosen).check()

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
        *,
        state: dict | None = None,
        options: SolverOptions | None = None,
        generator: torch.Generator | None = None,
    ) -> StepResult:  # pragma: no cover
        """x_t [B, *shape] -> x_s for s < t, calling ``model`` for the prediction at (x_t, t) (and wherever else the
        solver evaluates).  ``state``: the previous step's ``StepResult.state`` (None: a fresh run); ``options``:
        from ``make_options`` (None: the defaults)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
