"""The Density tab (components/density): its handlers on the 8gaussians preset, whose data density is an exact
Gaussian mixture (the data's map and the paired held-out comparison are checked against the mixture's closed form,
and the model's map against the library), the cache, Stop, the refusals, the pure views, and the API through
gradio_client against the app launched in-process."""

from __future__ import annotations

import math

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from adiff.data import gaussian_mixture_for, make_dataset
from adiff.eval.likelihood import model_log_likelihood
from components.arrays import grid
from components.density import view
from components.density.handlers import DensityRequest, Progress, Result, estimate, state_of, stop
from components.limits import LIMITS
from components.result_cache import request_key
from tests.app_helpers import app_context, live_app, missing_presets, plot_json, require, trace

STEPS, GRID = 8, 20  # cheap: 400 grid points, 8 RK4 steps


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    with app_context(tmp_path_factory.mktemp("presets")) as c:
        yield c


def run(ctx, preset="8gaussians", steps=STEPS, n=GRID, seed=3, session=None):
    """Every view the handler yields, through a request parsed as the endpoint parses it (a fresh session unless
    one is given)."""
    s = session or ctx.store.get(None)
    return list(estimate(ctx, s, DensityRequest.parse(ctx, s, preset, steps, n, seed)))


def test_8gaussians_data_map_and_paired_nll_are_the_mixtures(ctx):
    require(not missing_presets(), "the shipped presets are not trained here")
    outs = run(ctx, seed=3)
    assert all(isinstance(o, Progress) for o in outs[:-1]) and isinstance(outs[-1], Result)
    s = outs[-1].summary
    g = gaussian_mixture_for("8gaussians")
    pts, axes, _ = grid(GRID)
    # the data's map is the mixture's closed-form log-density on the grid, drawn row by row (row = y)
    fig = outs[-1].figure.to_plotly_json()
    data_trace = next(t for t in fig["data"] if t["name"] == "data log p")
    expected = g.log_prob(pts).reshape(GRID, GRID)
    assert torch.allclose(torch.tensor(data_trace["z"], dtype=torch.float64), expected, atol=1e-3)
    # the held-out points: a fresh draw (never a training seed), scored by the model as the library scores them
    x, _ = make_dataset("8gaussians", LIMITS.density_heldout, seed=LIMITS.density_heldout_seed + 3)
    model = ctx.model("8gaussians", None)[0]
    lp = model_log_likelihood(model, x, num_steps=STEPS).log_prob
    d = g.log_prob(x)
    assert s["nll"] == pytest.approx(float(-lp.mean()), abs=1e-6)
    assert s["nll_se"] == pytest.approx(float(lp.std()) / math.sqrt(len(x)), rel=1e-6)
    assert s["data_nll"] == pytest.approx(float(-d.mean()), abs=1e-9)
    assert s["gap"] == pytest.approx(s["nll"] - s["data_nll"], abs=1e-9)
    assert s["gap_se"] == pytest.approx(float((d - lp).std()) / math.sqrt(len(x)), rel=1e-6)
    # the data's entropy (log 8 + a 2-D Gaussian's, sigma 0.25; the components barely overlap) within 4 SE
    entropy = math.log(8) + math.log(2 * math.pi * math.e * 0.25**2)
    assert abs(s["data_nll"] - entropy) < 4 * float(d.std()) / math.sqrt(len(x))
    # a density: the model's probability on the grid sums to about 1 (nearly all of 8gaussians lies in the view)
    assert 0.9 < s["grid_mass"] < 1.1, s["grid_mass"]
    assert s["data_off_data_mass"] < 1e-3 and s["data_kind"] == "exact" and s["heldout_points"] == len(x)
    # the data's side is kept for any model of the dataset: its held-out log-density, and its map on this grid
    held = ctx.results.get(request_key("density_heldout_data", dataset="8gaussians", seed=3, points=len(x)))
    on_grid = ctx.results.get(request_key("density_data", dataset="8gaussians", grid_size=GRID))
    assert torch.allclose(held, d.double()) and torch.allclose(on_grid, g.log_prob(pts).double())


def test_the_map_streams_row_by_row_and_is_cached_per_preset(ctx):
    require(not missing_presets(), "the shipped presets are not trained here")
    first = run(ctx, steps=4, n=GRID, seed=1)
    partial = [o for o in first if isinstance(o, Progress) and o.figure is not None]
    assert partial, "no partly filled map was streamed"
    z = trace(partial[0].figure.to_plotly_json(), "model log p_θ")["z"]
    filled = [all(v is not None for v in row) for row in z]
    assert filled[0] and not filled[-1] and filled == sorted(filled, reverse=True)  # bottom rows first
    assert first[-1].summary["map_reused"] is False
    # another visitor, another held-out seed: the same map from the cache, a new NLL
    again = run(ctx, steps=4, n=GRID, seed=2)
    assert again[-1].summary["map_reused"] is True
    assert not any(isinstance(o, Progress) and o.figure is not None for o in again)
    zs = [trace(o[-1].figure.to_plotly_json(), "model log p_θ")["z"] for o in (first, again)]
    assert zs[0] == zs[1]
    assert again[-1].summary["nll"] != first[-1].summary["nll"]


