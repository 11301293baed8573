"""The MLP's activation for inference on the CPU: the tanh GELU without autograd, and the MLP's first layer with its
GELU as one oneDNN call where torch has it (adiff.nn.denoisers' TransformerBlock.mlp)."""

from __future__ import annotations

import functools
import logging
import math
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from .traced import plain_cpu

__all__ = ["TanhGELU", "linear_gelu"]
log = logging.getLogger(__name__)


class TanhGELU(nn.Module):
    """GELU with the tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (Hendrycks & Gimpel 2016),
    as nn.GELU(approximate="tanh") but without grad as x * sigmoid(2u), u the tanh's argument (0.5 (1 + tanh u) =
    sigmoid(2u)) in four in-place passes, equal to torch's kernel within 5e-7 and faster than it on the CPU (1.5
    against 1.8 ns a value over 2,048 x 256).  With grad: torch's kernel (one saved input).  The MLP runs this where
    ``linear_gelu`` cannot (no oneDNN, autograd, a dispatch mode)."""

    _A = 2.0 * math.sqrt(2.0 / math.pi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return F.gelu(x, approximate="tanh")
        u = x * x
        u.mul_(0.044715 * self._A).add_(self._A).mul_(x)  # 2u
        return torch.sigmoid_(u).mul_(x)


# oneDNN's linear with the tanh GELU in its epilogue (what inductor calls on x86), as a TorchScript function: a trace
# of the rows (adiff.nn.traced) cannot record the op's empty list of optional scalars itself, but records a call to this.
_LINEAR_GELU_SOURCE = """
def linear_gelu(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    scalars: List[Optional[number]] = []
    return torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu", scalars, "tanh")
"""


@functools.cache
def fused_op():
    """GELU_tanh(x w^T + b) as one oneDNN call, or None where this torch has no such op or it does not give torch's
    numbers, or rows that depend on the others (checked once, at the first inference forward: ~0.1 s with
    TorchScript's first compile, kept off import)."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            op = torch.jit.CompilationUnit(_LINEAR_GELU_SOURCE).linear_gelu
        gen = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*s, generator=gen) for s in ((37, 2, 16), (64, 16), (64,)))
        with torch.no_grad():
            got, rows_alone = op(x, w, b), op(x[:5].contiguous(), w, b)
            want = F.gelu(F.linear(x, w, b), approximate="tanh")
    except Exception:  # noqa: BLE001  (not built with oneDNN, the op unregistered, TorchScript gone: the plain path)
        log.info("no fused linear + GELU in this torch; the MLP runs its layers one by one", exc_info=True)
        return None
    ok = float((got - want).abs().max()) <= 1e-5 * max(1.0, float(want.abs().max()))
    return op if ok and torch.equal(rows_alone, got[:5]) else None


def linear_gelu(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor | None:
    """GELU(linear(x)) in one pass where it can run fused: inference (no autograd, no dispatch mode such as a FLOP
    counter) of float32 rows on the CPU.  The tanh GELU apart from its matmul read and wrote the MLP's 4x-wide hidden
    layer five more times: 0.79 of 1.33 ms for the moons network's 2,048-token chunk, 0.17 fused (13.5 -> 12.1 us a
    row over a whole forward of 8,000 rows, one thread).  Each row's output does not depend on the others (checked with the op)."""
    if torch.is_grad_enabled() or not plain_cpu(x) or (op := fused_op()) is None:
        return None
    return op(x, linear.weight, linear.bias)
