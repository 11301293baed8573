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

import ast
import math
import numbers
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import torch

__all__ = [
    "Reward",
    "RewardSpec",
    "BUILTIN_REWARDS",
    "REWARD_NAMES",
    "make_reward",
    "ExpressionError",
    "compile_expression",
    "EXPRESSION_HELP",
    "MODE_RADIUS",
]

KINDS = ("points", "images", "any")
MODE_RADIUS = 2.0  # the 8-gaussians toy: mixture means at radius 2, angle k * pi / 4


# ---------------------------------------------------------------------------------------------- Reward
@dataclass(frozen=True)
class Reward:
    """A named, differentiable reward: ``reward(x [B, *data_shape]) -> [B]``.

    kind: "points" (x [B, 2]), "images" (x [B, C, H, W]) or "any" (x [B, ...]); checked on every call.
    formula: a short human-readable formula for a slide, e.g. "r(x, y) = x".
    params: the parameters it was made with (so ``make_reward(name, **params)`` rebuilds it).
    """

    name: str
    kind: str
    description: str
    formula: str
    fn: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        if not callable(self.fn):
            raise ValueError(f"fn must be callable, got {self.fn!r}")

    def check_input(self, x) -> None:
        """Raise ValueError unless x is a float tensor [B, ...] that this reward's kind accepts."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            got = f"a {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a floating-point tensor for reward {self.name!r}, got {got}")
        shape = tuple(x.shape)
        if self.kind == "points" and (x.dim() != 2 or shape[1] != 2):
            raise ValueError(f"x must have shape [B, 2] for the points reward {self.name!r}, got shape {shape}")
        if self.kind == "images" and x.dim() != 4:
            raise ValueError(f"x must have shape [B, C, H, W] for the images reward {self.name!r}, got shape {shape}")
        if self.kind == "any" and x.dim() < 2:
            raise ValueError(f"x must have shape [B, *data_shape] for reward {self.name!r}, got shape {shape}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, *data_shape] -> r [B] (same dtype and device as x)."""
        self.check_input(x)
        out = self.fn(x)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (x.shape[0],):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"reward {self.name!r} must return shape [B] = ({x.shape[0]},), got {got}")
        return out


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
        "x_coordinate", "points", "Pushes samples to the right (larger x); a negative scale pushes them left.",
        f"r(x, y) = {_fmt(scale)} * x", lambda x: scale * x[:, 0], {"scale": scale},
    )


def _distance_to_target(target: tuple[float, float] = (1.0, 1.0)) -> Reward:
    tx, ty = target

    def fn(x: torch.Tensor) -> torch.Tensor:
        t = torch.tensor([tx, ty], dtype=x.dtype, device=x.device)
        return -((x - t) ** 2).sum(-1)  # [B]

    return Reward(
        "distance_to_target", "points", "Minus the squared distance to a target point; largest (0) at the target.",
        f"r(x, y) = -((x - {_fmt(tx)})^2 + (y - {_fmt(ty)})^2)", fn, {"target": (tx, ty)},
    )


def _inside_ring(r_in: float = 1.0, r_out: float = 2.0, sharpness: float = 4.0) -> Reward:
    if not r_in < r_out:
        raise ValueError(f"r_in must be smaller than r_out, got r_in={r_in!r}, r_out={r_out!r}")

    def fn(x: torch.Tensor) -> torch.Tensor:
        rho = _safe_norm(x)  # [B]
        return torch.sigmoid(sharpness * (rho - r_in)) * torch.sigmoid(sharpness * (r_out - rho))

    return Reward(
        "inside_ring", "points",
        "Soft indicator (0..1) of lying in the ring r_in <= |x| <= r_out; sharpness sets how soft its edges are.",
        f"r(x, y) = sigmoid({_fmt(sharpness)}(|x| - {_fmt(r_in)})) * sigmoid({_fmt(sharpness)}({_fmt(r_out)} - |x|))",
        fn, {"r_in": r_in, "r_out": r_out, "sharpness": sharpness},
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
        "inside_box", "points",
        "Soft indicator (0..1) of lying in the box x0 <= x <= x1, y0 <= y <= y1 (a product of four sigmoids).",
        f"r(x, y) = s(x - {_fmt(x0)}) s({_fmt(x1)} - x) s(y - {_fmt(y0)}) s({_fmt(y1)} - y),"
        f" s(u) = sigmoid({_fmt(sharpness)} u)",
        fn, {"box": (x0, x1, y0, y1), "sharpness": sharpness},
    )


