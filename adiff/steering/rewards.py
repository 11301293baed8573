"""Rewards: differentiable functions r(x) of a batch of samples, one number per sample.

A reward maps x [B, *data_shape] (float) to r [B].  Rewards drive reward-gradient guidance (autograd through
r, so they must be differentiable almost everywhere) and reward-guided fine-tuning, so every built-in and
every compiled expression returns finite values and finite gradients for finite input of moderate size.

Three ways to get one:

* ``make_reward(name, **params)`` for the built-ins listed in ``BUILTIN_REWARDS`` (2-D points and images);
* ``compile_expression(text)`` for a user formula over 2-D points such as ``-((x-1)**2 + (y+0.5)**2)``,
  compiled through a whitelist over Python's ``ast`` (the text is never given to eval/exec/compile);
* ``Reward(name, kind, description, formula, fn)`` around any function of your own.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from .reward_type import Reward

__all__ = [
    "Reward",
    "RewardSpec",
    "BUILTIN_REWARDS",
    "REWARD_NAMES",
    "make_reward",
    "MODE_RADIUS",
]

MODE_RADIUS = 2.0  # the 8-gaussians toy: mixture means at radius 2, angle k * pi / 4


# ---------------------------------------------------------------------------------------------- parameter checks
def _fmt(v: float) -> str:
    return f"{v:g}"


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _finite_float(field_name: str, v) -> float:
    if isinstance(v, torch.Tensor) and v.dim() == 0:
        v = v.item()
    if not _is_real(v) or not math.isfinite(float(v)):
        raise ValueError(f"{field_name} must be a finite number, got {v!r}")
    return float(v)


def _positive_float(field_name: str, v) -> float:
    f = _finite_float(field_name, v)
    if f <= 0:
        raise ValueError(f"{field_name} must be a finite number > 0, got {v!r}")
    return f


def _non_negative_float(field_name: str, v) -> float:
    f = _finite_float(field_name, v)
    if f < 0:
        raise ValueError(f"{field_name} must be a finite number >= 0, got {v!r}")
    return f


def _numbers(field_name: str, v, n: int, words: str) -> tuple[float, ...]:
    if isinstance(v, torch.Tensor):
        v = v.tolist()
    ok = isinstance(v, (tuple, list)) and len(v) == n and all(_is_real(c) and math.isfinite(float(c)) for c in v)
    if not ok:
        raise ValueError(f"{field_name} must be {words}, got {v!r}")
    return tuple(float(c) for c in v)


def _int_in(field_name: str, v, lo: int, hi: int) -> int:
    if _is_real(v) and not isinstance(v, numbers.Integral) and float(v).is_integer():
        v = int(v)  # 3.0 from a UI number box is unambiguous
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or not lo <= int(v) <= hi:
        raise ValueError(f"{field_name} must be an integer in {lo}..{hi}, got {v!r}")
    return int(v)


def _device(field_name: str, v) -> str | None:
    if v is None:
        return None
    try:
        return str(torch.device(v))
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{field_name} must be a torch device such as 'cpu' or 'cuda', got {v!r}") from err


def _safe_norm(d: torch.Tensor) -> torch.Tensor:
    """||d|| over the last dim [B, D] -> [B], with a finite (zero) gradient at d = 0."""
    sq = (d * d).sum(-1)
    pos = sq > 0
    return torch.where(pos, torch.where(pos, sq, torch.ones_like(sq)).sqrt(), torch.zeros_like(sq))


# ---------------------------------------------------------------------------------------------- points
def _x_coordinate(scale: float = 1.0) -> Reward:
    return Reward(
        "x_coordinate",
        "points",
        "Pushes samples to the right (larger x); a negative scale pushes them left.",
        f"r(x, y) = {_fmt(scale)} * x",
        lambda x: scale * x[:, 0],
        {"scale": scale},
    )


def _distance_to_target(target: tuple[float, float] = (1.0, 1.0)) -> Reward:
    tx, ty = target

    def fn(x: torch.Tensor) -> torch.Tensor:
        t = torch.tensor([tx, ty], dtype=x.dtype, device=x.device)
        return -((x - t) ** 2).sum(-1)  # [B]

    return Reward(
        "distance_to_target",
        "points",
        "Minus the squared distance to a target point; largest (0) at the target.",
        f"r(x, y) = -((x - {_fmt(tx)})^2 + (y - {_fmt(ty)})^2)",
        fn,
        {"target": (tx, ty)},
    )


def _inside_ring(r_in: float = 1.0, r_out: float = 2.0, sharpness: float = 4.0) -> Reward:
    if not r_in < r_out:
        raise ValueError(f"r_in must be smaller than r_out, got r_in={r_in!r}, r_out={r_out!r}")

    def fn(x: torch.Tensor) -> torch.Tensor:
        rho = _safe_norm(x)  # [B]
        return torch.sigmoid(sharpness * (rho - r_in)) * torch.sigmoid(sharpness * (r_out - rho))

    return Reward(
        "inside_ring",
        "points",
        "Soft indicator (0..1) of lying in the ring r_in <= |x| <= r_out; sharpness sets how soft its edges are.",
        f"r(x, y) = sigmoid({_fmt(sharpness)}(|x| - {_fmt(r_in)})) * sigmoid({_fmt(sharpness)}({_fmt(r_out)} - |x|))",
        fn,
        {"r_in": r_in, "r_out": r_out, "sharpness": sharpness},
    )


def _inside_box(box: tuple[float, float, float, float] = (0.0, 2.0, 0.0, 2.0), sharpness: float = 4.0) -> Reward:
    x0, x1, y0, y1 = box
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"box must be (x0, x1, y0, y1) with x0 < x1 and y0 < y1, got {box!r}")

    def fn(x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid
        px, py = x[:, 0], x[:, 1]
        return s(sharpness * (px - x0)) * s(sharpness * (x1 - px)) * s(sharpness * (py - y0)) * s(sharpness * (y1 - py))

    return Reward(
        "inside_box",
        "points",
        "Soft indicator (0..1) of lying in the box x0 <= x <= x1, y0 <= y <= y1 (a product of four sigmoids).",
        f"r(x, y) = s(x - {_fmt(x0)}) s({_fmt(x1)} - x) s(y - {_fmt(y0)}) s({_fmt(y1)} - y),"
        f" s(u) = sigmoid({_fmt(sharpness)} u)",
        fn,
        {"box": (x0, x1, y0, y1), "sharpness": sharpness},
    )


def _mode(k: int = 0) -> Reward:
    mx, my = MODE_RADIUS * math.cos(k * math.pi / 4), MODE_RADIUS * math.sin(k * math.pi / 4)

    def fn(x: torch.Tensor) -> torch.Tensor:
        mu = torch.tensor([mx, my], dtype=x.dtype, device=x.device)
        return -0.5 * ((x - mu) ** 2).sum(-1)  # log N(x; mu_k, I) up to a constant

    return Reward(
        "mode",
        "points",
        "Affinity to mode k of the 8-gaussians data (mean at radius 2, angle k*pi/4): a unit-Gaussian log-density.",
        f"r(x, y) = -((x - {mx:.3g})^2 + (y - {my:.3g})^2) / 2",
        fn,
        {"k": k},
    )


# ---------------------------------------------------------------------------------------------- images
def _brightness() -> Reward:
    return Reward(
        "brightness",
        "images",
        "Mean pixel value (images live in [-1, 1]; -1 is background, +1 is ink).",
        "r(x) = mean(x)",
        lambda x: x.mean(dim=(1, 2, 3)),
        {},
    )


def _symmetry() -> Reward:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return -((x - torch.flip(x, dims=(-1,))) ** 2).mean(dim=(1, 2, 3))

    return Reward(
        "symmetry",
        "images",
        "Left-right mirror symmetry: minus the mean squared difference to the mirror image.",
        "r(x) = -mean((x - flip_lr(x))^2)",
        fn,
        {},
    )


def _ink_in_region(region: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 0.5)) -> Reward:
    top, bottom, left, right = region
    if not (0.0 <= top < bottom <= 1.0 and 0.0 <= left < right <= 1.0):
        raise ValueError(
            f"region must be (top, bottom, left, right) fractions with 0 <= top < bottom <= 1 and "
            f"0 <= left < right <= 1, got {region!r}"
        )

    def fn(x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-2:]
        r0, c0 = min(int(round(top * H)), H - 1), min(int(round(left * W)), W - 1)
        r1, c1 = max(int(round(bottom * H)), r0 + 1), max(int(round(right * W)), c0 + 1)  # at least one pixel
        return ((x[:, :, r0:r1, c0:c1] + 1) / 2).mean(dim=(1, 2, 3))

    return Reward(
        "ink_in_region",
        "images",
        "Mean ink (x + 1) / 2 inside a rectangle given as fractions (top, bottom, left, right) of the image.",
        f"r(x) = mean((x + 1) / 2 over rows {_fmt(top)}..{_fmt(bottom)}, columns {_fmt(left)}..{_fmt(right)})",
        fn,
        {"region": (top, bottom, left, right)},
    )


def _classifier_logprob(digit: int = 0, device: str | None = None) -> Reward:
    from adiff.eval.classifier import classifier_for_shape  # lazy: loads weights from assets/

    # The loader caches one shared, read-only model per file and device (eval mode, requires_grad=False): never
    # move it.  The image size picks the classifier: 16x16 glyphs or the real 8x8 digits.
    home = torch.device(device or "cpu")
    classifier_for_shape((1, 16, 16), home)  # fails here, early, when the weights are missing
    classifier_for_shape((1, 8, 8), home)

    def fn(x: torch.Tensor) -> torch.Tensor:
        try:
            net = classifier_for_shape(x.shape[1:], x.device)
        except ValueError as e:
            raise ValueError(
                f"x has shape {tuple(x.shape)}, which reward 'classifier_logprob' cannot read: {e}"
            ) from None
        logits = net(x.float())  # [B, 10]
        return torch.log_softmax(logits, dim=-1)[:, digit].to(x.dtype)

    return Reward(
        "classifier_logprob",
        "images",
        "Log-probability that the shipped digit classifier (16x16 glyphs or 8x8 real digits, by the image size) "
        "reads the image as the digit.",
        f"r(x) = log p_classifier(digit = {digit} | x)",
        fn,
        {"digit": digit, "device": device},
    )


# ---------------------------------------------------------------------------------------------- the catalogue
@dataclass(frozen=True)
class RewardSpec:
    """One built-in reward, for listing in a UI: its defaults are what ``make_reward(name)`` uses."""

    name: str
    kind: str  # "points" | "images" | "any"
    description: str
    formula: str  # generic formula with the parameter names
    defaults: Mapping[str, Any] = field(hash=False)
    _checks: Mapping[str, Callable[[str, Any], Any]] = field(repr=False, compare=False, hash=False)
    _factory: Callable[..., Reward] = field(repr=False, compare=False, hash=False)


def _spec(name, kind, description, formula, factory, **params) -> RewardSpec:
    defaults = {k: v for k, (v, _) in params.items()}
    checks = {k: c for k, (_, c) in params.items()}
    return RewardSpec(name, kind, description, formula, MappingProxyType(defaults), MappingProxyType(checks), factory)


def _pair(f, v):
    return _numbers(f, v, 2, "two finite numbers")


def _quad(f, v):
    return _numbers(f, v, 4, "four finite numbers")


BUILTIN_REWARDS: tuple[RewardSpec, ...] = (
    _spec(
        "x_coordinate",
        "points",
        "Pushes samples to the right.",
        "r(x, y) = scale * x",
        _x_coordinate,
        scale=(1.0, _finite_float),
    ),
    _spec(
        "distance_to_target",
        "points",
        "Minus the squared distance to a target point.",
        "r(x, y) = -||(x, y) - target||^2",
        _distance_to_target,
        target=((1.0, 1.0), _pair),
    ),
    _spec(
        "inside_ring",
        "points",
        "Soft indicator of the ring r_in <= |x| <= r_out.",
        "r = sigmoid(s(|x| - r_in)) * sigmoid(s(r_out - |x|))",
        _inside_ring,
        r_in=(1.0, _non_negative_float),
        r_out=(2.0, _positive_float),
        sharpness=(4.0, _positive_float),
    ),
    _spec(
        "inside_box",
        "points",
        "Soft indicator of an axis-aligned box (x0, x1, y0, y1).",
        "r = s(x - x0) s(x1 - x) s(y - y0) s(y1 - y)",
        _inside_box,
        box=((0.0, 2.0, 0.0, 2.0), _quad),
        sharpness=(4.0, _positive_float),
    ),
    _spec(
        "mode",
        "points",
        "Affinity to mode k of the 8-gaussians data (radius 2, angle k*pi/4).",
        "r(x) = -||x - mu_k||^2 / 2",
        _mode,
        k=(0, lambda f, v: _int_in(f, v, 0, 7)),
    ),
    _spec("brightness", "images", "Mean pixel value.", "r(x) = mean(x)", _brightness),
    _spec("symmetry", "images", "Left-right mirror symmetry.", "r(x) = -mean((x - flip_lr(x))^2)", _symmetry),
    _spec(
        "ink_in_region",
        "images",
        "Mean ink inside a rectangle (top, bottom, left, right) in fractions.",
        "r(x) = mean((x + 1) / 2 in region)",
        _ink_in_region,
        region=((0.0, 1.0, 0.0, 0.5), _quad),
    ),
    _spec(
        "classifier_logprob",
        "images",
        "Log-probability of a digit under the digit classifier (glyphs or digits).",
        "r(x) = log p(digit | x)",
        _classifier_logprob,
        digit=(0, lambda f, v: _int_in(f, v, 0, 9)),
        device=(None, _device),
    ),
)
REWARD_NAMES: tuple[str, ...] = tuple(s.name for s in BUILTIN_REWARDS)


def make_reward(name: str, **params) -> Reward:
    """Build a built-in reward by name; unknown names, unknown parameters and bad values raise ValueError."""
    spec = next((s for s in BUILTIN_REWARDS if s.name == name), None) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"reward must be one of {list(REWARD_NAMES)}, got {name!r}")
    unknown = sorted(set(params) - set(spec.defaults))
    if unknown:
        raise ValueError(
            f"unknown parameter {unknown[0]!r} for reward {name!r}; allowed: {list(spec.defaults) or 'none'}"
        )
    values = {k: spec._checks[k](k, params.get(k, v)) for k, v in spec.defaults.items()}
    return spec._factory(**values)
