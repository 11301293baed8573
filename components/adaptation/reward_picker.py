"""Tab 6, adaptation: the reward picker, a control group with the protocol of components/controls.py
(``updates_for(model, info) -> dict``, ``outputs()``): the reward dropdown (its choices follow the model's kind), the
reward's help line, the expression box (for "expression") and the JSON parameters box (for the built-ins).

Self-contained on purpose: the guidance tab has a group of the same shape; the two are to become one shared group.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..context import ModelInfo
from ..fields import named
from ..rewards import EXPRESSION, reward_choices, reward_help

__all__ = ["RewardPicker", "DEFAULT_EXPRESSION"]

DEFAULT_EXPRESSION = "-((x-1)**2 + (y+0.5)**2)"


@dataclass
class RewardPicker:
    """Reward r(x): a built-in (with optional JSON parameters) or, for 2-D models, an expression in x and y."""

    dropdown: gr.Dropdown
    help: gr.Markdown
    expression: gr.Textbox
    params: gr.Textbox

    @classmethod
    def build(cls, prefix: str, kind: str = "points", value: str = "x_coordinate") -> RewardPicker:
        dropdown = gr.Dropdown(
            choices=reward_choices(kind),
            value=value,
            label="Reward r(x)",
            allow_custom_value=True,
            elem_id=f"{prefix}-reward",
            elem_classes=named("reward"),
        )
        help_md = gr.Markdown(reward_help(value), elem_id=f"{prefix}-reward-help")
        expression = gr.Textbox(
            DEFAULT_EXPRESSION,
            label="Expression r(x, y)",
            max_lines=1,
            visible=value == EXPRESSION,
            elem_id=f"{prefix}-expression",
            elem_classes=named("expression"),
        )
        params = gr.Textbox(
            "",
            label="Reward parameters (JSON)",
            max_lines=1,
            visible=value != EXPRESSION,
            elem_id=f"{prefix}-params",
            elem_classes=named("reward_params"),
            placeholder='e.g. {"scale": 2}',
            info="optional; empty = the defaults",
        )
        return cls(dropdown, help_md, expression, params)

    def updates_for(self, model, info: ModelInfo, current: str | None = None) -> dict:
        """The model's rewards; the ``current`` one stays chosen when the model offers it, else the first."""
        choices = reward_choices(info.kind)
        value = current if current in choices else choices[0]
        return {self.dropdown: gr.update(choices=choices, value=value), **self.on_reward(value)}

    def on_reward(self, name: str) -> dict:
        """What choosing reward ``name`` shows: its help, and the expression box or the parameters box."""
        return {
            self.help: reward_help(name),
            self.expression: gr.update(visible=name == EXPRESSION),
            self.params: gr.update(visible=name != EXPRESSION),
        }

    def outputs(self) -> list:
        return [self.dropdown, self.help, self.expression, self.params]
