"""One network call for the requests of many runs: concatenate their rows, run one forward (or one vector-Jacobian
product) with a time per row, split the result back.  No threads here: adiff.serving.engine decides when to call.

A request is what a run's network function receives, fn(x_t [b, *data_shape], t, labels [b] | None) (see
DiffusionModel.net_fn), with t a Python number shared by the b rows or a tensor [1] / [b] in the process's time.
The times of a batch become a table [K] of distinct times plus a row index [B] (adiff.nn.denoisers: the time
embedding and every adaLN modulation are computed once per distinct time); when every row shares one time the
network gets t [1] and no index, its shared-time fast path.  Each row's output depends on that row alone (the
denoiser has no batch statistics: LayerNorm is per token, attention within a sample), so a run's results do not
depend on who else is in the batch, up to float rounding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..diffusion.processes import Process

__all__ = [
    "Network",
    "Request",
    "BatchInputs",
    "check_request",
    "batch_inputs",
    "forward_rows",
    "vjp_rows",
    "vjp_recompute",
    "Graph",
    "forward_rows_graph",
    "compute_isolated",
    "split_requests",
    "split_by_graph",
    "MIN_SHARE_ROWS",
]

MIN_SHARE_ROWS = 256  # a worker's share of a round: below this a call's fixed cost shows (and rows hardly cost less)

_INT_DTYPES = (torch.long, torch.int, torch.int16, torch.int8, torch.uint8)


@dataclass(frozen=True, eq=False)
class Network:
    """What it takes to run one model's network for anyone: the module (EMA or raw weights), the process that turns
    its time into the network's input, the model's autocast, and what a request must look like."""

    module: nn.Module  # the denoiser: module(x, t_model, condition, t_index=...) -> raw output
    process: Process  # model_time(t) -> the network's time input
    autocast: Callable[[], Any]  # a context manager factory (the model's mixed precision; a no-op on the CPU)
    data_shape: tuple  # one sample's shape
    device: torch.device
    null_label: int | None  # the "no condition" label of a conditional network; None for an unconditional one
    model: Any = None  # the DiffusionModel it came from (DiffusionModel.model_fn checks a session serves it)

    @classmethod
    def of(cls, model, use_ema: bool = True) -> Network:
        """The network of a DiffusionModel: its EMA weights (use_ema) or its raw weights."""
        module = model.ema.module if use_ema else model.denoiser
        null = model.num_classes if model.is_conditional else None
        return cls(module, model.process, model.autocast, tuple(model.data_shape), model.device, null, model)

    @property
    def key(self) -> tuple:
        """Requests with the same key share one call: the same weights in the same process."""
        return (id(self.module), id(self.process))


@dataclass(eq=False)
class Request:
    """One network call of a run as the engine holds it: the inputs the functions here read (x, t, labels; for a VJP
    its cotangent and graph) and the engine's bookkeeping (queued, taken by a round, answered)."""

    session: Any  # the run's EngineSession (adiff.serving.session, which imports this module)
    x: torch.Tensor  # [b, *data_shape], detached
    t: Any  # a number or a tensor [1] / [b]
    labels: torch.Tensor | None  # [b] or None
    rows: int
    grad: bool = False  # a forward kept with autograd (its run differentiates through the network)
    cotangent: torch.Tensor | None = None  # [b, *data_shape] for a VJP
    graph: Any = None  # a VJP's Graph (from its forward), with graph_index: its place there
    graph_index: int = 0
    submitted: float = field(default_factory=time.perf_counter)
    taken: bool = False  # a round has it
    done: bool = False
    answered: threading.Event = field(default_factory=threading.Event)  # set with done (the caller waits on it)
    result: torch.Tensor | None = None
    error: BaseException | None = None


@dataclass
class BatchInputs:
    """The network's inputs for a batch of B rows made of requests of sizes[i] rows."""

    x: torch.Tensor  # [B, *data_shape]
    t: torch.Tensor  # [K] model times (K = 1: shared by every row)
    t_index: torch.Tensor | None  # [B] long, row -> entry of t; None when K = 1
    labels: torch.Tensor | None  # [B] long (conditional networks; the null label where a request gave none)
    sizes: list[int]  # rows per request, in order


