"""Noise schedules of the forward process q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I).

Timesteps run t = 1..T; t = 0 is clean data (abar_0 = 1).  Every schedule is a handful of tensors computed
once in float64 from its betas (the habit of openai/improved-diffusion and lucidrains'
denoising-diffusion-pytorch).  Public per-step attributes (``betas``, ``alphas``, ``alphas_cumprod``,
``noise_levels``, ``snr``) are float32 tensors of length T whose entry ``[t - 1]`` belongs to timestep t.
Internally the tables are padded with t = 0 in front so that ``extract(table, t)`` indexes with t itself
and can never wrap around (the original design's ``get_noise_level(t - 1)`` returned the noisiest step for t = 1
because index -1 is the last element).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "NoiseSchedule",
    "LinearNoiseSchedule",
    "CosineNoiseSchedule",
    "SigmoidNoiseSchedule",
    "CustomNoiseSchedule",
    "make_schedule",
    "SCHEDULES",
    "MAX_STEPS",
]

MAX_STEPS = 10_000  # upper bound on T accepted anywhere (UI and config)
SCHEDULES = ("linear", "cosine", "sigmoid", "custom")


def _check_num_steps(num_steps) -> int:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int):
        raise ValueError(f"num_diffusion_steps must be an integer, got {num_steps!r}")
    if not 1 <= num_steps <= MAX_STEPS:
        raise ValueError(f"num_diffusion_steps must be in 1..{MAX_STEPS}, got {num_steps!r}")
    return num_steps


class NoiseSchedule:
    """A discrete variance-preserving schedule defined by its betas (float64, length T, each in (0, 1))."""

    name = "betas"

    def __init__(self, betas: torch.Tensor | Sequence[float]):
        b = torch.as_tensor(betas, dtype=torch.float64).flatten()
        _check_num_steps(int(b.numel()))
        if not torch.isfinite(b).all() or (b <= 0).any() or (b >= 1).any():
            raise ValueError("betas must be finite and lie strictly in (0, 1)")
        self.num_steps = int(b.numel())
        one = torch.ones(1, dtype=torch.float64)
        abar = torch.cumprod(1.0 - b, dim=0)  # abar_t = prod_{s<=t} (1 - beta_s)   (Ho et al. 2020, eq. 4)
        # Padded float64 tables, index = timestep (0..T).
        self._betas64 = torch.cat([torch.zeros(1, dtype=torch.float64), b])
        self._abar64 = torch.cat([one, abar])
        # Public float32 views, index t - 1 for t = 1..T.
        self.betas = b.float()
        self.alphas = (1.0 - b).float()
        self.alphas_cumprod = abar.float()
        self.alphas_cumprod_prev = self._abar64[:-1].float()
        self.noise_levels = torch.sqrt(1.0 - abar).float()  # sigma_t = sqrt(1 - abar_t)
        self.snr = (abar / (1.0 - abar)).float()  # SNR(t) = abar_t / (1 - abar_t)   (Kingma et al. 2021)
        self.log_snr = torch.log(abar / (1.0 - abar)).float()
        # Noise angle phi_t = arctan(sigma_t / sqrt(abar_t)), float64, index t = 0..T (phi_0 = 0, rising to < pi/2).
        self.angles64 = torch.atan(((1.0 - self._abar64) / self._abar64).sqrt())
        self._device_cache: dict[tuple[str, torch.dtype], dict[str, torch.Tensor]] = {}

    # ------------------------------------------------------------------ lookup
    def _tables(self, device, dtype=torch.float32) -> dict[str, torch.Tensor]:
        key = (str(device), dtype)
        tab = self._device_cache.get(key)
        if tab is None:
            tab = {
                "abar": self._abar64.to(device=device, dtype=dtype),
                "beta": self._betas64.to(device=device, dtype=dtype),
                "sigma": torch.sqrt(1.0 - self._abar64).to(device=device, dtype=dtype),
            }
            self._device_cache[key] = tab
        return tab

    def check_timesteps(self, t, allow_zero: bool = True) -> None:
        lo = 0 if allow_zero else 1
        tt = torch.as_tensor(t)
        if tt.is_floating_point():
            raise ValueError(f"timestep must be an integer, got {t!r}")
        if tt.numel() and (int(tt.min()) < lo or int(tt.max()) > self.num_steps):
            raise ValueError(
                f"timestep must be in {lo}..{self.num_steps}, got {tt.tolist() if tt.numel() < 8 else '[...]'}"
            )

    def abar(self, t, like: torch.Tensor | None = None) -> torch.Tensor:
        """abar_t for integer t in 0..T (int or LongTensor [B]); shaped to broadcast against ``like``."""
        return self.extract("abar", t, like)

    def extract(self, table: str, t, like: torch.Tensor | None = None) -> torch.Tensor:
        """Pick entries of a padded table for a batch of timesteps, reshaped to [B, 1, ..., 1] like ``like``."""
        device = like.device if like is not None else "cpu"
        dtype = like.dtype if like is not None and like.is_floating_point() else torch.float32
        tab = self._tables(device, dtype)[table]
        if isinstance(t, int):
            self.check_timesteps(t)
            out = tab[t]
            return out if like is None else out.reshape([1] * like.dim())
        t = torch.as_tensor(t, device=device)
        self.check_timesteps(t)
        out = tab[t.long()]
        if like is not None:
            out = out.reshape(out.shape + (1,) * (like.dim() - out.dim()))
        return out

    def get_noise_level(self, t) -> torch.Tensor:
        """sigma_t = sqrt(1 - abar_t) for t in 0..T (0 at t = 0); an int gives a 0-d tensor, a tensor [B] gives [B]."""
        return self.extract("sigma", t)

    def q_sample(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps   (Ho et al. 2020, eq. 4)."""
        abar = self.abar(t, x0)
        return abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise

    # ------------------------------------------------------------------ facts for the UI
    def warnings(self) -> list[str]:
        """What users keep tripping on, in words (empty when the schedule is sound)."""
        out = []
        abar_T = float(self._abar64[-1])
        if abar_T > 1e-3:
            out.append(
                f"terminal SNR is {abar_T / (1 - abar_T):.2g} (sqrt(abar_T) = {math.sqrt(abar_T):.3f}): x_T still "
                "carries signal, so starting the sampler from pure noise does not match training"
            )
        if (self._betas64[1:] >= 0.999 - 1e-12).any():
            n = int((self._betas64[1:] >= 0.999 - 1e-12).sum())
            out.append(f"{n} beta(s) hit the 0.999 clip: the last steps destroy the signal abruptly")
        if self.num_steps < 50:
            out.append(f"only T = {self.num_steps} steps: each reverse step is large and DDPM samples get blurry")
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "num_steps": self.num_steps}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(T={self.num_steps})"


