"""Reflow: straighten a model's sampling paths by training a flow on its own noise-to-sample pairs (Liu et al. 2022,
"Flow straight and fast: learning to generate and transfer data with rectified flow", Algorithm 1 with k = 2: the
"2-rectified flow").

A flow trained on independent pairs (x_0 ~ data, x_1 ~ N(0, I)) learns v(x, t) = E[x_1 - x_0 | x_t]: the average of
crossing straight lines, whose ODE paths bend (for data N(0, s^2 I) the paths are radial and overshoot inwards:
straightness 1.211 at s = 0.5, tests/test_compare.py).  Reflow couples each noise x_1 with where the model's ODE takes
it, x0_hat = ODE(x_1), and trains a new flow on the straight lines between them:

    x_t = (1 - t) x0_hat + t x_1,    target v = x_1 - x0_hat,    t ~ U[0, 1]            (Liu et al. 2022, eq. 1)

i.e. the flow's usual loss with the pair's own x_1 as the "noise" (adiff.diffusion.losses.per_sample_loss with
``noise``).  These lines come from a deterministic map, so they do not cross (two noises reaching one point would
contradict the ODE's uniqueness), and the new flow's paths are straighter: one Euler step x0 = x_1 - v(x_1, 1) then
lands near where the whole ODE did, at 1 NFE instead of tens (Liu et al. 2022, section 3: rectifying again
straightens the paths; their one-step results).
Its samples follow the teacher's distribution as the teacher's ODE solve produced it (its solver error included:
``couple`` takes an accurate solver).  The student may start from the teacher's weights (Liu et al. warm-start
their reflow the same way).

``couple`` makes the pairs (any model, any process: the ODE of a VP model couples as well, through a deterministic
solver); ``reflow_progressive`` trains a flow student on them, one ``ReflowEvent`` per step, with the paths'
straightness on request (the app's live progress and Stop); ``reflow_loss`` is the one loss both use, and the
preset training command (``python -m adiff.train --preset moons-reflow``) trains with it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from ..diffusion.losses import per_sample_loss
from ..diffusion.parameterization import Predictor
from ..eval.metrics import StraightnessMeter
from ..samplers import sample, sample_progressive

__all__ = [
    "COUPLING_SAMPLERS",
    "Coupling",
    "couple",
    "reflow_loss",
    "ReflowEvent",
    "reflow_progressive",
    "path_straightness_of",
]

COUPLING_SAMPLERS = ("ddim", "euler", "heun", "dpmpp_2m")  # deterministic: the coupling must be the ODE's map


@dataclass
class Coupling:
    """Pairs (x_1, x0_hat = ODE(x_1)) of a model, as CPU float32 tensors [N, *data_shape]."""

    x_T: torch.Tensor  # the noise each path starts from (N(0, I))
    x0: torch.Tensor  # where the model's ODE takes it
    labels: torch.Tensor | None  # [N] the class each pair was made with (a conditional model; its null class for
    # none), which the student is trained with; None for an unconditional model
    sampler: str
    num_steps: int
    nfe: int  # network evaluations per pair
    seconds: float

    def __len__(self) -> int:
        return self.x_T.shape[0]


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return value


def couple(
    model,
    n: int,
    sampler: str = "dpmpp_2m",
    num_steps: int = 50,
    seed: int = 0,
    *,
    condition=None,
    data_shape=None,
    batch_size: int = 10_000,
    progress: Callable[[int, int], None] | None = None,
    **sampling,
) -> Coupling:
    """``n`` pairs (x_1, ODE(x_1)): x_1 ~ N(0, I) from ``seed``, mapped by ``sampler`` in ``num_steps`` steps.

    model: a DiffusionModel (its EMA weights; ``sampling`` keywords such as clip_x0 and cfg_scale go to its
    ``generate``) or a Predictor (e.g. the exact denoiser of a Gaussian mixture), which needs ``data_shape``.  Runs in chunks of ``batch_size``
    (``progress(done, n)`` after each).  Costs n * NFE network evaluations per point (moons, 241k parameters,
    one CPU thread: ~17 us a point per evaluation)."""
    _check_int("n", n, 2, 10_000_000)
    _check_int("batch_size", batch_size, 1, 10_000_000)
    if sampler not in COUPLING_SAMPLERS:
        raise ValueError(
            f"sampler must be one of {list(COUPLING_SAMPLERS)} (a deterministic ODE solver), got {sampler!r}"
        )
    if sampling.get("eta"):
        raise ValueError(f"eta must be 0 for a coupling (the ODE's map), got {sampling['eta']!r}")
    is_predictor = isinstance(model, Predictor)
    process = model.process
    if is_predictor and data_shape is None:
        raise ValueError("data_shape must be given when model is a Predictor (e.g. (2,))")
    shape = tuple(model.data_shape if not is_predictor else data_shape)
    gen = torch.Generator().manual_seed(int(seed))
    x_T = torch.randn((n, *shape), generator=gen)  # on the CPU: the same pairs on every device
    labels = None if is_predictor or not model.is_conditional else model.labels(condition, n).cpu()
    t0, outs, nfe = time.time(), [], 0
    for i in range(0, n, batch_size):
        xb = x_T[i : i + batch_size]
        if is_predictor:
            out = sample(model, process, xb.shape, sampler=sampler, num_steps=num_steps, x_T=xb, **sampling)
        else:
            kw = {"sampler": sampler, "num_steps": num_steps, "keep_every": 10**9, **sampling}
            cond = None if labels is None else labels[i : i + batch_size]
            out, traj = model.generate(xb.shape[0], cond, x_T=xb.to(model.device), **kw)
            nfe = traj.nfe
        outs.append(out.detach().float().cpu())
        if progress is not None:
            progress(min(i + batch_size, n), n)
    if is_predictor:
        from ..samplers import get_solver

        nfe = get_solver(sampler, process).nfe(num_steps)
    return Coupling(x_T, torch.cat(outs), labels, sampler, num_steps, nfe, round(time.time() - t0, 2))


def reflow_loss(model, x_T: torch.Tensor, x0: torch.Tensor, generator=None, module=None, labels=None) -> torch.Tensor:
    """The flow loss on pairs: |f(x_t, t) - target|^2 at x_t = (1 - t) x0 + t x_T, t ~ U[0, 1], with the target of
    the model's prediction type for (x0, eps = x_T) (velocity: x_T - x0); ``labels`` [B] for a conditional model
    (the pairs' own).  ``module``: what to run (default the denoiser; a DistributedDataParallel wrapper of it in the
    training command)."""
    if model.process.name != "flow":
        raise ValueError(f"reflow trains a flow model (process 'flow'), got a {model.process.name} model")
    with model.autocast():
        return per_sample_loss(
            module or model.denoiser, model.process, model.prediction_type, x0, labels, generator, noise=x_T
        ).mean()


@dataclass
class ReflowEvent:
    """One optimisation step of the student."""

    step: int  # 1-based
    num_steps: int
    loss: float
    lr: float
    straightness: float | None  # of the student's Euler paths, when measured at this step
    seconds: float  # since the first step began


def path_straightness_of(model, x_T: torch.Tensor, num_steps: int = 20, sampler: str = "euler", **sampling) -> float:
    """``adiff.eval.metrics.path_straightness`` of ``model``'s sampling paths from x_T [B, *data_shape] (every step's
    state, ``num_steps`` steps of ``sampler``)."""
    meter = StraightnessMeter()
    predict = model.predictor(None, x_T.shape[0], clip_x0=sampling.pop("clip_x0", None))
    last = None
    for last in sample_progressive(
        predict, model.process, x_T.shape, sampler=sampler, num_steps=num_steps, x_T=x_T.to(model.device), **sampling
    ):
        meter.add(last.x_t)
    meter.add(last.x_prev)
    return meter.value


def reflow_progressive(
    student,
    coupling: Coupling,
    num_steps: int,
    *,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    warmup_steps: int | None = None,
    seed: int = 0,
    straightness_every: int = 0,
    straightness_points: int = 500,
) -> Iterator[ReflowEvent]:
    """Train ``student`` (a flow DiffusionModel; e.g. ``teacher.clone()`` to warm-start) in place on ``coupling``,
    ``num_steps`` steps of ``batch_size`` random pairs (AdamW; ``warmup_steps`` of warmup, by default a tenth of the
    run and at most 100; then cosine decay), yielding an event per step; every ``straightness_every`` steps
    (0 = never) and at the last step the event carries the straightness of the student's 20-step Euler paths from
    ``straightness_points`` fixed noises (its EMA weights, as it samples)."""
    _check_int("num_steps", num_steps, 1, 1_000_000)
    _check_int("batch_size", batch_size, 1, 100_000)
    _check_int("straightness_every", straightness_every, 0, 1_000_000)
    _check_int("straightness_points", straightness_points, 2, 100_000)
    if student.process.name != "flow":
        raise ValueError(f"student must be a flow model (process 'flow'), got a {student.process.name} model")
    if (coupling.labels is not None) != student.is_conditional:
        raise ValueError("coupling and student must both be conditional or both unconditional")
    if tuple(coupling.x0.shape[1:]) != tuple(student.data_shape):
        raise ValueError(
            f"coupling has samples of shape {list(coupling.x0.shape[1:])}, the student {list(student.data_shape)}"
        )
    warmup_steps = (
        min(100, num_steps // 10) if warmup_steps is None else _check_int("warmup_steps", warmup_steps, 0, num_steps)
    )
    student.setup_training(
        {
            "learning_rate": learning_rate,
            "scheduler_steps": num_steps,
            "warmup_steps": warmup_steps,
            "weight_decay": 0.0,
        }
    )
    gen = torch.Generator(device=student.device).manual_seed(int(seed))
    x0, x_T = coupling.x0.to(student.device), coupling.x_T.to(student.device)
    labels = None if coupling.labels is None else coupling.labels.to(student.device)
    probe = torch.randn((straightness_points, *student.data_shape), generator=torch.Generator().manual_seed(seed + 1))
    t0 = time.time()
    for step in range(1, num_steps + 1):
        student.denoiser.train()
        idx = torch.randint(0, x0.shape[0], (min(batch_size, x0.shape[0]),), device=student.device, generator=gen)
        ev = student.optimizer_step(
            reflow_loss(student, x_T[idx], x0[idx], gen, labels=None if labels is None else labels[idx])
        )
        straight = None
        if step == num_steps or (straightness_every and step % straightness_every == 0):
            student.denoiser.eval()
            straight = path_straightness_of(student, probe)
        yield ReflowEvent(step, num_steps, ev.loss, ev.lr, straight, round(time.time() - t0, 3))
    student.denoiser.eval()
