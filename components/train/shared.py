"""Tab 9, train: what its handlers share.

* The tab's part of a session (``session.tab("train", TrainState)``): the current run's loss curve and the visitor's
  own datasets ("my drawing", "my images").  "My model" itself stays on the Session (``session.trained``,
  ``session.trained_info``): the other tabs sample it through ``ctx.model("my model", session)``; ``adopt`` sets it.
* ``preview``: a few samples of "my model" with the solver it starts with in the other tabs
  (components.choices.default_solver) at ``LIMITS.preview_steps`` network calls, which is what ``ctx.upload_budget``
  assumes of an upload (``preview_solver``).
* ``upload_path``: an uploaded file's path on the server, from a file input's raw value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from adiff.samplers import SOLVERS

from ..choices import default_solver
from ..context import MY_MODEL, AppContext, ModelInfo
from ..fields import field_error
from ..limits import LIMITS
from ..state import Session
from . import view

__all__ = [
    "TAB",
    "OWN_DRAWING",
    "OWN_IMAGES",
    "OWN_DATASETS",
    "OwnData",
    "TrainState",
    "state_of",
    "own_data",
    "adopt",
    "preview_solver",
    "preview",
    "upload_path",
]

TAB = "train"
OWN_DRAWING, OWN_IMAGES = "my drawing", "my images"
OWN_DATASETS = [OWN_DRAWING, OWN_IMAGES]
PREVIEW_SEED = 1234


@dataclass(frozen=True)
class OwnData:
    """A session's own dataset, ready to train on."""

    x: torch.Tensor  # [N, 2] points, or [N, 1, S, S] images in [-1, 1]
    labels: torch.Tensor | None  # long [N] or None
    num_classes: int | None  # None when unlabelled
    description: str  # one line for the status and "my model"'s description
    fingerprint: str = ""  # adiff.data.data_fingerprint of (x, labels): "my model"'s data identity (compare checks it)


@dataclass
class TrainState:
    """The loss curve of the session's latest run, and its own datasets by name."""

    history: dict = field(default_factory=dict)  # {"step", "loss", "loss_smooth": lists, "ylabel", "title"}
    own: dict[str, OwnData] = field(default_factory=dict)  # OWN_DRAWING / OWN_IMAGES -> the data
    film: Any = None  # the latest 2-D run's film.Film (None: none yet, or image data)


def state_of(session: Session) -> TrainState:
    return session.tab(TAB, TrainState)


def own_data(session: Session, name: str) -> OwnData:
    """The session's drawing or images, or an error naming the dataset field when there is none yet."""
    data = state_of(session).own.get(name)
    if data is None:
        where = (
            "draw on the canvas and press 'Use my drawing'"
            if name == OWN_DRAWING
            else "upload images and press 'Use these images'"
        )
        raise field_error("dataset", f"{name!r} is empty: {where} (under 'Your own data') first")
    return data


# ---------------------------------------------------------------------------------------------- my model
def preview_solver(model, info: ModelInfo) -> tuple[str, int]:
    """The preview's solver (the one the model starts with in the other tabs) and as many of its steps as fit in
    ``LIMITS.preview_steps`` network calls (the NFE ``ctx.upload_budget`` allows an upload), at most the model's."""
    name, _ = default_solver(model, info)
    k = LIMITS.preview_steps
    while k > 1 and SOLVERS[name].nfe(k) > LIMITS.preview_steps:
        k -= 1
    return name, min(k, model.max_sampling_steps)


def preview(model, info: ModelInfo, data_pts, step: int):
    """A few samples of the model (fixed seed): yields None after each sampler step (a cancelled job stops there),
    then the samples figure's data."""
    n = LIMITS.preview_images if info.kind == "images" else LIMITS.preview_points
    cond = torch.arange(n) % model.num_classes if model.is_conditional else None
    sampler, steps = preview_solver(model, info)
    last = None
    for last in model.generate_progressive(
        n,
        condition=cond,
        seed=PREVIEW_SEED,
        sampler=sampler,
        num_steps=steps,
        clip_x0=info.sample_kwargs.get("clip_x0"),
    ):
        yield None
    title = f"samples after {step} steps ({sampler} {steps}, seed {PREVIEW_SEED})"
    yield view.preview_data(last.x_prev, info.kind, data_pts, title)


def adopt(ctx: AppContext, session: Session, model, info: dict) -> tuple[int, ModelInfo]:
    """Make ``model`` this session's "my model" and start a run of it (any older training run stops at its next
    step), in one step: a run that finds itself no longer current then knows why (its model is still "my model":
    /train_stop; it is not: a newer run or a load took over).  Returns (the run id, the ModelInfo the other tabs
    see)."""
    with session.lock:
        rid = session.new_run(TAB)
        session.trained, session.trained_info = model, info
        return rid, ctx.model(MY_MODEL, session)[1]


def upload_path(value, field_name: str) -> Path:
    """An uploaded file's server path (a file input's raw value is {"path": ..., "orig_name": ...})."""
    path = value.get("path") if isinstance(value, dict) else None
    if not isinstance(path, str) or not path:
        raise field_error(field_name, "no file was uploaded")
    path = Path(path)
    if not path.is_file():
        raise field_error(field_name, f"the upload {path.name!r} is missing on the server; upload it again")
    return path
