"""The Complete tab (components/complete): the kept pixels come out exactly as kept, the engine's completions are the
library's (adiff.steering.inpaint) to the bit, strokes become the model's pixels with their limits checked before
anything is drawn, every refusal names its field; and the API through gradio_client streams player messages, then the
completions with the class the classifier reads."""

from __future__ import annotations

import json
import re

import pytest
import torch

from adiff.steering.inpaint import inpaint
from components.complete.handlers import CompleteRequest, Done, Live, complete, known_part, readings
from components.fields import UserError
from components.limits import LIMITS
from tests.app_helpers import app_context, live_app

SIDE = LIMITS.drawing_side


def stroke(y0: float, x0: float = 0.1, x1: float = 0.9, brush: float = 40) -> dict:
    """A horizontal stroke across the canvas at ``y0`` of its height."""
    pts = [[round(SIDE * (x0 + (x1 - x0) * k / 20)), round(SIDE * y0)] for k in range(21)]
    return {"w": SIDE, "h": SIDE, "brush": brush, "strokes": [pts]}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    with app_context(tmp_path_factory.mktemp("presets")) as c:
        yield c


def run(ctx, *args):
    session = ctx.store.get(None)
    try:
        return run_in(ctx, session, *args)
    finally:
        ctx.store.drop(session.key)


def run_in(ctx, session, *args):
    req = CompleteRequest.parse(ctx, session, *args)
    return req, list(complete(ctx, session, req))


@pytest.mark.parametrize("keep", ["top half", "left half"])
def test_the_kept_pixels_come_out_exactly_and_match_the_library(ctx, keep):
    """Completions of a held-out 3 through the app's engine equal adiff.steering.inpaint's (same seed, no engine) to
    the bit, and every kept pixel is the held-out digit's value exactly."""
    req, outs = run(ctx, "digits", keep, 3, 2, None, True, "dpmpp_2m", 10, 1, 4, 6)
    done = outs[-1]
    assert isinstance(done, Done) and all(isinstance(o, Live) for o in outs[:-1]) and len(outs) >= 2
    x = done.completions
    m = req.mask.expand_as(x)
    assert int(req.mask.sum()) == 32 and torch.equal(x[m], req.known.expand_as(x)[m])
    assert done.summary["known_max_error"] == 0.0
    lib = inpaint(
        req.model, req.known.expand_as(x).clone(), req.mask, sampler="dpmpp_2m", num_steps=10, seed=4, clip_x0=1.0
    )
    assert torch.equal(lib, x)
    assert (x[~m] != req.known.expand_as(x)[~m]).any()  # the rest was sampled, not copied
    s = done.summary
    assert len(s["readings"]) == 6 and sum(s["counts"].values()) == 6 and s["true_class"] == 3
    assert s["most_read_count"] == max(s["counts"].values())
    assert f"{s['most_read_count']} of 6 completions read as {s['most_read']}" in done.text


def test_stop_ends_the_run_at_its_next_step(ctx):
    """A run whose thread computes on after Stop (Gradio no longer reads it) ends at its next network call, with no
    result (RunCancelled, which the endpoint ends quietly)."""
    from adiff.serving import RunCancelled
    from components.complete.handlers import stop

    session = ctx.store.get(None)
    try:
        req = CompleteRequest.parse(ctx, session, "digits", "top half", 0, 0, None, False, "ddpm", 1000, 1, 0, 2)
        run = complete(ctx, session, req)
        assert isinstance(next(run), Live)
        where, summary = stop(ctx, session, None)
        assert where.startswith("at step 1 of 1000") and summary["status"] == "stopped"
        with pytest.raises(RunCancelled):
            next(run)
        _, outs = run_in(ctx, session, "digits", "top half", 0, 0, None, False, "ddim", 3, 1, 0, 2)
        assert isinstance(outs[-1], Done)  # a later run in the same session is not stopped
    finally:
        ctx.store.drop(session.key)


