"""Forward processes: what x_t is, in one place.

Every process is Gaussian, x_t = alpha(t) x_0 + sigma(t) eps with eps ~ N(0, I), and differs only in alpha(t),
sigma(t) and in what "time" means:

* ``VPProcess``: the discrete variance-preserving process of DDPM (Ho et al. 2020): t = 1..T, alpha_t = sqrt(abar_t),
  sigma_t = sqrt(1 - abar_t), from a ``NoiseSchedule`` table (float64).  Between two integer steps (only the Karras
  spacing visits such times) log(sigma/alpha) is interpolated linearly in t, which is what diffusers' ``_sigma_to_t``
  inverts, so a fractional time and its noise level stay exact inverses of each other.
* ``FlowProcess``: the rectified-flow / flow-matching path x_t = (1 - t) x_0 + t eps, t in [0, 1] (Liu et al. 2022;
  Lipman et al. 2023; Esser et al. 2024 use it in Stable Diffusion 3).  Not variance preserving: at t = 1/2 the
  signal and the noise have equal weight 1/2.

The process also owns the network's time input (``model_time``: t / T for VP, t for the flow; in [0, 1] for both),
the re-noising kernel q(x_t | x_s) used by self-recurrence, the sampling grids (``timesteps``) and the coordinates
in which Euler/Heun integrate the probability-flow ODE (``ode_time``/``ode_derivative``).

Times given as Python numbers give Python-float coefficients (the samplers' fast path: no 0-d tensor arithmetic per
step); tensors [B] give tensors shaped [B, 1, ..., 1] to broadcast against a batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .schedules import NoiseSchedule, make_schedule, schedule_from_dict

__all__ = ["Process", "VPProcess", "FlowProcess", "PROCESSES", "make_process", "SPACINGS"]

PROCESSES = ("vp", "flow")
SPACINGS = {"vp": ("angle", "uniform", "karras"), "flow": ("uniform",)}
KARRAS_RHO = 7.0  # Karras et al. 2022, eq. 5


def _shape_like(v: torch.Tensor, like: torch.Tensor | None) -> torch.Tensor:
    if like is None:
        return v
    return v.to(device=like.device, dtype=like.dtype if like.is_floating_point() else torch.float32).reshape(
        v.shape + (1,) * (like.dim() - v.dim())
    )


class Process:
    """Base class: x_t = alpha(t) x_0 + sigma(t) eps.  Subclasses define ``_coefficients64`` and the time range."""

    name = "process"
    t_max: float = 1.0  # where sampling starts (pure noise, or as close to it as the process gets)
    continuous = True  # whether every real t in (0, t_max] is a valid time

    # ------------------------------------------------------------------ coefficients
    def _coefficients64(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def check_time(self, t, field: str = "t") -> None:
        tt = torch.as_tensor(t, dtype=torch.float64)
        if tt.numel() and (not torch.isfinite(tt).all() or float(tt.min()) < 0 or float(tt.max()) > self.t_max):
            shown = tt.tolist() if tt.numel() < 8 else f"values in {float(tt.min()):g}..{float(tt.max()):g}"
            raise ValueError(f"{field} must lie in [0, {self.t_max:g}] for the {self.name} process, got {shown}")

    def coefficients(self, t, like: torch.Tensor | None = None):
        """(alpha(t), sigma(t)): Python floats for a Python number t, else tensors shaped to broadcast like ``like``."""
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            self.check_time(t)
            a, s = self._coefficients64(torch.tensor([float(t)], dtype=torch.float64))
            return float(a[0]), float(s[0])
        tt = torch.as_tensor(t)
        self.check_time(tt)
        a, s = self._coefficients64(tt.detach().to("cpu", torch.float64).reshape(-1))
        return _shape_like(a, like), _shape_like(s, like)

    def model_time(self, t, device=None) -> torch.Tensor:
        """The network's time input in [0, 1], as a float32 tensor [B] (or [1] for a shared Python-number t)."""
        tt = torch.as_tensor([float(t)] if isinstance(t, (int, float)) else t, dtype=torch.float32, device=device)
        return tt.reshape(-1) / self.t_max

    def q_sample(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """x_t = alpha(t) x_0 + sigma(t) eps."""
        a, s = self.coefficients(t, x0)
        return a * x0 + s * noise

    def renoise(self, x_s: torch.Tensor, s, t, noise: torch.Tensor) -> torch.Tensor:
        """A draw of q(x_t | x_s) for s < t: N(alpha_{t|s} x_s, (sigma_t^2 - alpha_{t|s}^2 sigma_s^2) I) with
        alpha_{t|s} = alpha_t / alpha_s (Kingma et al. 2021, eq. 3-4)."""
        a_s, s_s = self.coefficients(s)
        a_t, s_t = self.coefficients(t)
        ratio = a_t / a_s
        return ratio * x_s + math.sqrt(max(s_t**2 - ratio**2 * s_s**2, 0.0)) * noise

    def half_log_snr(self, t) -> float:
        """lambda(t) = log(alpha_t / sigma_t) (DPM-Solver's time variable; -inf where alpha = 0, +inf at t = 0)."""
        a, s = self.coefficients(float(t))
        if a == 0.0:
            return -math.inf
        if s == 0.0:
            return math.inf
        return math.log(a) - math.log(s)

    def sigma_ve(self, t) -> float:
        """sigma(t) / alpha(t): the noise level of the equivalent variance-exploding process y = x / alpha (Karras
        et al. 2022's sigma).  Infinite where alpha = 0."""
        a, s = self.coefficients(float(t))
        return math.inf if a == 0.0 else s / a

    # ------------------------------------------------------------------ the probability-flow ODE
    def ode_time(self, t) -> float:  # pragma: no cover
        """The time variable tau in which Euler and Heun integrate dy/dtau (see ode_state / ode_derivative)."""
        raise NotImplementedError

    def ode_state(self, x: torch.Tensor, t) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def from_ode_state(self, y: torch.Tensor, t) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def ode_derivative(self, x0: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def velocity(self, x0: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:  # pragma: no cover
        """The path's velocity in the process's natural time, as a v-type model predicts it."""
        raise NotImplementedError

    # ------------------------------------------------------------------ grids and training times
    @property
    def max_steps(self) -> int:
        """The most sampling steps this process offers."""
        return 1000

    def timesteps(self, num_steps: int, spacing: str | None = None) -> list[float]:  # pragma: no cover
        """``num_steps`` descending times from ``t_max``; a sampler steps from each to the next and from the last to 0."""
        raise NotImplementedError

    def training_times(self, batch: int, generator=None, device=None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def check_num_steps(self, num_steps, field: str = "num_steps") -> int:
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or not 1 <= num_steps <= self.max_steps:
            raise ValueError(
                f"{field} must be an integer in 1..{self.max_steps} for this model's {self.name} process, "
                f"got {num_steps!r}"
            )
        return num_steps

    def check_spacing(self, spacing) -> str:
        options = SPACINGS[self.name]
        if spacing not in options:
            raise ValueError(f"spacing must be one of {list(options)} for the {self.name} process, got {spacing!r}")
        return spacing

    def warnings(self) -> list[str]:
        return []

    def to_dict(self) -> dict:  # pragma: no cover
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------- VP
class VPProcess(Process):
    """Discrete variance-preserving diffusion: alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t), t = 0..T."""

    name = "vp"
    continuous = False

    def __init__(self, schedule: NoiseSchedule):
        if not isinstance(schedule, NoiseSchedule):
            raise ValueError(f"a VP process needs a NoiseSchedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self.T = schedule.num_steps
        self.t_max = float(self.T)
        abar = schedule._abar64  # float64, index = timestep 0..T
        self._alpha = abar.sqrt()
        self._sigma = (1.0 - abar).sqrt()
        self._alpha_list, self._sigma_list = self._alpha.tolist(), self._sigma.tolist()
        # log(sigma / alpha) at t = 1..T, increasing: interpolated linearly between integer steps
        self._log_sve = torch.log(self._sigma[1:] / self._alpha[1:])
        self._log_sve_list = self._log_sve.tolist()

    def check_time(self, t, field: str = "t") -> None:
        tt = torch.as_tensor(t, dtype=torch.float64)
        if not tt.numel():
            return
        lo, hi = float(tt.min()), float(tt.max())
        if not torch.isfinite(tt).all() or lo < 0 or hi > self.T:
            raise ValueError(
                f"{field} must lie in 0..{self.T} (the model's T), got "
                f"{tt.tolist() if tt.numel() < 8 else f'values in {lo:g}..{hi:g}'}"
            )
        frac = tt[(tt != tt.round())]
        if frac.numel() and float(frac.min()) < 1:
            raise ValueError(
                f"{field}: a fractional time must lie in [1, {self.T}] (between two steps of the table), "
                f"got {float(frac.min()):g}"
            )

    def coefficients(self, t, like: torch.Tensor | None = None):
        # The samplers' fast path: a Python number gives Python floats (the same float64 arithmetic as
        # ``_coefficients64``, without a tensor op per call; the Karras grid's fractional t calls this ~7 times a step).
        if isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t <= self.T:
            if t == int(t):
                return self._alpha_list[int(t)], self._sigma_list[int(t)]
            if t >= 1:
                lo = min(int(t), self.T - 1)
                w = t - lo
                log_sve = (1 - w) * self._log_sve_list[lo - 1] + w * self._log_sve_list[lo]
                a = 1.0 / math.sqrt(1.0 + math.exp(2.0 * log_sve))
                return a, a * math.exp(log_sve)
        return super().coefficients(t, like)

    def _coefficients64(self, t: torch.Tensor):
        idx = t.round()
        exact = t == idx
        a = self._alpha[idx.long().clamp(0, self.T)]
        s = self._sigma[idx.long().clamp(0, self.T)]
        if bool(exact.all()):
            return a, s
        lo = t.floor().clamp(1, self.T - 1).long()
        w = t - lo
        log_sve = (1 - w) * self._log_sve[lo - 1] + w * self._log_sve[lo.clamp(max=self.T - 1)]
        a_f = torch.rsqrt(1 + torch.exp(2 * log_sve))  # sigma_ve = sigma / alpha, alpha^2 + sigma^2 = 1
        return torch.where(exact, a, a_f), torch.where(exact, s, a_f * torch.exp(log_sve))

    def time_from_sigma_ve(self, sigma_ve: float) -> float:
        """The (fractional) t whose sigma/alpha equals ``sigma_ve``, interpolating log(sigma/alpha) linearly between
        integer steps (diffusers' ``_sigma_to_t``); clipped to [1, T]."""
        ls = math.log(max(sigma_ve, 1e-300))
        tab = self._log_sve
        if ls <= float(tab[0]):
            return 1.0
        if ls >= float(tab[-1]):
            return float(self.T)
        hi = int(torch.searchsorted(tab, torch.tensor([ls], dtype=torch.float64))[0])
        lo = hi - 1
        w = (ls - float(tab[lo])) / (float(tab[hi]) - float(tab[lo]))
        return lo + 1 + w

    @property
    def max_steps(self) -> int:
        return self.T

    def timesteps(self, num_steps: int, spacing: str | None = None) -> list:
        """Descending times from T.  Every spacing starts at T ("trailing", Lin et al. 2024, table 2), so the first
        step sees x_T ~ N(0, I) as in training; ``num_steps`` = T visits every step.

        "uniform": even in t (T = 1000, 50 steps -> 1000, 980, ..., 20; diffusers' "trailing").
        "angle": even in the noise angle phi_t = arctan(sigma_t / alpha_t), from phi_T down to 0 (integer t).  A DDIM
        step is an Euler step of dy/dtau = eps_hat in y = x / alpha, tau = tan(phi); for data N(0, s^2) the exact flow
        is y = c sqrt(s^2 + tau^2), and the leading error of a run of Euler steps is smallest when every step covers
        the same stretch of arctan(tau / s): for data of unit scale, the same stretch of phi.  (On N(0, 1) with the
        linear schedule, DDIM-50 keeps 97.6% of the std with "angle" and 96.4% with "uniform".)
        "karras": sigma/alpha from its value at T to its value at t = 1 in Karras et al. 2022's rho = 7 spacing
        (eq. 5), at fractional t (diffusers' ``use_karras_sigmas``).
        """
        num_steps = self.check_num_steps(num_steps)
        spacing = self.check_spacing(spacing or "angle")
        T = self.T
        if spacing == "karras":
            if num_steps == 1:
                return [float(T)]
            smax, smin = math.exp(float(self._log_sve[-1])), math.exp(float(self._log_sve[0]))
            ramp = [i / (num_steps - 1) for i in range(num_steps)]
            r = KARRAS_RHO
            sig = [(smax ** (1 / r) + u * (smin ** (1 / r) - smax ** (1 / r))) ** r for u in ramp]
            ts = [self.time_from_sigma_ve(s) for s in sig]
            ts[0] = float(T)
            return ts
        if num_steps == T:
            return list(range(T, 0, -1))
        if spacing == "uniform":
            ratio = T / num_steps
            return [int(round(T - i * ratio)) for i in range(num_steps)]
        return _angle_spacing(self.schedule, num_steps)

    def training_times(self, batch: int, generator=None, device=None) -> torch.Tensor:
        """t ~ U{1..T} (Ho et al. 2020, Algorithm 1)."""
        return torch.randint(1, self.T + 1, (batch,), device=device, generator=generator)

    # ODE in Karras et al. 2022's coordinates: y = x / alpha, tau = sigma / alpha, dy/dtau = eps_hat (their eq. 4 with
    # s(t) = alpha and sigma(t) = sigma / alpha; the denoiser D(y; tau) = x0_hat).
    def ode_time(self, t) -> float:
        return self.sigma_ve(t)

    def ode_state(self, x, t):
        return x / self.coefficients(t)[0]

    def from_ode_state(self, y, t):
        return y * self.coefficients(t)[0]

    def ode_derivative(self, x0, eps, t):
        return eps

    def velocity(self, x0, eps, t):
        """v = alpha eps - sigma x0 = dx/dphi along x = cos(phi) x0 + sin(phi) eps (Salimans & Ho 2022, section 4)."""
        a, s = self.coefficients(t) if isinstance(t, (int, float)) else self.coefficients(t, x0)
        return a * eps - s * x0

    def warnings(self) -> list[str]:
        return self.schedule.warnings()

    def to_dict(self) -> dict:
        return {"name": self.name, "schedule": self.schedule.to_dict()}

    def __repr__(self) -> str:
        return f"VPProcess({self.schedule!r})"


def _angle_spacing(schedule: NoiseSchedule, num_steps: int) -> list[int]:
    T = schedule.num_steps
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


# ---------------------------------------------------------------------------------------------- flow
class FlowProcess(Process):
    """Rectified flow: x_t = (1 - t) x_0 + t eps for t in [0, 1]; its velocity dx_t/dt = eps - x_0.

    ``shift`` (Esser et al. 2024, eq. 23) moves the sampling grid towards high noise: t' = shift t / (1 + (shift - 1) t),
    applied to an even grid in t.  shift = 1 keeps it even.  Training times are uniform in [0, 1].
    """

    name = "flow"
    t_max = 1.0

    def __init__(self, shift: float = 1.0):
        if (
            isinstance(shift, bool)
            or not isinstance(shift, (int, float))
            or not math.isfinite(shift)
            or not 0.1 <= shift <= 10
        ):
            raise ValueError(f"flow_shift must be a number in [0.1, 10], got {shift!r}")
        self.shift = float(shift)

    def _coefficients64(self, t):
        return 1.0 - t, t.clone()

    def coefficients(self, t, like: torch.Tensor | None = None):
        if isinstance(t, (int, float)) and not isinstance(t, bool) and 0.0 <= t <= 1.0:
            return 1.0 - float(t), float(t)
        return super().coefficients(t, like)

    def shift_time(self, u):
        """The time t' = s u / (1 + (s - 1) u) that an even grid position u in [0, 1] maps to (Esser et al. 2024,
        eq. 23; s = 1 is the identity).  Works on floats, numpy arrays and tensors alike."""
        s = self.shift
        return s * u / (1 + (s - 1) * u)

    def timesteps(self, num_steps: int, spacing: str | None = None) -> list[float]:
        """t_i = shift_time(1 - i / N), i = 0..N-1 (then 0): even in t for shift = 1."""
        num_steps = self.check_num_steps(num_steps)
        self.check_spacing(spacing or "uniform")
        return [self.shift_time(1.0 - i / num_steps) for i in range(num_steps)]

    def training_times(self, batch: int, generator=None, device=None) -> torch.Tensor:
        """t ~ U[0, 1] (Lipman et al. 2023, eq. 23; Liu et al. 2022, eq. 1)."""
        return torch.rand((batch,), device=device, generator=generator)

    # ODE in t itself: dx/dt = eps_hat - x0_hat (the learned velocity).
    def ode_time(self, t) -> float:
        return float(t)

    def ode_state(self, x, t):
        return x

    def from_ode_state(self, y, t):
        return y

    def ode_derivative(self, x0, eps, t):
        return eps - x0

    def velocity(self, x0, eps, t):
        """v = eps - x0 = dx_t/dt (Liu et al. 2022, eq. 1)."""
        return eps - x0

    def to_dict(self) -> dict:
        return {"name": self.name, "shift": self.shift}

    def __repr__(self) -> str:
        return f"FlowProcess(shift={self.shift:g})"


# ---------------------------------------------------------------------------------------------- factory
def make_process(
    name: str = "vp",
    *,
    schedule: str = "linear",
    num_steps: int | None = 1000,
    custom_values: Sequence[float] | None = None,
    beta_range: Sequence[float] | None = None,
    shift: float = 1.0,
) -> Process:
    """A process by name: "vp" (with a schedule name and T) or "flow" (with a timestep shift)."""
    if name == "vp":
        kw = {}
        if beta_range is not None and schedule == "linear":
            kw = {"beta_start": float(beta_range[0]), "beta_end": float(beta_range[1])}
        return VPProcess(make_schedule(schedule, num_steps, custom_values, **kw))
    if name == "flow":
        return FlowProcess(shift)
    raise ValueError(f"process must be one of {list(PROCESSES)}, got {name!r}")


def process_from_dict(d: dict) -> Process:
    if d.get("name") == "vp":
        return VPProcess(schedule_from_dict(d["schedule"]))
    if d.get("name") == "flow":
        return FlowProcess(d.get("shift", 1.0))
    raise ValueError(f"process must be one of {list(PROCESSES)}, got {d.get('name')!r}")
