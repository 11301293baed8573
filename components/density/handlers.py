"""The density tab's handlers: plain functions of (ctx, session, request) that yield view data (no widgets).

* ``estimate``: the data's log-density on the plot grid (exact for a Gaussian-mixture set, a kernel estimate
  otherwise: adiff.eval.likelihood.data_log_density), then the model's log p_theta there by the probability-flow ODE
  with the exact divergence (adiff.eval.likelihood.model_log_likelihood), a chunk of grid rows at a time, yielding the
  partly filled map when the throttle says so; then the held-out NLL of fresh data beside the data's own
  log-density on the same points (paired: the gap has its own standard error); then the figure, the words and the
  summary.  Nothing here depends on a seed but the held-out draw, so for a shipped preset the map is cached on the
  AppContext per (preset, grid, ODE steps) and the NLL per (preset, steps, seed): the second visitor gets them at once
  (``single_flight``: a room pressing the button together computes the map once).  The data's side is cached
  for any model of its dataset: its map per grid, its log-density at the held-out points per seed.
* ``stop``: where the cancelled run got to.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from adiff.data import TOY_2D_DATASETS, gaussian_mixture_for, make_dataset
from adiff.eval.likelihood import data_log_density, model_log_likelihood

from ..arrays import grid
from ..context import AppContext, ModelInfo
from ..fields import as_int, field_error
from ..limits import LIMITS
from ..result_cache import preset_key, request_key
from ..state import Session
from ..streaming import Throttle
from . import view

__all__ = [
    "DensityState",
    "DensityRequest",
    "HeldOut",
    "Progress",
    "Result",
    "estimate",
    "stop",
    "default_steps",
    "refusal",
]

TAB = "density"


@dataclass
class DensityState:
    """This tab's part of a session: how far the current run got (for Stop)."""

    progress: str | None = None


def state_of(session: Session) -> DensityState:
    return session.tab(TAB, DensityState)


def default_steps(model) -> int:
    """The ODE's steps a model's map starts with (bench/bench_density.py): a flow's field is smooth enough for 16."""
    return LIMITS.density_steps_flow if model.process.name == "flow" else LIMITS.density_steps_vp


def refusal(info: ModelInfo) -> str | None:
    """Why this tab cannot take a model (images: the exact divergence costs one backward pass per pixel), or None."""
    if info.kind == "points":
        return None
    return (
        f"{info.source!r} makes images; the density tab takes 2-D models (the exact divergence costs one backward "
        "pass per coordinate)"
    )


# ---------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class DensityRequest:
    model: Any = field(repr=False)
    info: ModelInfo
    num_steps: int  # RK4 steps of the probability-flow ODE
    grid_size: int  # the map is grid_size x grid_size points over the plot range
    seed: int  # which held-out draw the NLL is measured on

    @classmethod
    def parse(cls, ctx: AppContext, session: Session, preset, num_steps, grid_size, seed) -> DensityRequest:
        model, info = ctx.model(preset, session)
        why = refusal(info)
        if why is not None:
            raise field_error("preset", why)
        steps = as_int(num_steps, "num_steps", 1, LIMITS.density_steps)
        n = as_int(grid_size, "grid_size", LIMITS.density_grid_min, LIMITS.density_grid)
        return cls(model, info, steps, n, as_int(seed, "seed", 0, LIMITS.seed))

    @property
    def dataset(self) -> str | None:
        """The model's built-in 2-D dataset (None for the visitor's own drawing or an unknown one)."""
        return self.info.dataset if self.info.dataset in TOY_2D_DATASETS else None

    @property
    def data_kind(self) -> str | None:
        """ "exact" (a Gaussian-mixture set), "kde" or None (no data to compare with)."""
        if self.dataset is None:
            return None
        return "exact" if gaussian_mixture_for(self.dataset) is not None else "kde"

    def cache_key(self, what: str, **inputs) -> tuple | None:
        """A shipped preset's result key (None for "my model": its weights change under the same name)."""
        return preset_key(self.info.source, what, num_steps=self.num_steps, device=str(self.model.device), **inputs)


# ---------------------------------------------------------------------------------------------- view data
@dataclass(frozen=True)
class Progress:
    """A progress line, with the partly filled map when one is due (None: the figure stays)."""

    text: str
    figure: Any = None


@dataclass(frozen=True)
class Result:
    figure: Any
    text: str
    summary: dict


@dataclass(frozen=True)
class HeldOut:
    """The held-out NLL, paired with the data's own log-density on the same points (nats per point)."""

    nll: float
    nll_se: float
    data_nll: float
    gap: float  # nll - data_nll: an estimate of KL(data || model) where the data's density is exact
    gap_se: float  # the paired standard error
    seconds: float


# ---------------------------------------------------------------------------------------------- handlers
def _data_lp(ctx: AppContext, dataset: str, x: torch.Tensor, what: str, **inputs) -> torch.Tensor:
    """The data's log-density at the points x [N, 2] -> [N] float64, cached per dataset and the inputs that fix x
    (it depends on nothing else: any model of the dataset reuses it)."""
    key = request_key(what, dataset=dataset, **inputs)
    with ctx.results.single_flight(key) as hit:
        if hit is not None:
            return hit
        lp = data_log_density(dataset, x).double().cpu()
        ctx.results.put(key, lp, lp.numel() * lp.element_size())
    return lp


def _data_on_grid(ctx: AppContext, req: DensityRequest, pts: torch.Tensor) -> torch.Tensor | None:
    """The data's log-density on the grid [n*n] (None without a built-in dataset)."""
    if req.dataset is None:
        return None
    return _data_lp(ctx, req.dataset, pts, "density_data", grid_size=req.grid_size)


