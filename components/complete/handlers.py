"""Tab 7 (complete)'s handlers: plain functions of (ctx, session, request) that yield view data (no widgets).

* ``complete``: keep some pixels (half of a real held-out digit, or the visitor's strokes) and let an image model
  sample the rest (adiff.steering.inpaint: RePaint's replacement with the posterior correction, the loop's
  recurrence), through the app's sampling engine; a ``Live`` player message per due step, then a ``Done``: the
  trajectory on file for the player, the completions read by the shipped digit classifier, the numbers.
* ``stop``: where the cancelled run got to.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from adiff.data import digits_split
from adiff.eval.classifier import HELDOUT_SEED, classifier_for_shape
from adiff.samplers import TrajectoryRecorder, sample_progressive, solvers_for
from adiff.steering.inpaint import SOLVE_ITERS, KnownPixels

from ..context import AppContext, ModelInfo
from ..fields import as_bool, as_choice, as_int, field_error
from ..limits import LIMITS
from ..state import Session
from ..streaming import Throttle
from ..train.strokes import drawing_image
from . import view

__all__ = ["KEEPS", "CompleteRequest", "Live", "Done", "known_part", "complete", "stop", "readings"]

TAB = "complete"
# what is kept: value -> (the rows, the columns) of a real digit as fractions of its side, or None for the strokes
KEEPS = {
    "top half": ((0, 0.5), (0, 1)),
    "left half": ((0, 1), (0, 0.5)),
    "top quarter": ((0, 0.25), (0, 1)),
    "my strokes": None,  # the ink of the drawing: the pixels at least half covered
    "my strokes and their box": None,  # the drawing's box: its ink and the blank within it
}
INK = 0.5  # a pixel at least this much covered by the strokes is ink
GLYPH_POOL = 500  # held-out glyphs (seed HELDOUT_SEED, never seen by the preset or the classifier in training)


@dataclass
class CompleteState:
    """This tab's part of a session: how far the current run got (for Stop)."""

    progress: str | None = None


def state_of(session: Session) -> CompleteState:
    return session.tab(TAB, CompleteState)


# ---------------------------------------------------------------------------------------------- the known part
def _real_digit(ctx: AppContext, shape: tuple, digit: int, example: int) -> torch.Tensor:
    """Held-out example ``example`` of class ``digit`` for images of ``shape``: [1, *shape] in [-1, 1]."""
    if shape == (1, 8, 8):
        x, y = digits_split("heldout")
    elif shape == (1, 16, 16):
        x, y = ctx.dataset("glyphs", GLYPH_POOL, HELDOUT_SEED)
    else:
        raise field_error(
            "keep",
            f"real digits come as 8×8 (digits) or 16×16 (glyphs); this model makes {list(shape)}: keep "
            "your own strokes instead",
        )
    return x[y == digit][example : example + 1].clone()


