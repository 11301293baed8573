"""What every tab shares: the AppContext made by ``build_app`` (device, session store, concurrency settings,
model lookup), input limits, and the conversions from adiff's tensors to the plain data the figure builders take.

Nothing here is mutable at module level: caches live on the AppContext, which belongs to one Blocks app.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import adiff.presets
from adiff import DiffusionModel
from adiff.data import PLOT_RANGE, make_dataset
from adiff.diffusion.processes import Process
from adiff.diffusion.schedules import NoiseSchedule
from adiff.eval.metrics import mmd2
from adiff.nn.budget import Budget
from adiff.nn.checkpoints import CheckpointError
from adiff.nn.config import resolve_device
from adiff.samplers import SOLVERS, solvers_for
from adiff.steering.rewards import BUILTIN_REWARDS, REWARD_NAMES, ExpressionError, compile_expression, make_reward

from .result_cache import ResultCache
from .state import Session, SessionStore
from .validation import as_choice, as_text, field_error

__all__ = [
    "AppContext",
    "ModelInfo",
    "MY_MODEL",
    "LIMITS",
    "points",
    "tile_images",
    "tile_array",
    "grid",
    "score_field",
    "score_grid",
    "reward_grid",
    "solver_choices",
    "solver_help",
    "default_solver",
    "steps_for",
    "schedule_curve",
    "curve_at",
    "flow_curve",
    "process_curve",
    "flow_time",
    "build_reward",
    "reward_choices",
    "parse_label",
    "label_choices",
    "finite_list",
    "condition_for",
    "default_label",
    "EACH_LABEL",
    "count_nonfinite",
    "finite_rows",
    "PREVIEW_FLOPS_PER_SECOND",
]

MY_MODEL = "my model"  # the model trained or loaded in the Train tab (per session)


@dataclass(frozen=True)
class Limits:
    """Upper bounds on every input (a workshop server must survive thirty people pressing buttons)."""

    points: int = 2000  # samples of a 2-D model per run
    images: int = 64  # samples of an image model per run
    forward_points: int = 5000  # points in the forward-process view
    forward_images: int = 8  # glyph rows in the forward strip
    schedule_T: int = 10_000  # T in the schedule explorer (adiff.diffusion.schedules.MAX_STEPS)
    custom_chars: int = 20_000  # custom schedule text
    expression_chars: int = 200  # reward expression (adiff.steering.expressions.MAX_EXPRESSION_CHARS)
    reward_params_chars: int = 400
    seed: int = 2**31 - 1
    guidance_scale: float = 100.0
    cfg_scale: float = 20.0
    recurrence: int = 5
    adapt_steps: int = 500
    adapt_batch: int = 1024
    buffer_capacity: int = 5000
    train_steps: int = 20_000
    train_batch: int = 1024
    train_T: int = 2000
    upload_bytes: int = 64 * 2**20
    upload_params: int = 50_000_000  # default of --max-upload-params (parameters of one denoiser)
    upload_tokens: int = 256  # tokens per sample of an uploaded model (the glyphs preset has 16)
    preview_points: int = 400  # samples in the Train tab's preview of a 2-D model
    preview_images: int = 16  # ... of an image model
    preview_steps: int = 25  # DDIM steps of that preview
    preview_seconds: float = 3.0  # what the preview of an uploaded model may cost, estimated from its FLOPs
    frames: int = 50  # frames kept per trajectory for the slider and the GIF
    stream_updates: int = 30  # updates streamed per run


LIMITS = Limits()

# Forward FLOP/s assumed when estimating an upload's preview.  Measured on the 2-core CI machine, one thread, load
# average 3.4: 37-48 GFLOP/s for the presets and 256-token image models (model_cost FLOPs over wall time); half of
# that is assumed, as the cores are shared by concurrent jobs.  On a GPU, a conservative 0.5 TFLOP/s.
PREVIEW_FLOPS_PER_SECOND = {"cpu": 2e10, "cuda": 5e11}


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
    _data_cache: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -------------------------------------------------------------- concurrency (passed to event listeners)
    @property
    def heavy(self) -> dict:
        """Sampling, guidance, adaptation and training share one queue slot pool of ``max_heavy_jobs``."""
        return {"concurrency_limit": self.max_heavy_jobs, "concurrency_id": "heavy"}

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
    def dataset(self, name: str, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = (name, n, seed)
        with self._lock:
            hit = self._data_cache.get(key)
        if hit is None:
            hit = make_dataset(name, n, seed=seed)
            with self._lock:
                if len(self._data_cache) > 32:
                    self._data_cache.clear()
                self._data_cache[key] = hit
        return hit

    def mmd2_to_data(self, info: ModelInfo, samples: torch.Tensor, label, n: int, seed: int) -> float | None:
        """MMD² of the first ``n`` samples of a 2-D model to ``n`` points of its dataset (of class ``label`` for a
        class-conditional run); None for images, unknown data or fewer than 2 points a side.  n vs n points: MMD²
        costs O((2n)²)."""
        if info.kind != "points" or info.dataset is None:
            return None
        ref, ref_labels = self.dataset(info.dataset, 4 * n, seed)
        if isinstance(label, int) and ref_labels is not None:
            ref = ref[ref_labels == label]  # compare a class-conditional run with that class's data
        if len(ref) < 2 or len(samples) < 2:
            return None
        return mmd2(samples[:n].float().cpu(), ref[:n])


# ---------------------------------------------------------------------------------------------- conversions
def count_nonfinite(x: torch.Tensor) -> int:
    """Samples (rows of x [N, ...]) holding a NaN or an infinity: the figures leave them out and say how many."""
    return int((~torch.isfinite(x.detach().reshape(x.shape[0], -1))).any(1).sum()) if x.numel() else 0


def finite_rows(x: torch.Tensor) -> torch.Tensor:
    """The samples of x [N, ...] whose every value is finite."""
    return x[torch.isfinite(x.detach().reshape(x.shape[0], -1)).all(1)]


def finite_list(a, digits: int = 4) -> list:
    """A 1-D array-like -> list of rounded floats, with None for NaN/inf (plotly leaves a gap)."""
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    ok = np.isfinite(arr)
    out = np.round(np.where(ok, arr, 0.0), digits).tolist()
    if not ok.all():
        out = [v if f else None for v, f in zip(out, ok.tolist())]
    return out


def points(x: torch.Tensor, limit: float = 1e4) -> dict:
    """x [N, 2] -> {"x": [...], "y": [...]} (rounded; far-away points clamped so the JSON stays small)."""
    a = x.detach().float().cpu().clamp(-limit, limit).numpy()
    return {"x": finite_list(a[:, 0]), "y": finite_list(a[:, 1])}


def tile_array(x: torch.Tensor, cols: int | None = None, gap: int = 1, min_size: int = 16) -> np.ndarray:
    """Images [N, 1, H, W] (or [N, H, W]) -> one float array tiling them in a grid, ``gap`` NaN pixels between.

    Images smaller than ``min_size`` pixels a side are enlarged by a whole factor, each pixel repeated
    (nearest-neighbour), so that 8x8 digits show as large, sharp blocks beside 16x16 glyphs and the 1-pixel gaps
    between tiles stay thin."""
    a = x.detach().float().cpu()
    if a.dim() == 4:
        a = a[:, 0]
    k = max(1, math.ceil(min_size / max(a.shape[1:])))
    if k > 1:
        a = a.repeat_interleave(k, dim=1).repeat_interleave(k, dim=2)  # nearest-neighbour upscaling
    N, H, W = a.shape
    cols = cols or max(1, math.ceil(math.sqrt(N)))
    rows = max(1, math.ceil(N / cols))
    canvas = np.full((rows * (H + gap) - gap, cols * (W + gap) - gap), np.nan)
    arr = np.nan_to_num(a.numpy(), nan=0.0, posinf=1e3, neginf=-1e3)
    for i in range(N):
        r, c = divmod(i, cols)
        canvas[r * (H + gap) : r * (H + gap) + H, c * (W + gap) : c * (W + gap) + W] = arr[i]
    return canvas


def tile_images(
    x: torch.Tensor, cols: int | None = None, gap: int = 1, digits: int = 3, min_size: int = 16
) -> list[list]:
    """``tile_array`` as a 2-D list (rounded; None in the gaps) for plotly heatmaps."""
    out = np.round(tile_array(x, cols, gap, min_size), digits)
    return [[None if math.isnan(v) else v for v in row] for row in out.tolist()]


def grid(n: int, rng=PLOT_RANGE) -> tuple[torch.Tensor, list, list]:
    """An n x n grid over rng^2 (cell centres): (points [n*n, 2], xs, ys)."""
    lo, hi = rng
    step = (hi - lo) / n
    c = torch.tensor([lo + step * (i + 0.5) for i in range(n)])
    gx, gy = torch.meshgrid(c, c, indexing="xy")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1), c.tolist(), c.tolist()


def score_grid(eps_fn: Callable, process: Process, ts, n: int = 17, rng=PLOT_RANGE, device=None) -> np.ndarray:
    """The score s(x, t) = grad log p_t(x) = -eps(x, t) / sigma_t on an n x n grid (``grid`` order) at each t in
    ``ts`` -> [len(ts), n*n, 2]; zero at t = 0 (clean data has no noise to point against).  One call of ``eps_fn``
    (which takes n*n points) per t: a batch that shares its t is the denoiser's fast path."""
    pts, _, _ = grid(n, rng)
    G = pts.shape[0]
    x = pts.to(device or "cpu")
    out = np.zeros((len(ts), G, 2))
    for i, t in enumerate(ts):
        if t <= 0:
            continue
        with torch.no_grad():
            eps = eps_fn(x, t).float().cpu()
        out[i] = (-eps / max(process.coefficients(t)[1], 1e-6)).numpy()
    return out


