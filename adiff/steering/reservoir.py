"""A weighted reservoir: a fixed-size subsample of a stream of weighted items from which the whole stream's
weighted distribution can still be estimated without bias (priority sampling).

Priority sampling (Duffield, Lund & Thorup 2007, "Priority sampling for estimation of arbitrary subset sums",
J. ACM 54(6), section 2): item i of weight w_i > 0 gets the priority q_i = w_i / u_i with u_i ~ U(0, 1]; the
reservoir keeps the k items of highest priority; tau is the (k+1)-th highest priority of the stream (0 while at
most k items were offered).  Each kept item carries the estimated weight w^_i = max(w_i, tau), and for every
function f

    E[ sum_{i kept} w^_i f(x_i) ] = sum_{i in the stream} w_i f(x_i)        (their Theorem 1).

So a draw from the reservoir with probability w^_i / sum_j w^_j is, up to the ratio of two unbiased sums, a draw
from the stream's weighted distribution sum_i w_i delta(x_i) / sum_i w_i: a reservoir of samples of p with
w = exp(lambda r) describes p exp(lambda r) however many items passed.  A top-k buffer of the best rewards has no
such weights: what fell below its threshold is gone, so it describes p exp(lambda r) truncated to its top rewards.

Items whose weight is at least tau are always kept, so the reservoir holds the heaviest items of the stream
(for lambda > 0, the best rewards) plus a thinned sample of the rest.  Weights are handled as logarithms
(log w may be large: exp(lambda r) overflows for lambda r > 709).  Items live on the CPU, detached, float32.
"""

from __future__ import annotations

import math

import torch

__all__ = ["WeightedReservoir"]


class WeightedReservoir:
    """Priority sampling of a stream of (item [*item_shape], log-weight, label or -1) into ``capacity`` slots."""

    def __init__(self, capacity: int):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= 100_000:
            raise ValueError(f"capacity must be an integer in 1..100000, got {capacity!r}")
        self.capacity = capacity
        self.clear()

    def clear(self) -> None:
        self.items: torch.Tensor | None = None  # [n, *item_shape] float32
        self.log_w = torch.zeros(0, dtype=torch.float64)  # [n] log w_i
        self.log_q = torch.zeros(0, dtype=torch.float64)  # [n] log priorities log w_i - log u_i
        self.labels = torch.zeros(0, dtype=torch.long)  # [n] (-1: none)
        self.log_tau = -math.inf  # log of the (k+1)-th highest priority offered so far
        self.offered = 0

    def __len__(self) -> int:
        return self.log_w.numel()

    def add(
        self,
        items: torch.Tensor,
        log_w: torch.Tensor,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        """Offer items [n, *item_shape] with log-weights [n] (finite) and optional labels [n]; ``generator`` (CPU)
        draws the u_i.  Keeps the ``capacity`` items of highest priority among everything offered so far."""
        n = items.shape[0]
        log_w = log_w.detach().to("cpu", torch.float64).reshape(-1)
        if log_w.shape != (n,) or not torch.isfinite(log_w).all():
            raise ValueError(f"log_w must be {n} finite numbers, got shape {tuple(log_w.shape)}")
        if n == 0:
            return
        u = 1.0 - torch.rand(n, generator=generator, dtype=torch.float64)  # (0, 1]
        log_q = log_w - torch.log(u)
        lab = torch.full((n,), -1, dtype=torch.long) if labels is None else labels.detach().to("cpu", torch.long)
        x = items.detach().to("cpu", torch.float32)
        if self.items is not None:
            x, log_w = torch.cat([self.items, x]), torch.cat([self.log_w, log_w])
            log_q, lab = torch.cat([self.log_q, log_q]), torch.cat([self.labels, lab])
        if len(log_q) > self.capacity:
            order = torch.argsort(log_q, descending=True)
            self.log_tau = max(self.log_tau, float(log_q[order[self.capacity]]))  # the best priority dropped
            keep = order[: self.capacity]
            x, log_w, log_q, lab = x[keep], log_w[keep], log_q[keep], lab[keep]
        self.items, self.log_w, self.log_q, self.labels = x, log_w, log_q, lab
        self.offered += n

    def log_weights(self) -> torch.Tensor:
        """log w^_i = log max(w_i, tau) [n] float64: each kept item's unbiased share of the stream's weight."""
        return self.log_w.clamp(min=self.log_tau)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n draws with replacement, item i with probability w^_i / sum_j w^_j: (items [n, ...], labels [n])."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty reservoir: add items first")
        p = torch.softmax(self.log_weights(), 0)
        idx = torch.multinomial(p, n, replacement=True, generator=generator)
        return self.items[idx], self.labels[idx]