def _mode(k: int = 0) -> Reward:
    mx, my = MODE_RADIUS * math.cos(k * math.pi / 4), MODE_RADIUS * math.sin(k * math.pi / 4)

    def fn(x: torch.Tensor) -> torch.Tensor:
        mu = torch.tensor([mx, my], dtype=x.dtype, device=x.device)
        return -0.5 * ((x - mu) ** 2).sum(-1)  # log N(x; mu_k, I) up to a constant

    return Reward(
        "mode", "points",
        "Affinity to mode k of the 8-gaussians data (mean at radius 2, angle k*pi/4): a unit-Gaussian log-density.",
        f"r(x, y) = -((x - {mx:.3g})^2 + (y - {my:.3g})^2) / 2", fn, {"k": k},
    )


# ---------------------------------------------------------------------------------------------- images
def _brightness() -> Reward:
    return Reward(
        "brightness", "images", "Mean pixel value (images live in [-1, 1]; -1 is background, +1 is ink).",
        "r(x) = mean(x)", lambda x: x.mean(dim=(1, 2, 3)), {},
    )


def _symmetry() -> Reward:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return -((x - torch.flip(x, dims=(-1,))) ** 2).mean(dim=(1, 2, 3))

    return Reward(
        "symmetry", "images", "Left-right mirror symmetry: minus the mean squared difference to the mirror image.",
        "r(x) = -mean((x - flip_lr(x))^2)", fn, {},
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
        "ink_in_region", "images",
        "Mean ink (x + 1) / 2 inside a rectangle given as fractions (top, bottom, left, right) of the image.",
        f"r(x) = mean((x + 1) / 2 over rows {_fmt(top)}..{_fmt(bottom)}, columns {_fmt(left)}..{_fmt(right)})",
        fn, {"region": (top, bottom, left, right)},
    )