def score_field(eps_fn: Callable, process: Process, t, n: int = 17, rng=PLOT_RANGE, device=None) -> dict:
    """``score_grid`` at one t > 0 -> {"x","y","u","v"} lists for the plotly frame figure."""
    pts, _, _ = grid(n, rng)
    s = score_grid(eps_fn, process, [t], n, rng, device)[0]
    return {
        "x": finite_list(pts[:, 0], 3),
        "y": finite_list(pts[:, 1], 3),
        "u": finite_list(s[:, 0]),
        "v": finite_list(s[:, 1]),
    }


def reward_grid(reward: Callable, n: int = 70, rng=PLOT_RANGE) -> dict:
    """r(x) on an n x n grid -> {"x": [n], "y": [n], "z": [n][n]} (z[row = y][col = x])."""
    pts, xs, ys = grid(n, rng)
    with torch.no_grad():
        r = reward(pts).float().reshape(n, n)
    z = [finite_list(row) for row in r]
    return {"x": [round(v, 4) for v in xs], "y": [round(v, 4) for v in ys], "z": z}


def schedule_curve(schedule: NoiseSchedule, name: str, max_points: int = 1000) -> dict:
    """Curves of a schedule against t = 1..T, subsampled to at most ``max_points`` (always keeping t = 1 and T)."""
    T = schedule.num_steps
    if T <= max_points:
        idx = list(range(T))
    else:
        idx = sorted(set(np.linspace(0, T - 1, max_points).round().astype(int).tolist()))
    ii = torch.tensor(idx)
    return {
        "name": name,
        "T": T,
        "t": [i + 1 for i in idx],
        "abar": finite_list(schedule.alphas_cumprod[ii], 6),
        "noise": finite_list(schedule.noise_levels[ii], 6),
        "beta": finite_list(schedule.betas[ii], 6),
        "log_snr": finite_list(schedule.log_snr[ii], 4),
        "u": [round((i + 1) / T, 6) for i in idx],  # t / T: the time axis shared with the flow (Schedules tab)
        "alpha": finite_list(schedule.alphas_cumprod[ii].double().sqrt(), 6),  # alpha_t = sqrt(abar_t)
    }


