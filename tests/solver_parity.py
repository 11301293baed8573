"""What the diffusers-parity fixtures and test share: the model function, the initial noise and the cases.

``parity_model`` stands in for a trained network: a fixed, smooth, nonlinear function of x and of the network's time
input in [0, 1], so that both loops see the same model outputs at the same states and any difference is the solvers'.
"""

from __future__ import annotations

import torch

from adiff.diffusion import make_process

T = 1000
N_POINTS = 16
_VP = make_process("vp", schedule="linear", num_steps=T)


def _smooth(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x) * (0.6 + 0.4 * tau) + 0.1 * torch.sin(3.0 * x.flip(-1)) * (1.0 - 0.5 * tau)


def parity_model(x: torch.Tensor, model_time: torch.Tensor, prediction_type: str = "sample") -> torch.Tensor:
    """x [N, 2], model_time a 0-d or [1] tensor in [0, 1] -> an output of x's shape (float64 in, float64 out).

    For "epsilon" the output is the noise implied by a bounded clean-sample guess (x - alpha m) / sigma on the linear
    VP schedule, as a trained eps-model gives: a bounded function read as eps would put x0_hat = (x - sigma eps) / alpha
    near 150 at t = T and measure float32 rounding rather than the solvers."""
    tau = model_time.reshape(-1)[0].to(x.dtype)
    m = _smooth(x, tau)
    if prediction_type != "epsilon":
        return m
    alpha, sigma = _VP.coefficients(float(tau) * T)
    return (x - alpha * 1.5 * m) / sigma


def initial_noise() -> torch.Tensor:
    return torch.randn(N_POINTS, 2, generator=torch.Generator().manual_seed(1234), dtype=torch.float64)


def _case(sampler, scheduler, num_steps, prediction_type="epsilon", spacing="trailing", process="vp", **extra):
    """One run of both loops.  ``options``: the adiff solver's options that match the diffusers scheduler (Heun's
    Karras form); ``seed``: the generator seed of a stochastic solver (both loops draw the same noise from it)."""
    return {
        "sampler": sampler,
        "scheduler": scheduler,
        "num_steps": num_steps,
        "prediction_type": prediction_type,
        "spacing": spacing,
        "process": process,
        "options": extra.get("options", {}),
        "seed": extra.get("seed"),
    }


KARRAS_HEUN = {
    "options": {"form": "karras"}
}  # diffusers' HeunDiscreteScheduler is Karras et al.'s trapezoid on dy/dtau


CASES = [
    _case("dpmpp_2m", "dpmpp_2m", 10),
    _case("dpmpp_2m", "dpmpp_2m", 25),
    _case("dpmpp_2m", "dpmpp_2m", 10, "v_prediction"),
    _case("dpmpp_2m", "dpmpp_2m", 10, "sample"),
    _case("euler", "euler", 10),
    _case("euler", "euler", 10, spacing="karras"),
    _case("euler", "euler", 10, "v_prediction"),
    _case("heun", "heun", 10, **KARRAS_HEUN),
    _case("heun", "heun", 10, spacing="karras", **KARRAS_HEUN),
    _case("heun", "heun", 8, "v_prediction", **KARRAS_HEUN),
    _case("ddim", "ddim", 20, "v_prediction"),
    _case("ddim", "ddim", 20, "epsilon"),
    _case("euler", "flow_euler", 10, "velocity", process="flow"),
    _case("euler", "flow_euler", 30, "velocity", process="flow"),
    _case("ddpm", "ddpm", 10, seed=7),
    _case("ddpm", "ddpm", 50, "v_prediction", seed=8),
]
