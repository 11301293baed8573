"""Tab 6 (guidance)'s handlers: plain functions of (ctx, session, request) that yield view data (no widgets).

* ``guided_generate``: unguided and guided samples from the same seed; a ``Progress`` line when the throttle says so
  (components/streaming.py), then a ``Result``: the figure (over the reward, with the tilted target drawn from
  reweighted data: adiff.eval.guidance_checks), the summary in words (over, under or on target by the standard
  error of the difference; for the classifier reward the re-check, which rules out "on target" when the classifier
  was fooled) and the numbers.  An identical request on a shipped preset is answered from the
  result cache (components/result_cache.py).
* ``stop``: where the cancelled run got to.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from adiff.data import IMAGE_DATASETS, PLOT_RANGE
from adiff.eval.guidance_checks import classifier_recheck, tilted_target
from adiff.samplers import solvers_for
from adiff.steering.guidance import GUIDANCE_MODES

from ..arrays import finite_rows, reward_grid
from ..choices import condition_for, parse_label
from ..context import AppContext, ModelInfo
from ..fields import as_choice, as_float, as_int, field_error
from ..figure_json import FigureJSON
from ..limits import LIMITS
from ..result_cache import REUSED_TEXT, figure_nbytes, preset_key
from ..rewards import EXPRESSION, NO_REWARD, build_reward
from ..state import Session
from ..streaming import Throttle
from ..summaries import ROUGH_ESS
from . import view

__all__ = ["GuidanceState", "GuidedRequest", "Progress", "Result", "guided_generate", "stop"]

TAB = "guidance"
TARGET_POOL = {"points": 20_000, "images": 2_000}  # data points reweighted into the tilted target (seed 777)


@dataclass
class GuidanceState:
    """This tab's part of a session: how far the current run got (for Stop)."""

    progress: str | None = None


def state_of(session: Session) -> GuidanceState:
    return session.tab(TAB, GuidanceState)


# ---------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class GuidedRequest:
    model: Any = field(repr=False)
    info: ModelInfo
    reward_name: str  # a built-in's name, "expression" or "none"
    expression: str | None  # the formula (reward "expression" only)
    reward_params: str | None  # the built-in's JSON parameters as typed (built-ins only)
    reward: Any = field(repr=False)  # the adiff Reward, or None for "none"
    lam: float
    mode: str
    recurrence: int
    label: int | str | None  # None (any), "each" or a class
    cfg: float  # classifier-free guidance weight w (1.0 for an unconditional model)
    sampler: str
    num_steps: int
    seed: int
    num_samples: int

    @classmethod
    def parse(
        cls,
        ctx: AppContext,
        session: Session,
        preset,
        reward,
        expression,
        reward_params,
        guidance_scale,
        guidance_mode,
        recurrence,
        class_label,
        cfg_scale,
        sampler,
        num_steps,
        seed,
        num_samples,
    ) -> GuidedRequest:
        model, info = ctx.model(preset, session)
        reward_fn = build_reward(reward, expression, reward_params, info.kind, allow_none=info.conditional)
        lam = as_float(guidance_scale, "guidance_scale", -LIMITS.guidance_scale, LIMITS.guidance_scale)
        mode = as_choice(guidance_mode, "guidance_mode", list(GUIDANCE_MODES))
        rec = as_int(recurrence, "recurrence", 1, LIMITS.recurrence)
        label = parse_label(class_label, info)
        w = as_float(cfg_scale, "cfg_scale", 0.0, LIMITS.cfg_scale) if info.conditional else 1.0
        sampler = as_choice(sampler, "sampler", solvers_for(model.process))
        steps = as_int(num_steps, "num_steps", 1, model.max_sampling_steps)
        seed = as_int(seed, "seed", 0, LIMITS.seed)
        n = as_int(num_samples, "num_samples", 1, LIMITS.points if info.kind == "points" else LIMITS.images)
        if reward_fn is None and label is None:
            raise field_error(
                "class_label", "with reward 'none' only classifier-free guidance acts, which needs a class"
            )
        expression = expression.strip() if reward == EXPRESSION else None  # checked text (build_reward)
        params = str(reward_params or "").strip() if reward not in (EXPRESSION, NO_REWARD) else None
        return cls(
            model, info, reward, expression, params, reward_fn, lam, mode, rec, label, w, sampler, steps, seed, n
        )

    @property
    def base_cfg(self) -> float | None:
        """The left panel's CFG weight: with a reward, the same w (λ = 0 vs λ isolates the reward); without one, 1."""
        if self.label is None:
            return None
        return self.cfg if self.reward is not None else 1.0

    @property
    def guided_cfg(self) -> float | None:
        return self.cfg if self.label is not None else None

    def cache_key(self) -> tuple | None:
        """Every setting (the expression is in the reward's name), the reward's parameters and the device."""
        settings = {k: v for k, v in self.settings().items() if k != "preset"}
        return preset_key(
            self.info.source, "guided_generate", device=str(self.model.device), params=self.reward_params, **settings
        )

    def settings(self) -> dict:
        """The summary's head: what was asked for."""
        name = self.reward_name if self.reward_name != EXPRESSION else f"expression: {self.expression}"
        return {
            "preset": self.info.source,
            "reward": name,
            "formula": getattr(self.reward, "formula", None),
            "guidance_scale": self.lam,
            "guidance_mode": self.mode,
            "recurrence": self.recurrence,
            "class_label": self.label,
            "cfg_scale": self.cfg if self.info.conditional else None,
            "sampler": self.sampler,
            "num_steps": self.num_steps,
            "seed": self.seed,
            "num_samples": self.num_samples,
        }


