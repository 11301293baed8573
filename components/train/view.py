"""Tab 9, train: what it looks like, as pure functions and tables (no widgets, no sessions): the choices with their
words (processes, prediction types and their losses, schedules), the note on x_T beside T, the data of a samples
figure (a model's preview, a drawing's points, a grid of uploaded images) and the status line in words (in the
browser: ``STATUS_JS``).  The figures themselves are built in figures.py."""

from __future__ import annotations

import math

import numpy as np

from adiff.data import PLOT_RANGE
from adiff.data.uploads import ImageSet
from adiff.diffusion.parameterization import DEFAULT_PREDICTION_TYPE, PROCESS_PREDICTION_TYPES
from adiff.diffusion.schedules import make_schedule

from ..arrays import count_nonfinite, points, tile_images
from ..fields import UserError, as_choice, as_int
from ..figures import COLORS, LABELS
from ..limits import LIMITS
from ..player import player_payload
from ..score_fields import FIELD_GRID

__all__ = [
    "SCHEDULES",
    "PROCESS_CHOICES",
    "PREDICTION_LABELS",
    "PREDICTION_TYPES",
    "LOSS_LABELS",
    "STATUS_JS",
    "prediction_choices",
    "schedule_note",
    "recipe_note",
    "preview_data",
    "drawing_data",
    "images_data",
    "FILM_NOTE",
    "film_payload",
    "no_film_payload",
]

SCHEDULES = ["linear", "cosine", "sigmoid"]
PROCESS_CHOICES = [("VP (DDPM schedule)", "vp"), ("rectified flow", "flow")]
PREDICTION_LABELS = {
    "epsilon": "ε: the noise",
    "sample": "x₀: the clean sample",
    "v_prediction": "v = α ε − σ x₀",
    "velocity": "velocity ε − x₀",
}
PREDICTION_TYPES = list(PREDICTION_LABELS)
# The loss of each prediction type (adiff.diffusion.losses): (y-axis label, formula shown as the figure's title).
LOSS_LABELS = {
    "epsilon": ("ε-MSE", "L = E |ε − ε_θ(x_t, t)|²"),  # Ho et al. 2020, eq. 14
    "sample": ("x₀-MSE · min(SNR, 5)", "L = E min(SNR, 5) |x₀ − x̂₀_θ(x_t, t)|²"),  # Hang et al. 2023 (Min-SNR-5)
    "v_prediction": ("v-MSE", "L = E |α ε − σ x₀ − v_θ(x_t, t)|²"),  # Salimans & Ho 2022, section 4
    "velocity": ("velocity MSE", "L = E |(ε − x₀) − v_θ(x_t, t)|²"),  # Lipman et al. 2023, eq. 23; Liu et al. 2022
}

# The status JSON in plain words, formatted in the browser (no request): training, stopped, replaced (a newer run or
# a loaded model took over), saved or loaded.
STATUS_JS = """(s) => {
  if (!s) return "";
  if (s.pairs !== undefined) return "Straightening " + s.source + ": " + s.status + " (see the reflow section).";
  const p = (v) => (typeof v === "number" ? v.toPrecision(3) : "n/a");
  if (s.status === "training" || s.status === "done")
    return (s.status === "done" ? "✓ **done**" : "… **training**") + ": step " + s.step + " of " + s.of +
      " · loss " + p(s.loss_smooth) + " (smoothed) · " + s.steps_per_s + " steps/s · " + s.elapsed_s + " s · " +
      s.parameters + " parameters" + (s.status === "done" ? ". Your model is now **my model** in the other tabs." : "");
  if (s.status === "stopped") return "■ **stopped** at step " + s.step + ": the model so far is **my model** in the other tabs.";
  if (s.status === "replaced") return "■ **replaced** at step " + s.step + ": a newer run or a loaded model is **my model** now.";
  if (s.saved) return "✓ saved **" + s.saved + "** (" + Math.round(s.bytes / 1024) + " KB): download it from Save / load.";
  if (s.loaded) return "✓ loaded **" + s.loaded + "** (" + s.parameters + " parameters, " + s.training_step +
      " training steps, data: " + (s.dataset || "unknown") + "): it is now **my model** in the other tabs.";
  return "";
}"""


def prediction_choices(process, current=None) -> dict:
    """{"choices": [(label, type)], "value"}: the prediction types that serve ``process`` (PROCESS_PREDICTION_TYPES);
    keeps ``current`` if it is one."""
    allowed = PROCESS_PREDICTION_TYPES.get(process, PROCESS_PREDICTION_TYPES["vp"])
    value = current if current in allowed else DEFAULT_PREDICTION_TYPE.get(process, "epsilon")
    return {"choices": [(PREDICTION_LABELS[k], k) for k in allowed], "value": value}


