"""TRANSITIONAL: widget subclasses whose input checks name the field; being replaced by plain widgets whose events
run with ``preprocess=False`` and check their values in the handler (components/fields.py).  Deleted when the last
tab has moved to its folder."""

from __future__ import annotations

import contextlib
import math
import numbers

import gradio as gr
from gradio import component_meta

from .fields import ECHO_CHARS, field_error, short

__all__ = ["slider", "number", "dropdown", "radio", "checkbox_group"]

# ---------------------------------------------------------------------------------------------- widgets
# The field name (and, for sliders whose range changes per session, the hard limits) ride along in
# ``elem_classes``: gradio rebuilds a component from its constructor arguments when an event updates its props for
# one session, and instance attributes would be lost there; constructor arguments are not.
_FIELD, _LO, _HI = "adiff-field-", "adiff-lo-", "adiff-hi-"


def _tag(component, prefix: str) -> str | None:
    classes = component.elem_classes or []
    classes = [classes] if isinstance(classes, str) else classes
    return next((c[len(prefix) :] for c in classes if c.startswith(prefix)), None)


def _field_of(component) -> str:
    return _tag(component, _FIELD) or component.label or "value"


def _checked(component, parent_preprocess, payload):
    try:
        return parent_preprocess(payload)
    except gr.Error as e:  # gradio's own message (e.g. "Value: ... is not in the list of choices") echoes the input
        message = str(e.message)
        for value in payload if isinstance(payload, list) else [payload]:
            if isinstance(value, str) and len(value) > ECHO_CHARS:
                message = message.replace(value, short(value))
        raise field_error(_field_of(component), message) from None
    except (TypeError, ValueError, OverflowError) as e:
        raise field_error(_field_of(component), f"invalid value {short(payload)} ({e})") from None


def _number_payload(component, payload, what: str):
    if payload is None:
        return None
    if isinstance(payload, bool) or not isinstance(payload, numbers.Real):
        raise field_error(_field_of(component), f"must be {what}, got {short(payload)}")
    if not math.isfinite(payload):
        raise field_error(_field_of(component), f"must be a finite number, got {payload!r}")
    return payload


@contextlib.contextmanager
def _no_stub_files():
    """Gradio's component metaclass writes a .pyi stub next to the module of every component subclass it sees;
    these subclasses only change input checks, so skip that (the repository must not change at import time)."""
    original = component_meta.create_or_modify_pyi
    component_meta.create_or_modify_pyi = lambda *args, **kwargs: None
    try:
        yield
    finally:
        component_meta.create_or_modify_pyi = original


with _no_stub_files():
    # ``is_template`` makes gradio render these with the parent's frontend component; only preprocess changes.
    class _Slider(gr.Slider):
        is_template = True

        def preprocess(self, payload):
            payload = _number_payload(self, payload, f"a number between {self.minimum} and {self.maximum}")
            lo, hi = _tag(self, _LO), _tag(self, _HI)
            if payload is not None and lo is not None and hi is not None:
                # the displayed range may differ per session (e.g. t in 0..T): check the hard limits here and
                # let the callback check the exact range
                if not float(lo) <= payload <= float(hi):
                    raise field_error(_field_of(self), f"must be in [{lo}, {hi}], got {payload!r}")
                return gr.Number.round_to_precision(payload, self.precision)
            return _checked(self, super().preprocess, payload)

    class _Number(gr.Number):
        is_template = True

        def preprocess(self, payload):
            payload = _number_payload(self, payload, "a number")
            return _checked(self, super().preprocess, payload)

    class _Dropdown(gr.Dropdown):
        is_template = True

        def preprocess(self, payload):
            return _checked(self, super().preprocess, payload)

    class _Radio(gr.Radio):
        is_template = True

        def preprocess(self, payload):
            return _checked(self, super().preprocess, payload)

    class _CheckboxGroup(gr.CheckboxGroup):
        is_template = True

        def preprocess(self, payload):
            return _checked(self, super().preprocess, payload)


def _named(cls, field: str, bounds=None, **kw):
    classes = kw.pop("elem_classes", None) or []
    classes = [classes] if isinstance(classes, str) else list(classes)
    classes.append(_FIELD + field)
    if bounds is not None:
        classes += [f"{_LO}{bounds[0]}", f"{_HI}{bounds[1]}"]
    return cls(elem_classes=classes, **kw)


def slider(field: str, bounds: tuple[float, float] | None = None, **kw) -> gr.Slider:
    """A slider whose range errors name ``field``; ``bounds`` (hard limits) replaces the displayed range in that
    check when the range is changed per session (e.g. t in 0..T) and the callback checks the exact range."""
    return _named(_Slider, field, bounds, **kw)


def number(field: str, **kw) -> gr.Number:
    return _named(_Number, field, **kw)


def dropdown(field: str, **kw) -> gr.Dropdown:
    return _named(_Dropdown, field, **kw)


def radio(field: str, **kw) -> gr.Radio:
    return _named(_Radio, field, **kw)


def checkbox_group(field: str, **kw) -> gr.CheckboxGroup:
    return _named(_CheckboxGroup, field, **kw)