def test_the_readings_are_the_classifier_on_the_completions(ctx):
    """readings() is the shipped digit classifier's argmax and probability; images of another size have none."""
    from adiff.data import digits_split
    from adiff.eval.classifier import load_digits_classifier

    x, y = digits_split("heldout")
    got = readings(x[:20])
    with torch.no_grad():
        p = load_digits_classifier()(x[:20]).softmax(1)
    assert [c for c, _ in got] == p.argmax(1).tolist()
    assert [round(q, 6) for _, q in got] == [round(float(q), 6) for q in p.max(1).values]
    assert sum(c == int(t) for (c, _), t in zip(got, y[:20])) >= 18  # it reads real digits
    assert readings(torch.zeros(2, 1, 12, 12)) is None


def test_strokes_become_the_models_pixels(ctx):
    """A thick stroke along the top of the canvas inks the top row of an 8x8 image: 'my strokes' keeps that ink;
    with a short second stroke lower down, 'my strokes and their box' keeps the box around both, blank included."""
    draw = stroke(0.05)
    known, mask, label = known_part(ctx, "my strokes", (1, 8, 8), None, None, draw)
    assert label is None and mask[0, 0, 0, 1:7].all() and not mask[0, 0, 2:].any()
    assert known[mask].min() >= 0.0  # ink: at least half covered
    draw["strokes"].append(stroke(0.4, 0.1, 0.25)["strokes"][0])
    _, ink, _ = known_part(ctx, "my strokes", (1, 8, 8), None, None, draw)
    _, box, _ = known_part(ctx, "my strokes and their box", (1, 8, 8), None, None, draw)
    rows, cols = ink[0, 0].any(1).nonzero()[:, 0], ink[0, 0].any(0).nonzero()[:, 0]
    want = torch.zeros_like(box)
    want[..., rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
    assert torch.equal(box, want) and box.sum() > ink.sum() and not box[0, 0, 5:].any()
    req, outs = run(ctx, "digits", "my strokes and their box", 0, 0, json.dumps(draw), False, "ddim", 8, 2, 0, 3)
    x = outs[-1].completions
    m = req.mask.expand_as(x)
    assert torch.equal(x[m], req.known.expand_as(x)[m])
    assert outs[-1].summary["true_class"] is None and "true_class_count" not in outs[-1].summary


def refused(pattern: str, call) -> None:
    """``call`` raises the user a field-named error matching ``pattern``."""
    with pytest.raises(UserError) as info:
        call()
    assert re.search(pattern, info.value.message), info.value.message


ARGS = ["digits", "top half", 0, 0, None, True, "dpmpp_2m", 10, 1, 0, 4]


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (0, "moons", r"^preset: completion keeps pixels of an image: 'moons' makes 2-D points"),
        (0, "nope", r"^preset: must be one of"),
        (1, "bottom half", r"^keep: must be one of"),
        (2, 10, r"^digit: must be in 0\.\.9, got 10"),
        (3, LIMITS.complete_examples, rf"^example: must be in 0\.\.{LIMITS.complete_examples - 1}"),
        (5, "yes", r"^correction: must be true or false"),
        (6, "flow_euler", r"^sampler: must be one of"),
        (8, 6, rf"^recurrence: must be in 1\.\.{LIMITS.recurrence}, got 6"),
        (10, LIMITS.images + 1, rf"^num_samples: must be in 1\.\.{LIMITS.images}"),
    ],
)
def test_bad_values_are_refused_naming_the_field(ctx, index, value, message):
    args = list(ARGS)
    args[index] = value
    refused(message, lambda: CompleteRequest.parse(ctx, ctx.store.get(None), *args))