# ---------------------------------------------------------------------------------------------- view data
@dataclass(frozen=True)
class Progress:
    """A progress line while sampling."""

    text: str


@dataclass(frozen=True)
class Result:
    figure: Any  # plotly figure: unguided, guided and (with a reward and known data) the tilted target
    text: str
    summary: dict


# ---------------------------------------------------------------------------------------------- handlers
def _rewards(reward, x: torch.Tensor) -> torch.Tensor | None:
    """r(x) over the finite samples of x (the non-finite ones are counted apart), float64 [M]; None without a reward
    or without finite samples."""
    x = finite_rows(x)
    if reward is None or not len(x):
        return None
    with torch.no_grad():
        return torch.nan_to_num(reward(x.to(torch.float32)).double(), nan=0.0)


def _mean(r: torch.Tensor | None) -> float | None:
    return None if r is None else float(r.mean())


def _sample_kwargs(req: GuidedRequest) -> dict:
    n = req.num_samples
    return dict(
        condition=condition_for(req.label, n, req.info.num_classes),
        seed=req.seed,
        sampler=req.sampler,
        num_steps=req.num_steps,
        clip_x0=req.info.sample_kwargs.get("clip_x0"),
    )


def _guided(req: GuidedRequest, st: GuidanceState, t0: float, network):
    """The guided run, yielding a Progress when due; returns (samples, mean clipped fraction, non-finite gradients).
    ``network``: the run's engine session (guided runs' forwards and gradients batch among themselves)."""
    kw = dict(_sample_kwargs(req), cfg_scale=req.guided_cfg, network=network)
    if req.reward is not None and req.lam != 0:
        steer = dict(reward_fn=req.reward, guidance_scale=req.lam, guidance_mode=req.mode, recurrence=req.recurrence)
        kw.update(use_guidance=True, **steer)
    clipped, nonfinite, last = [], 0, None
    throttle = Throttle(req.num_steps, sharing=network.engine.open_runs)
    for step in req.model.generate_progressive(req.num_samples, **kw):
        last = step
        if step.guidance is not None:
            clipped.append(step.guidance.clipped_fraction)
            nonfinite += step.guidance.nonfinite
        st.progress = f"at guided step {step.index + 1} of {step.num_steps}"
        if throttle.due(step.index):
            yield Progress(view.live_text("sampling guided", step.index + 1, step.num_steps, step.t, time.time() - t0))
    return last.x_prev.detach().float().cpu(), (sum(clipped) / len(clipped) if clipped else 0.0), nonfinite


def _target(ctx: AppContext, req: GuidedRequest):
    """The tilted target p·e^{λr} drawn from the model's data (of the chosen class), or None when the data is
    unknown or too small."""
    dataset = req.info.dataset
    if dataset is None:
        return None
    pool, labels = ctx.dataset(dataset, TARGET_POOL["images" if dataset in IMAGE_DATASETS else "points"], 777)
    if isinstance(req.label, int) and labels is not None:
        pool = pool[labels == req.label]
    if len(pool) < 2:
        return None
    with torch.no_grad():
        r = req.reward(pool)
    return tilted_target(pool, r, req.lam, req.num_samples, torch.Generator().manual_seed(req.seed))


def _recheck(req: GuidedRequest, base_x: torch.Tensor, guided_x: torch.Tensor) -> tuple[dict, str]:
    """The classifier reward's second opinion on both sample sets: (summary entry, words)."""
    digit = int(req.reward.params.get("digit", 0))
    base = classifier_recheck(req.model, base_x, digit, torch.Generator().manual_seed(req.seed + 1))
    guided = classifier_recheck(req.model, guided_x, digit, torch.Generator().manual_seed(req.seed + 1))
    fooled, text = view.classifier_check_text(digit, base.agree, guided.agree, guided.after, base.after, base.t)
    entry = {
        "digit": digit,
        "t": base.t,
        "unguided_agree": base.agree,
        "guided_agree": guided.agree,
        "unguided_recheck": base.after,
        "guided_recheck": guided.after,
        "likely_fooled": fooled,
    }
    return entry, text