def flow_time(u, shift: float = 1.0):
    """The flow time t' that an even grid position u in [0, 1] maps to under a timestep shift s:
    t' = s u / (1 + (s - 1) u)  (Esser et al. 2024, eq. 23; s = 1 is the identity).  Works on floats and arrays."""
    return shift * u / (1 + (shift - 1) * u)


def flow_curve(shift: float = 1.0, num_points: int = 400, name: str = "flow") -> dict:
    """The rectified-flow path x_t = (1 - t) x_0 + t eps (Liu et al. 2022, eq. 1) as curves on an even grid
    u = 0..1 with t = flow_time(u, shift): alpha = 1 - t, sigma = t, "abar" = alpha^2 (the signal's share of the
    variance, as for VP) and log-SNR = 2 log((1 - t) / t) = -2 logit(t) (infinite at both ends: left as gaps).
    The keys are those of ``schedule_curve`` (no "beta": the flow has no discrete steps); "t" is the flow time."""
    u = np.linspace(0.0, 1.0, num_points + 1)
    t = flow_time(u, float(shift))
    alpha, sigma = 1.0 - t, t
    with np.errstate(divide="ignore"):
        log_snr = 2.0 * (np.log(alpha) - np.log(sigma))
    return {
        "name": name,
        "process": "flow",
        "shift": float(shift),
        "T": 1,
        "t": finite_list(t, 6),
        "u": finite_list(u, 6),
        "alpha": finite_list(alpha, 6),
        "noise": finite_list(sigma, 6),
        "abar": finite_list(alpha**2, 6),
        "log_snr": finite_list(log_snr, 4),
    }


