"""Tab 7, train: what the controls become when the process or the dataset changes (handlers, no widgets): only
the prediction types that serve the process, T and the schedule only for VP, the note on x_T; and a dataset's
defaults ('conditional' for labelled images, a batch size and a learning rate).  A deep link goes through the same
functions (layout.apply_link)."""

from __future__ import annotations

from dataclasses import dataclass

from adiff.data import IMAGE_DATASETS, NUM_CLASSES

from ..context import AppContext
from ..fields import as_choice
from ..state import Session
from . import view
from .handlers import TRAIN_DATASETS
from .shared import OWN_DATASETS, OWN_IMAGES

__all__ = [
    "DiffusionChoice",
    "DatasetDefaults",
    "read",
    "read_dataset",
    "diffusion_changed",
    "dataset_changed",
    "dataset_defaults",
]


def read(ctx: AppContext, session: Session, process, prediction_type, schedule, num_diffusion_steps) -> tuple:
    """The raw values (schedule_note checks T and the schedule and says what is wrong in the note)."""
    return process, prediction_type, schedule, num_diffusion_steps


def read_dataset(ctx: AppContext, session: Session, dataset) -> str:
    return as_choice(dataset, "dataset", TRAIN_DATASETS + OWN_DATASETS)


@dataclass(frozen=True)
class DiffusionChoice:
    """What the controls become for a process: the prediction types, whether T and the schedule apply, the note."""

    prediction: dict  # view.prediction_choices
    vp: bool
    note: str


@dataclass(frozen=True)
class DatasetDefaults:
    """What the controls become for a dataset: whether 'conditional' applies (and its value), batch size, lr."""

    labelled: bool
    conditional: bool
    batch_size: int
    learning_rate: float


def diffusion_changed(ctx: AppContext, session: Session, req: tuple) -> DiffusionChoice:
    """The prediction types that serve the process, whether T and the schedule apply, and the note on x_T."""
    process, prediction, schedule, T = req
    return DiffusionChoice(
        view.prediction_choices(process, prediction), process != "flow", view.schedule_note(process, schedule, T)
    )


def dataset_changed(ctx: AppContext, session: Session, name: str) -> DatasetDefaults:
    """A dataset's defaults: 'conditional' for labelled images, and the batch size and learning rate that suit it."""
    return dataset_defaults(name)


def dataset_defaults(name: str) -> DatasetDefaults:
    labelled = bool(NUM_CLASSES.get(name)) or name == OWN_IMAGES  # own images may have class folders
    images = name in IMAGE_DATASETS or name == OWN_IMAGES
    return DatasetDefaults(labelled, images and labelled, 128 if images else 256, 1e-3 if images else 2e-3)