class LinearNoiseSchedule(NoiseSchedule):
    """betas = linspace(beta_start, beta_end, T)   (Ho et al. 2020, section 4: 1e-4 to 0.02 for T = 1000).

    That range only suits T = 1000: at T = 100 it leaves sqrt(abar_T) = 0.6, so x_T is far from the N(0, I) the sampler
    starts from.  Unless a range is given, it is rescaled by 1000 / T as improved-diffusion does
    (``get_named_beta_schedule``, Nichol & Dhariwal 2021), which keeps abar_T near 4e-5 at every T; beta_end is capped
    at 0.999 (T < 20)."""

    name = "linear"

    def __init__(self, num_steps: int, beta_start: float | None = None, beta_end: float | None = None):
        num_steps = _check_num_steps(num_steps)
        scale = 1000.0 / num_steps
        self.beta_start = float(beta_start) if beta_start is not None else min(1e-4 * scale, 0.999)
        self.beta_end = float(beta_end) if beta_end is not None else min(0.02 * scale, 0.999)
        if not 0 < self.beta_start <= self.beta_end < 1:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start!r}, {beta_end!r}")
        # float32 linspace as diffusers' DDPMScheduler does, so parity holds to float rounding.
        super().__init__(torch.linspace(self.beta_start, self.beta_end, num_steps, dtype=torch.float32).double())

    def to_dict(self) -> dict:
        return {**super().to_dict(), "beta_start": self.beta_start, "beta_end": self.beta_end}


class CosineNoiseSchedule(NoiseSchedule):
    """Nichol & Dhariwal 2021, eq. 17: abar(t) = f(t) / f(0), f(t) = cos^2(((t/T + s) / (1 + s)) * pi/2);
    beta_t = min(1 - abar(t) / abar(t - 1), 0.999) (their clip, which keeps beta_T < 1)."""

    name = "cosine"

    def __init__(self, num_steps: int, s: float = 0.008, max_beta: float = 0.999):
        num_steps = _check_num_steps(num_steps)
        self.s, self.max_beta = float(s), float(max_beta)
        t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
        f = torch.cos((t + self.s) / (1 + self.s) * math.pi / 2) ** 2
        betas = torch.clamp(1.0 - f[1:] / f[:-1], max=self.max_beta)
        super().__init__(betas)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "s": self.s, "max_beta": self.max_beta}


