"""The forward tab's handler: a dataset noised at time t by the chosen VP schedule, and (2-D sets) by the
rectified-flow path at flow time t/T from the same x₀ and the same ε; for a Gaussian-mixture set the exact density
of q(x_t) on a grid.  Every x_t comes from the process's own ``q_sample`` (adiff.diffusion.processes)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from adiff.data import IMAGE_DATASETS, PLOT_RANGE, TOY_2D_DATASETS, dataset_info, gaussian_mixture_for
from adiff.diffusion.processes import FlowProcess, VPProcess
from adiff.diffusion.schedules import make_schedule

from ..arrays import finite_list, grid, points, tile_images
from ..context import AppContext
from ..curves import curve_at, flow_curve, schedule_curve
from ..fields import as_bool, as_choice, as_int
from ..limits import LIMITS
from ..state import Session

__all__ = ["ForwardRequest", "Forward", "forward", "forward_data", "DATASETS", "SCHEDULE_NAMES", "DEFAULTS"]

DATASETS = list(TOY_2D_DATASETS) + list(IMAGE_DATASETS)
SCHEDULE_NAMES = ["linear", "cosine", "sigmoid"]
DEFAULTS = ("moons", "linear", 1000, 250, 1000, 0, True)  # what the tab opens on
FLOW_FORMULA = "x_t = (1 - t) x_0 + t eps, t = step / T"  # Liu et al. 2022, eq. 1


@dataclass(frozen=True)
class ForwardRequest:
    dataset: str
    schedule: str
    T: int
    t: int
    num_points: int
    seed: int
    show_flow: bool

    @classmethod
    def parse(
        cls, ctx: AppContext, session: Session, dataset, schedule, num_steps, t, num_points, seed, show_flow=True
    ):
        return cls.of(dataset, schedule, num_steps, t, num_points, seed, show_flow)

    @classmethod
    def of(cls, dataset, schedule, num_steps, t, num_points, seed, show_flow=True) -> ForwardRequest:
        dataset = as_choice(dataset, "dataset", DATASETS)
        schedule = as_choice(schedule, "schedule", SCHEDULE_NAMES)
        T = as_int(num_steps, "num_steps", 2, LIMITS.train_T)
        limit = LIMITS.forward_images if dataset in IMAGE_DATASETS else LIMITS.forward_points
        return cls(
            dataset,
            schedule,
            T,
            as_int(t, "t", 0, T),
            as_int(num_points, "num_points", 1, limit),
            as_int(seed, "seed", 0, LIMITS.seed),
            as_bool(show_flow, "show_flow"),
        )


@dataclass(frozen=True)
class Forward:
    data: dict  # what the figure draws
    curve: dict  # the schedule (and flow) curves with the values at t
    summary: dict


def _density(gmm, alpha: float, sigma: float) -> dict:
    """The exact log-density of x_t = alpha x_0 + sigma eps for mixture data on a 60 x 60 grid."""
    pts, xs, ys = grid(60)
    logq = gmm.marginal(alpha, sigma).log_prob(pts).float().reshape(60, 60).clamp(min=-12)
    return {"x": xs, "y": ys, "z": [finite_list(r, 3) for r in logq]}


def _points_data(req: ForwardRequest, x0, x_t, alpha: float, sigma: float) -> dict:
    data = {
        "kind": "points",
        "t": req.t,
        "T": req.T,
        "abar": alpha * alpha,
        "sigma": sigma,
        "data": points(x0),
        "x_t": points(x_t),
        "range": PLOT_RANGE,
    }
    gmm = gaussian_mixture_for(req.dataset)
    if gmm is not None:
        data["density"] = _density(gmm, alpha, sigma)
    return data


def _flow(req: ForwardRequest, x0, noise, data: dict, curve: dict, summary: dict) -> None:
    """The rectified-flow path at flow time u = t/T, from the same x0 and noise as the VP cloud."""
    flow, u = FlowProcess(), req.t / req.T
    alpha, sigma = flow.coefficients(u)
    x_flow = flow.q_sample(x0, u, noise)
    data["flow"] = {"t": u, "alpha": alpha, "sigma": sigma, "x_t": points(x_flow)}
    gmm = gaussian_mixture_for(req.dataset)
    if gmm is not None:
        data["flow"]["density"] = _density(gmm, alpha, sigma)
    curve["flow"] = {**flow_curve(1.0, 200), "key": "flow", "alpha_at": alpha, "noise_at": sigma}
    summary["flow"] = {
        "t": u,
        "alpha_t": alpha,
        "sigma_t": sigma,
        "snr": (alpha / sigma) ** 2 if sigma > 0 else None,
        "x_t_mean": x_flow.mean().item(),
        "x_t_std": x_flow.std().item(),
        "formula": FLOW_FORMULA,
    }


def forward_data(ctx: AppContext, req: ForwardRequest) -> Forward:
    """The noised data at t, the curves with the values at t, and the numbers."""
    sch = make_schedule(req.schedule, req.T)
    vp = VPProcess(sch)
    x0, _ = ctx.dataset(req.dataset, req.num_points, req.seed)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(req.seed + 1))
    alpha, sigma = vp.coefficients(req.t)
    abar = alpha * alpha
    x_t = vp.q_sample(x0, req.t, noise)
    summary = {
        "dataset": req.dataset,
        "schedule": req.schedule,
        "T": req.T,
        "t": req.t,
        "abar_t": abar,
        "sigma_t": sigma,
        "snr": abar / (1 - abar) if abar < 1 else None,
        "x_t_mean": x_t.mean().item(),
        "x_t_std": x_t.std().item(),
        "alpha_t": alpha,
        "formula": "x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps",
        "about": dataset_info(req.dataset).description,
    }
    curve = curve_at(schedule_curve(sch, req.schedule, max_points=250), sch, req.t)
    if req.dataset in IMAGE_DATASETS:
        ts = sorted({round(req.T * k / 6) for k in range(7)} | {req.t})
        cols = [{"t": s, "z": tile_images(vp.q_sample(x0, s, noise), cols=1), "selected": s == req.t} for s in ts]
        return Forward({"kind": "images", "t": req.t, "T": req.T, "columns": cols}, curve, summary)
    data = _points_data(req, x0, x_t, alpha, sigma)
    if req.show_flow:
        _flow(req, x0, noise, data, curve, summary)
    return Forward(data, curve, summary)


def forward(ctx: AppContext, session: Session, req: ForwardRequest) -> Forward:
    return forward_data(ctx, req)