def _classifier_logprob(digit: int = 0, device: str | None = None) -> Reward:
    from adiff.classifier import load_glyph_classifier  # lazy: loads weights from assets/

    # The loader caches one shared, read-only model per device (eval mode, requires_grad=False): never move it.
    home = torch.device(device or "cpu")
    model = load_glyph_classifier(device=home)  # fails here, early, when the weights are missing

    def fn(x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != (1, 16, 16):
            raise ValueError(f"x must have shape [B, 1, 16, 16] for reward 'classifier_logprob', got shape {tuple(x.shape)}")
        net = model if x.device == home else load_glyph_classifier(device=x.device)
        logits = net(x.float())  # [B, 10]
        return torch.log_softmax(logits, dim=-1)[:, digit].to(x.dtype)

    return Reward(
        "classifier_logprob", "images", "Log-probability that the glyph classifier reads the image as the digit.",
        f"r(x) = log p_classifier(digit = {digit} | x)", fn, {"digit": digit, "device": device},
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
    _spec("x_coordinate", "points", "Pushes samples to the right.", "r(x, y) = scale * x",
          _x_coordinate, scale=(1.0, _finite_float)),
    _spec("distance_to_target", "points", "Minus the squared distance to a target point.",
          "r(x, y) = -||(x, y) - target||^2", _distance_to_target, target=((1.0, 1.0), _pair)),
    _spec("inside_ring", "points", "Soft indicator of the ring r_in <= |x| <= r_out.",
          "r = sigmoid(s(|x| - r_in)) * sigmoid(s(r_out - |x|))", _inside_ring,
          r_in=(1.0, _non_negative_float), r_out=(2.0, _positive_float), sharpness=(4.0, _positive_float)),
    _spec("inside_box", "points", "Soft indicator of an axis-aligned box (x0, x1, y0, y1).",
          "r = s(x - x0) s(x1 - x) s(y - y0) s(y1 - y)", _inside_box,
          box=((0.0, 2.0, 0.0, 2.0), _quad), sharpness=(4.0, _positive_float)),
    _spec("mode", "points", "Affinity to mode k of the 8-gaussians data (radius 2, angle k*pi/4).",
          "r(x) = -||x - mu_k||^2 / 2", _mode, k=(0, lambda f, v: _int_in(f, v, 0, 7))),
    _spec("brightness", "images", "Mean pixel value.", "r(x) = mean(x)", _brightness),
    _spec("symmetry", "images", "Left-right mirror symmetry.", "r(x) = -mean((x - flip_lr(x))^2)", _symmetry),
    _spec("ink_in_region", "images", "Mean ink inside a rectangle (top, bottom, left, right) in fractions.",
          "r(x) = mean((x + 1) / 2 in region)", _ink_in_region, region=((0.0, 1.0, 0.0, 0.5), _quad)),
    _spec("classifier_logprob", "images", "Log-probability of a digit under the glyph classifier.",
          "r(x) = log p(digit | x)", _classifier_logprob,
          digit=(0, lambda f, v: _int_in(f, v, 0, 9)), device=(None, _device)),
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


# ---------------------------------------------------------------------------------------------- expressions
MAX_EXPRESSION_CHARS = 200
MAX_EXPRESSION_DEPTH = 30
MAX_EXPRESSION_NODES = 200
MAX_CONSTANT = 1e6
MAX_EXPONENT = 8
_BIG = 1e15  # every intermediate value (and gradient) is clamped to [-_BIG, _BIG]
_TINY = 1e-12  # |denominator| floor, log floor

_VARIABLES = ("x", "y", "r", "theta")
_CONSTANTS = {"pi": math.pi, "e": math.e}
_ARITY = {"abs": 1, "sqrt": 1, "exp": 1, "log": 1, "sin": 1, "cos": 1, "tanh": 1, "sigmoid": 1, "clamp": 3,
          "min": None, "max": None}  # None: two or more
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.Mod: "%"}
_CMPOPS = {ast.Lt: torch.lt, ast.LtE: torch.le, ast.Gt: torch.gt, ast.GtE: torch.ge, ast.Eq: torch.eq,
           ast.NotEq: torch.ne}

EXPRESSION_HELP = f"""A reward r(x, y) over 2-D points, written as a Python-like formula, e.g. -((x-1)**2 + (y+0.5)**2).
Names: x, y, r = sqrt(x^2 + y^2), theta = atan2(y, x), pi, e.
Operators: + - * / % and ** with a constant exponent |p| <= {MAX_EXPONENT}; comparisons < <= > >= == != (chains allowed);
and, or, not; a if condition else b.
Functions: abs sqrt exp log sin cos tanh sigmoid (one argument), min max (two or more), clamp(v, lo, hi).
Comparisons, and/or/not and conditions give 0 or 1 and have zero gradient: guidance cannot follow them.
Safe by construction: sqrt(v) = sqrt(max(v, 0)), log(v) = log(max(v, {_TINY:g})), exp(v) = exp(min(v, 50)),
a / b and a % b keep |b| >= {_TINY:g}, and every intermediate value is clamped to +-{_BIG:g}, so the result and its
gradient are always finite. At most {MAX_EXPRESSION_CHARS} characters, constants |c| <= {MAX_CONSTANT:g}."""

_NODE_WORDS = {
    "Lambda": "lambda", "ListComp": "list comprehension", "SetComp": "set comprehension",
    "DictComp": "dict comprehension", "GeneratorExp": "generator expression", "JoinedStr": "f-string",
    "FormattedValue": "f-string", "Subscript": "subscript", "Attribute": "attribute access",
    "Starred": "starred argument", "NamedExpr": "assignment expression (:=)", "Tuple": "tuple", "List": "list",
    "Dict": "dict", "Set": "set", "Await": "await", "Yield": "yield", "YieldFrom": "yield", "Slice": "slice",
}


class ExpressionError(ValueError):
    """A reward expression that is not allowed; ``column`` (1-based) points at the offending part, if known."""

    def __init__(self, message: str, column: int | None = None, line: int | None = None):
        super().__init__(message)
        self.column = column
        self.line = line


class _Guard(torch.autograd.Function):
    """Identity on [-_BIG, _BIG] (clamped outside, zero gradient there) whose backward also clamps the
    incoming gradient to finite values, so long chains of steep operations can neither overflow nor give NaN."""

    @staticmethod
    def forward(ctx, v):
        inside = v.abs() <= _BIG
        ctx.save_for_backward(inside)
        return v.clamp(-_BIG, _BIG)

    @staticmethod
    def backward(ctx, g):
        (inside,) = ctx.saved_tensors
        g = torch.nan_to_num(g, nan=0.0, posinf=_BIG, neginf=-_BIG).clamp(-_BIG, _BIG)
        return torch.where(inside, g, torch.zeros_like(g))


def _guard(v: torch.Tensor) -> torch.Tensor:
    return _Guard.apply(v)


def _safe_den(d: torch.Tensor) -> torch.Tensor:
    """d with |d| >= _TINY, keeping its sign (0 counts as positive); zero gradient where |d| < _TINY."""
    sign = torch.where(d >= 0, torch.ones_like(d), -torch.ones_like(d))
    return sign * d.abs().clamp(min=_TINY)


def _safe_pow(b: torch.Tensor, p: float) -> torch.Tensor:
    if float(p).is_integer():
        if p >= 0:
            return b ** int(p)
        return _safe_den(b) ** int(p)
    if p > 0:  # b^p = 0 for b <= 0 (real-valued); the gradient there is zero
        pos = b > 0
        return torch.where(pos, torch.where(pos, b, torch.ones_like(b)) ** p, torch.zeros_like(b))
    return b.clamp(min=_TINY) ** p


def _sqrt(v):
    return _safe_pow(v, 0.5)


_FUNCS1 = {
    "abs": torch.abs,
    "sqrt": _sqrt,
    "exp": lambda v: torch.exp(v.clamp(max=50.0)),
    "log": lambda v: torch.log(v.clamp(min=_TINY)),
    "sin": torch.sin,
    "cos": torch.cos,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}

_Env = dict  # name -> tensor [B] (float64)
_Code = Callable[[_Env], torch.Tensor]


class _Compiler:
    """Walks an ``ast`` expression tree, refusing every node type not on the whitelist, and returns a closure
    that evaluates it with torch on an environment {x, y, r, theta} of [B] tensors."""

    def __init__(self, text: str, line_shift: int, col_shift: int):
        self.text = text
        self.lines = text.split("\n")
        self.line_shift = line_shift
        self.col_shift = col_shift
        self.names: set[str] = set()

    # -------------------------------------------------------------- errors
    def where(self, node) -> tuple[int | None, int | None, str]:
        line, col = getattr(node, "lineno", None), getattr(node, "col_offset", None)
        if line is None or col is None:
            return None, None, ""
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        col = len(src.encode("utf-8")[:col].decode("utf-8", errors="ignore"))  # ast counts UTF-8 bytes
        col += 1 + (self.col_shift if line == 1 else 0)
        line += self.line_shift
        return line, col, f" at column {col}" + (f" of line {line}" if line > 1 else "")

    def fail(self, what: str, node, hint: str = "") -> ExpressionError:
        line, col, at = self.where(node)
        return ExpressionError(f"{what} is not allowed{at}" + (f"; {hint}" if hint else ""), col, line)

    def segment(self, node) -> str:
        seg = ast.get_source_segment(self.text, node) or ""
        return seg if len(seg) <= 40 else seg[:37] + "..."

    # -------------------------------------------------------------- nodes
    def compile(self, node) -> _Code:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            word = _NODE_WORDS.get(type(node).__name__, type(node).__name__)
            seg = self.segment(node)
            raise self.fail(f"{word} {seg!r}" if seg else word, node)
        code = method(node)
        return lambda env: _guard(code(env))

    def _Constant(self, node) -> _Code:
        v = node.value
        if isinstance(v, bool) or v is None or not isinstance(v, (int, float)):
            raise self.fail(f"constant {v!r}", node, "only numbers are allowed")
        if not abs(v) <= MAX_CONSTANT:  # also refuses inf from 1e999
            raise self.fail(f"constant {self.segment(node) or v!r}", node, f"numbers must satisfy |c| <= {MAX_CONSTANT:g}")
        c = float(v)
        return lambda env: torch.tensor(c, dtype=env["_dtype"], device=env["_device"])

    def _Name(self, node) -> _Code:
        n = node.id
        if n in _VARIABLES:
            self.names.add(n)
            return lambda env: env[n]
        if n in _CONSTANTS:
            c = _CONSTANTS[n]
            return lambda env: torch.tensor(c, dtype=env["_dtype"], device=env["_device"])
        if n in _ARITY:
            raise self.fail(f"using the function {n!r} as a value", node, f"call it, e.g. {n}(x)")
        raise self.fail(f"name {n!r}", node, f"allowed names: {', '.join(_VARIABLES + tuple(_CONSTANTS))}")

    def _UnaryOp(self, node) -> _Code:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda env: -operand(env)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.Not):
            return lambda env: (operand(env) == 0).to(env["_dtype"])
        raise self.fail("operator ~", node)

    def _exponent(self, node) -> float:
        sign, n = 1.0, node
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            sign, n = (-1.0 if isinstance(n.op, ast.USub) else 1.0), n.operand
        ok = isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)
        if not ok or not abs(n.value) <= MAX_EXPONENT:
            raise self.fail(
                f"exponent {self.segment(node)!r}", node,
                f"the exponent of ** must be a number constant with |p| <= {MAX_EXPONENT} (use exp and log otherwise)",
            )
        return sign * float(n.value)

    def _BinOp(self, node) -> _Code:
        op = type(node.op)
        if op not in _BINOPS:
            sym = {ast.FloorDiv: "//", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
                   ast.LShift: "<<", ast.RShift: ">>"}.get(op, op.__name__)
            raise self.fail(f"operator {sym}", node, "allowed operators: + - * / % **")
        left = self.compile(node.left)
        if op is ast.Pow:
            p = self._exponent(node.right)
            return lambda env: _safe_pow(left(env), p)
        right = self.compile(node.right)
        if op is ast.Add:
            return lambda env: left(env) + right(env)
        if op is ast.Sub:
            return lambda env: left(env) - right(env)
        if op is ast.Mult:
            return lambda env: left(env) * right(env)
        if op is ast.Div:
            return lambda env: left(env) / _safe_den(right(env))
        return lambda env: torch.remainder(left(env), _safe_den(right(env)))  # Python's sign convention

    def _Compare(self, node) -> _Code:
        for op in node.ops:
            if type(op) not in _CMPOPS:
                raise self.fail(f"comparison {type(op).__name__}", node, "allowed comparisons: < <= > >= == !=")
        parts = [self.compile(n) for n in [node.left, *node.comparators]]
        fns = [_CMPOPS[type(op)] for op in node.ops]

        def code(env):
            vals = [p(env) for p in parts]
            out = fns[0](vals[0], vals[1])
            for i in range(1, len(fns)):  # a < b < c means (a < b) and (b < c)
                out = out & fns[i](vals[i], vals[i + 1])
            return out.to(env["_dtype"])

        return code

    def _BoolOp(self, node) -> _Code:
        parts = [self.compile(v) for v in node.values]
        is_and = isinstance(node.op, ast.And)

        def code(env):
            out = parts[0](env) != 0
            for p in parts[1:]:
                out = (out & (p(env) != 0)) if is_and else (out | (p(env) != 0))
            return out.to(env["_dtype"])

        return code

    def _IfExp(self, node) -> _Code:
        test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
        return lambda env: torch.where(test(env) != 0, body(env), orelse(env))

    def _Call(self, node) -> _Code:
        f = node.func
        if not isinstance(f, ast.Name):
            raise self.fail(f"calling {self.segment(f)!r}", node, f"allowed functions: {', '.join(_ARITY)}")
        name = f.id
        if name not in _ARITY:
            what = f"function {name!r}" if name not in _VARIABLES + tuple(_CONSTANTS) else f"calling {name!r}"
            raise self.fail(what, node, f"allowed functions: {', '.join(_ARITY)}")
        if node.keywords:
            raise self.fail(f"keyword argument in {name}(...)", node.keywords[0], "pass arguments by position")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.fail(f"starred argument {self.segment(a)!r}", a)
        n, want = len(node.args), _ARITY[name]
        if (want is None and n < 2) or (want is not None and n != want):
            need = "two or more arguments" if want is None else f"{want} argument{'s' * (want > 1)}"
            line, col, at = self.where(node)
            raise ExpressionError(f"{name}() takes {need}, got {n}{at}", col, line)
        args = [self.compile(a) for a in node.args]
        if name in _FUNCS1:
            fn1, a0 = _FUNCS1[name], args[0]
            return lambda env: fn1(a0(env))
        if name == "clamp":
            v, lo, hi = args
            return lambda env: torch.minimum(torch.maximum(v(env), lo(env)), hi(env))
        red = torch.minimum if name == "min" else torch.maximum

        def code(env):
            out = args[0](env)
            for a in args[1:]:
                out = red(out, a(env))
            return out

        return code


