"""Field checks and user-facing errors.

Every value that reaches a handler is checked here, and a bad one raises ``gr.Error`` whose message starts with the
field's name (the same name as the API parameter), so a browser user sees a toast and a gradio_client caller an
``AppError`` naming the field: never a traceback, never a dead server.

Events are wired with ``preprocess=False`` (components/wiring.py): a handler receives the raw values the browser or
the API client sent (a number, a string, None, a file's ``{"path": ...}`` record), and its request's ``parse()``
checks each one with the functions below.  Gradio's own component checks (anonymous, e.g. "Value 5000 is greater
than maximum value 2000") never run, so no component needs changing.

* ``as_int`` / ``as_float`` / ``as_choice`` / ``as_text`` / ``as_bool`` check one value (it may arrive from the API as
  None, a string or a float) and name the field in the error.
* ``user_errors`` wraps a callback (plain or generator): ``ValueError`` from adiff becomes ``gr.Error(str(e))``
  (adiff's messages already name the field); anything unexpected is logged with its traceback on the server and
  shown to the user as one line.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import numbers
import re
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

__all__ = [
    "UserError",
    "named",
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

UserError = gr.Error  # what a handler raises (and may catch) for a problem the visitor can fix

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


def named(field: str, *classes: str) -> list[str]:
    """``elem_classes`` for a widget whose value is the API field ``field``: the page script (assets/page.js) names
    that field when a slider clamps a typed number."""
    return [f"adiff-field-{field}", *classes]


def field_error(field: str, message: str) -> gr.Error:
    """An error for the user whose message starts with the field name (echoed input cut short)."""
    return gr.Error(clip_echo(f"{field}: {message}"), print_exception=False)


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
