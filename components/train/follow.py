"""Tab 9, train: what the controls become when the process or the dataset changes (handlers, no widgets): only
the prediction types that serve the process, T and the schedule only for VP, the note on x_T; and a dataset's
defaults ('conditional' for labelled images, a batch size and a learning rate).  A deep link goes through the same
functions (layout.apply_link).

"My images" brings a whole recipe (``OWN_IMAGES_RECIPE``): the settings measured to turn a small upload into
samples of its classes, with what they reached (``OWN_IMAGES_MEASURED``, bench/bench_own_images.py), shown under the
dataset (view.recipe_note) and re-checked by tests/test_own_images.py."""

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
    "Recipe",
    "Measured",
    "OWN_IMAGES_RECIPE",
    "OWN_IMAGES_MEASURED",
    "DatasetDefaults",
    "read",
    "read_dataset",
    "read_picked",
    "read_taken",
    "diffusion_changed",
    "dataset_changed",
    "dataset_defaults",
]


def read(ctx: AppContext, session: Session, process, prediction_type, schedule, num_diffusion_steps) -> tuple:
    """The raw values (schedule_note checks T and the schedule and says what is wrong in the note)."""
    return process, prediction_type, schedule, num_diffusion_steps


def read_dataset(ctx: AppContext, session: Session, dataset) -> str:
    return as_choice(dataset, "dataset", TRAIN_DATASETS + OWN_DATASETS)


def read_picked(ctx: AppContext, session: Session, dataset) -> str | None:
    """A dataset picked in the page, if it is a built-in one (own data brings its defaults on change: read_taken)."""
    name = read_dataset(ctx, session, dataset)
    return None if name in OWN_DATASETS else name


def read_taken(ctx: AppContext, session: Session, dataset) -> str | None:
    """The dataset after any change, if it is own data: picked in the page, or set there when the data was taken."""
    name = read_dataset(ctx, session, dataset)
    return name if name in OWN_DATASETS else None


@dataclass(frozen=True)
class DiffusionChoice:
    """What the controls become for a process: the prediction types, whether T and the schedule apply, the note."""

    prediction: dict  # view.prediction_choices
    vp: bool
    note: str


@dataclass(frozen=True)
class Recipe:
    """The /train settings a kind of data brings (all but the dataset, 'conditional' and the seed)."""

    process: str
    prediction: str
    schedule: str
    T: int
    size: str
    steps: int
    batch_size: int
    learning_rate: float


@dataclass(frozen=True)
class Measured:
    """What a recipe did on a test upload, through the tab's own handlers (bench/bench_own_images.py)."""

    upload: str  # what it trained on
    agreement: float  # share of its conditional samples (class "each") that a small CNN trained on the upload reads
    # as the class they were drawn for, mean over ``seeds`` training seeds ...
    se: float  # ... and its standard error
    seeds: int
    cpu_s: float  # CPU seconds of the whole /train call (one thread: the app runs a job per core), mean over the seeds


# The recipe for "my images" and what it did (bench/results/bench_own_images.txt: 16×16, 3 seeds, 64 samples each at
# CFG 1 with the solver "my model" starts with; the nearest class mean read 96.9 ± 0.9 %).  The widgets' own defaults
# (ε-prediction) gave speckled blobs read as their class 56 ± 4 % of the time, as by chance (58 ± 6 % with full
# batches); v-prediction (Salimans & Ho 2022) made the shapes (81 % on one seed with batches of 30, which is what
# adiff's train_progressive drew from 30 images whatever the batch size said), and full batches made them clean.
OWN_IMAGES_RECIPE = Recipe(
    "vp", "v_prediction", "linear", T=1000, size="small", steps=1500, batch_size=128, learning_rate=1e-3
)
OWN_IMAGES_MEASURED = Measured("30 images, bars and rings in 2 class folders, 16×16", 0.969, 0.016, seeds=3, cpu_s=99.5)


@dataclass(frozen=True)
class DatasetDefaults:
    """What the controls become for a dataset: whether 'conditional' applies (and its value), batch size, lr; for
    "my images" also its recipe and the note on what it was measured to do."""

    labelled: bool
    conditional: bool
    batch_size: int
    learning_rate: float
    recipe: Recipe | None = None
    note: str = ""


def diffusion_changed(ctx: AppContext, session: Session, req: tuple) -> DiffusionChoice:
    """The prediction types that serve the process, whether T and the schedule apply, and the note on x_T."""
    process, prediction, schedule, T = req
    return DiffusionChoice(
        view.prediction_choices(process, prediction), process != "flow", view.schedule_note(process, schedule, T)
    )


def dataset_changed(ctx: AppContext, session: Session, name: str | None) -> DatasetDefaults | None:
    """A dataset's defaults: 'conditional' for labelled images, and the batch size and learning rate that suit it
    (None: no dataset to follow)."""
    return None if name is None else dataset_defaults(name)


def dataset_defaults(name: str) -> DatasetDefaults:
    if name == OWN_IMAGES:  # own images may have class folders
        r = OWN_IMAGES_RECIPE
        return DatasetDefaults(True, True, r.batch_size, r.learning_rate, r, view.recipe_note(r, OWN_IMAGES_MEASURED))
    labelled = bool(NUM_CLASSES.get(name))
    images = name in IMAGE_DATASETS
    return DatasetDefaults(labelled, images and labelled, 128 if images else 256, 1e-3 if images else 2e-3)