def _check_size(tree, comp: _Compiler) -> None:
    count, stack = 0, [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_EXPRESSION_DEPTH:
            line, col, at = comp.where(node)
            raise ExpressionError(f"expression is nested too deeply (more than {MAX_EXPRESSION_DEPTH} levels){at}", col, line)
        if count > MAX_EXPRESSION_NODES:
            raise ExpressionError(f"expression has too many parts (more than {MAX_EXPRESSION_NODES})")
        stack.extend((c, depth + 1) for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr))


def compile_expression(text: str) -> Reward:
    """Compile a user formula over 2-D points into a Reward of kind "points" (see ``EXPRESSION_HELP``).

    The text is parsed with ``ast.parse(text, mode="eval")`` and the tree is walked against a whitelist; it is
    never given to eval/exec/compile.  Evaluation runs in float64 (float32 on MPS) on x [B, 2] and returns [B]
    in x's dtype.  Anything not allowed raises ExpressionError saying what and where (1-based column).
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression is too long: {len(text)} characters, at most {MAX_EXPRESSION_CHARS} are allowed")
    body = text.strip()
    if not body:
        raise ExpressionError("expression is empty; write a formula in x and y, e.g. -((x-1)**2 + (y+0.5)**2)")
    prefix = text[: len(text) - len(text.lstrip())]
    line_shift = prefix.count("\n")
    col_shift = len(prefix) - prefix.rfind("\n") - 1 if line_shift else len(prefix)
    comp = _Compiler(body, line_shift, col_shift)
    try:
        with warnings.catch_warnings():  # e.g. SyntaxWarning for "x is 1": refused below with a clearer message
            warnings.simplefilter("ignore")
            tree = ast.parse(body, mode="eval")
    except SyntaxError as err:
        col = (err.offset or 1) + (col_shift if (err.lineno or 1) == 1 else 0)
        line = (err.lineno or 1) + line_shift
        at = f" at column {col}" + (f" of line {line}" if line > 1 else "")
        raise ExpressionError(f"syntax error{at}: {err.msg} (one expression only, no statements)", col, line) from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise ExpressionError(f"expression could not be parsed: {err}") from None
    _check_size(tree, comp)
    code = comp.compile(tree.body)
    names = frozenset(comp.names)

    def fn(x: torch.Tensor) -> torch.Tensor:
        dtype = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64
        xs = _guard(x[:, 0].to(dtype))  # [B]
        ys = _guard(x[:, 1].to(dtype))  # [B]
        env: _Env = {"x": xs, "y": ys, "_dtype": dtype, "_device": x.device}
        if names & {"r", "theta"}:
            sq = xs * xs + ys * ys
            pos = sq > 0
            if "r" in names:
                env["r"] = torch.where(pos, torch.where(pos, sq, torch.ones_like(sq)).sqrt(), torch.zeros_like(sq))
            if "theta" in names:  # atan2 has a 0/0 gradient at the origin: evaluate it at (1, 0) there instead
                env["theta"] = torch.atan2(torch.where(pos, ys, torch.zeros_like(ys)), torch.where(pos, xs, torch.ones_like(xs)))
        out = code(env).expand(x.shape[0])  # constants are 0-dim: [B]
        if x.requires_grad and not out.requires_grad:
            out = out + 0.0 * (xs + ys)  # keep the result in the graph: its gradient is exactly zero
        return out.to(x.dtype)

    return Reward("expression", "points", text, f"r(x, y) = {body}", fn, {"text": text})