def _strokes(drawing, keep: str, shape: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """The drawing (checked by components/train/strokes.py before anything is drawn) at the model's size: (image
    [1, *shape] in [-1, 1], ink as -1 .. +1 by coverage; mask [1, *shape])."""
    image, _ = drawing_image(drawing)
    _, H, W = shape
    small = image.convert("L").resize((W, H), Image.Resampling.BOX)  # each pixel: the mean of the raster it covers
    cover = 1.0 - torch.from_numpy(np.asarray(small, dtype=np.float32)).reshape(1, 1, H, W) / 255.0
    ink = cover >= INK
    if not bool(ink.any()):
        raise field_error("drawing", "no pixel of the model's image is at least half inked: draw bigger or thicker")
    mask = ink
    if keep == "my strokes and their box":
        rows, cols = ink[0, 0].any(1).nonzero(), ink[0, 0].any(0).nonzero()
        mask = torch.zeros_like(ink)
        mask[..., int(rows.min()) : int(rows.max()) + 1, int(cols.min()) : int(cols.max()) + 1] = True
    return (2 * cover - 1).clamp(-1, 1), mask


def known_part(ctx: AppContext, keep: str, shape: tuple, digit: int, example: int, drawing) -> tuple:
    """(known [1, *shape], mask [1, *shape] bool, the true class or None)."""
    frac = KEEPS[keep]
    if frac is None:
        known, mask = _strokes(drawing, keep, shape)
        label = None
    else:
        known, label = _real_digit(ctx, shape, digit, example), digit
        (r0, r1), (c0, c1) = frac
        _, H, W = shape
        mask = torch.zeros((1, *shape), dtype=torch.bool)
        mask[..., round(r0 * H) : round(r1 * H), round(c0 * W) : round(c1 * W)] = True
    if bool(mask.all()):
        raise field_error("drawing", "your strokes' box covers the whole image: nothing is left to complete")
    return known, mask, label


# ---------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class CompleteRequest:
    model: Any = field(repr=False)
    info: ModelInfo
    keep: str
    digit: int | None  # the real digit's class and example (None for strokes)
    example: int | None
    known: Any = field(repr=False)  # [1, *shape]
    mask: Any = field(repr=False)  # [1, *shape] bool
    label: int | None  # the kept digit's class (real digits)
    correction: bool  # the posterior correction (else RePaint's plain replacement)
    sampler: str
    num_steps: int
    recurrence: int
    seed: int
    num_samples: int

    @classmethod
    def parse(
        cls,
        ctx: AppContext,
        session: Session,
        preset,
        keep,
        digit,
        example,
        drawing,
        correction,
        sampler,
        num_steps,
        recurrence,
        seed,
        num_samples,
    ) -> CompleteRequest:
        model, info = ctx.model(preset, session)
        if info.kind != "images":
            raise field_error(
                "preset",
                f"completion keeps pixels of an image: {info.source!r} makes 2-D points; pick digits, "
                "glyphs or an image model of your own",
            )
        keep = as_choice(keep, "keep", list(KEEPS))
        real = KEEPS[keep] is not None
        d = as_int(digit, "digit", 0, 9) if real else None
        e = as_int(example, "example", 0, LIMITS.complete_examples - 1) if real else None
        fix = as_bool(correction, "correction")
        sampler = as_choice(sampler, "sampler", solvers_for(model.process))
        steps = as_int(num_steps, "num_steps", 1, model.max_sampling_steps)
        rec = as_int(recurrence, "recurrence", 1, LIMITS.recurrence)
        seed = as_int(seed, "seed", 0, LIMITS.seed)
        n = as_int(num_samples, "num_samples", 1, LIMITS.images)
        known, mask, label = known_part(ctx, keep, tuple(model.data_shape), d, e, drawing)
        return cls(model, info, keep, d, e, known, mask, label, fix, sampler, steps, rec, seed, n)

    def settings(self) -> dict:
        return {
            "preset": self.info.source,
            "keep": self.keep,
            "digit": self.digit,
            "example": self.example,
            "correction": self.correction,
            "sampler": self.sampler,
            "num_steps": self.num_steps,
            "recurrence": self.recurrence,
            "seed": self.seed,
            "num_samples": self.num_samples,
        }


# ---------------------------------------------------------------------------------------------- view data
@dataclass(frozen=True)
class Live:
    message: dict
    first: bool
    text: str = ""


@dataclass(frozen=True)
class Done:
    message: dict  # the pointer to the trajectory's file
    text: str
    figure: Any  # the kept part and the completions, each with the class read
    summary: dict
    data_path: str
    completions: Any = field(default=None, repr=False)  # [n, *shape] (for tests and lessons)


# ---------------------------------------------------------------------------------------------- handlers
def readings(x: torch.Tensor) -> list[tuple[int, float]] | None:
    """(class, probability) the shipped digit classifier reads in each image of x [n, 1, S, S]; None when no
    shipped classifier reads images of that size."""
    try:
        clf = classifier_for_shape(tuple(x.shape[1:]))
    except ValueError:
        return None
    with torch.no_grad():
        p = clf(x.float().cpu()).softmax(1)
    conf, cls = p.max(1)
    return [(int(c), float(q)) for c, q in zip(cls, conf)]


def _steps(req: CompleteRequest, net):
    """The completion's StepRecords, the network calls through the run's engine session (KnownPixels wraps the
    model's predictor: adiff.steering.inpaint's loop, with ``network``)."""
    n, model = req.num_samples, req.model
    known = req.known.expand(n, *req.known.shape[1:]).to(model.device)
    predict = model.predictor(None, n, network=net)  # the unconditional branch: the kept pixels alone say the class
    solve = SOLVE_ITERS if req.correction else 0
    clip = req.info.sample_kwargs.get("clip_x0")
    wrapped = KnownPixels(predict, model.process, known, req.mask.to(model.device), solve, clip_x0=clip)
    gen = model.make_generator(req.seed)
    yield from sample_progressive(
        wrapped,
        model.process,
        known.shape,
        sampler=req.sampler,
        num_steps=req.num_steps,
        recurrence=req.recurrence,
        generator=gen,
        device=model.device,
    )


def _summary(req: CompleteRequest, final: torch.Tensor, t0: float) -> dict:
    read = readings(final)
    alone = readings(torch.where(req.mask, req.known, torch.full_like(req.known, -1.0)))
    m = req.mask.expand_as(final)
    s = {
        **req.settings(),
        "true_class": req.label,
        "known_pixels": int(req.mask.sum()),
        "known_max_error": float((final[m] - req.known.expand_as(final)[m]).abs().max()),
        "readings": None if read is None else [{"class": c, "confidence": round(p, 3)} for c, p in read],
        "kept_alone": None if alone is None else {"class": alone[0][0], "confidence": round(alone[0][1], 3)},
        "elapsed_s": round(time.time() - t0, 2),
    }
    if read is not None:
        counts: dict[int, int] = {}
        for c, _ in read:
            counts[c] = counts.get(c, 0) + 1
        top = max(counts, key=lambda c: (counts[c], -c))
        s.update(most_read=top, most_read_count=counts[top], distinct_classes=len(counts))
        s["counts"] = {str(c): k for c, k in sorted(counts.items())}  # JSON keys are text
        if req.label is not None:
            s["true_class_count"] = counts.get(req.label, 0)
    return s


def complete(ctx: AppContext, session: Session, req: CompleteRequest):
    """Complete the kept pixels; yield a Live player message per due step and a Done at the end."""
    t0 = time.time()
    folder: Path = session.run_folder(TAB)
    st = state_of(session)
    n = req.num_samples
    title = f"{req.info.source} · keep {req.keep} · {req.sampler}, {req.num_steps} steps · seed {req.seed} · {n} completions"
    static = view.player_static(req.model, req.info, title, req.recurrence)
    kept = view.kept_tile(req.known, req.mask)
    rec = TrajectoryRecorder(max(1, math.ceil(req.num_steps / LIMITS.frames)))
    throttle = Throttle(req.num_steps, sharing=ctx.engine.open_runs)
    st.progress = "before the first step"
    with session.sampling(TAB, ctx.engine, req.model) as net:  # Stop ends it at its next network call
        for step in _steps(req, net):
            rec.add(step)
            st.progress = f"at step {step.index + 1} of {req.num_steps}"
            if throttle.due(step.index):
                seq = throttle.sent - 1
                msg = view.live(req.model, static, step, kept, folder.name, seq)
                yield Live(msg, seq == 0, view.running_text(req.sampler, req.num_steps) if seq == 0 else "")
    traj = rec.finish()
    final = torch.where(req.mask, req.known, traj.final.float().cpu())  # RePaint's last step: the kept pixels exactly
    traj.x[-1] = final
    st.progress = "after the last step"
    data_path = view.write_payload(folder, view.final_payload(req.model, static, traj, kept, folder.name))
    summary = _summary(req, final, t0)
    fig = view.completions_figure(req.known, req.mask, final, summary)
    yield Done(view.pointer(folder.name, len(traj)), view.done_text(summary), fig, summary, data_path, final)
    session.delivered(TAB, folder)


def stop(ctx: AppContext, session: Session, req: None):
    """Where the cancelled run got to: (where, summary); the runs in progress end at their next network call."""
    session.stop_sampling(TAB)
    where = state_of(session).progress
    return where, {"status": "stopped", "at": where}
