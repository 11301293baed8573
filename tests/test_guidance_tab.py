"""Tab 5 (guidance)'s control groups without a server: the reward picker follows the model's kind and the chosen
reward, and the solver controls follow the model's process (DDIM-20 where the process offers DDIM)."""

import gradio as gr
import pytest

from adiff.samplers import solvers_for
from components.choices import default_solver
from components.context import AppContext, ModelInfo
from components.controls import SolverControls
from components.guidance.layout import TAB_SOLVER
from components.reward_picker import RewardPicker
from components.rewards import reward_choices


def info(kind: str, conditional: bool) -> ModelInfo:
    return ModelInfo("x", None, kind, conditional, 10 if conditional else None, {}, "")


@pytest.fixture(scope="module")
def picker():
    with gr.Blocks():
        return RewardPicker.build("t")


@pytest.mark.parametrize(
    "kind, conditional, value",
    [
        ("points", False, "distance_to_target"),
        ("images", True, "classifier_logprob"),
        ("images", False, "classifier_logprob"),
    ],
)
def test_the_reward_picker_follows_the_models_kind(picker, kind, conditional, value):
    up = picker.updates_for(None, info(kind, conditional))
    choices = up[picker.dropdown]["choices"]
    assert choices == reward_choices(kind, allow_none=conditional) and ("none" in choices) == conditional
    assert up[picker.dropdown]["value"] == value and value in choices
    assert up[picker.expression]["visible"] is False and up[picker.params]["visible"] is True
    assert up[picker.help].startswith(f"**{value}**")


@pytest.mark.parametrize("name, expression, params", [("expression", True, False), ("none", False, False)])
def test_the_reward_picker_shows_the_box_the_reward_takes(picker, name, expression, params):
    up = picker.on_reward(name)
    assert up[picker.expression]["visible"] is expression and up[picker.params]["visible"] is params
    assert up[picker.help]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    from tests.app_helpers import preset_dir_with_fallbacks

    with preset_dir_with_fallbacks(tmp_path_factory.mktemp("presets")):
        yield AppContext(device="cpu")


def test_the_solver_follows_the_process_and_starts_at_ddim_20_where_it_can(ctx):
    with gr.Blocks():
        moons, moons_info = ctx.model("moons", None)
        solver = SolverControls.build(moons, moons_info, "t", eta=False, prefer=TAB_SOLVER)
    assert (solver.solver.value, solver.steps.value) == TAB_SOLVER and solver.eta is None
    flow, flow_info = ctx.model("moons-flow", None)
    assert TAB_SOLVER[0] not in solvers_for(flow.process)
    up = solver.updates_for(flow, flow_info)  # a flow has no DDIM: the model's own default
    assert [name for _, name in up[solver.solver]["choices"]] == solvers_for(flow.process)
    assert (up[solver.solver]["value"], up[solver.steps]["value"]) == default_solver(flow, flow_info)
    up = solver.updates_for(moons, moons_info)
    assert (up[solver.solver]["value"], up[solver.steps]["value"]) == TAB_SOLVER