def process_curve(process: Process, name: str | None = None, max_points: int = 400) -> dict:
    """The curves of any process on its own time axis: ``schedule_curve`` for VP (t = 1..T), ``flow_curve`` for a
    flow (t in [0, 1], its sampling shift not applied: a flow's time is t itself)."""
    if process.name == "flow":
        return flow_curve(1.0, max_points, name or "flow")
    return schedule_curve(process.schedule, name or process.schedule.name, max_points)


def curve_at(curve: dict, schedule: NoiseSchedule, t: int) -> dict:
    """The curve with t = 0 prepended and the values at t attached (for the marker): abar_at, noise_at, alpha_at."""
    t = int(t)
    abar = 1.0 if t == 0 else float(schedule.alphas_cumprod[t - 1])
    out = {
        **curve,
        "t": [0] + curve["t"],
        "abar": [1.0] + curve["abar"],
        "noise": [0.0] + curve["noise"],
        "abar_at": abar,
        "noise_at": math.sqrt(max(0.0, 1.0 - abar)),
    }
    if "alpha" in curve:
        out.update(alpha=[1.0] + curve["alpha"], u=[0.0] + curve["u"], alpha_at=math.sqrt(abar))
    return out


# ---------------------------------------------------------------------------------------------- rewards
EXPRESSION = "expression"
NO_REWARD = "none"


def reward_choices(kind: str, allow_none: bool = False) -> list[str]:
    names = [s.name for s in BUILTIN_REWARDS if s.kind in (kind, "any")]
    if kind == "points":
        names.append(EXPRESSION)
    return ([NO_REWARD] if allow_none else []) + names


def reward_help(name: str) -> str:
    if name == EXPRESSION:
        from adiff.steering.rewards import EXPRESSION_HELP

        return EXPRESSION_HELP
    if name == NO_REWARD:
        return "No reward: only classifier-free guidance (for conditional models) changes the samples."
    spec = next((s for s in BUILTIN_REWARDS if s.name == name), None)
    if spec is None:
        return ""
    defaults = ", ".join(f"{k}={v!r}" for k, v in spec.defaults.items() if k != "device") or "none"
    return f"**{spec.name}**: {spec.description}  `{spec.formula}`  (defaults: {defaults})"


