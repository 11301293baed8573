"""Tab 9, train: training as a film (issue 24, item 4).

While a 2-D model trains, ``Film`` keeps a snapshot of the untrained network and then one every
ceil(steps / ``LIMITS.film_frames``) steps and at the last: the learned field on the player's grid at one noise level
(σ_t = ``LIMITS.film_sigma``: the score s = −ε̂/σ_t, or for a model that predicts a velocity its −v̂, as the reverse
tab draws them: components/score_fields.py) and ``LIMITS.film_points`` samples of the EMA weights (the weights the
other tabs sample; DPM-Solver++ with ``LIMITS.film_steps`` steps from one fixed seed, so the frames are comparable).
view.film_payload plays them in the shared player, a frame per snapshot labelled with its training step.  The
seconds the snapshots took are kept, so the status can say what the film cost the run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..limits import LIMITS
from ..score_fields import Fields
from . import view

__all__ = ["FILM_SEED", "FILM_SAMPLER", "Film", "FilmFeed", "film_time"]

FILM_SEED = 4321  # the noise every snapshot's samples start from
FILM_SAMPLER = "dpmpp_2m"  # DPM-Solver++(2M), Lu et al. 2022: a deterministic solver, good at few steps


def film_time(process, sigma: float):
    """The process time whose noise level σ_t is closest to ``sigma``: a flow's σ_t = t (x_t = (1 − t) x₀ + t ε,
    Liu et al. 2022); a VP schedule's integer step t in 1..T with σ_t = √(1 − ᾱ_t) nearest (Ho et al. 2020, eq. 4)."""
    if process.name == "flow":
        return float(sigma)
    return min(range(1, process.T + 1), key=lambda t: abs(process.coefficients(t)[1] - sigma))


@dataclass
class Film:
    """The snapshots of one run, in step order."""

    t: float | int  # the process time at which the field is drawn
    sigma: float  # its noise level σ_t
    velocity: bool  # the field is −v̂ (a velocity or v-prediction model), else the score −ε̂/σ_t
    every: int  # a snapshot every this many steps (and at the last)
    steps: list[int] = field(default_factory=list)  # [K] training step of each snapshot (0: untrained)
    losses: list[float] = field(default_factory=list)  # [K] the smoothed loss then (nan before the first step)
    samples: list[torch.Tensor] = field(default_factory=list)  # K x [N, 2] CPU float32
    fields: list[np.ndarray] = field(default_factory=list)  # K x [G*G, 2]
    seconds: float = 0.0  # wall time spent on the snapshots

    @classmethod
    def start(cls, model, num_steps: int) -> Film:
        t = film_time(model.process, LIMITS.film_sigma)
        velocity = model.prediction_type in ("v_prediction", "velocity")
        film = cls(t, model.process.coefficients(t)[1], velocity, max(1, math.ceil(num_steps / LIMITS.film_frames)))
        film.take(model, 0, math.nan)
        return film

    def due(self, step: int, last: bool) -> bool:
        return last or step % self.every == 0

    def take(self, model, step: int, loss: float) -> None:
        """Snapshot ``model`` (its EMA weights) after ``step`` training steps."""
        t0 = time.perf_counter()
        score, vel = Fields(model).grids([self.t])  # [1, G*G, 2] each
        n = LIMITS.film_points
        cond = torch.arange(n) % model.num_classes if model.is_conditional else None
        with torch.no_grad():
            x, _ = model.generate(
                n, cond, seed=FILM_SEED, sampler=FILM_SAMPLER, num_steps=LIMITS.film_steps, keep_every=10**9
            )
        self.steps.append(int(step))
        self.losses.append(float(loss))
        self.samples.append(x.detach().float().cpu())
        self.fields.append((vel if self.velocity else score)[0])
        self.seconds += time.perf_counter() - t0

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class FilmFeed:
    """A run's film and what of it the page has: ``take`` snapshots when one is due, ``news`` is the whole film as a
    player payload when it has grown since the last message (None otherwise; for image data one payload that says
    the film is for 2-D data, so the page shows no older run's film, then None)."""

    film: Film | None  # None: image data (the film is 2-D only)
    data: np.ndarray | None  # [M, 2] the data points drawn faintly behind both panels
    run_id: str
    of: int  # the run's number of steps
    sent: int = 0  # snapshots in the last payload

    def take(self, session, model, step: int, last: bool, loss: float) -> None:
        if self.film is not None and self.film.due(step, last):
            with session.lock:
                self.film.take(model, step, loss)

    def news(self) -> dict | None:
        if self.film is None:
            first, self.sent = self.sent == 0, 1
            return view.no_film_payload(self.run_id) if first else None
        if len(self.film) == self.sent:
            return None
        self.sent = len(self.film)
        return view.film_payload(self.film, self.data, self.run_id, self.of)

    def status(self, elapsed: float) -> dict:
        """The film's cost so far: its snapshots and their share of the run's wall time."""
        if self.film is None:
            return {}
        return {"film_frames": len(self.film), "film_share": round(self.film.seconds / max(elapsed, 1e-9), 3)}
