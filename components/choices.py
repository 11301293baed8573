"""What a model offers the controls: its classes (any, each, 0..K-1) and its solvers (from the samplers' registry:
names, NFE per step, options, default step counts), as plain functions of the model and its ModelInfo."""

from __future__ import annotations

from typing import Any

import torch

from adiff.samplers import SOLVERS, solvers_for
from adiff.samplers import default_solver as process_default

from .context import ModelInfo
from .fields import field_error

__all__ = [
    "ANY_LABEL",
    "EACH_LABEL",
    "label_choices",
    "default_label",
    "parse_label",
    "condition_for",
    "solver_choices",
    "solver_help",
    "default_solver",
    "steps_for",
]


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


def solver_choices(model) -> list[tuple[str, str]]:
    """(label, name) for every solver of the model's process, the label with its NFE per step (the registry's)."""
    return [(f"{name} · {SOLVERS[name].nfe_per_step} NFE/step", name) for name in solvers_for(model.process)]


def solver_help(model) -> str:
    """The solvers of the model's process, one line each: the registry's summary and facts (order, NFE/step)."""
    return "\n".join(f"- **{n}**: {SOLVERS[n].summary} ({SOLVERS[n].facts})" for n in solvers_for(model.process))


def default_solver(model, info: ModelInfo) -> tuple[str, int]:
    """The solver and step count a model starts with: its preset's, else the samplers' default for its process
    (adiff.samplers.default_solver: the one table)."""
    names = solvers_for(model.process)
    name = info.sampler if info.sampler in names else process_default(model.process)
    if name == info.sampler and info.num_steps:
        return name, min(int(info.num_steps), model.max_sampling_steps)
    return name, steps_for(model, name)


def steps_for(model, name: str) -> int:
    """A solver's sensible step count for this model, never more than the model can take."""
    return SOLVERS[name].default_num_steps(model.process)