def schedule_note(process, schedule, T) -> str:
    """What x_T is for the chosen process, schedule and T: √ᾱ_T, and for the linear schedule its 1000 / T rescaling
    (Nichol & Dhariwal 2021, improved-diffusion's get_named_beta_schedule) against Ho et al.'s unscaled range."""
    if process == "flow":
        return (
            "**Rectified flow**: continuous time t ∈ [0, 1] and α(1) = 0 exactly, so x₁ is pure noise at any "
            "number of sampling steps: no T and no schedule to choose."
        )
    try:
        T = as_int(T, "num_diffusion_steps", 10, LIMITS.train_T)
        schedule = as_choice(schedule, "schedule", SCHEDULES)
    except UserError as e:
        return f"✗ {e.message}"
    sch = make_schedule(schedule, T)
    root = math.sqrt(float(sch.alphas_cumprod[-1]))  # √ᾱ_T: what is left of x₀ in x_T (Ho et al. 2020, eq. 4)
    text = f"**√ᾱ_T = {root:.2g}** at T = {T} ({schedule}): x_T {'is practically pure noise' if root < 0.05 else 'still carries the data'}."
    if schedule == "linear":
        plain = math.sqrt(float(make_schedule("linear", T, beta_start=1e-4, beta_end=0.02).alphas_cumprod[-1]))
        text += (
            f" The linear β run from {sch.beta_start:.2g} to {sch.beta_end:.2g}: Ho et al.'s 1e-4..0.02, "
            f"rescaled by 1000/T"
            + (f" (unscaled, √ᾱ_T would be {plain:.2g}: x_T would still show the data)." if T != 1000 else ".")
        )
    return text + "".join(f"\n\n⚠ {w}" for w in sch.warnings())


def recipe_note(recipe, measured) -> str:
    """The line under the dataset for a recipe (follow.Recipe) and what it was measured to do (follow.Measured):
    "these settings reached N % class agreement in M s on a 2-core CPU"."""
    r, m = recipe, measured
    how = f"{r.schedule} schedule" if r.process == "vp" else "rectified flow"
    return (
        f"**Set for your images**: predicts {r.prediction.replace('_prediction', '')}, {how}, {r.size}, "
        f"{r.steps:,} steps, batch {r.batch_size}, conditional.  On a test upload ({m.upload}) these settings reached "
        f"**{100 * m.agreement:.0f} ± {100 * m.se:.0f} % class agreement** in **{m.cpu_s:.0f} s** on a 2-core CPU "
        f"(a classifier trained on the upload read each sample's class; {m.seeds} seeds)."
    )


def preview_data(x, kind: str, data_pts: dict | None, title: str) -> dict:
    """Samples x ([N, 2] points or [N, 1, S, S] images) -> the data of make_samples_figure; NaN or infinite samples
    are counted ("nonfinite") and named in the title."""
    bad = count_nonfinite(x)
    if bad:
        title += f"  ·  ⚠ {bad} of {x.shape[0]} samples are NaN or infinite (not drawn)"
    if kind == "images":
        return {"kind": "images", "z": tile_images(x), "title": title, "nonfinite": bad}
    return {
        "kind": "points",
        "points": points(x),
        "data": data_pts,
        "title": title,
        "range": PLOT_RANGE,
        "nonfinite": bad,
    }


def drawing_data(x, total: int) -> dict:
    """The points sampled from a drawing ([total, 2]; the first 2000 drawn) as make_samples_figure's data."""
    return {
        "kind": "points",
        "data": points(x[:2000]),
        "range": PLOT_RANGE,
        "title": f"my drawing: 2000 of {total} points",
    }


def images_data(images: ImageSet, size: int, shown: int) -> dict:
    """The first ``shown`` uploaded images as a grid, titled with the count per class."""
    counts = " · ".join(f"{k} {v}" for k, v in images.counts.items())
    title = f"my images: {images.x.shape[0]} at {size}×{size} ({counts})"
    return {"kind": "images", "z": tile_images(images.x[:shown]), "title": title, "name": "uploaded image"}


FILM_NOTE = (
    "A frame per snapshot of the training run: the learned field at one noise level and samples of the EMA weights "
    "from the same noise every time, so what changes between frames is the network alone.  Arrows are normalised per "
    "frame (their scale is in the frame label)."
)