def check_request(net: Network, x, t, labels, name: str = "x") -> int:
    """Shape, dtype and device checks of one request, done in the caller's thread so that a malformed call fails
    there and never reaches a batch (no device sync: values are not read).  Returns its number of rows b."""
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.dim() != 1 + len(net.data_shape) or tuple(x.shape[1:]) != net.data_shape:
        raise ValueError(f"{name} must have shape [B, {', '.join(map(str, net.data_shape))}], got {list(x.shape)}")
    if x.device.type != net.device.type:
        raise ValueError(f"{name} is on {x.device}, the network on {net.device}")
    b = x.shape[0]
    if torch.is_tensor(t):
        if t.numel() not in (1, b) or t.is_complex():
            raise ValueError(f"t must be a number or a real tensor of 1 or {b} values, got shape {list(t.shape)}")
    elif isinstance(t, bool) or not isinstance(t, (int, float)):
        raise ValueError(f"t must be a number or a tensor, got {type(t).__name__}")
    if labels is None:
        return b
    if net.null_label is None:
        raise ValueError("labels must be None: this network is unconditional")
    if not torch.is_tensor(labels) or labels.dtype not in _INT_DTYPES or tuple(labels.shape) != (b,):
        raise ValueError(
            f"labels must be an integer tensor of shape [{b}], got {getattr(labels, 'dtype', type(labels).__name__)} "
            f"{list(getattr(labels, 'shape', []))}"
        )
    if labels.device.type != net.device.type:
        raise ValueError(f"labels are on {labels.device}, the network on {net.device}")
    return b


def _time_table(net: Network, requests: list) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(t [K], t_index [B] or None): Python-number times are deduplicated on the host, so runs at the same step share
    one entry; a tensor time [1] is one entry, a tensor [b] b entries (not compared: reading them would sync)."""
    numbers: dict[float, int] = {}
    for r in requests:
        if not torch.is_tensor(r.t):
            numbers.setdefault(float(r.t), len(numbers))
    tables = [net.process.model_time(list(numbers), device=net.device)] if numbers else []  # [K_numbers]
    first, index = len(numbers), []
    for r in requests:
        b = r.x.shape[0]
        if not torch.is_tensor(r.t):
            index.append(torch.full((b,), numbers[float(r.t)], dtype=torch.long))
            continue
        mt = net.process.model_time(r.t.reshape(-1), device=net.device)  # [1] or [b]
        tables.append(mt)
        index.append(torch.full((b,), first) if mt.numel() == 1 else torch.arange(first, first + b))
        first += mt.numel()
    if first == 1:
        return tables[0], None  # every row shares one time: the network's fast path
    return torch.cat(tables), torch.cat(index).to(net.device, non_blocking=True)


def batch_inputs(net: Network, requests: list) -> BatchInputs:
    """Concatenate requests (objects with .x [b, *data_shape], .t, .labels) into one batch's inputs."""
    sizes = [r.x.shape[0] for r in requests]
    x = requests[0].x if len(requests) == 1 else torch.cat([r.x for r in requests])  # [B, *data_shape]
    t, t_index = _time_table(net, requests)
    labels = None
    if net.null_label is not None:
        parts = [
            r.labels.long() if r.labels is not None else torch.full((b,), net.null_label, device=x.device)
            for r, b in zip(requests, sizes)
        ]
        labels = parts[0] if len(parts) == 1 else torch.cat(parts)  # [B]
    return BatchInputs(x, t, t_index, labels, sizes)


def _run(net: Network, inp: BatchInputs, x: torch.Tensor) -> torch.Tensor:
    with net.autocast():
        return net.module(x, inp.t, inp.labels, t_index=inp.t_index).float()  # [B, *data_shape]


def forward_rows(net: Network, requests: list) -> list[torch.Tensor]:
    """One forward without autograd for all requests; returns each request's output [b, *data_shape] (views of one
    tensor, in the requests' order)."""
    inp = batch_inputs(net, requests)
    with torch.no_grad():
        out = _run(net, inp, inp.x)
    return list(out.split(inp.sizes))


@dataclass(eq=False)
class Graph:
    """A forward kept with autograd over the rows of the requests that differentiate through the network, so that
    their VJPs take one backward over it instead of a second forward (see ``vjp_rows``)."""

    out: torch.Tensor  # [B, *data_shape], with its graph
    x: torch.Tensor  # [B, *data_shape], the leaf
    sizes: list[int]  # rows per request, in order
    used: bool = False  # its one backward has run (autograd frees the graph)


def forward_rows_graph(net: Network, requests: list) -> list[tuple[torch.Tensor, Graph, int]]:
    """One forward with autograd for all requests; returns each request's (output, the Graph, its index there)."""
    inp = batch_inputs(net, requests)
    with torch.enable_grad():
        x = inp.x.detach().requires_grad_(True)
        out = _run(net, inp, x)
    graph = Graph(out, x, inp.sizes)
    return [(o, graph, i) for i, o in enumerate(out.detach().split(inp.sizes))]