@pytest.mark.parametrize(
    ("drawing", "message"),
    [
        (None, r"^drawing: the canvas is empty"),
        ({**stroke(0.5), "strokes": [[[1, 1]]] * (LIMITS.drawing_strokes + 1)}, r"^drawing: 501 strokes, at most 500"),
        (
            {**stroke(0.5), "strokes": [[[1, 1]] * (LIMITS.drawing_stroke_points + 1)]},
            r"^drawing: 8,001 points in the strokes, at most 8,000",
        ),
        ({**stroke(0.5), "w": 10**6}, r"^drawing: w must be in 16\.\.2048"),
        ("x" * (LIMITS.drawing_chars + 1), r"^drawing: 2,097,153 characters, at most"),
        (stroke(0.5, brush=2), r"^drawing: no pixel of the model's image is at least half inked"),
        (
            {"w": SIDE, "h": SIDE, "brush": 40, "strokes": [[[0, 0], [SIDE, SIDE]], [[SIDE, 0], [0, SIDE]]]},
            r"^drawing: your strokes' box covers the whole image",
        ),
    ],
)
def test_strokes_are_checked_before_they_are_drawn(ctx, drawing, message):
    args = list(ARGS)
    args[1], args[4] = "my strokes and their box", drawing
    refused(message, lambda: CompleteRequest.parse(ctx, ctx.store.get(None), *args))


def test_a_real_digit_needs_a_digit_sized_model(ctx):
    refused(
        r"^keep: real digits come as 8×8 \(digits\) or 16×16 \(glyphs\)",
        lambda: known_part(ctx, "top half", (1, 12, 12), 0, 0, None),
    )


# ---------------------------------------------------------------------------------------------- the API
@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from gradio_client import Client

    with live_app(tmp_path_factory.mktemp("api")) as (_, url):
        yield Client(url, verbose=False)


def test_the_api_streams_then_completes(client):
    """/complete on glyphs: player messages stream, then the pointer to the trajectory file, the words and the
    numbers; the file is the player's payload with the kept panel."""
    from components.player import decode_images

    job = client.submit("glyphs", "top half", 7, 0, None, True, "ddim", 10, 1, 0, 4, api_name="/complete")
    updates = list(job)
    player, text, _, summary, data = job.result()
    assert len(updates) >= 2 and player["file"] == "trajectory" and not player["live"]
    assert "completions read as" in text and summary["true_class"] == 7 and len(summary["readings"]) == 4
    payload = json.loads(open(data).read())
    layers = payload["static"]["layers"]
    assert payload["static"]["panels"][0][0]["layers"] == ["kept"]
    k = payload["frames"]["count"]
    kept = decode_images(
        payload["frames"]["data"]["kept"],
        layers["kept"]["lo"],
        layers["kept"]["hi"],
        [k, layers["kept"]["h"], layers["kept"]["w"]],
    )
    assert torch.isnan(torch.tensor(kept[0, -1])).all()  # the bottom row is the model's: not kept


def test_the_api_names_its_parameters(client):
    """The API's parameters are CompleteRequest.parse's, in its order, with the tab's opening values."""
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    params = {p["parameter_name"]: p.get("parameter_default") for p in info["/complete"]["parameters"]}
    assert list(params) == [
        "preset",
        "keep",
        "digit",
        "example",
        "drawing",
        "correction",
        "sampler",
        "num_steps",
        "recurrence",
        "seed",
        "num_samples",
    ]
    assert params["preset"] == "digits" and params["keep"] == "top half" and params["num_samples"] == 8
    assert "/complete_stop" in info


def test_the_api_refuses_a_2d_model_naming_the_field(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="preset: completion keeps pixels of an image"):
        client.predict("moons", "top half", 0, 0, None, True, "ddim", 10, 1, 0, 4, api_name="/complete")
    job = client.submit(
        "digits", "my strokes", 0, 0, json.dumps(stroke(0.1)), True, "ddim", 5, 1, 0, 2, api_name="/complete"
    )
    assert job.result()[3]["keep"] == "my strokes"  # strokes as JSON text work through the API, too