def _map_chunks(req: DensityRequest, pts, axes, data_lp, st: DensityState, t0: float):
    """log p_theta on the grid [n*n], a chunk of rows at a time (Stop ends the run between chunks); yields the
    partly filled map when the throttle says so."""
    n = req.grid_size
    rows = max(1, LIMITS.density_chunk // n)
    lp = torch.full((n * n,), float("nan"), dtype=torch.float64)
    starts = list(range(0, n, rows))
    throttle = Throttle(len(starts), interval_s=LIMITS.figure_interval_s)
    title = view.figure_title(req.info.source, req.num_steps, n)
    for i, r in enumerate(starts):
        a, b = r * n, min(n, r + rows) * n
        lp[a:b] = model_log_likelihood(req.model, pts[a:b], num_steps=req.num_steps).log_prob.cpu()
        st.progress = f"at row {b // n} of {n} of the model's map"
        if b < n * n and throttle.due(i):
            text = view.progress_text("the model's log-density on the grid", b / (n * n), time.time() - t0)
            yield Progress(text, view.figure(lp, data_lp, axes, title, req.data_kind))
    return lp


def _model_on_grid(ctx: AppContext, req: DensityRequest, pts, axes, data_lp, st: DensityState, t0: float):
    """(the model's map [n*n], whether it was reused): a preset's map is computed once per (grid, steps)."""
    key = req.cache_key("density_map", grid_size=req.grid_size)
    with ctx.results.single_flight(key) as hit:  # the same map in flight: wait for it, then reuse
        if hit is not None:
            return hit, True
        lp = yield from _map_chunks(req, pts, axes, data_lp, st, t0)
        ctx.results.put(key, lp, lp.numel() * lp.element_size())
    return lp, False


def _paired(model_lp: torch.Tensor, data_lp: torch.Tensor, seconds: float) -> HeldOut:
    """Mean and standard error of -log p_theta, and of the per-point gap log p - log p_theta."""
    m = model_lp.numel()
    v, g = -model_lp, data_lp - model_lp
    return HeldOut(
        float(v.mean()),
        float(v.std()) / math.sqrt(m),
        float(-data_lp.mean()),
        float(g.mean()),
        float(g.std()) / math.sqrt(m),
        round(seconds, 2),
    )


def _heldout(ctx: AppContext, req: DensityRequest, st: DensityState, t0: float):
    """The held-out NLL (a HeldOut, or None without known data), in chunks; cached per (preset, steps, seed)."""
    if req.dataset is None:
        return None
    key = req.cache_key("density_nll", seed=req.seed, points=LIMITS.density_heldout)
    hit = ctx.results.get(key)
    if hit is not None:
        return hit
    t1 = time.time()
    x, _ = make_dataset(req.dataset, LIMITS.density_heldout, seed=LIMITS.density_heldout_seed + req.seed)
    st.progress = "at the held-out points"
    yield Progress(view.progress_text("the data's density at the held-out points", None, time.time() - t0))
    data_lp = _data_lp(ctx, req.dataset, x, "density_heldout_data", seed=req.seed, points=len(x))
    parts = []
    for chunk in x.split(LIMITS.density_chunk):
        share = sum(len(p) for p in parts) / len(x)
        yield Progress(view.progress_text("the held-out NLL", share, time.time() - t0))
        parts.append(model_log_likelihood(req.model, chunk, num_steps=req.num_steps).log_prob.cpu())
    out = _paired(torch.cat(parts), data_lp, time.time() - t1)
    ctx.results.put(key, out, 256)
    return out


def _summary(req: DensityRequest, axes, model_lp, data_lp, held: HeldOut | None, reused: bool, t0: float) -> dict:
    s = {
        "status": "done",
        "preset": req.info.source,
        "dataset": req.dataset,
        "process": req.model.process.name,
        "num_steps": req.num_steps,
        "grid_size": req.grid_size,
        "seed": req.seed,
        "data_kind": req.data_kind,
        "model_log_p_max": float(model_lp.max()),
        "map_reused": reused,
        "elapsed_s": round(time.time() - t0, 2),
    }
    if held is not None:
        s.update(heldout_points=LIMITS.density_heldout, **{k: v for k, v in vars(held).items() if k != "seconds"})
        s["nll_seconds"] = held.seconds
    if data_lp is not None:
        off, data_off, total = view.off_data_mass(model_lp, data_lp, axes[1] - axes[0])
        s.update(data_log_p_max=float(data_lp.max()), off_data_mass=off, data_off_data_mass=data_off, grid_mass=total)
    return s


def estimate(ctx: AppContext, session: Session, req: DensityRequest):
    """The data's map, the model's map (streamed a chunk of rows at a time), the held-out NLL; then the figure, the
    words and the summary."""
    t0 = time.time()
    st = state_of(session)
    pts, axes, _ = grid(req.grid_size)
    st.progress = "at the data's density"
    if req.dataset is not None:
        yield Progress(view.progress_text(f"the data's density ({view.DATA_KINDS[req.data_kind]})"))
    data_lp = _data_on_grid(ctx, req, pts)
    st.progress = "at the model's map"
    yield Progress(view.progress_text("the model's log-density on the grid", 0.0, time.time() - t0))
    model_lp, reused = yield from _model_on_grid(ctx, req, pts, axes, data_lp, st, t0)
    held = yield from _heldout(ctx, req, st, t0)
    summary = _summary(req, axes, model_lp, data_lp, held, reused, t0)
    st.progress = "after the last step"
    title = view.figure_title(req.info.source, req.num_steps, req.grid_size)
    yield Result(view.figure(model_lp, data_lp, axes, title, req.data_kind), view.done_text(summary), summary)


def stop(ctx: AppContext, session: Session, req: None):
    """Where the cancelled run got to: (where, summary)."""
    where = state_of(session).progress
    return where, {"status": "stopped", "at": where}