def test_my_model_is_never_cached_and_own_data_has_no_data_map(ctx):
    session = ctx.store.get(None)
    session.trained = ctx.model("moons-flow", None)[0]
    session.trained_info = {"dataset": None, "description": "a drawing"}
    outs = [run(ctx, "my model", steps=2, n=10, session=session) for _ in range(2)]
    assert [o[-1].summary["map_reused"] for o in outs] == [False, False]
    s, fig = outs[-1][-1].summary, outs[-1][-1].figure.to_plotly_json()
    assert [t["name"] for t in fig["data"]] == ["model log p_θ"]
    assert s["data_kind"] is None and "nll" not in s and "not a built-in set" in outs[-1][-1].text


def test_stop_says_where_the_run_got_and_frees_the_map(ctx):
    session = ctx.store.get(None)
    gen = estimate(ctx, session, DensityRequest.parse(ctx, session, "8gaussians", 3, 30, 0))
    for out in gen:  # up to the first partly filled map, then the visitor presses Stop
        if out.figure is not None:
            break
    gen.close()
    where, summary = stop(ctx, session, None)
    assert where == "at row 6 of 30 of the model's map" and summary == {"status": "stopped", "at": where}
    # nothing half-made was cached, and the map's in-flight mark is gone: the next run computes it
    assert run(ctx, "8gaussians", steps=3, n=30)[-1].summary["map_reused"] is False
    assert state_of(session).progress == where


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("glyphs", 8, 20, 0), "preset: 'glyphs' makes images; the density tab takes 2-D models"),
        (("my model", 8, 20, 0), "preset: 'my model' needs a model trained or loaded in the Train tab first"),
        (("moons", 0, 20, 0), "num_steps: must be in 1..64, got 0"),
        (("moons", 8, 61, 0), "grid_size: must be in 10..60, got 61"),
        (("moons", 8, 20, -1), "seed: must be in 0..2147483647, got -1"),
        (("moons", 8.5, 20, 0), "num_steps: must be a whole number"),
    ],
)
def test_bad_requests_name_the_field(ctx, args, message):
    import gradio as gr

    with pytest.raises(gr.Error) as info:
        DensityRequest.parse(ctx, ctx.store.get(None), *args)
    assert str(info.value.message).startswith(message), info.value.message


# ---------------------------------------------------------------------------------------------- views
def test_off_data_mass_is_a_riemann_sum_where_the_data_has_none():
    model = torch.tensor([0.5, 0.3, 0.1, 0.1], dtype=torch.float64).log()
    data = torch.tensor([math.log(0.5), math.log(0.5), -50.0, -60.0], dtype=torch.float64)
    off, data_off, total = view.off_data_mass(model, data, cell=2.0)  # cells of area 4
    assert off == pytest.approx(0.8) and total == pytest.approx(4.0)
    assert data_off == pytest.approx(4 * (math.exp(-50) + math.exp(-60)))


def test_the_maps_share_one_clipped_scale_and_the_difference_is_clipped():
    axes = [-1.0, 1.0]
    model = torch.tensor([0.0, -3.0, -30.0, float("nan")], dtype=torch.float64)
    data = torch.tensor([-1.0, -20.0, -40.0, -2.0], dtype=torch.float64)
    fig = view.figure(model, data, axes, "t", "exact").to_plotly_json()
    m, d, diff = (trace(fig, name) for name in ("model log p_θ", "data log p", "model − data"))
    top = 0.0
    assert m["zmax"] == d["zmax"] == top and m["zmin"] == d["zmin"] == top - LIMITS.density_clip_nats
    assert m["z"] == [[0.0, -3.0], [-30.0, None]]  # rows of y; not computed yet: a gap
    # both clipped 10 nats below the top before they are compared: where neither shows, they agree
    assert diff["z"] == [[1.0, 7.0], [0.0, None]]


def test_the_nll_words_read_the_gap_by_its_standard_error():
    base = {"nll": 2.19, "nll_se": 0.024, "heldout_points": 1000, "dataset": "8gaussians", "seed": 0}
    near = view.nll_text({**base, "data_nll": 2.18, "data_kind": "exact", "gap": 0.01, "gap_se": 0.006})
    assert "no detectable difference from the exact mixture density" in near
    far = view.nll_text({**base, "data_nll": 2.145, "data_kind": "exact", "gap": 0.045, "gap_se": 0.005})
    assert "0.045 ± 0.005 nats above it" in far and f"{math.exp(-0.045):.0%} of the density" in far


# ---------------------------------------------------------------------------------------------- the API
@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with live_app(tmp_path_factory.mktemp("api-presets")) as (_, url):
        yield Client(url, verbose=False)


def test_the_api_streams_the_density_and_names_bad_fields(client):
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in info["/density"]["parameters"]] == ["preset", "num_steps", "grid_size", "seed"]
    assert "/density_stop" in info
    job = client.submit("8gaussians", 2, 10, 0, api_name="/density")
    updates = list(job)
    fig, text, summary = job.result()
    assert len(updates) >= 3  # progress lines before the result
    names = {t["name"] for t in plot_json(fig)["data"]}
    assert names == {"model log p_θ", "data log p", "model − data"}
    assert summary["preset"] == "8gaussians" and summary["grid_size"] == 10 and "held-out NLL" in text
    with pytest.raises(AppError, match="preset: 'digits' makes images"):
        client.predict("digits", 2, 10, 0, api_name="/density")
    with pytest.raises(AppError, match="grid_size: must be in 10..60"):
        client.predict("moons", 2, 5, 0, api_name="/density")
    status, stopped = client.predict(api_name="/density_stop")
    assert "stopped" in status and stopped["status"] == "stopped"
