"""How a tab's control groups follow its model and solver: choosing a model (or a deep link to one) gives every group
(components/controls.py: ModelPicker, SolverControls, ClassCFG, SeedCount, a RewardPicker, ...) that model's
updates through its ``updates_for(model, info, *current)``; choosing a solver sets its own step count and η.  Each is
one private, light event wired here, so the tabs declare which groups they have and nothing else."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from adiff.samplers import solvers_for

from .context import AppContext, ModelInfo
from .controls import ModelPicker, SolverControls
from .fields import UserError
from .wiring import EVENT, endpoint

__all__ = ["model_updates", "model_choice", "group_outputs", "follow_model", "follow_solver", "link_model"]


def _inputs(group) -> list:
    """The components whose current values a group's ``updates_for`` reads (e.g. the reward chosen so far)."""
    return group.inputs() if hasattr(group, "inputs") else []


def model_updates(groups: Sequence[Any], model, info: ModelInfo, current: dict | None = None) -> dict:
    """Every group's updates for one model, merged (what choosing a model, or a deep link to one, does); ``current``:
    component -> its value now, for the groups that keep a choice the new model still offers."""
    out: dict = {}
    for g in groups:
        values = [(current or {}).get(c) for c in _inputs(g)]
        out.update(g.updates_for(model, info, *values))
    return out


def model_choice(ctx: AppContext, session, preset, groups: Sequence[Any], current: dict | None = None) -> dict:
    """What choosing ``preset`` does to a tab's controls: every group follows the model.  A model that cannot be used
    yet ("my model" before anything was trained) says why under the picker (``groups[0]``, a ModelPicker)."""
    try:
        model, info = ctx.model(preset, session, groups[0].field)
    except UserError as e:
        if groups[0].about is None:
            raise
        return {groups[0].about: f"⚠ {e.message}"}
    return model_updates(groups, model, info, current)


def group_outputs(groups: Sequence[Any]) -> list:
    """The components any of the groups may update (each once)."""
    out: list = []
    for g in groups:
        out += [c for c in g.outputs() if c not in out]
    return out


def follow_model(ctx: AppContext, groups: Sequence[Any]) -> None:
    """Wire the picker (``groups[0]``) so that the other groups follow the chosen model (a private, light event)."""

    extra = [c for g in groups for c in _inputs(g)]

    def choose(ctx, session, preset, *values):
        return preset, dict(zip(extra, values))

    def on_model(ctx, session, req):
        preset, current = req
        return model_choice(ctx, session, preset, groups, current)

    choose.__signature__ = _signature(["preset", *(f"current_{i}" for i in range(len(extra)))])
    picker = groups[0].dropdown
    picker.input(
        endpoint(ctx, choose, on_model),
        [picker, *extra],
        group_outputs(groups),
        api_visibility="private",
        **EVENT,
        **ctx.light,
    )


def _signature(names: Sequence[str]):
    """(ctx, session, *names) as a signature: endpoint() reads a parse function's raw fields from it."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature([inspect.Parameter(n, kind) for n in ("ctx", "session", *names)])


def follow_solver(ctx: AppContext, picker: ModelPicker, solver: SolverControls) -> None:
    """Wire the solver radio: a solver's own step count and whether η applies (nothing changes while the model
    cannot be used, or for a solver the model's process does not serve)."""

    def read(ctx, session, preset, sampler):
        return preset, sampler

    def on_solver(ctx, session, req):
        preset, name = req
        try:
            model, _ = ctx.model(preset, session)
        except UserError:
            return {}
        return solver.on_solver(model, name) if name in solvers_for(model.process) else {}

    solver.solver.input(
        endpoint(ctx, read, on_solver),
        [picker.dropdown, solver.solver],
        [c for c in (solver.steps, solver.eta) if c is not None],
        api_visibility="private",
        **EVENT,
        **ctx.light,
    )


def link_model(ctx: AppContext, q, request, groups: Sequence[Any], model, info: ModelInfo, choices=None):
    """A deep link's model (``q``: a links.LinkParams; its key is the field of the picker, ``groups[0]``), through the
    same code as choosing it in the page: every group follows it.  A model the session cannot use is named among the
    link's problems and the tab keeps ``model``.  ``choices``: the models the picker offers (default: every source).
    Returns (the updates, the model the link's other values are checked against, its ModelInfo)."""
    out: dict = {}
    picker = groups[0]
    p = q.choice(picker.field, ctx.sources() if choices is None else choices)
    if p is None:
        return out, model, info
    try:
        model, info = ctx.model(p, ctx.store.get(request), picker.field)
    except UserError as e:
        q.problems.append(f"{e.message} (from the link)")
        return out, model, info
    out.update(model_updates(groups, model, info))
    out[picker.dropdown] = p
    return out, model, info
