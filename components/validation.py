"""Bounded inputs and user-facing errors.

Every value that reaches a callback is checked here, and a bad one raises ``gr.Error`` whose message starts with the
field's name (the same name as the API parameter), so a browser user sees a toast and a gradio_client caller an
``AppError`` naming the field: never a traceback, never a dead server.

* ``slider`` / ``number`` / ``dropdown`` / ``radio`` / ``checkbox_group`` build gradio widgets whose own input
  checks (range, choices) name the field, instead of gradio's anonymous "Value 5000 is greater than maximum value".
* ``as_int`` / ``as_float`` / ``as_choice`` / ``as_text`` re-check values inside callbacks (they may arrive from the API
  as None, a string or a float).
* ``user_errors`` wraps a callback (plain or generator): ``ValueError`` from adiff becomes ``gr.Error(str(e))``
  (adiff's messages already name the field); anything unexpected is logged with its traceback on the server and
  shown to the user as one line.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import numbers
import re
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr
from gradio import component_meta

__all__ = [
    "slider",
    "number",
    "dropdown",
    "radio",
    "checkbox_group",
    "as_int",
    "as_float",
    "as_choice",
    "as_text",
    "as_bool",
    "user_errors",
    "field_error",
    "short",
    "clip_echo",
]

log = logging.getLogger("adiff.app")

ECHO_CHARS = 80  # at most this much of a visitor's input is shown back in a message
MESSAGE_CHARS = 600
_QUOTED = re.compile(r"'([^'\n]{%d})[^'\n]+'|\"([^\"\n]{%d})[^\"\n]+\"" % (ECHO_CHARS, ECHO_CHARS))


def short(value: Any) -> str:
    """repr(value), cut to ECHO_CHARS characters with its full length said."""
    text = repr(value)
    return text if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}… ({len(text)} characters)"


def clip_echo(message: str) -> str:
    """Every quoted value in ``message`` cut to ECHO_CHARS characters, and the whole to MESSAGE_CHARS: the last line
    of defence for messages that echo input (adiff's own, gradio's), whatever built them."""
    message = _QUOTED.sub(lambda m: f"'{m.group(1)}…'" if m.group(1) is not None else f'"{m.group(2)}…"', message)
    return message if len(message) <= MESSAGE_CHARS else message[:MESSAGE_CHARS] + "…"


def field_error(field: str, message: str) -> gr.Error:
    """An error for the user whose message starts with the field name (echoed input cut short)."""
    return gr.Error(clip_echo(f"{field}: {message}"), print_exception=False)


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


# ---------------------------------------------------------------------------------------------- value checks
def as_int(value: Any, field: str, lo: int, hi: int) -> int:
    """An integer in lo..hi (a float such as 3.0 from a number box is accepted)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise field_error(field, f"must be an integer in {lo}..{hi}, got {short(value)}") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise field_error(field, f"must be an integer in {lo}..{hi}, got {short(value)}")
    if float(value) != int(value):
        raise field_error(field, f"must be a whole number in {lo}..{hi}, got {short(value)}")
    v = int(value)
    if not lo <= v <= hi:
        raise field_error(field, f"must be in {lo}..{hi}, got {v}")
    return v


def as_float(value: Any, field: str, lo: float, hi: float) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise field_error(field, f"must be a number in [{lo:g}, {hi:g}], got {short(value)}") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise field_error(field, f"must be a finite number in [{lo:g}, {hi:g}], got {short(value)}")
    v = float(value)
    if not lo <= v <= hi:
        raise field_error(field, f"must be in [{lo:g}, {hi:g}], got {v:g}")
    return v


def as_choice(value: Any, field: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise field_error(field, f"must be one of {list(choices)}, got {short(value)}")
    return value


def as_text(value: Any, field: str, max_chars: int, allow_empty: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise field_error(field, f"must be text, got {type(value).__name__}")
    if len(value) > max_chars:
        raise field_error(field, f"is too long: {len(value)} characters, at most {max_chars}")
    if not allow_empty and not value.strip():
        raise field_error(field, "is empty")
    return value


def as_bool(value: Any, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise field_error(field, f"must be true or false, got {short(value)}")
    return value


# ---------------------------------------------------------------------------------------------- callbacks
def _convert(e: BaseException, where: str) -> gr.Error:
    if isinstance(e, gr.Error):
        return gr.Error(
            clip_echo(str(e.message)), duration=e.duration, visible=e.visible, title=e.title, print_exception=False
        )
    if isinstance(e, ValueError):  # adiff's messages name the field and the value
        return gr.Error(clip_echo(str(e)), print_exception=False)
    if isinstance(e, (MemoryError, FloatingPointError)):
        return gr.Error(clip_echo(f"{where}: {type(e).__name__}: {e}"), print_exception=False)
    log.exception("unexpected error in %s", where)
    return gr.Error(
        clip_echo(f"{where} failed unexpectedly ({type(e).__name__}: {e}); the server logged the details"),
        print_exception=False,
    )


def user_errors(fn: Callable) -> Callable:
    """Wrap a callback so every failure reaches the user as one readable gr.Error."""
    where = fn.__name__
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - the server must survive anything
                raise _convert(e, where) from None

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            raise _convert(e, where) from None

    return wrapper
