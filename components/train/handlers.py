"""Tab 9, train: the training handlers, plain functions of (ctx, session, request) that return or yield view data
(no widgets; saving and loading are in checkpoints.py, the own-data uploads in own_data.py).

* ``train``: a fresh model on a dataset (built-in, or the session's own), streaming the loss curve and a preview now
  and then (shared.preview); components/streaming.py's throttle decides which of the curve's points are sent, and
  every new preview and the last step are.  The model is this session's "my model" from its first step.  A run that
  /train_stop ended, or that a newer run or a loaded checkpoint took over, ends with a last message that says so.
* ``stop``: end the session's run (the controls that follow the process and the dataset: follow.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from adiff import DiffusionModel
from adiff.data import DATA_SHAPES, IMAGE_DATASETS, NUM_CLASSES, TOY_2D_DATASETS
from adiff.diffusion.parameterization import DEFAULT_PREDICTION_TYPE, PROCESS_PREDICTION_TYPES

from ..arrays import points
from ..context import MY_MODEL, AppContext
from ..fields import as_bool, as_choice, as_float, as_int, field_error
from ..limits import LIMITS
from ..state import Session
from ..streaming import Throttle
from . import view
from .figures import make_samples_figure
from .film import Film, FilmFeed
from .shared import OWN_DATASETS, TAB, OwnData, adopt, own_data, preview, state_of

__all__ = [
    "TRAIN_DATASETS",
    "SIZES",
    "PROCESSES",
    "model_config",
    "TrainRequest",
    "Progress",
    "Ended",
    "train",
    "stop",
]

TRAIN_DATASETS = list(TOY_2D_DATASETS) + list(IMAGE_DATASETS)
SIZES = {"tiny": (32, 32, 2), "small": (64, 64, 3), "medium": (64, 96, 4)}  # name -> (embedding, hidden, layers)
PROCESSES = [v for _, v in view.PROCESS_CHOICES]
CURVE_POINTS = 100  # the loss curve keeps about this many points (one every 1% of the run)
PREVIEWS = 6  # previews per run (and one at the end)


def model_config(
    dataset: str,
    schedule: str | None,
    T: int | None,
    size: str,
    conditional: bool,
    device: str,
    shape: tuple | None = None,
    num_classes: int | None = None,
    process: str = "vp",
    prediction_type: str | None = None,
) -> dict:
    """The config of a fresh model for a built-in dataset, or for data of ``shape`` with ``num_classes`` (own data).
    A flow has no T and no schedule (adiff.nn.config.DiffusionConfig)."""
    emb, hidden, layers = SIZES[size]
    shape = list(shape or DATA_SHAPES[dataset])
    cfg = {
        "model_type": "conditional" if conditional else "unconditional",
        "embedding_dim": emb,
        "hidden_dim": hidden,
        "num_layers": layers,
        "num_heads": 4,
        "data_shape": shape,
        "device": device,
        "process": process,
        "prediction_type": prediction_type or DEFAULT_PREDICTION_TYPE[process],
    }
    if process == "vp":
        cfg.update(num_diffusion_steps=T, noise_schedule=schedule)
    if len(shape) == 3:
        cfg["patch_size"] = 2 if shape[-1] <= 8 else 4  # 8x8: 16 tokens, 16x16: 16, 32x32: 64
    if conditional:
        cfg["num_classes"] = num_classes or NUM_CLASSES[dataset]
    return cfg


# ---------------------------------------------------------------------------------------------- requests
def _prediction(process: str, value) -> str:
    allowed = list(PROCESS_PREDICTION_TYPES[process])
    prediction = DEFAULT_PREDICTION_TYPE[process] if value is None else value
    if prediction not in allowed:
        known = "" if prediction in view.PREDICTION_TYPES else f" (the types are {view.PREDICTION_TYPES})"
        raise field_error(
            "prediction_type", f"{prediction!r} does not serve the {process} process{known}; use one of {allowed}"
        )
    return prediction


@dataclass(frozen=True)
class TrainRequest:
    dataset: str
    own: OwnData | None = field(repr=False)  # the session's own data when ``dataset`` is "my drawing" / "my images"
    num_classes: int | None  # of the data's labels (None: unlabelled)
    process: str
    prediction: str
    schedule: str | None  # None for a flow (no schedule, no T)
    T: int | None
    size: str
    conditional: bool
    num_steps: int
    batch_size: int
    learning_rate: float
    seed: int

    @classmethod
    def parse(
        cls,
        ctx: AppContext,
        session: Session,
        dataset,
        schedule,
        num_diffusion_steps,
        model_size,
        conditional,
        num_steps,
        batch_size,
        learning_rate,
        seed,
        process,
        prediction_type,
    ) -> TrainRequest:
        dataset = as_choice(dataset, "dataset", TRAIN_DATASETS + OWN_DATASETS)
        own = own_data(session, dataset) if dataset in OWN_DATASETS else None
        num_classes = own.num_classes if own is not None else NUM_CLASSES.get(dataset)
        process = as_choice("vp" if process is None else process, "process", PROCESSES)
        prediction = _prediction(process, prediction_type)
        T = None
        if process == "vp":  # a flow has no schedule and no T: the (hidden) widgets' values are not used
            schedule = as_choice(schedule, "schedule", view.SCHEDULES)
            T = as_int(num_diffusion_steps, "num_diffusion_steps", 10, LIMITS.train_T)
        size = as_choice(model_size, "model_size", list(SIZES))
        conditional = as_bool(conditional, "conditional")
        if conditional and not num_classes:
            raise field_error("conditional", f"dataset {dataset!r} has no labels; untick conditional")
        return cls(
            dataset,
            own,
            num_classes,
            process,
            prediction,
            schedule if process == "vp" else None,
            T,
            size,
            conditional,
            as_int(num_steps, "num_steps", 1, LIMITS.train_steps),
            as_int(batch_size, "batch_size", 8, LIMITS.train_batch),
            as_float(learning_rate, "learning_rate", 1e-6, 0.05),
            as_int(seed, "seed", 0, LIMITS.seed),
        )

    def data(self, ctx: AppContext) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The training set: x [N, 2] or [N, 1, S, S], labels [N] or None."""
        if self.own is not None:
            return self.own.x, self.own.labels
        return ctx.dataset(self.dataset, 5000 if self.dataset in IMAGE_DATASETS else 20_000, self.seed)

    def build(self, device, shape: tuple) -> DiffusionModel:
        """A fresh model; its initial weights come from the seed (the global RNG is restored)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            cfg = model_config(
                self.dataset,
                self.schedule,
                self.T,
                self.size,
                self.conditional,
                device,
                shape,
                self.num_classes,
                self.process,
                self.prediction,
            )
            model = DiffusionModel(cfg)
        n = self.num_steps
        model.setup_training(
            {"learning_rate": self.learning_rate, "scheduler_steps": n, "warmup_steps": min(200, n // 10)}
        )
        return model

    def info(self, images: bool) -> dict:
        """What "my model" says about itself (own data is no built-in dataset: no reference data for it)."""
        how = f"{self.schedule}, T = {self.T}" if self.process == "vp" else "rectified flow"
        what = self.own.description if self.own is not None else self.dataset
        return {
            "dataset": None if self.own is not None else self.dataset,
            "data": f"{self.dataset} ({self.own.fingerprint})" if self.own is not None else self.dataset,
            "description": f"trained here on {what} ({self.size}, {how}, predicts {self.prediction})",
            "sample_kwargs": {"clip_x0": 1.0} if images else {},
            "steps": 0,
        }


# ---------------------------------------------------------------------------------------------- view data
@dataclass(frozen=True)
class Progress:
    """One message of a run: the loss curve so far, the latest samples' data (None: "no samples yet"; ``fresh``: new
    in this message), the film so far as a player payload (the latest, sent with every message; None: none yet), the
    status, and the samples' figure (built once per preview, sent with every message: see wiring.py)."""

    history: dict
    samples: dict | None
    fresh: bool
    film: dict | None
    status: dict
    figure: Any = None


