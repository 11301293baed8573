"""A run's handle on the sampling engine: a network function with DiffusionModel.net_fn's signature whose calls the
engine batches with other runs' calls.

Where a caller differentiates through the network (reward guidance's "dps" mode asks for d r(x0_hat(x_t)) / d x_t),
the call is one autograd node (``ServedNetwork``): its forward is served in an engine round, in one call with
autograd for the rows of every run that differentiates (kept apart from the other runs' rows, which need no graph);
its backward, the vector-Jacobian product, in a VJP round that batches those runs' cotangents into one backward over
that kept graph.  A run whose VJP comes too late for it (after the graph's backward ran) gets a forward with autograd
recomputed for it, batched with other such runs.  Nobody waits on a graph: rows do not interact, so the absent runs'
rows get a zero cotangent.  adiff.steering.guidance and the solvers do not change.
"""

from __future__ import annotations

import torch

from .batch import Network

__all__ = ["EngineSession", "RunCancelled", "ServedNetwork"]


class RunCancelled(RuntimeError):
    """The run's session was cancelled or closed while (or before) its network call was served."""


class EngineSession:
    """fn(x_t [b, *data_shape], t, labels [b] | None) -> raw network output [b, *data_shape], served by an engine.

    Made by ``SamplingEngine.session(model)``; pass it as ``network=`` to DiffusionModel.generate_progressive (or
    predictor / model_fn).  ``cancel()`` (from any thread) ends the run: its queued calls leave the next round and
    every call of it, waiting or later, raises RunCancelled."""

    def __init__(self, engine, network: Network):
        self.engine, self.network = engine, network
        self.model = network.model  # DiffusionModel.model_fn checks that the session serves it
        self.cancelled = False  # set by cancel() or when the session's with-block ends
        self.requests: set = set()  # its calls not yet answered (the engine's lock guards this and the counters)
        self.grad_calls = 0  # forwards made with autograd whose VJP has not come yet
        self.last_rows = 0  # rows of its latest forward call (what its next one will likely have)

    def __call__(self, x: torch.Tensor, t, labels: torch.Tensor | None = None) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return ServedNetwork.apply(x, self, t, labels)
        return self.engine.call(self, x, t, labels)

    def cancel(self) -> None:
        """Stop this run: what it has queued leaves at the next round, and its waiting calls raise RunCancelled."""
        self.engine.cancel(self)

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "open"
        return f"EngineSession({type(self.network.module).__name__}, {state})"


class ServedNetwork(torch.autograd.Function):
    """The served network as one autograd node of the caller's graph (gradient with respect to x_t only: the engine
    serves sampling, not training, so the weights receive no gradient)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, session: EngineSession, t, labels):
        out, ctx.graph, ctx.index = session.engine.call(session, x.detach(), t, labels, grad=True)
        ctx.session, ctx.t, ctx.labels = session, t, labels
        ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        engine = ctx.session.engine
        return engine.vjp(ctx.session, x.detach(), ctx.t, ctx.labels, grad_out, ctx.graph, ctx.index), None, None, None