def _versus_target(ctx, req: GuidedRequest, summary: dict, r_guided, panels: list) -> str:
    """Add the tilted target's panel and numbers; the verdict in words ("" when there is no target).  Reads the
    classifier's re-check from the summary when there is one (a fooled classifier is never on target)."""
    tgt = _target(ctx, req)
    if tgt is None:
        return ""
    panels.append(view.panel(req.info.kind, "target", view.target_title(req.lam), tgt.samples, tgt.mean_reward))
    guided_se = float(r_guided.std() / math.sqrt(len(r_guided))) if r_guided is not None and len(r_guided) > 1 else 0.0
    summary.update(
        guided_mean_reward_se=guided_se,
        target_mean_reward=tgt.mean_reward,
        target_mean_reward_se=tgt.se,
        target_effective_samples=round(tgt.ess, 1),
    )
    if tgt.ess < ROUGH_ESS:
        summary["note"] = (
            f"only ~{tgt.ess:.0f} effective data points carry the tilted target at λ = {req.lam:g}: its picture is rough"
        )
    kind, verdict = view.guidance_verdict(
        summary["unguided_mean_reward"],
        summary["guided_mean_reward"],
        tgt.mean_reward,
        guided_se,
        tgt.se,
        tgt.ess,
        req.lam,
        req.recurrence,
        fooled=bool((summary.get("classifier_check") or {}).get("likely_fooled")),
    )
    summary["versus_target"] = kind
    return verdict


def _finish(ctx: AppContext, req: GuidedRequest, base_x, guided_x, clipped: float, nonfinite: int, t0) -> Result:
    """The figure, the words and the numbers of a finished run (and its result cache entry)."""
    kind = req.info.kind
    r_base, r_guided = _rewards(req.reward, base_x), _rewards(req.reward, guided_x)
    base_title, guided_title = view.panel_titles(
        req.reward is not None, req.lam, req.mode, req.recurrence, req.label, req.cfg
    )
    panels = [
        view.panel(kind, "base", base_title, base_x, _mean(r_base)),
        view.panel(kind, "steered", guided_title, guided_x, _mean(r_guided)),
    ]
    summary = {
        **req.settings(),
        "unguided_mean_reward": _mean(r_base),
        "guided_mean_reward": _mean(r_guided),
        "unguided_median_reward": None if r_base is None else float(r_base.median()),
        "guided_median_reward": None if r_guided is None else float(r_guided.median()),
        "clipped_fraction": clipped,
        "nonfinite_gradients": nonfinite,
        "nonfinite_samples": {"unguided": panels[0]["nonfinite"], "guided": panels[1]["nonfinite"]},
        "elapsed_s": None,
    }
    verdict, check = "", None
    if req.reward is not None:
        if req.reward_name == "classifier_logprob" and kind == "images":
            summary["classifier_check"], check = _recheck(req, base_x, guided_x)
        verdict = _versus_target(ctx, req, summary, r_guided, panels)
    summary.update(elapsed_s=round(time.time() - t0, 2), reused=False)
    grid = reward_grid(req.reward, 70, PLOT_RANGE) if (req.reward is not None and kind == "points") else None
    fig = view.figure(kind, grid, panels, view.figure_title(req.info.source, summary["reward"], req.reward is not None))
    fig = FigureJSON.of(fig)  # serialised once: for the cache's size, the cache and the page
    result = Result(fig, view.summary_text(summary, verdict, check), summary)
    key = req.cache_key()
    if key is not None:
        cached = (result.figure, result.text, result.summary)
        ctx.results.put(key, cached, figure_nbytes(fig) + len(result.text) + len(str(summary)))
    return result


def guided_generate(ctx: AppContext, session: Session, req: GuidedRequest):
    """Unguided and guided samples from the same seed (streams progress), with the tilted target."""
    t0 = time.time()
    with ctx.results.single_flight(req.cache_key()) as hit:  # the same request in flight: wait for it, then reuse
        if hit is not None:  # an identical request on a preset ran before: the same figure and numbers
            fig, text, summary = hit
            reused = {**summary, "elapsed_s": round(time.time() - t0, 2), "reused": True}
            yield Result(fig, text + "\n\n" + REUSED_TEXT, reused)
            return
        st = state_of(session)
        st.progress = "while drawing the unguided samples"
        yield Progress(view.live_text("sampling unguided (λ = 0)", 0, req.num_steps, None, 0.0))
        with session.sampling(TAB, ctx.engine, req.model) as net:  # batched with the other runs in progress
            base_x, _ = req.model.generate(
                req.num_samples, keep_every=10**6, cfg_scale=req.base_cfg, network=net, **_sample_kwargs(req)
            )
            base_x = base_x.detach().float().cpu()
            guided_x, clipped, nonfinite = yield from _guided(req, st, t0, net)
        result = _finish(ctx, req, base_x, guided_x, clipped, nonfinite, t0)  # into the result cache, too
        st.progress = "after the last step"
    yield result


def stop(ctx: AppContext, session: Session, req: None):
    """Where the cancelled run got to: (where, summary).  Every run of this tab in progress ends at its next network
    call."""
    session.stop_sampling(TAB)
    where = state_of(session).progress
    return where, {"status": "stopped", "at": where}