def vjp_rows(net: Network, requests: list) -> list[torch.Tensor]:
    """VJPs for requests with .cotangent [b, *data_shape] and .graph / .graph_index (a Graph from
    forward_rows_graph, or None): one backward per unused Graph among them (rows of it whose VJP is not here get a
    zero cotangent: rows do not interact), then one forward with autograd and one backward for the rest (a Graph
    already used, or none)."""
    answers: list = [None] * len(requests)
    by_graph: dict[int, list[int]] = {}
    for i, r in enumerate(requests):
        if r.graph is not None and not r.graph.used:
            by_graph.setdefault(id(r.graph), []).append(i)
    for idx in by_graph.values():
        g = requests[idx[0]].graph
        g.used = True
        v = [torch.zeros_like(part) for part in g.out.detach().split(g.sizes)]
        for i in idx:
            v[requests[i].graph_index] = requests[i].cotangent.to(g.out.dtype)
        (gx,) = torch.autograd.grad(g.out, g.x, grad_outputs=torch.cat(v))  # [B, *data_shape]
        parts = gx.split(g.sizes)
        for i in idx:
            answers[i] = parts[requests[i].graph_index]
    rest = [i for i, a in enumerate(answers) if a is None]
    if rest:
        for i, g in zip(rest, vjp_recompute(net, [requests[i] for i in rest])):
            answers[i] = g
    return answers


def vjp_recompute(net: Network, requests: list) -> list[torch.Tensor]:
    """The vector-Jacobian products v^T d f(x) / d x for requests that also carry .cotangent v [b, *data_shape]: one
    forward with autograd over all rows, one backward.  Rows do not interact, so row b's gradient is its own run's.
    Returns each request's gradient [b, *data_shape]."""
    inp = batch_inputs(net, requests)
    v = torch.cat([r.cotangent.to(inp.x.dtype) for r in requests])  # [B, *data_shape]
    with torch.enable_grad():
        x = inp.x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(_run(net, inp, x), x, grad_outputs=v)
    return list(g.split(inp.sizes))


def compute_isolated(net: Network, reqs: list, compute) -> list[tuple]:
    """[(rows, None) or (None, error)] per request: one call for all; if it raises, one call per request, so that
    the error reaches only the run that caused it."""
    try:
        return [(out, None) for out in compute(net, reqs)]
    except Exception as e:
        if len(reqs) == 1:
            return [(None, e)]
    answers = []
    for req in reqs:
        try:
            answers.append((compute(net, [req])[0], None))
        except Exception as e:
            answers.append((None, e))
    return answers


def split_requests(requests: list, parts: int) -> list[list]:
    """Requests cut into at most ``parts`` consecutive shares of about equal rows, none under MIN_SHARE_ROWS rows
    (requests stay whole).  A row's output does not depend on which share it is computed in."""
    total = sum(r.x.shape[0] for r in requests)
    parts = max(1, min(parts, total // MIN_SHARE_ROWS, len(requests)))
    shares, rows, share = [], 0, []
    for r in requests:
        share.append(r)
        rows += r.x.shape[0]
        if len(shares) < parts - 1 and rows >= total * (len(shares) + 1) / parts:
            shares.append(share)
            share = []
    return shares + [share] if share else shares


def split_by_graph(requests: list, parts: int) -> list[list]:
    """VJP requests cut into at most ``parts`` shares that can be computed in parallel: every request of one unused
    Graph in the same share (its one backward answers them all), the rest (recomputed: a Graph already used, or none)
    cut by rows as ``split_requests`` does; the groups dealt largest first to the share with the fewest rows."""
    groups: dict[int, list] = {}
    rest = []
    for r in requests:
        if r.graph is not None and not r.graph.used:
            groups.setdefault(id(r.graph), []).append(r)
        else:
            rest.append(r)
    units = list(groups.values()) + (split_requests(rest, parts) if rest else [])
    if len(units) <= 1:
        return units or [requests]
    shares: list[list] = [[] for _ in range(min(parts, len(units)))]
    rows = [0] * len(shares)
    for unit in sorted(units, key=lambda u: -sum(r.x.shape[0] for r in u)):
        i = rows.index(min(rows))
        shares[i] += unit
        rows[i] += sum(r.x.shape[0] for r in unit)
    return [share for share in shares if share]