@dataclass(frozen=True)
class Ended:
    """The last message of a run that was stopped or replaced: its status (the figures stay as they are)."""

    status: dict


# ---------------------------------------------------------------------------------------------- train
@dataclass
class _Curve:
    """The loss curve of a run (about CURVE_POINTS points) and its bias-corrected exponential moving average."""

    history: dict
    every: int
    smooth: float = 0.0
    weight: float = 0.0
    value: float = math.nan

    def add(self, step: int, loss: float, last: bool) -> bool:
        """Fold in one step's loss; True when the step is a point of the curve."""
        # EMA with decay 0.98, divided by the weights' sum so far (Adam's bias correction, Kingma & Ba 2015, section 3)
        self.smooth, self.weight = 0.98 * self.smooth + 0.02 * loss, 0.98 * self.weight + 0.02
        self.value = self.smooth / self.weight
        if step % self.every and not last:
            return False
        for key, v in (("step", step), ("loss", loss), ("loss_smooth", self.value)):
            self.history[key].append(v)
        return True

    def snapshot(self) -> dict:
        return {k: list(v) if isinstance(v, list) else v for k, v in self.history.items()}


def _status(req: TrainRequest, model, ev, curve: _Curve, t0: float, state: str) -> dict:
    el = time.time() - t0
    return {
        "status": state,
        "step": ev.step,
        "of": req.num_steps,
        "loss": ev.loss,
        "loss_smooth": curve.value,
        "lr": ev.lr,
        "grad_norm": ev.grad_norm,
        "steps_per_s": round(ev.step / max(el, 1e-9), 1),
        "elapsed_s": round(el, 1),
        "parameters": model.num_parameters,
        "dataset": req.dataset,
        "process": req.process,
        "prediction_type": req.prediction,
        "use_as": MY_MODEL,
    }


