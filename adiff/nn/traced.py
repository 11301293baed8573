"""A denoiser's rows as one TorchScript call, for sampling on the CPU.

Why: in the app thirty sampling runs, Gradio's event loop and the sampling engine share one process, and each op of
an eager forward (~60 per chunk of rows for the point denoisers) has to take the GIL back before the next one: while
the others hold it, the engine's compute threads wait (measured in the app: they ran ~40 % of the time they were
busy; beside one Python thread that only counts, an eager 1,024-row chunk of the moons network took 998 ms against
17 ms alone).  A traced graph runs its ops in C++ with the GIL released for the whole call (18.8 ms beside the
counting thread, 12.0 ms alone): the same aten ops in the same order, so the same numbers (tests/test_model.py).

``rows_function(net, x, context, mods)`` is ``net._rows`` over one chunk, traced the first time it is asked for (one
trace without autograd, one with it for the gradient to x that reward guidance takes), or None where the eager path
must run: autograd where x takes no gradient (training's is the weights'), training mode, off the CPU, under autocast or a Python dispatch mode
(profilers and FLOP counters see every module then).  The trace holds the network's own parameters (not copies), so
training, EMA updates and loaded weights show in it; it is kept per network object and per setting it bakes in
(adiff.nn.denoisers' ``_SMALL_ATTENTION``), and a network whose parameters were replaced by other tensors is traced again.
"""

from __future__ import annotations

import logging
import threading
import warnings
import weakref

import torch
import torch.nn as nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

__all__ = ["plain_cpu", "rows_function"]
log = logging.getLogger(__name__)

_TRACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # network -> {key: traced module}
_LOCK = threading.Lock()


class _Rows(nn.Module):
    """net._rows over a whole chunk: x [b, *data_shape], (context [b, S, D],) then each block's and the output
    layer's modulation rows ([b, .] or one shared [1, .])."""

    def __init__(self, net: nn.Module, with_context: bool):
        super().__init__()
        self.net, self.with_context = net, with_context

    def forward(self, x: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        context, mods = (rest[0], rest[1:]) if self.with_context else (None, rest)
        return self.net._rows(x, list(mods), context)


def plain_cpu(x: torch.Tensor) -> bool:
    """x is float32 on the CPU, outside autocast and outside any Python dispatch mode (profilers and FLOP counters,
    which must see every module's own ops): where this module's traces and adiff.nn.gelu's fused op may run."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and _get_current_dispatch_mode() is None
    )


def _usable(net: nn.Module, x: torch.Tensor, autograd: bool) -> bool:
    # with autograd: only the gradient to x (guidance), not to the weights
    return not ((autograd and not x.requires_grad) or net.training) and plain_cpu(x)


class _Call:
    """A traced graph, run as the interpreter's plain sequence of ops (no profiling-executor passes: with autograd
    each op then records its own backward, as in eager mode)."""

    def __init__(self, traced):
        self.traced = traced

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        with torch.jit.optimized_execution(False):  # thread-local
            return self.traced(*args)


def rows_function(net: nn.Module, x: torch.Tensor, context: torch.Tensor | None, mods: list, baked: tuple = ()):
    """The traced rows of ``net`` for a chunk like (x, context, mods), or None (see the module docstring).  baked: the
    module-level settings the trace records as constants (a change to one traces again)."""
    autograd = torch.is_grad_enabled()
    if not _usable(net, x, autograd):
        return None
    params = tuple((id(p), p.data_ptr()) for p in net.parameters())
    kind = (context is not None, autograd, baked)  # autograd: the MLP records its grad path (no fused GELU)
    with _LOCK:
        traces = _TRACES.setdefault(net, {})
        entry = traces.get(kind)
        if entry is None or entry[0] != params:  # new, or the parameters were replaced: trace (again)
            traced = _trace(net, (x, *([] if context is None else [context]), *mods), context is not None)
            traces[kind] = entry = (params, None if traced is None else _Call(traced))
        return entry[1]


def _trace(net: nn.Module, example: tuple, with_context: bool):
    """torch.jit.trace of the rows, or None (logged once per network) where this torch cannot trace them: the eager
    path then runs, slower under load but the same numbers.  torch 2.13 marks torch.jit.trace deprecated (in favour
    of torch.compile / torch.export, neither of which runs a forward without coming back to Python between kernels
    short of compiling C++): the warning is silenced here, and the fallback keeps the app working the day it goes."""
    try:
        with warnings.catch_warnings():  # the Python branches it records are fixed for a network
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.trace(_Rows(net, with_context), example, check_trace=False)
    except Exception:  # noqa: BLE001  (any failure to trace means: run eagerly)
        log.warning("could not trace the denoiser's rows for inference; running them eagerly", exc_info=True)
        return None
