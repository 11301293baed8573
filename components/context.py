"""The AppContext made by ``build_app``, which every tab shares: the device presets load on, the session store,
concurrency settings, the result cache, model lookup (a shipped preset or the session's own model) and cached data.

Nothing here is mutable at module level: caches live on the AppContext, which belongs to one Blocks app.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import torch

import adiff.presets
from adiff import DiffusionModel
from adiff.data import make_dataset
from adiff.eval.metrics import MMDEstimate, MMDReference
from adiff.nn.budget import Budget
from adiff.nn.checkpoints import CheckpointError
from adiff.nn.config import resolve_device
from adiff.serving import SamplingEngine

from .fields import as_choice, field_error
from .limits import LIMITS, PREVIEW_FLOPS_PER_SECOND
from .result_cache import ResultCache
from .score_fields import FieldCache, Fields
from .state import Session, SessionStore

__all__ = ["AppContext", "ModelInfo", "MY_MODEL"]


MY_MODEL = "my model"  # the model trained or loaded in the Train tab (per session)


@dataclass(frozen=True)
class ModelInfo:
    source: str  # preset name or MY_MODEL
    dataset: str | None  # adiff.data dataset it was trained on (None when unknown)
    kind: str  # "points" | "images"
    conditional: bool
    num_classes: int | None
    sample_kwargs: dict  # e.g. {"cfg_scale": 2.0, "clip_x0": 1.0}
    description: str
    sampler: str | None = None  # the preset's default solver and step count (None: the registry's for the process)
    num_steps: int | None = None


def _kind_of(model: DiffusionModel, field_name: str) -> str:
    shape = tuple(model.data_shape)
    if shape == (2,):
        return "points"
    if len(shape) == 3 and shape[0] == 1:
        return "images"
    raise field_error(
        field_name, f"this app shows 2-D points or one-channel images; the model's data_shape is {list(shape)}"
    )


@dataclass
class AppContext:
    """Everything the tabs share for one app: the device presets load on, the session store, concurrency settings."""

    device: str = "auto"
    max_heavy_jobs: int = 2
    light_jobs: int = 8
    max_upload_params: int = LIMITS.upload_params
    store: SessionStore = field(default_factory=SessionStore)
    results: ResultCache = field(default_factory=ResultCache)  # identical preset requests (result_cache.py)
    fields: FieldCache = field(default_factory=FieldCache)  # learned fields on the grid, shared (score_fields.py)
    engine_workers: int = 1  # threads computing each batched forward (adiff.serving.SamplingEngine)
    _engine: SamplingEngine | None = field(default=None, repr=False)
    _data_cache: dict = field(default_factory=dict, repr=False)
    _references: dict = field(default_factory=dict, repr=False)  # MMD references (mmd2_to_data)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -------------------------------------------------------------- concurrency (passed to event listeners)
    @property
    def heavy(self) -> dict:
        """Adaptation and training (and uploads' previews) share one queue slot pool of ``max_heavy_jobs``."""
        return {"concurrency_limit": self.max_heavy_jobs, "concurrency_id": "heavy"}

    @property
    def sampling(self) -> dict:
        """Sampling runs (/generate, /compare, /guided_generate) run many at once: they mostly wait on the engine,
        which makes one batched network call per round for all of them (adiff.serving)."""
        return {"concurrency_limit": LIMITS.sampling_runs, "concurrency_id": "sampling"}

    @property
    def engine(self) -> SamplingEngine:
        """The app's sampling engine (started on first use; ``close()`` stops it)."""
        with self._lock:
            if self._engine is None:
                self._engine = SamplingEngine(max_wait_ms=LIMITS.engine_wait_ms, workers=self.engine_workers)
            return self._engine

    def fields_for(self, model, info: ModelInfo, label, cfg_scale, network=None) -> Fields:
        """A run's learned fields: through its engine session, shared across sessions for a preset (its weights
        never change; "my model" is never cached)."""
        shared = info.source in adiff.presets.PRESETS
        return Fields(
            model, label, cfg_scale, network, self.fields if shared else None, info.source if shared else None
        )

    def close(self) -> None:
        """Stop the engine and release every session."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        self.store.close_all()

    @property
    def light(self) -> dict:
        return {"concurrency_limit": self.light_jobs, "concurrency_id": "light"}

    @property
    def instant(self) -> dict:
        """Handlers that compute nothing (a Stop's status line, a dropdown's help text, a link's values): queued like
        every event (no route skips the queue), in a pool of their own so a full light pool never delays them."""
        return {"concurrency_limit": self.light_jobs, "concurrency_id": "instant"}

    # -------------------------------------------------------------- uploads
    def upload_budget(self, kind: str) -> Budget:
        """What an uploaded model may cost: at most ``max_upload_params`` parameters, ``LIMITS.upload_tokens``
        tokens per sample, and forward FLOPs per sample such that the Train tab's preview (``LIMITS.preview_*``
        samples and steps) is estimated to take at most ``LIMITS.preview_seconds`` on this app's device."""
        dev = "cuda" if str(resolve_device(self.device)).startswith("cuda") else "cpu"
        samples = LIMITS.preview_images if kind == "images" else LIMITS.preview_points
        flops = LIMITS.preview_seconds * PREVIEW_FLOPS_PER_SECOND[dev] / (samples * LIMITS.preview_steps)
        return Budget(max_parameters=self.max_upload_params, max_tokens=LIMITS.upload_tokens, max_flops=flops)

    # -------------------------------------------------------------- models
    def sources(self) -> list[str]:
        return adiff.presets.list_presets() + [MY_MODEL]

    def model(self, source: Any, session: Session, field_name: str = "preset") -> tuple[DiffusionModel, ModelInfo]:
        """The shared read-only preset model, or the session's own trained model, with what the UI needs to know."""
        as_choice(source, field_name, self.sources())
        if source == MY_MODEL:
            model = session.trained
            if model is None:
                raise field_error(field_name, "'my model' needs a model trained or loaded in the Train tab first")
            info = session.trained_info
            kind = _kind_of(model, field_name)
            return model, ModelInfo(
                MY_MODEL,
                info.get("dataset"),
                kind,
                model.is_conditional,
                model.num_classes,
                dict(info.get("sample_kwargs", {})),
                info.get("description", "your model"),
            )
        try:
            model = adiff.presets.load_preset(source, self.device)
        except CheckpointError as e:
            raise field_error(field_name, str(e)) from None
        spec = adiff.presets.preset_spec(source)
        kind = _kind_of(model, field_name)
        return model, ModelInfo(
            source,
            spec.dataset,
            kind,
            model.is_conditional,
            model.num_classes,
            dict(spec.sample_kwargs),
            spec.description,
            getattr(spec, "sampler", None),
            getattr(spec, "num_steps", None),
        )

    # -------------------------------------------------------------- data (read-only, cached per app)
    def _cached(self, store: dict, key, make):
        """store[key], made by make() the first time (outside the lock); a store past 32 entries starts afresh."""
        with self._lock:
            if key in store:
                return store[key]
        value = make()
        with self._lock:
            if len(store) > 32:
                store.clear()
            store[key] = value
        return value

    def dataset(self, name: str, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._cached(self._data_cache, (name, n, seed), lambda: make_dataset(name, n, seed=seed))

    def mmd2_to_data(self, info: ModelInfo, samples: torch.Tensor, label, n: int, seed: int) -> MMDEstimate | None:
        """MMD² (with its standard error) of the first ``n`` samples of a 2-D model to ``n`` points of its dataset (of
        class ``label`` for a class-conditional run); None for images, unknown data or fewer than 2 points a side.
        n vs n points: MMD² costs O((2n)²)."""
        if info.kind != "points" or info.dataset is None or len(samples) < 2:
            return None
        label = label if isinstance(label, int) else None

        def make():  # the data side's kernel sums are the same for every run: computed once (a third of the cost)
            ref, ref_labels = self.dataset(info.dataset, 4 * n, seed)
            if label is not None and ref_labels is not None:
                ref = ref[ref_labels == label]  # compare a class-conditional run with that class's data
            return MMDReference(ref[:n]) if len(ref) >= 2 else None

        reference = self._cached(self._references, (info.dataset, label, n, seed), make)
        return None if reference is None else reference.estimate(samples[:n].float().cpu())
