"""A preset's quality for its model card, measured at the settings the app opens it with (``PresetSpec.sampling``).

The app opens a 2-D preset on class "any" (the null class: unconditional samples) and an image preset on "each"
(ten of each digit), with the preset's solver, step count and sampling keywords (CFG for conditional runs).  So the
card's headline is measured there: 2-D presets MMD² of unconditional samples to fresh data (for a conditional one,
the figure with labels drawn like the data beside it, ``conditional_*``), image presets the digit classifier's
agreement with the requested class.  Every figure is the mean of independent draws with its standard error.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import torch

from ..data import digits_split, gaussian_mixture_for, make_dataset
from ..diffusion.parameterization import Predictor
from ..eval.metrics import copy_check, mmd2, sliced_wasserstein
from ..eval.quality import mean_se
from ..model import DiffusionModel
from ..samplers import sample
from .reflow import few_step_quality

__all__ = ["evaluate_points", "evaluate_images", "evaluate_preset", "eval_progress", "progress_bar", "Progress"]

Progress = Callable[[str, int, int], None]  # (what, done, total)


def progress_bar(label: str, done: int, total: int, t0: float, extra: str = "", stream=sys.stderr) -> None:
    width = 30
    k = int(width * done / max(total, 1))
    rate = done / max(1e-9, time.time() - t0)
    eta = (total - done) / max(rate, 1e-9)
    stream.write(f"\r{label} [{'#' * k}{'.' * (width - k)}] {done}/{total}{extra} {rate:.1f} it/s eta {eta:.0f}s ")
    stream.flush()
    if done == total:
        stream.write("\n")


def eval_progress(stream=sys.stderr) -> Progress:
    """A progress callback for the evaluation: one bar per sampling run (e.g. "eval ddpm1000 [###...] 340/1000")."""
    starts: dict[str, float] = {}

    def report(what: str, done: int, total: int) -> None:
        t0 = starts.setdefault(what, time.time())
        if done == total or done % max(1, total // 50) == 0:
            progress_bar(f"eval {what}", done, total, t0, stream=stream)

    return report


def _sample(model: DiffusionModel, n: int, condition, seed: int, what: str, progress: Progress | None, **kw):
    """n samples [n, *data_shape] (CPU) through the progressive sampler, reporting each step to ``progress``."""
    last = None
    for rec in model.generate_progressive(n, condition=condition, seed=seed, **kw):
        last = rec
        if progress is not None:
            progress(what, rec.index + 1, rec.num_steps)
    return last.x_prev.detach().cpu()


def evaluate_points(
    model: DiffusionModel,
    dataset: str,
    n: int = 2000,
    draws: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
    **sampling,
) -> dict:
    """MMD² / sliced Wasserstein of n samples (drawn with ``sampling``: sampler, num_steps, clip_x0, ...; a preset's
    defaults, ``PresetSpec.sampling``) to n fresh data points, and the data-vs-data floor, each over ``draws``
    independent draws (fresh data, fresh noise).

    ``mmd2`` / ``swd``: samples of the null class (``label`` "any"), as the app opens a 2-D preset; for a
    conditional model also ``conditional_mmd2`` / ``conditional_swd``: one label per sample drawn like the data's
    (the same samples' noise, labels from a fresh data draw).  One draw of unbiased MMD² at n = 2000 scatters by
    about 1e-4 to 3e-4, as much as the differences it is meant to show, so every figure is the mean over the draws
    with its standard error (``*_se``); the draws themselves are in ``*_draws``.  For a dataset with an exact
    denoiser (8gaussians) ``ideal_mmd2`` is that (unconditional) denoiser through the same solver and steps: the
    solver's own share of the error.
    """
    kw = {"sampler": "ddim", "num_steps": 50, **sampling}
    what = f"{kw['sampler']}{kw['num_steps']}"
    refs, others, conds = [], [], []
    for k in range(draws):
        s = seed * 1000 + k
        refs.append(make_dataset(dataset, n, seed=10_000 + s)[0])
        others.append(make_dataset(dataset, n, seed=20_000 + s)[0])
        conds.append(make_dataset(dataset, n, seed=30_000 + s)[1])  # conditional models: labels from the data
    per: dict[str, list[float]] = {"floor_mmd2": [mmd2(o, r) for o, r in zip(others, refs)]}
    per["floor_swd"] = [sliced_wasserstein(o, r) for o, r in zip(others, refs)]
    out = {"n": n, "draws": draws, "sampler": kw, "label": "any"}
    t0 = time.time()  # all draws in one batch (less overhead); the draws stay independent
    xs = _sample(model, n * draws, None, seed, what, progress, **kw).split(n)  # [draws] of [n, 2]
    out["seconds"] = round(time.time() - t0, 2)
    per["mmd2"] = [mmd2(xk, r) for xk, r in zip(xs, refs)]
    per["swd"] = [sliced_wasserstein(xk, r) for xk, r in zip(xs, refs)]
    if model.is_conditional:
        out["conditional_label"] = "drawn like the data"
        xc = _sample(model, n * draws, torch.cat(conds), seed, f"{what} given labels", progress, **kw).split(n)
        per["conditional_mmd2"] = [mmd2(xk, r) for xk, r in zip(xc, refs)]
        per["conditional_swd"] = [sliced_wasserstein(xk, r) for xk, r in zip(xc, refs)]
    g = gaussian_mixture_for(dataset)
    if g is not None:
        proc = model.process
        solver_kw = {k: v for k, v in kw.items() if k in ("sampler", "num_steps")}
        ideal = sample(
            Predictor(g.model_fn(proc, "sample"), proc, "sample"),
            proc,
            (n * draws, 2),
            generator=torch.Generator().manual_seed(seed),
            **solver_kw,
        )
        per["ideal_mmd2"] = [mmd2(xk, r) for xk, r in zip(ideal.split(n), refs)]
    for key, values in per.items():
        out[key], out[f"{key}_se"] = mean_se(values)
        out[f"{key}_draws"] = values
    return out


def evaluate_images(
    model: DiffusionModel, dataset: str, draws: int = 5, seed: int = 0, progress: Progress | None = None, **sampling
) -> dict:
    """Share of conditional samples (``draws`` x 100: ten of each digit, as the app opens an image preset on class
    "each", drawn with ``sampling``, e.g. a preset's ``PresetSpec.sampling``) that the shipped digit classifier for
    the image size labels with the requested digit, as the mean over the draws with its standard error; for a
    dataset with a held-out split ("digits"), the copy check of :func:`adiff.eval.metrics.copy_check` on the same
    samples."""
    from ..eval.classifier import classifier_for_shape

    clf = classifier_for_shape(model.data_shape, device=str(model.device))
    labels = torch.arange(10).repeat(10 * draws)
    kw = {"sampler": "ddim", "num_steps": 50, **sampling}
    x = _sample(model, len(labels), labels, seed, f"{kw['sampler']}{kw['num_steps']}", progress, **kw)
    with torch.no_grad():
        pred = clf(x.float().to(model.device)).argmax(1).cpu()
    right = (pred == labels).float()
    per_digit = [right[labels == d].mean().item() for d in range(10)]
    per_draw = [float(chunk.mean()) for chunk in right.split(100)]
    mean, se = mean_se(per_draw)
    out = {
        "n": len(labels),
        "draws": draws,
        "label": "each",
        "accuracy": mean,
        "accuracy_se": se,
        "accuracy_draws": per_draw,
        "per_digit": per_digit,
        "sampler": kw,
    }
    if dataset == "digits":
        out["copy_check"] = copy_check(x, digits_split("train")[0], digits_split("heldout")[0])
    return out


def evaluate_preset(model: DiffusionModel, spec, draws: int, seed: int, progress: Progress | None) -> dict:
    """The preset's quality at its default solver, step count and sampling keywords (``spec.sampling``)."""
    model.denoiser.eval()
    if len(model.data_shape) == 1:
        q = evaluate_points(model, spec.dataset, draws=draws, seed=seed, progress=progress, **spec.sampling)
        if spec.reflow is not None:  # a reflow preset: Euler at 1, 2, 4 NFE against its teacher
            q["few_steps"] = few_step_quality(model, spec, draws, seed)
        return q
    return evaluate_images(model, spec.dataset, draws=draws, seed=seed, progress=progress, **spec.sampling)
