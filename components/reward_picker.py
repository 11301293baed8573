"""The reward control group shared by the guidance and adaptation tabs: the reward dropdown, the words under it, the
expression box and the JSON parameters, with the control-group protocol of components/controls.py
(``updates_for(model, info, current)``, ``outputs()``, ``inputs()``): the choices follow the model's kind (points or
images; with ``offer_none``, "none" for a conditional model, where classifier-free guidance alone may act), the
reward chosen so far stays when the new model offers it, and the expression and parameter boxes follow the chosen
reward."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .context import AppContext, ModelInfo
from .fields import as_text, named
from .limits import LIMITS
from .rewards import EXPRESSION, NO_REWARD, reward_choices, reward_help
from .wiring import EVENT, endpoint

__all__ = ["RewardPicker", "DEFAULT_REWARD"]

DEFAULT_REWARD = {"points": "distance_to_target", "images": "classifier_logprob"}  # what a model's kind starts with
DEFAULT_EXPRESSION = "-((x-1)**2 + (y+0.5)**2)"


@dataclass
class RewardPicker:
    """Reward dropdown, its help, the expression (the reward "expression") and the parameters (the built-ins)."""

    dropdown: gr.Dropdown
    help: gr.Markdown
    expression: gr.Textbox
    params: gr.Textbox
    offer_none: bool = True  # offer "none" to conditional models (guidance: CFG alone)
    defaults: dict | None = None  # kind -> the reward a model of that kind starts with (None: DEFAULT_REWARD)

    @classmethod
    def build(cls, prefix: str, offer_none: bool = True, defaults: dict | None = None) -> RewardPicker:
        value = (defaults or DEFAULT_REWARD)["points"]  # the tabs open on moons
        dropdown = gr.Dropdown(
            choices=reward_choices("points"),
            value=value,
            label="Reward r(x)",
            allow_custom_value=True,
            info="built-ins, or your own formula (expression)",
            elem_id=f"{prefix}-reward",
            elem_classes=named("reward"),
        )
        help_md = gr.Markdown(reward_help(value), elem_id=f"{prefix}-reward-help")
        expression = gr.Textbox(
            DEFAULT_EXPRESSION,
            label="Expression r(x, y)",
            max_lines=1,
            visible=value == EXPRESSION,
            info=f"x, y, r, theta, + - * / **, exp log sin cos sigmoid min max… (≤ {LIMITS.expression_chars} characters)",
            elem_id=f"{prefix}-expression",
            elem_classes=named("expression"),
        )
        params = gr.Textbox(
            "",
            label="Reward parameters (JSON)",
            max_lines=1,
            visible=value not in (EXPRESSION, NO_REWARD),
            placeholder='e.g. {"scale": 2} or {"k": 3} or {"digit": 7}',
            info="optional; empty = the defaults",
            elem_id=f"{prefix}-params",
            elem_classes=named("reward_params"),
        )
        return cls(dropdown, help_md, expression, params, offer_none, defaults)

    def choices_for(self, info: ModelInfo | None) -> list[str]:
        """The rewards a model offers (a 2-D model's when ``info`` is None: the tab opens on moons)."""
        if info is None:
            return reward_choices("points")
        return reward_choices(info.kind, allow_none=self.offer_none and info.conditional)

    def updates_for(self, model, info: ModelInfo, current: str | None = None) -> dict:
        """The model's rewards; the ``current`` one stays chosen when the model offers it, else the kind's default."""
        choices = self.choices_for(info)
        value = current if current in choices else (self.defaults or DEFAULT_REWARD)[info.kind]
        return {self.dropdown: gr.update(choices=choices, value=value), **self.on_reward(value)}

    def outputs(self) -> list:
        return [self.dropdown, self.help, self.expression, self.params]

    def inputs(self) -> list:
        """What ``updates_for`` reads besides the model: the reward chosen so far."""
        return [self.dropdown]

    def on_reward(self, name: str) -> dict:
        """What choosing reward ``name`` shows: its words, and the box its settings are typed in."""
        return {
            self.help: reward_help(name),
            self.expression: gr.update(visible=name == EXPRESSION),
            self.params: gr.update(visible=name not in (EXPRESSION, NO_REWARD)),
        }

    def follow(self, ctx: AppContext) -> None:
        """Wire the dropdown: the words and boxes follow the chosen reward (a private event that computes nothing)."""

        def read(ctx, session, reward):
            return as_text(reward, "reward", 100)

        def on_reward(ctx, session, name):
            return self.on_reward(name)

        self.dropdown.input(
            endpoint(ctx, read, on_reward),
            self.dropdown,
            [self.help, self.expression, self.params],
            api_visibility="private",
            **EVENT,
            **ctx.instant,
        )
