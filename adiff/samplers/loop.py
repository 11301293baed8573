"""The progressive sampling loop: any solver, any process, any prediction type, one record per step.

``sample_progressive(predict, process, shape, sampler=...)`` yields one ``StepRecord`` per step from x at the
process's t_max (pure noise, N(0, I)) down to t = 0; ``sample`` runs it to the end (openai/improved-diffusion's
``p_sample_loop_progressive`` pattern).  The UI's frame stepper, the streaming callbacks and the tests all use it.

``predict(x_t, t) -> Prediction(x0, eps)`` is a ``adiff.diffusion.Predictor`` (a raw network plus its prediction type),
possibly wrapped by steering (reward guidance, classifier-free guidance): this module never imports steering.
Nothing here fixes the grad mode, since guidance needs autograd.

Self-recurrence (Bansal et al. 2023, section 3.3): with ``recurrence`` k each step is repeated k times, going back from
s to t by the forward kernel q(x_t | x_s) in between.  A repeated step starts from a re-noised x_t that the solver's
history (DPM-Solver++'s previous x0_hat) was not made on, so repeats restart the history (a first-order step);
the last repeat's prediction becomes the history of the next step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..diffusion.parameterization import Prediction
from ..diffusion.processes import Process, VPProcess
from ..diffusion.schedules import NoiseSchedule
from .base import PredictFn, SolverOptions, gaussian
from .registry import default_solver, get_solver

__all__ = [
    "StepRecord",
    "sample_progressive",
    "sample",
    "sampling_timesteps",
    "Trajectory",
    "TrajectoryRecorder",
    "as_process",
    "MAX_RECURRENCE",
]

MAX_RECURRENCE = 10


@dataclass
class StepRecord:
    """One step t -> t_prev.  Tensors are [B, *data_shape] on the sampling device."""

    index: int  # 0-based step number
    num_steps: int  # steps in the whole run
    t: float  # current time (an int for the VP grid's integer steps)
    t_prev: float  # the step goes to this time (0 = clean data)
    x_t: torch.Tensor  # the state at t
    x0_pred: torch.Tensor  # predicted clean sample x0_hat(x_t) (after guidance, when there is guidance)
    eps_pred: torch.Tensor  # predicted noise eps_hat(x_t) (after guidance)
    x_prev: torch.Tensor  # the state at t_prev (the sample itself when t_prev = 0)
    noise_level: float  # sigma(t)
    guidance: Any = field(default=None)  # what the guidance wrapper reported at this step (None without guidance)
    v_pred: torch.Tensor | None = (
        None  # the path velocity (process.velocity: alpha eps - sigma x0 for VP, eps - x0 for a flow)
    )
    nfe: int = 0  # network evaluations so far, this step included


def as_process(process: Process | NoiseSchedule) -> Process:
    """A Process; a bare NoiseSchedule means the VP process over it."""
    if isinstance(process, Process):
        return process
    if isinstance(process, NoiseSchedule):
        return VPProcess(process)
    raise ValueError(f"process must be a Process or a NoiseSchedule, got {type(process).__name__}")


def sampling_timesteps(
    process: Process | NoiseSchedule, num_steps: int | None, spacing: str | None = None, sampler: str | None = None
) -> list:
    """The descending times a solver (default: the process's default solver) visits for ``num_steps`` (default: the
    solver's), on ``spacing`` (default: the solver's grid); 0 follows the last."""
    process = as_process(process)
    solver = get_solver(default_solver(process) if sampler is None else sampler, process)
    return solver.timesteps(process, solver.default_num_steps(process) if num_steps is None else num_steps, spacing)


def _check_timesteps(process: Process, timesteps) -> list:
    ts = list(timesteps)
    if not ts:
        raise ValueError("timesteps must not be empty")
    process.check_time(ts, "timesteps")
    if any(not b < a for a, b in zip(ts, ts[1:])) or ts[-1] <= 0:
        raise ValueError(f"timesteps must be strictly decreasing and > 0 (0 is appended), got {ts[:8]}")
    return ts


class _Counter:
    """Counts network evaluations of a predict function."""

    def __init__(self, fn: PredictFn):
        self.fn, self.calls = fn, 0

    def __call__(self, x, t) -> Prediction:
        self.calls += 1
        return self.fn(x, t)


def sample_progressive(
    predict: PredictFn,
    process: Process | NoiseSchedule,
    shape,
    *,
    sampler: str | None = None,
    num_steps: int | None = None,
    eta: float | None = None,
    options: Mapping[str, Any] | SolverOptions | None = None,
    spacing: str | None = None,
    timesteps=None,
    recurrence: int = 1,
    generator: torch.Generator | None = None,
    device=None,
    x_T: torch.Tensor | None = None,
) -> Iterator[StepRecord]:
    """Yield a StepRecord per step, from x ~ N(0, I) at the process's t_max down to t = 0.

    sampler: a name in adiff.samplers.SOLVERS that serves the process (default: ``default_solver(process)``).
    num_steps: solver steps (default: the solver's; DDPM takes all T); ``timesteps`` gives the grid explicitly.
    options: the solver's options (a mapping or its ``Options``; ``SOLVERS[name].option_names`` lists them), checked
    here; eta: DDIM's noise, the same as options={"eta": eta} (0 or None is accepted by every solver).
    spacing: the grid (VP: "angle", "uniform", "karras"; default per solver).  recurrence: repeats per step.
    """
    process = as_process(process)
    solver = get_solver(default_solver(process) if sampler is None else sampler, process)
    opts = solver.make_options(options, eta=eta)
    if isinstance(recurrence, bool) or not isinstance(recurrence, int) or not 1 <= recurrence <= MAX_RECURRENCE:
        raise ValueError(f"recurrence must be an integer in 1..{MAX_RECURRENCE}, got {recurrence!r}")
    if timesteps is not None:
        ts = _check_timesteps(process, timesteps)
    else:
        ts = solver.timesteps(process, solver.default_num_steps(process) if num_steps is None else num_steps, spacing)
    if device is None:
        device = generator.device if generator is not None else (x_T.device if x_T is not None else torch.device("cpu"))
    shape = tuple(shape)
    if x_T is None:
        x = torch.randn(shape, generator=generator, device=device)
    else:
        if tuple(x_T.shape) != shape:
            raise ValueError(f"x_T has shape {list(x_T.shape)}, expected {list(shape)}")
        x = x_T.to(device)
    model = _Counter(predict)
    state = solver.init_state()
    for i, t in enumerate(ts):
        s = ts[i + 1] if i + 1 < len(ts) else 0
        for k in range(recurrence):
            out = solver.step(
                model,
                process,
                x,
                t,
                s,
                state=state if k == 0 else solver.restart(state),
                options=opts,
                generator=generator,
            )
            if k + 1 < recurrence:
                x = process.renoise(out.x_prev.detach(), s, t, gaussian(out.x_prev, generator))
        state, pred, x_s = out.state, out.pred, out.x_prev
        x0, eps = pred.x0.detach(), pred.eps.detach()
        yield StepRecord(
            index=i,
            num_steps=len(ts),
            t=t,
            t_prev=s,
            x_t=x.detach(),
            x0_pred=x0,
            eps_pred=eps,
            x_prev=x_s.detach(),
            noise_level=process.coefficients(t)[1],
            guidance=pred.info,
            v_pred=process.velocity(x0, eps, t),
            nfe=model.calls,
        )
        x = x_s.detach()


def sample(predict: PredictFn, process: Process | NoiseSchedule, shape, **kwargs) -> torch.Tensor:
    """Run ``sample_progressive`` to the end and return x_0 [B, *data_shape]."""
    last = None
    for last in sample_progressive(predict, process, shape, **kwargs):
        pass
    return last.x_prev


@dataclass
class Trajectory:
    """Frames of a reverse run, as CPU tensors.  Frame k shows x_t at timesteps[k] with the predictions made there;
    the last frame is t = 0, the sample itself (its predictions are the sample and zero noise)."""

    timesteps: list  # [K] descending, ending with 0
    x: torch.Tensor  # [K, B, *data_shape] states x_t
    x0_pred: torch.Tensor  # [K, B, *data_shape] predicted clean samples
    eps_pred: torch.Tensor  # [K, B, *data_shape] predicted noise
    noise_levels: torch.Tensor  # [K] sigma(t)
    guidance: list  # [K] guidance reports or None
    v_pred: torch.Tensor | None = None  # [K, B, *data_shape] path velocity
    nfe: int = 0  # network evaluations of the whole run

    @property
    def final(self) -> torch.Tensor:
        return self.x[-1]

    def __len__(self) -> int:
        return len(self.timesteps)


class TrajectoryRecorder:
    """Collects StepRecords into a Trajectory, keeping every ``keep_every``-th step (the first step, the last step
    and the final sample are always kept)."""

    def __init__(self, keep_every: int = 1):
        if isinstance(keep_every, bool) or not isinstance(keep_every, int) or keep_every < 1:
            raise ValueError(f"keep_every must be a positive integer, got {keep_every!r}")
        self.keep_every = keep_every
        self._t, self._x, self._x0, self._eps, self._v, self._sig, self._g = [], [], [], [], [], [], []
        self._last: StepRecord | None = None

    def add(self, rec: StepRecord) -> bool:
        """Record a step; returns True when it was kept as a frame."""
        self._last = rec
        keep = rec.index % self.keep_every == 0 or rec.index == rec.num_steps - 1
        if keep:
            v = rec.v_pred if rec.v_pred is not None else torch.zeros_like(rec.x_t)
            self._append(rec.t, rec.x_t, rec.x0_pred, rec.eps_pred, v, rec.noise_level, rec.guidance)
        return keep

    def _append(self, t, x, x0, eps, v, sigma, g):
        self._t.append(t)
        for store, value in ((self._x, x), (self._x0, x0), (self._eps, eps), (self._v, v)):
            store.append(value.detach().float().cpu())
        self._sig.append(float(sigma))
        self._g.append(g)

    def finish(self) -> Trajectory:
        if self._last is None:
            raise ValueError("no steps were recorded")
        final = self._last.x_prev
        zero = torch.zeros_like(final)
        self._append(0, final, final, zero, zero, 0.0, None)
        return Trajectory(
            self._t,
            torch.stack(self._x),
            torch.stack(self._x0),
            torch.stack(self._eps),
            torch.tensor(self._sig),
            self._g,
            torch.stack(self._v),
            self._last.nfe,
        )
