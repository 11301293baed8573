"""Reverse diffusion for any noise predictor: DDPM ancestral sampling and DDIM, as a generator of steps.

``eps_fn(x_t, t)`` takes x_t [B, *data_shape] and integer timesteps t [B] in 1..T and returns the predicted noise.
``sample_progressive`` yields one ``StepRecord`` per reverse step (the UI's frame stepper, the streaming
callbacks and the tests all use it); ``sample`` runs it to the end (openai/improved-diffusion's
``p_sample_loop_progressive`` pattern).  Nothing here fixes the grad mode: guidance needs autograd.

Notation: a_t = abar_t = prod_{s<=t}(1 - beta_s); a reverse step goes from t to s < t (s = t - 1 for full DDPM).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from ..steering.guidance import GuidanceConfig, GuidanceInfo, guided_eps, renoise
from ..diffusion.schedules import NoiseSchedule

__all__ = [
    "StepRecord",
    "predict_x0_from_eps",
    "predict_eps_from_x0",
    "q_posterior",
    "ddpm_step",
    "ddim_step",
    "sampling_timesteps",
    "SPACINGS",
    "sample_progressive",
    "sample",
    "SAMPLERS",
    "Trajectory",
    "TrajectoryRecorder",
]

SAMPLERS = ("ddpm", "ddim")
EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class StepRecord:
    """One reverse step t -> t_prev.  Tensors are [B, *data_shape] on the sampling device."""

    index: int  # 0-based step number
    num_steps: int  # steps in the whole run
    t: int  # current timestep (1..T)
    t_prev: int  # the step goes to this timestep (0 = clean data)
    x_t: torch.Tensor  # the state at t
    x0_pred: torch.Tensor  # predicted clean sample x0_hat(x_t)
    eps_pred: torch.Tensor  # predicted noise (after guidance, when there is guidance)
    x_prev: torch.Tensor  # the state at t_prev (the sample itself when t_prev = 0)
    noise_level: float  # sigma_t = sqrt(1 - abar_t)
    guidance: GuidanceInfo | None = field(default=None)


def predict_x0_from_eps(schedule: NoiseSchedule, x_t: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)   (Ho et al. 2020, eq. 15 solved for x_0)."""
    a = schedule.abar(t, x_t)
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def predict_eps_from_x0(schedule: NoiseSchedule, x_t: torch.Tensor, t, x0: torch.Tensor) -> torch.Tensor:
    """eps = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t)."""
    a = schedule.abar(t, x_t)
    return (x_t - a.sqrt() * x0) / (1 - a).sqrt()


def q_posterior(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t, s):
    """Mean and variance of q(x_s | x_t, x_0) for s < t (Ho et al. 2020, eqs. 6-7; for s < t - 1 the same
    formulas with the "respaced" beta' = 1 - a_t / a_s, as in Nichol & Dhariwal 2021 appendix).

    mean = sqrt(a_s) beta' / (1 - a_t) x0 + sqrt(1 - beta') (1 - a_s) / (1 - a_t) x_t,
    var  = (1 - a_s) / (1 - a_t) beta'   (zero for s = 0).
    """
    a_t, a_s = schedule.abar(t, x_t), schedule.abar(s, x_t)
    alpha = a_t / a_s  # 1 - beta'
    beta = 1 - alpha
    mean = (a_s.sqrt() * beta / (1 - a_t)) * x0 + (alpha.sqrt() * (1 - a_s) / (1 - a_t)) * x_t
    var = (1 - a_s) / (1 - a_t) * beta
    return mean, var


def ddpm_step(schedule, x_t, t, s, eps, noise, clip_x0: float | None = None):
    """Ancestral step x_t -> x_s ~ N(mean, var) with the posterior variance sigma_t^2 = beta_tilde_t
    (Ho et al. 2020, Algorithm 2 / eq. 11: for s = t - 1 the mean equals (x_t - beta_t / sqrt(1 - a_t) eps) / sqrt(alpha_t)).
    Returns (x_s, x0_hat)."""
    x0 = predict_x0_from_eps(schedule, x_t, t, eps)
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
    mean, var = q_posterior(schedule, x0, x_t, t, s)
    return mean + var.sqrt() * noise, x0


