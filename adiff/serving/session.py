"""A run's handle on the sampling engine: a network function with DiffusionModel.net_fn's signature whose calls the
engine batches with other runs' calls.

Where a caller differentiates through the network (reward guidance's "dps" mode asks for d r(x0_hat(x_t)) / d x_t),
the call is one autograd node (``ServedNetwork``): its forward is an ordinary engine round (no autograd there, shared
with every other run), its backward, the vector-Jacobian product, a VJP round that the engine batches among the runs
that differentiate, recomputing the forward with autograd over their rows.  So adiff.steering.guidance and the
solvers do not change; a guided row costs one forward more than alone (the recomputation, as activation
checkpointing does), in exchange for no run ever holding a graph that another run's backward must wait for.
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
        ctx.session, ctx.t, ctx.labels = session, t, labels
        ctx.save_for_backward(x)
        return session.engine.call(session, x.detach(), t, labels, grad=True)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return ctx.session.engine.vjp(ctx.session, x.detach(), ctx.t, ctx.labels, grad_out), None, None, None
