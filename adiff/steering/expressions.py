"""User rewards as expressions: a formula over 2-D points, e.g. ``-((x-1)**2 + (y+0.5)**2)`` or ``sigmoid(4*x)``,
compiled into a torch function through a whitelist over Python's ``ast``.  The text is parsed, never given to
eval/exec/compile: the tree is walked node by node and only the forms listed in ``EXPRESSION_HELP`` are built;
anything else raises ExpressionError saying what is not allowed and where.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Callable

import torch

from .reward_type import Reward

__all__ = ["ExpressionError", "compile_expression", "EXPRESSION_HELP", "MAX_EXPRESSION_CHARS"]

MAX_EXPRESSION_CHARS = 200
MAX_EXPRESSION_DEPTH = 30
MAX_EXPRESSION_NODES = 200
MAX_CONSTANT = 1e6
MAX_EXPONENT = 8
_BIG = 1e15  # every intermediate value (and gradient) is clamped to [-_BIG, _BIG]
_TINY = 1e-12  # |denominator| floor, log floor

_VARIABLES = ("x", "y", "r", "theta")
_CONSTANTS = {"pi": math.pi, "e": math.e}
_ARITY = {
    "abs": 1,
    "sqrt": 1,
    "exp": 1,
    "log": 1,
    "sin": 1,
    "cos": 1,
    "tanh": 1,
    "sigmoid": 1,
    "clamp": 3,
    "min": None,
    "max": None,
}  # None: two or more
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.Mod: "%"}
_CMPOPS = {
    ast.Lt: torch.lt,
    ast.LtE: torch.le,
    ast.Gt: torch.gt,
    ast.GtE: torch.ge,
    ast.Eq: torch.eq,
    ast.NotEq: torch.ne,
}

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
    "Lambda": "lambda",
    "ListComp": "list comprehension",
    "SetComp": "set comprehension",
    "DictComp": "dict comprehension",
    "GeneratorExp": "generator expression",
    "JoinedStr": "f-string",
    "FormattedValue": "f-string",
    "Subscript": "subscript",
    "Attribute": "attribute access",
    "Starred": "starred argument",
    "NamedExpr": "assignment expression (:=)",
    "Tuple": "tuple",
    "List": "list",
    "Dict": "dict",
    "Set": "set",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield",
    "Slice": "slice",
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
            raise self.fail(
                f"constant {self.segment(node) or v!r}", node, f"numbers must satisfy |c| <= {MAX_CONSTANT:g}"
            )
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
                f"exponent {self.segment(node)!r}",
                node,
                f"the exponent of ** must be a number constant with |p| <= {MAX_EXPONENT} (use exp and log otherwise)",
            )
        return sign * float(n.value)

    def _BinOp(self, node) -> _Code:
        op = type(node.op)
        if op not in _BINOPS:
            sym = {
                ast.FloorDiv: "//",
                ast.MatMult: "@",
                ast.BitAnd: "&",
                ast.BitOr: "|",
                ast.BitXor: "^",
                ast.LShift: "<<",
                ast.RShift: ">>",
            }.get(op, op.__name__)
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
            raise ExpressionError(
                f"expression is nested too deeply (more than {MAX_EXPRESSION_DEPTH} levels){at}", col, line
            )
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
        raise ExpressionError(
            f"expression is too long: {len(text)} characters, at most {MAX_EXPRESSION_CHARS} are allowed"
        )
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
                env["theta"] = torch.atan2(
                    torch.where(pos, ys, torch.zeros_like(ys)), torch.where(pos, xs, torch.ones_like(xs))
                )
        out = code(env).expand(x.shape[0])  # constants are 0-dim: [B]
        if x.requires_grad and not out.requires_grad:
            out = out + 0.0 * (xs + ys)  # keep the result in the graph: its gradient is exactly zero
        return out.to(x.dtype)

    return Reward("expression", "points", text, f"r(x, y) = {body}", fn, {"text": text})
