"""The schedules tab's handlers: the custom schedule's checks (the same for the live editor message and for Plot)
and the curves of the chosen schedules and the rectified-flow path, as view data.

Rectified flow: Liu et al. 2022, eq. 1 (x_t = (1 - t) x_0 + t eps); its SNR is ((1 - t) / t)^2, so
log-SNR = 2 log((1 - t) / t) = -2 logit(t).  Cosine: abar = cos^2(pi u / 2) (s -> 0; Nichol & Dhariwal 2021, eq. 17)
gives log-SNR = -2 log tan(pi u / 2), 0 at u = 1/2 like the flow's and within ~1 nat of it on [0.05, 0.95] at T = 1000;
linear (Ho et al. 2020) crosses 0 at u = 0.26.  Shift (Esser et al. 2024, eq. 23): t = s u / (1 + (s - 1) u) gives
(1 - t) / t = (1 - u) / (s u), i.e. the log-SNR curve moved down by 2 log s.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from adiff.diffusion.processes import FlowProcess
from adiff.diffusion.schedules import SCHEDULES, make_schedule, validate_custom_values

from ..context import AppContext
from ..curves import flow_curve, schedule_curve
from ..fields import UserError, as_float, as_int, as_text, field_error
from ..limits import LIMITS
from ..state import Session

__all__ = [
    "CurvesRequest",
    "Curves",
    "schedule_curves",
    "curves",
    "parse_custom_values",
    "custom_schedule",
    "check_custom_values",
    "DEFAULT_CUSTOM",
    "DEFAULT_CHOICES",
    "CHOICES",
    "FLOW",
]

DEFAULT_CUSTOM = "0.01, 0.1, 0.3, 0.6, 0.9, 0.99, 0.9999"
FLOW = "flow"  # the rectified-flow path, drawn beside the VP schedules
CHOICES = list(SCHEDULES) + [FLOW]
DEFAULT_CHOICES = ["linear", "cosine", FLOW]


# ---------------------------------------------------------------------------------------------- the custom schedule
def parse_custom_values(text) -> list[float]:
    """'0.01, 0.1 0.5' -> [0.01, 0.1, 0.5]; errors name the entry: custom_values[2] = 'abc' is not a number."""
    text = as_text(text, "custom_values", LIMITS.custom_chars)
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        raise field_error(
            "custom_values", "is empty: give noise levels σ in (0, 1), strictly increasing, e.g. " + DEFAULT_CUSTOM
        )
    vals = []
    for i, p in enumerate(parts):
        try:
            vals.append(float(p))
        except ValueError:
            raise field_error("custom_values", f"entry {i} = {p!r} is not a number") from None
    try:
        return validate_custom_values(vals, field="custom_values")
    except ValueError as e:
        raise UserError(str(e), print_exception=False) from None


def custom_schedule(text, T: int):
    """The custom schedule the text describes at T steps, checked exactly as Plot uses it; every error names
    custom_values (the text's field) and says what to change."""
    vals = parse_custom_values(text)
    try:
        return make_schedule("custom", T, vals)
    except ValueError as e:
        msg = str(e)
        if "betas must be finite" in msg:
            msg = (
                f"at T = {T} these noise levels give a step whose β_t is 0 or 1 (a level too close to 0, such as "
                f"{vals[0]:g}, or too close to 1, such as {vals[-1]:.12g}, rounds to exactly that in float64); "
                "keep them within about [1e-4, 0.9999]"
            )
        elif "non-increasing" in msg:
            msg = f"at T = {T} the interpolated noise levels do not increase at every step; give fewer values or a larger T"
        raise field_error("custom_values", msg) from None


def check_custom_values(text, num_steps=1000) -> str:
    """Live validation message for the custom-schedule editor: the same check as Plot (never raises)."""
    try:
        T = as_int(num_steps, "num_steps", 2, LIMITS.schedule_T)
        sch = custom_schedule(text, T)
    except UserError as e:
        return f"✗ {e.message}"
    vals = parse_custom_values(text)
    abar_T = float(sch.alphas_cumprod[-1])
    return (
        f"✓ {len(vals)} noise levels from {vals[0]:g} to {vals[-1]:g}, interpolated to T = {T} steps "
        f"(terminal SNR {abar_T / (1 - abar_T):.2g})."
    )


# ---------------------------------------------------------------------------------------------- /schedule_curves
@dataclass(frozen=True)
class CurvesRequest:
    schedules: tuple[str, ...]  # unique, in the order given
    num_steps: int
    custom_values: str
    flow_shift: float

    @classmethod
    def parse(cls, ctx: AppContext, session: Session, schedules, num_steps, custom_values, flow_shift=1.0):
        return cls.of(schedules, num_steps, custom_values, flow_shift)

    @classmethod
    def of(cls, schedules, num_steps, custom_values, flow_shift=1.0) -> CurvesRequest:
        if isinstance(schedules, str):
            schedules = [s for s in re.split(r"[,\s]+", schedules) if s]
        if not isinstance(schedules, (list, tuple)) or not schedules:
            raise field_error("schedules", f"pick at least one of {CHOICES}")
        for s in schedules:
            if s not in CHOICES:
                raise field_error("schedules", f"must be among {CHOICES}, got {s!r}")
        T = as_int(num_steps, "num_steps", 2, LIMITS.schedule_T)
        shift = as_float(1.0 if flow_shift is None else flow_shift, "flow_shift", 0.1, 10.0)
        text = as_text(custom_values, "custom_values", LIMITS.custom_chars)
        return cls(tuple(dict.fromkeys(schedules)), T, text, shift)


@dataclass(frozen=True)
class Curves:
    """What the figure draws (one curve dict per schedule) and the numbers behind the warnings."""

    curves: list
    summary: dict
    shift: float
    T: int


def _snr_one_at(curve: dict) -> float | None:
    """The first normalised time where log-SNR drops to 0 or below (SNR = 1: as much signal as noise)."""
    return next((u for u, v in zip(curve["u"], curve["log_snr"]) if v is not None and v <= 0), None)


def _vp_summary(schedule, curve: dict) -> dict:
    abar_T = float(schedule.alphas_cumprod[-1])
    return {
        "T": schedule.num_steps,
        "abar_T": abar_T,
        "sigma_T": math.sqrt(1 - abar_T),
        "terminal_snr": abar_T / (1 - abar_T),
        "max_beta": float(schedule.betas.max()),
        "warnings": schedule.warnings(),
        "snr_one_at": _snr_one_at(curve),
    }


def _flow_summary(curve: dict) -> dict:
    process = FlowProcess(curve["shift"])
    log_snr = {}
    for u in (0.1, 0.25, 0.5, 0.75, 0.9):
        a, s = process.coefficients(process.shift_time(u))
        log_snr[str(u)] = round(2 * math.log(a / s), 6)
    return {
        "process": "flow",
        "shift": curve["shift"],
        "formula": "x_t = (1 - t) x_0 + t eps",
        "alpha_plus_sigma": 1.0,
        "min_alpha2_plus_sigma2": min(a * a + n * n for a, n in zip(curve["alpha"], curve["noise"])),
        "snr_one_at": _snr_one_at(curve),
        "log_snr_at": log_snr,
    }


def curves(req: CurvesRequest) -> Curves:
    """Curves of the chosen schedules at T = num_steps, and the rectified-flow path when "flow" is among them (on an
    even grid u with flow time t = s u / (1 + (s - 1) u), s = flow_shift)."""
    out, summary = [], {}
    for name in req.schedules:
        if name == FLOW:
            label = FLOW if req.flow_shift == 1.0 else f"flow, shift {req.flow_shift:g}"
            out.append({**flow_curve(req.flow_shift, 400, label), "key": FLOW})
            summary[FLOW] = _flow_summary(out[-1])
            continue
        sch = (
            custom_schedule(req.custom_values, req.num_steps)
            if name == "custom"
            else make_schedule(name, req.num_steps)
        )
        out.append(schedule_curve(sch, name, max_points=400))  # 400 points draw a smooth curve; a lighter page
        summary[name] = _vp_summary(sch, out[-1])
    return Curves(out, summary, req.flow_shift, req.num_steps)


def schedule_curves(ctx: AppContext, session: Session, req: CurvesRequest) -> Curves:
    return curves(req)
