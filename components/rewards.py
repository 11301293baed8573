"""The reward a visitor picks (a built-in with JSON parameters, or a formula), checked field by field, and the words
that explain each reward.  Shared by the guidance and adaptation tabs."""

from __future__ import annotations

import json
from typing import Any

from adiff.steering import (
    BUILTIN_REWARDS,
    EXPRESSION_HELP,
    REWARD_NAMES,
    ExpressionError,
    compile_expression,
    make_reward,
)

from .fields import as_choice, as_text, field_error
from .limits import LIMITS

__all__ = ["EXPRESSION", "NO_REWARD", "reward_choices", "reward_help", "build_reward"]


EXPRESSION = "expression"


NO_REWARD = "none"


def reward_choices(kind: str, allow_none: bool = False) -> list[str]:
    names = [s.name for s in BUILTIN_REWARDS if s.kind in (kind, "any")]
    if kind == "points":
        names.append(EXPRESSION)
    return ([NO_REWARD] if allow_none else []) + names


def reward_help(name: str) -> str:
    if name == EXPRESSION:
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
