"""From a Gradio event to a handler and back: the only place that knows how a callback is called.

A tab's layout wires each event to ``endpoint(ctx, parse, handle, render)``:

* ``parse(ctx, session, <field>, <field>, ...)`` takes the raw values (events run with ``preprocess=False``, so
  Gradio's anonymous component checks never run: see components/fields.py) and returns the endpoint's small request
  dataclass, raising a field-named error for any bad value.  Its parameter names are the API's parameter names.
* ``handle(ctx, session, request)`` does the work with no widgets in sight: it returns view data, or yields it
  (a generator streams).
* ``render(view)`` turns one piece of view data into the event's outputs (a tuple, or a dict of component ->
  value); it is the layout's and may use ``gr.update`` / ``gr.skip``.

A render must not mix ``gr.skip()`` / ``gr.update(...)`` and plain values on one output of an event: in Gradio 6.31
an update replaces the session's copy of the component with a new instance (a new id), and the next plain value is
then stored under that new id, so each update-then-value turn leaves one more component, holding its value, in the
session's state until the session closes (a streamed figure skipped while sampling and sent at the end: +0.45 MB
per /guided_generate).  While streaming, send a small placeholder value instead (the same one each time: Gradio
sends only what changed; ``RUNNING`` for a summary), or give the output updates only.

When a callback ends, the heap's free pages go back to the OS (state.return_free_memory_now_and_then: at most every
2 s), so an open session's heavy requests do not leave the app's memory creeping up.

The callback Gradio sees has the parse function's parameters plus ``request: gr.Request`` (how Gradio hands over
the session), so the API and its documentation keep their parameter names and order.  Every failure reaches the
user as one readable, field-named ``gr.Error`` (``fields.user_errors``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import gradio as gr

from adiff.serving import RunCancelled

from .fields import user_errors
from .state import return_free_memory_now_and_then

__all__ = ["endpoint", "EVENT", "RUNNING"]

# What every event passes to Gradio besides its pool: raw values to parse() (see module docstring).
EVENT = {"preprocess": False}

# A streamed run's summary while it runs (a value, not gr.skip(): see the module docstring).
RUNNING = {"status": "running"}


def _fields(parse: Callable | None) -> list[inspect.Parameter]:
    """The raw-value parameters of ``parse``: everything after (ctx, session), with their defaults (an API caller
    may leave out a trailing field that has one)."""
    if parse is None:
        return []
    params = list(inspect.signature(parse).parameters.values())[2:]
    for p in params:
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise TypeError(f"{parse.__qualname__}: parameter {p.name!r} must be positional")
    return [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=inspect.Parameter.empty) for p in params]


def endpoint(
    ctx, parse: Callable | None, handle: Callable, render: Callable[[Any], Any] | None = None, name: str | None = None
) -> Callable:
    """The Gradio callback for ``handle`` (see the module docstring).  ``parse`` None: the event takes no inputs and
    the handler gets ``None`` as its request.  ``render`` None: the handler's values are the outputs."""
    fields = _fields(parse)
    render = render or (lambda view: view)

    def prepare(values: tuple):
        *raw, request = values
        session = ctx.store.get(request)
        req = parse(ctx, session, *raw) if parse is not None else None
        return session, req

    if inspect.isgeneratorfunction(handle):

        def callback(*values):
            try:
                session, req = prepare(values)
                for view in handle(ctx, session, req):
                    yield render(view)
            except RunCancelled:  # Stop (or a closed tab) ended the run's engine session: nobody reads it any more
                return
            finally:
                return_free_memory_now_and_then()

    else:

        def callback(*values):
            try:
                session, req = prepare(values)
                return render(handle(ctx, session, req))
            finally:
                return_free_memory_now_and_then()

    params = list(fields)
    default = None if any(p.default is not inspect.Parameter.empty for p in params) else inspect.Parameter.empty
    params.append(
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=gr.Request)
    )
    callback.__signature__ = inspect.Signature(params)
    callback.__annotations__ = {"request": gr.Request}  # Gradio finds the request parameter by its annotation
    callback.__name__ = callback.__qualname__ = name or handle.__name__
    callback.__doc__ = handle.__doc__
    return user_errors(callback)  # functools.wraps: Gradio reads the signature and annotations set above