def build_reward(name: Any, expression: Any, params: Any, kind: str, allow_none: bool = False):
    """The Reward the user picked (a built-in with JSON parameters, or a compiled expression), or None for "none".
    Errors name the field: reward, expression, reward_params."""
    choices = [NO_REWARD] * allow_none + list(REWARD_NAMES) + [EXPRESSION]
    as_choice(name, "reward", choices)
    if name == NO_REWARD:
        return None
    if name == EXPRESSION:
        if kind != "points":
            raise field_error("reward", "an expression reward is for 2-D points; pick an image reward for this model")
        text = as_text(expression, "expression", LIMITS.expression_chars)
        try:
            return compile_expression(text)
        except ExpressionError as e:
            raise field_error("expression", str(e)) from None
    spec = next(s for s in BUILTIN_REWARDS if s.name == name)
    if spec.kind not in (kind, "any"):
        raise field_error(
            "reward",
            f"{name!r} is a reward for {spec.kind}; this model makes {kind}: pick one of {reward_choices(kind)}",
        )
    text = as_text(params, "reward_params", LIMITS.reward_params_chars).strip()
    kw = {}
    if text:
        try:
            kw = json.loads(text)
        except json.JSONDecodeError as e:
            raise field_error(
                "reward_params",
                f'is not valid JSON ({e.msg} at character {e.pos + 1}); write an object such as {{"k": 3}}',
            ) from None
        if not isinstance(kw, dict):
            raise field_error("reward_params", f'must be a JSON object such as {{"k": 3}}, got {text!r}')
    if "device" in kw:
        raise field_error("reward_params", "'device' is set by the app")
    try:
        return make_reward(name, **kw)
    except (ValueError, TypeError) as e:
        raise field_error("reward_params", str(e)) from None


# ---------------------------------------------------------------------------------------------- labels
ANY_LABEL = "any"  # the null class: unconditional samples
EACH_LABEL = "each"  # sample i gets class i mod num_classes (one of every digit)


def label_choices(info: ModelInfo) -> list[str]:
    if not info.conditional or not info.num_classes:
        return [ANY_LABEL]
    return [ANY_LABEL, EACH_LABEL] + [str(i) for i in range(info.num_classes)]


def default_label(info: ModelInfo) -> str:
    return EACH_LABEL if info.conditional and info.kind == "images" else ANY_LABEL


def parse_label(value: Any, info: ModelInfo, field_name: str = "class_label") -> int | str | None:
    """ "any" (or empty) -> None (the null class, i.e. unconditional); "each" -> "each" (cycling classes);
    "3" -> 3 for a conditional model."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", ANY_LABEL)):
        return None
    if not info.conditional:
        raise field_error(field_name, f"this model is unconditional: use {ANY_LABEL!r}, got {value!r}")
    if isinstance(value, str) and value.strip().lower() == EACH_LABEL:
        return EACH_LABEL
    try:
        v = int(str(value).strip())
    except ValueError:
        raise field_error(
            field_name, f"must be {ANY_LABEL!r}, {EACH_LABEL!r} or a class in 0..{info.num_classes - 1}, got {value!r}"
        ) from None
    if not 0 <= v < info.num_classes:
        raise field_error(
            field_name, f"must be {ANY_LABEL!r}, {EACH_LABEL!r} or a class in 0..{info.num_classes - 1}, got {value!r}"
        )
    return v


def condition_for(label: int | str | None, n: int, num_classes: int | None):
    """The sampler's condition: None, one class for all, or classes 0, 1, ..., K-1, 0, ... ("each")."""
    if label == EACH_LABEL:
        return torch.arange(n) % int(num_classes)
    return label


# ---------------------------------------------------------------------------------------------- solvers
FEW_STEP_DEFAULT = {"vp": "dpmpp_2m", "flow": "euler"}  # a model without a preset's choice starts with these


def solver_choices(model) -> list[tuple[str, str]]:
    """(label, name) for every solver of the model's process, the label with its NFE per step."""
    out = []
    for name in solvers_for(model.process):
        per = SOLVERS[name].nfe(2) / 2
        out.append((f"{name} · {'2 NFE/step' if per > 1 else '1 NFE/step'}", name))
    return out


def solver_help(model) -> str:
    """The solvers of the model's process, one line each (the registry's summaries)."""
    return "\n".join(f"- **{n}**: {SOLVERS[n].summary}" for n in solvers_for(model.process))


def default_solver(model, info: ModelInfo) -> tuple[str, int]:
    """The solver and step count a model starts with: its preset's, else a few-step solver's own default."""
    names = solvers_for(model.process)
    name = info.sampler if info.sampler in names else FEW_STEP_DEFAULT.get(model.process.name, names[0])
    if name == info.sampler and info.num_steps:
        return name, min(int(info.num_steps), model.max_sampling_steps)
    return name, steps_for(model, name)


def steps_for(model, name: str) -> int:
    """A solver's sensible step count for this model, never more than the model can take."""
    return SOLVERS[name].default_num_steps(model.process)