def _ended(session: Session, model, req: TrainRequest) -> dict:
    """The last status of a run that /train_stop ended ("stopped": its model stays "my model") or that a newer run
    or a loaded checkpoint took over ("replaced")."""
    state = "stopped" if session.trained is model else "replaced"
    step = model.training_step
    return {"status": state, "step": step, "of": req.num_steps, "dataset": req.dataset, "use_as": MY_MODEL}


def train(ctx: AppContext, session: Session, req: TrainRequest):
    """Train a fresh model, streaming the loss and periodic samples; it becomes this session's 'my model'."""
    x, labels = req.data(ctx)
    kind = "images" if x.dim() == 4 else "points"
    model = req.build(ctx.device, tuple(x.shape[1:]))
    info = req.info(kind == "images")
    rid, minfo = adopt(ctx, session, model, info)
    data_pts = None if kind == "images" else points(x[:1000])
    with session.lock:
        film = Film.start(model, req.num_steps) if kind == "points" else None
    state_of(session).film = film
    feed = FilmFeed(film, None if film is None else x[:300].float().cpu().numpy(), f"film-{rid}", req.num_steps)
    ylabel, formula = view.LOSS_LABELS[req.prediction]
    every = max(1, math.ceil(req.num_steps / CURVE_POINTS))
    curve = _Curve({"step": [], "loss": [], "loss_smooth": [], "ylabel": ylabel, "title": formula}, every)
    state_of(session).history = curve.history
    preview_every = max(curve.every, math.ceil(req.num_steps / PREVIEWS))
    throttle, t0, samples, figure, sent = Throttle(req.num_steps), time.time(), None, None, 0
    reel = None  # the film's latest player payload
    it = model.train_progressive(x, labels if req.conditional else None, req.num_steps, req.batch_size, req.seed)
    while True:
        with session.lock:  # never held across a yield (Stop takes over between steps)
            ended = None if session.is_current(TAB, rid) and session.trained is model else _ended(session, model, req)
            ev = next(it, None) if ended is None else None
        if ended is not None:
            yield Ended(ended)
        if ev is None:
            return
        info["steps"] = ev.step
        last = ev.step == req.num_steps
        point, new = curve.add(ev.step, ev.loss, last), None
        feed.take(session, model, ev.step, last, curve.value)
        if point and (ev.step % preview_every == 0 or last):
            with session.lock:
                *_, new = preview(model, minfo, data_pts, ev.step)
            samples, figure = new, make_samples_figure(new)
        if point and throttle.due(ev.step - 1, force=last or new is not None):
            status = _status(req, model, ev, curve, t0, "done" if last else "training")
            status.update(feed.status(time.time() - t0))
            reel = feed.news() or reel
            yield Progress(curve.snapshot(), samples, sent == 0 or new is not None, reel, status, figure)
            sent += 1


def stop(ctx: AppContext, session: Session, req: None) -> dict:
    """End this session's training run (at its next step; its model so far stays "my model")."""
    session.stop_runs(TAB)
    return {"status": "stopped", "step": session.trained_info.get("steps", 0) if session.trained else 0}