class SigmoidNoiseSchedule(NoiseSchedule):
    """Sigmoid schedule of lucidrains/denoising-diffusion-pytorch (``sigmoid_beta_schedule``, after Jabri et al. 2022):
    abar(t) = (sigmoid(end/tau) - sigmoid((t/T (end - start) + start) / tau)) / (sigmoid(end/tau) - sigmoid(start/tau)),
    normalised so abar(0) = 1, betas clipped to [0, 0.999] (and kept above 1e-12 so they stay in (0, 1))."""

    name = "sigmoid"

    def __init__(self, num_steps: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0):
        num_steps = _check_num_steps(num_steps)
        self.start, self.end, self.tau = float(start), float(end), float(tau)
        t = torch.linspace(0, num_steps, num_steps + 1, dtype=torch.float64) / num_steps
        v_start = torch.sigmoid(torch.tensor(self.start / self.tau, dtype=torch.float64))
        v_end = torch.sigmoid(torch.tensor(self.end / self.tau, dtype=torch.float64))
        abar = (-torch.sigmoid((t * (self.end - self.start) + self.start) / self.tau) + v_end) / (v_end - v_start)
        abar = abar / abar[0]
        betas = torch.clamp(1.0 - abar[1:] / abar[:-1], 1e-12, 0.999)
        super().__init__(betas)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "start": self.start, "end": self.end, "tau": self.tau}


def validate_custom_values(values, field: str = "custom_schedule_values") -> list[float]:
    """User noise levels sigma: a list of >= 2 finite numbers strictly inside (0, 1), strictly increasing."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) and not torch.is_tensor(values):
        raise ValueError(f"{field} must be a list of numbers, got {values!r}")
    vals = []
    for i, v in enumerate(list(values.tolist() if torch.is_tensor(values) else values)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{field}[{i}] must be a number, got {v!r}")
        if not math.isfinite(v) or not 0.0 < v < 1.0:
            raise ValueError(
                f"{field}[{i}] = {v!r} is outside (0, 1): noise levels sqrt(1 - abar_t) lie strictly between 0 and 1"
            )
        if vals and v <= vals[-1]:
            raise ValueError(
                f"{field}[{i}] = {v!r} is not greater than {field}[{i - 1}] = {vals[-1]!r}: noise levels must strictly increase with t"
            )
        vals.append(float(v))
    if len(vals) < 2:
        raise ValueError(f"{field} needs at least 2 values, got {len(vals)}")
    if len(vals) > MAX_STEPS:
        raise ValueError(f"{field} has {len(vals)} values, more than {MAX_STEPS}")
    return vals


class CustomNoiseSchedule(NoiseSchedule):
    """The user's noise levels sigma_i = sqrt(1 - abar), linearly interpolated to T steps as the original design does
    (positions linspace(0, n - 1, T)); then abar_t = 1 - sigma_t^2 and beta_t = 1 - abar_t / abar_{t-1}."""

    name = "custom"

    def __init__(self, values: Sequence[float], num_steps: int):
        num_steps = _check_num_steps(num_steps)
        self.values = validate_custom_values(values)
        v = torch.tensor(self.values, dtype=torch.float64)
        pos = torch.linspace(0, len(v) - 1, num_steps, dtype=torch.float64)
        lo = pos.floor().long().clamp(max=len(v) - 1)
        hi = (lo + 1).clamp(max=len(v) - 1)
        w = pos - lo
        sigma = (1 - w) * v[lo] + w * v[hi]
        if num_steps > 1 and not (sigma[1:] > sigma[:-1]).all():
            raise ValueError("custom_schedule_values interpolate to a non-increasing noise level at this T")
        abar = 1.0 - sigma**2
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        super().__init__(1.0 - abar / abar_prev)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "values": list(self.values)}


def make_schedule(name: str, num_steps: int, custom_values: Sequence[float] | None = None, **kwargs) -> NoiseSchedule:
    """Build a schedule by name ("linear" | "cosine" | "sigmoid" | "custom")."""
    if name == "linear":
        return LinearNoiseSchedule(num_steps, **kwargs)
    if name == "cosine":
        return CosineNoiseSchedule(num_steps, **kwargs)
    if name == "sigmoid":
        return SigmoidNoiseSchedule(num_steps, **kwargs)
    if name == "custom":
        if custom_values is None:
            raise ValueError("noise_schedule 'custom' needs custom_schedule_values")
        return CustomNoiseSchedule(custom_values, num_steps)
    raise ValueError(f"noise_schedule must be one of {list(SCHEDULES)}, got {name!r}")


def schedule_from_dict(d: dict) -> NoiseSchedule:
    d = dict(d)
    name, T = d.pop("name"), d.pop("num_steps")
    if name == "custom":
        return CustomNoiseSchedule(d["values"], T)
    return make_schedule(name, T, **d)