def ddim_step(schedule, x_t, t, s, eps, noise, eta: float = 0.0, clip_x0: float | None = None):
    """DDIM step x_t -> x_s (Song et al. 2021, eq. 12 with sigma from eq. 16):
    x_s = sqrt(a_s) x0_hat + sqrt(1 - a_s - sigma^2) eps + sigma z,
    sigma = eta sqrt((1 - a_s) / (1 - a_t)) sqrt(1 - a_t / a_s).   eta = 0: deterministic; eta = 1: DDPM's variance.
    Returns (x_s, x0_hat)."""
    a_t, a_s = schedule.abar(t, x_t), schedule.abar(s, x_t)
    x0 = predict_x0_from_eps(schedule, x_t, t, eps)
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
        eps = predict_eps_from_x0(schedule, x_t, t, x0)
    sigma = eta * ((1 - a_s) / (1 - a_t) * (1 - a_t / a_s)).sqrt()
    x_s = a_s.sqrt() * x0 + (1 - a_s - sigma**2).clamp(min=0).sqrt() * eps
    if eta > 0:
        x_s = x_s + sigma * noise
    return x_s, x0


SPACINGS = ("angle", "uniform")


def sampling_timesteps(schedule: NoiseSchedule | int, num_steps: int | None, spacing: str = "angle") -> list[int]:
    """Descending timesteps visited by a sampler of ``num_steps`` steps; each step goes to the next entry, the last
    one to t = 0.  Every spacing starts at T ("trailing", Lin et al. 2024, table 2), so the first step sees
    x_T ~ N(0, I) as in training, and ``num_steps`` = T visits every step.

    "uniform": evenly spaced in t.  T=1000, 50 steps -> [1000, 980, ..., 20].
    "angle": evenly spaced in the noise angle phi_t = arctan(sigma_t / sqrt(abar_t)) (sigma_t = sqrt(1 - abar_t)),
    from phi_T down to 0.  A DDIM step is an Euler step of dy/dtau = eps_hat in y = x / sqrt(abar_t),
    tau = tan(phi).  For data N(0, s^2) the exact flow is y = c sqrt(s^2 + tau^2), and the leading error of a run
    of Euler steps is smallest when every step covers the same s / (s^2 + tau^2) dtau, i.e. the same stretch of
    arctan(tau / s); for data of unit scale (s = 1) that is the same stretch of phi.  Measured on Gaussian data
    N(0, 1) with the exact denoiser and the linear schedule, DDIM-50 shrinks the standard deviation by 3.6% with
    "uniform" and by 2.4% with "angle".
    For the cosine schedule phi is nearly linear in t and the two spacings nearly agree.
    ``schedule`` may be an int T only for "uniform".
    """
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {list(SPACINGS)}, got {spacing!r}")
    T = schedule if isinstance(schedule, int) else schedule.num_steps
    if num_steps is None:
        num_steps = T
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or not 1 <= num_steps <= T:
        raise ValueError(f"num_steps must be an integer in 1..{T} (the model's T), got {num_steps!r}")
    if num_steps == T:
        return list(range(T, 0, -1))
    if spacing == "uniform":
        ratio = T / num_steps
        return [int(round(T - i * ratio)) for i in range(num_steps)]
    if isinstance(schedule, int):
        raise ValueError("spacing 'angle' needs the noise schedule, not only T")
    phi = schedule.angles64[1:]  # t = 1..T
    targets = torch.linspace(float(phi[-1]), 0.0, num_steps + 1, dtype=torch.float64)[:-1]
    # The t whose phi is nearest each target (searchsorted, not a [num_steps, T] distance matrix: T may be 10^4).
    hi = torch.searchsorted(phi, targets).clamp(max=T - 1)  # first phi >= target
    lo = (hi - 1).clamp(min=0)
    ts = (torch.where(targets - phi[lo] < phi[hi] - targets, lo, hi) + 1).tolist()
    for i in range(1, num_steps):  # strictly decreasing, within 1..T: push collisions down, then back up
        ts[i] = min(ts[i], ts[i - 1] - 1)
    ts[-1] = max(ts[-1], 1)
    for i in range(num_steps - 2, -1, -1):
        ts[i] = max(ts[i], ts[i + 1] + 1)
    return ts


def _check_sampler_args(sampler: str, eta: float) -> None:
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")