def _film_static(film, title: str) -> dict:
    lo, hi = PLOT_RANGE
    g = {"n": FIELD_GRID, "lo": lo + (hi - lo) / FIELD_GRID / 2, "hi": hi - (hi - lo) / FIELD_GRID / 2}
    what = "velocity −v̂" if film.velocity else "score −ε̂/σ_t"
    colour = COLORS["velocity" if film.velocity else "score"]
    where = f"t = {film.t:g}, σ_t = {film.sigma:.2f}"
    layers = {
        "field": {"type": "field", "color": colour, **g},
        "data": {"type": "points", "color": COLORS["data"], "size": 2.2, "opacity": 0.35},
        "samples": {"type": "points", "color": COLORS["x0_pred"], "size": 2.6, "opacity": 0.8},
    }
    panels = [
        [
            {"title": f"learned {what} at {where}", "color": colour, "layers": ["data", "field"]},
            {
                "title": "samples (DPM-Solver++ 10 steps, fixed seed)",
                "color": COLORS["x0_pred"],
                "layers": ["data", "samples"],
            },
        ]
    ]
    legend = [[LABELS["data"], COLORS["data"]], [f"{what} arrows", colour], ["samples", COLORS["x0_pred"]]]
    static = {"title": title, "range": list(PLOT_RANGE), "panels": panels, "layers": layers, "schedule": None}
    return {**static, "legend": legend, "notes": [FILM_NOTE]}


def film_payload(film, data, run_id: str, of: int) -> dict:
    """The film (components/train/film.Film) as one player payload: a frame per snapshot, labelled with its step;
    ``data`` [M, 2] the faint data points behind both panels, ``of`` the run's number of steps."""
    K = len(film)
    arrays = {
        "field": np.stack(film.fields),  # [K, G*G, 2]
        "data": np.repeat(np.asarray(data, dtype=np.float64)[None], K, axis=0),  # [K, M, 2]
        "samples": np.stack([s.numpy() for s in film.samples]),  # [K, N, 2]
    }
    labels = [
        f"step {s} of {of}" + ("" if math.isnan(loss) else f" · loss {loss:.3g}") + f" · frame {k + 1} of {K}"
        for k, (s, loss) in enumerate(zip(film.steps, film.losses))
    ]
    title = f"training as a film: {K} snapshots, one every {film.every} steps"
    return player_payload(
        run_id, "points", _film_static(film, title), arrays, film.steps, [film.sigma] * K, labels, live=False
    )


def _mmd(v) -> str:
    return "n/a (no reference data)" if v is None else f"{v[0]:.2g} ± {v[1]:.1g}"


def reflow_text(s: dict) -> str:
    """A reflow run's status (components/train/reflow.py) in words."""
    state, before = s.get("status"), s.get("before", {})
    if state == "coupling":
        return (
            f"… **coupling** {s['pairs_done']:,} of {s['pairs']:,} pairs ({s['source']}'s ODE, {s['ode_steps']} steps)"
        )
    if state == "training":
        return f"… **training** step {s['step']} of {s['of']} · loss {s['loss']:.3g} · {s['elapsed_s']} s"
    if state in ("stopped", "replaced"):
        why = "the student so far is **my model**" if state == "stopped" else "a newer run is **my model** now"
        return f"■ **{state}** at step {s.get('step', 0)}: {why}."
    if state == "done":
        after = s["after"]
        return (
            f"✓ **done** in {s['elapsed_s']} s: straightness {before['straightness']:.3f} → **{after['straightness']:.3f}**"
            f" · one Euler step's MMD² to the data {_mmd(before['mmd2_1step'])} → **{_mmd(after['mmd2_1step'])}**.  "
            f"The straightened flow is **my model**: compare it with {s['source']} in tab 4."
        )
    return ""


def no_film_payload(run_id: str) -> dict:
    """A one-frame payload without points that says the film is for 2-D data (an image run: no older film stays)."""
    what = "no film for image data: the film of the learned field is for 2-D data"
    layers = {"samples": {"type": "points", "color": COLORS["x0_pred"], "size": 2.6, "opacity": 0.8}}
    static = {"title": what, "range": list(PLOT_RANGE), "panels": [[{"title": "", "layers": ["samples"]}]]}
    static.update(layers=layers, schedule=None, legend=[], notes=[])
    return player_payload(run_id, "points", static, {"samples": np.zeros((1, 0, 2))}, [0], [0.0], [""], live=False)
