"""A process's curves against its own time, as plain lists for the figures: α_t, σ_t, ᾱ_t = α_t², log-SNR and (for a
discrete schedule) β_t.  Every value comes from ``Process.coefficients`` (the one place that knows α(t), σ(t)), and a
flow's time shift from ``FlowProcess.shift_time``; nothing here restates the math."""

from __future__ import annotations

import numpy as np
import torch

from adiff.diffusion.processes import FlowProcess, Process, VPProcess
from adiff.diffusion.schedules import NoiseSchedule

from .arrays import finite_list

__all__ = ["schedule_curve", "flow_curve", "process_curve", "curve_at"]


def _log_snr(alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """log SNR = 2 log(α / σ): +inf where σ = 0, -inf where α = 0 (the figures leave both as gaps)."""
    return 2.0 * (torch.log(alpha) - torch.log(sigma))


def schedule_curve(schedule: NoiseSchedule, name: str, max_points: int = 1000) -> dict:
    """Curves of a discrete VP schedule against t = 1..T, subsampled to at most ``max_points`` (always keeping t = 1
    and T): ᾱ_t ("abar"), σ_t ("noise"), α_t, β_t and log-SNR; "u" = t / T, the time axis shared with the flow."""
    T = schedule.num_steps
    if T <= max_points:
        idx = list(range(T))
    else:
        idx = sorted(set(np.linspace(0, T - 1, max_points).round().astype(int).tolist()))
    ts = torch.tensor([i + 1 for i in idx], dtype=torch.float64)
    alpha, sigma = VPProcess(schedule).coefficients(ts)  # float64 [n]
    return {
        "name": name,
        "T": T,
        "t": [i + 1 for i in idx],
        "abar": finite_list(alpha**2, 6),
        "noise": finite_list(sigma, 6),
        "beta": finite_list(schedule.betas[torch.tensor(idx)], 6),
        "log_snr": finite_list(_log_snr(alpha, sigma), 4),
        "u": [round((i + 1) / T, 6) for i in idx],
        "alpha": finite_list(alpha, 6),
    }


def flow_curve(shift: float = 1.0, num_points: int = 400, name: str = "flow") -> dict:
    """The rectified-flow path x_t = (1 - t) x_0 + t eps (Liu et al. 2022, eq. 1) as curves on an even grid
    u = 0..1 with t = ``FlowProcess(shift).shift_time(u)``: α, σ, "abar" = α² (the signal's share of the variance,
    as for VP) and log-SNR (infinite at both ends: left as gaps).  The keys are those of ``schedule_curve`` (no
    "beta": the flow has no discrete steps); "t" is the flow time."""
    process = FlowProcess(float(shift))
    u = torch.linspace(0.0, 1.0, num_points + 1, dtype=torch.float64)
    t = process.shift_time(u)
    alpha, sigma = process.coefficients(t)
    return {
        "name": name,
        "process": "flow",
        "shift": float(shift),
        "T": 1,
        "t": finite_list(t, 6),
        "u": finite_list(u, 6),
        "alpha": finite_list(alpha, 6),
        "noise": finite_list(sigma, 6),
        "abar": finite_list(alpha**2, 6),
        "log_snr": finite_list(_log_snr(alpha, sigma), 4),
    }


def process_curve(process: Process, name: str | None = None, max_points: int = 400) -> dict:
    """The curves of any process on its own time axis: ``schedule_curve`` for VP (t = 1..T), ``flow_curve`` for a
    flow (t in [0, 1], its sampling shift not applied: a flow's time is t itself)."""
    if process.name == "flow":
        return flow_curve(1.0, max_points, name or "flow")
    return schedule_curve(process.schedule, name or process.schedule.name, max_points)


def curve_at(curve: dict, schedule: NoiseSchedule, t: int) -> dict:
    """The curve with t = 0 prepended and the values at t attached (for the marker): abar_at, noise_at, alpha_at."""
    alpha, sigma = VPProcess(schedule).coefficients(int(t))
    out = {
        **curve,
        "t": [0] + curve["t"],
        "abar": [1.0] + curve["abar"],
        "noise": [0.0] + curve["noise"],
        "abar_at": alpha * alpha,
        "noise_at": sigma,
    }
    if "alpha" in curve:
        out.update(alpha=[1.0] + curve["alpha"], u=[0.0] + curve["u"], alpha_at=alpha)
    return out
