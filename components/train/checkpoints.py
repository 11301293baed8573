"""Tab 9, train: saving and loading "my model" (handlers, no widgets).

* ``save_model``: "my model" as a .safetensors checkpoint (with the config it was made with), written into a folder
  of this run's own (``session.run_folder``), so parallel saves in one session never share a file.
* ``load_model``: an uploaded checkpoint, checked before anything is built (size, header, format, the config and
  what its model would cost: ``ctx.upload_budget``; then names, shapes, checksum, finite weights), becomes "my
  model"; then a preview is drawn, one sampler step at a time so that Stop cancels it between steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adiff import DiffusionModel
from adiff.data import DATA_SHAPES, DATASETS
from adiff.nn.budget import checkpoint_config
from adiff.nn.checkpoints import CheckpointError, open_checkpoint

from ..context import MY_MODEL, AppContext
from ..fields import field_error
from ..limits import LIMITS
from ..state import Session
from .shared import TAB, adopt, preview, upload_path

__all__ = ["LoadRequest", "Saved", "Loaded", "save_model", "load_model"]

DATA_ID_CHARS = 80  # a checkpoint's recorded data identity longer than this is not read


@dataclass(frozen=True)
class LoadRequest:
    path: Path

    @classmethod
    def parse(cls, ctx: AppContext, session: Session, model_file) -> LoadRequest:
        path = upload_path(model_file, "model_file")
        size = path.stat().st_size
        if size > LIMITS.upload_bytes:
            raise field_error("model_file", f"{size} bytes is over the {LIMITS.upload_bytes} byte limit")
        return cls(path)


@dataclass(frozen=True)
class Saved:
    path: str
    status: dict


@dataclass(frozen=True)
class Loaded:
    """A loaded checkpoint: first without a preview (``samples`` None), then with it."""

    samples: dict | None
    status: dict


def save_model(ctx: AppContext, session: Session, req: None):
    """Write this session's model as a .safetensors checkpoint and return it for download."""
    with session.lock:
        model, info = session.trained, dict(session.trained_info)
    if model is None:
        raise field_error("model", "nothing to save yet: train or load a model first")
    folder = session.run_folder(TAB)
    name = f"adiff-{info.get('dataset') or 'model'}-{info.get('steps', 0)}steps.safetensors"
    with session.lock:
        extra = {"dataset": info.get("dataset"), "data": info.get("data"), "source": "adiff app"}
        path = Path(model.save(folder / name, extra=extra))
    yield Saved(str(path), {"saved": path.name, "bytes": path.stat().st_size, "dataset": info.get("dataset")})
    session.delivered(TAB, folder)  # the browser has this checkpoint: older saves may go


def _open(ctx: AppContext, path: Path) -> tuple[DiffusionModel, str]:
    """The checkpoint's model, checked before anything is built: size, header, format, the config and what its model
    would cost (parameters, tokens and FLOPs per sample), tensor names and shapes; then the checksum and finite
    weights.  Returns (model, kind)."""
    try:
        ckpt = open_checkpoint(path, name=path.name)  # the header only
        shape = checkpoint_config(ckpt, ctx.device).arch.data_shape  # validated (nested, flat or migrated)
        if not (shape == (2,) or (len(shape) == 3 and shape[0] == 1)):
            raise field_error(
                "model_file",
                f"this app shows 2-D points or one-channel images; the model's data_shape is {list(shape)}",
            )
        kind = "points" if shape == (2,) else "images"
        model = DiffusionModel.load(ckpt, device=ctx.device, budget=ctx.upload_budget(kind))
    except CheckpointError as e:
        raise field_error("model_file", str(e)) from None
    model.denoiser.eval()
    return model, kind


def _recorded_data(metadata, dataset: str | None) -> str | None:
    """The data identity a checkpoint records ("data": a dataset's name, or own data with its fingerprint, written by
    save_model), else its known dataset, else None (compare then refuses to pair it with another model)."""
    data = (metadata or {}).get("data")
    if isinstance(data, str) and 0 < len(data) <= DATA_ID_CHARS and data.isprintable():
        return data
    return dataset


def load_model(ctx: AppContext, session: Session, req: LoadRequest):
    """Load an uploaded checkpoint as this session's 'my model', then draw a preview (streams its progress; a heavy
    job, cancelled by Stop)."""
    model, kind = _open(ctx, req.path)
    ds = (model.metadata or {}).get("dataset")
    ds = ds if isinstance(ds, str) and ds in DATASETS else None
    if ds is not None and tuple(model.data_shape) != tuple(DATA_SHAPES[ds]):
        ds = None
    info = {
        "dataset": ds,
        "data": _recorded_data(model.metadata, ds),
        "description": f"loaded from {req.path.name}",
        "steps": model.training_step,
        "sample_kwargs": {"clip_x0": 1.0} if kind == "images" else {},
    }
    _, minfo = adopt(ctx, session, model, info)  # a training run in this session stops
    status = {
        "loaded": req.path.name,
        "dataset": ds,
        "config": model.cfg.flat(),
        "training_step": model.training_step,
        "parameters": model.num_parameters,
        "use_as": MY_MODEL,
    }
    yield Loaded(None, {**status, "status": "loaded; drawing a preview"})
    for data in preview(model, minfo, None, model.training_step):
        if data is None:
            yield None  # Stop cancels the job here
    yield Loaded(data, {**status, "status": "loaded", "nonfinite_samples": data["nonfinite"]})