def sample_progressive(
    eps_fn: EpsFn,
    schedule: NoiseSchedule,
    shape,
    *,
    sampler: str = "ddpm",
    num_steps: int | None = None,
    eta: float = 0.0,
    spacing: str = "angle",
    generator: torch.Generator | None = None,
    device=None,
    x_T: torch.Tensor | None = None,
    clip_x0: float | None = None,
    **guidance,
) -> Iterator[StepRecord]:
    """Yield a StepRecord per reverse step, from x_T ~ N(0, I) down to x_0.

    sampler "ddpm": ancestral steps with the posterior variance (over all T steps, or over ``num_steps``
    respaced steps); "ddim": DDIM with ``eta`` over ``num_steps`` steps (default T).  ``spacing`` places the
    steps when there are fewer than T (see ``sampling_timesteps``).
    Guidance keywords (see adiff.guidance.GuidanceConfig): reward_fn, guidance_scale, guidance_mode,
    recurrence, guidance_clip, cfg_scale.
    """
    _check_sampler_args(sampler, eta)
    gcfg = GuidanceConfig.from_kwargs(**guidance)
    eps_fn = gcfg.wrap_cfg(eps_fn)
    ts = sampling_timesteps(schedule, num_steps, spacing)
    if device is None:
        device = generator.device if generator is not None else (x_T.device if x_T is not None else torch.device("cpu"))
    shape = tuple(shape)
    if x_T is None:
        x = torch.randn(shape, generator=generator, device=device)
    else:
        if tuple(x_T.shape) != shape:
            raise ValueError(f"x_T has shape {list(x_T.shape)}, expected {list(shape)}")
        x = x_T.to(device)
    B = shape[0]
    for i, t in enumerate(ts):
        s = ts[i + 1] if i + 1 < len(ts) else 0
        t_b = torch.full((B,), t, device=device, dtype=torch.long)
        for k in range(gcfg.recurrence):
            eps, info = guided_eps(eps_fn, schedule, x, t_b, gcfg)
            stochastic = sampler == "ddpm" or eta > 0  # deterministic DDIM draws no noise (and spends no time on it)
            noise = torch.randn(shape, generator=generator, device=device) if stochastic else None
            if sampler == "ddpm":
                x_s, x0 = ddpm_step(schedule, x, t, s, eps, noise, clip_x0)
            else:
                x_s, x0 = ddim_step(schedule, x, t, s, eps, noise, eta, clip_x0)
            if k + 1 < gcfg.recurrence:  # self-recurrence (Bansal et al. 2023): back to t with fresh noise
                x = renoise(schedule, x_s, t, s, torch.randn(shape, generator=generator, device=device))
        yield StepRecord(
            index=i,
            num_steps=len(ts),
            t=t,
            t_prev=s,
            x_t=x.detach(),
            x0_pred=x0.detach(),
            eps_pred=eps.detach(),
            x_prev=x_s.detach(),
            noise_level=float(schedule.get_noise_level(t)),
            guidance=info,
        )
        x = x_s.detach()


def sample(eps_fn: EpsFn, schedule: NoiseSchedule, shape, **kwargs) -> torch.Tensor:
    """Run ``sample_progressive`` to the end and return x_0 [B, *data_shape]."""
    last = None
    for last in sample_progressive(eps_fn, schedule, shape, **kwargs):
        pass
    return last.x_prev


@dataclass
class Trajectory:
    """Frames of a reverse-diffusion run, as CPU tensors.  Frame k shows x_t at timesteps[k] with the predictions
    made there; the last frame is t = 0, the sample itself (its predictions are the sample and zero noise)."""

    timesteps: list  # [K] descending, ending with 0
    x: torch.Tensor  # [K, B, *data_shape] states x_t
    x0_pred: torch.Tensor  # [K, B, *data_shape] predicted clean samples
    eps_pred: torch.Tensor  # [K, B, *data_shape] predicted noise
    noise_levels: torch.Tensor  # [K] sigma_t
    guidance: list  # [K] GuidanceInfo or None

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
        self._t, self._x, self._x0, self._eps, self._sig, self._g = [], [], [], [], [], []
        self._last: StepRecord | None = None

    def add(self, rec: StepRecord) -> bool:
        """Record a step; returns True when it was kept as a frame."""
        self._last = rec
        keep = rec.index % self.keep_every == 0 or rec.index == rec.num_steps - 1
        if keep:
            self._append(rec.t, rec.x_t, rec.x0_pred, rec.eps_pred, rec.noise_level, rec.guidance)
        return keep

    def _append(self, t, x, x0, eps, sigma, g):
        self._t.append(int(t))
        self._x.append(x.detach().float().cpu())
        self._x0.append(x0.detach().float().cpu())
        self._eps.append(eps.detach().float().cpu())
        self._sig.append(float(sigma))
        self._g.append(g)

    def finish(self) -> Trajectory:
        if self._last is None:
            raise ValueError("no steps were recorded")
        final = self._last.x_prev
        self._append(0, final, final, torch.zeros_like(final), 0.0, None)
        return Trajectory(
            self._t, torch.stack(self._x), torch.stack(self._x0), torch.stack(self._eps), torch.tensor(self._sig), self._g
        )
