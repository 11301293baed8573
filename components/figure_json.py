"""A plotly figure kept as the JSON Gradio's Plot sends, written by orjson from plain dicts (components/plotting.py
builds them): the same JSON plotly writes for those dicts (its default template included), without plotly's object
tree and its two deep copies (0.35 ms for the Guidance tab's 136 kB figure, where ``go.Figure(..., _validate=False)``
took 4.9 ms and its ``to_json`` 5.9 ms; tests/test_app_figures.py compares every builder's JSON with plotly's)."""

from __future__ import annotations

import functools
from typing import Any

import orjson
import plotly.graph_objects as go

__all__ = ["FigureJSON"]


class FigureJSON:
    """A plotly figure kept as what Gradio's Plot sends (its postprocess calls ``to_json()``): the builders' plain dicts
    (``FigureJSON(spec={"data": [...], "layout": {...}})``), written once by orjson, or the JSON text of any figure
    (``FigureJSON.of(fig)``).  A stored or reused figure is one string (counted exactly, one allocation to free), not
    rebuilt and serialised again for every answer.  Read like the figure it is: any other attribute comes from a
    ``go.Figure`` built on first use.  Read-only: a change made through that figure is not what Gradio sends (the text
    is), so build a new figure instead."""

    __slots__ = ("_text", "_spec", "_figure")

    def __init__(self, text: str | None = None, *, spec: dict | None = None):
        if (text is None) == (spec is None):
            raise TypeError("FigureJSON takes the JSON text or the spec, one of them")
        if spec is not None and "template" not in spec["layout"]:  # what go.Figure adds when it writes the layout
            spec = {**spec, "layout": {**spec["layout"], "template": _default_template()}}
        self._text, self._spec, self._figure = text, spec, None

    @classmethod
    def of(cls, fig: Any) -> FigureJSON:
        """``fig`` held as its JSON text, written now (a FigureJSON drops its dicts: what a cache keeps is the text)."""
        if isinstance(fig, cls):
            fig.text  # noqa: B018  (written once, here)
            return fig
        return cls(fig.to_json())

    @property
    def text(self) -> str:
        """The JSON, written on first use; a figure shared by sessions (a placeholder) may be asked from several
        threads at once: each writes the same text, and the dicts are dropped only after the text is set."""
        text = self._text
        if text is None:
            spec = self._spec
            if spec is None:  # another thread has just written it
                return self._text
            try:  # NaN and infinities become null, numpy values numbers: as plotly's own to_json writes them
                text = orjson.dumps(spec, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            except TypeError:  # a value orjson does not know (a date, an image): plotly's encoder knows more
                text = go.Figure(spec["data"], spec["layout"], _validate=False).to_json()
            self._text = text
            self._spec = None
        return text

    def to_json(self, *args, **kwargs) -> str:
        return self.text

    @property
    def figure(self) -> go.Figure:
        if self._figure is None:
            fig = orjson.loads(self.text)
            self._figure = go.Figure(data=fig.get("data"), layout=fig.get("layout"), _validate=False)
        return self._figure

    def __deepcopy__(self, memo) -> FigureJSON:  # Gradio deep-copies outputs: the text is immutable
        return FigureJSON(self.text)

    def __getattr__(self, name: str) -> Any:  # only for what the slots do not hold: the figure's attributes
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.figure, name)


@functools.cache
def _default_template() -> dict:
    """plotly's default template as its JSON says it (read once): a figure written by plotly carries it, and the
    page's figures look as they did when plotly wrote them."""
    return orjson.loads(go.Figure().to_json())["layout"]["template"]
