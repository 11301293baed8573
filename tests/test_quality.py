"""Quality against NFE: every point the mean of independent draws with its standard error (adiff.eval.quality), and
the compare tab's figure of it (components/compare/figures.py): error bars, the "≈ 0" band for means within 2 SE of
0 (never a made-up small value that ranks them), and a plot tall enough to read whatever the legend."""

import itertools
import math

import plotly.graph_objects as go
import pytest
import torch

from adiff.cli.quality import nfe_grid
from adiff.data import make_dataset
from adiff.eval.metrics import mmd2
from adiff.eval.quality import mean_se, quality_against_nfe, within_noise
from adiff.presets import list_presets, load_preset, preset_curve, preset_spec
from components.compare.figures import BAND_NAME, FLOOR_NAME, PLOT_PX, make_quality_figure


def test_mean_se_is_the_mean_and_its_standard_error():
    mean, se = mean_se([1.0, 2.0, 3.0, 6.0])
    assert mean == 3.0 and se == pytest.approx(math.sqrt(14 / 3) / 2)  # sample variance (1+1+0+9)... / 3 = 14/3
    assert math.isnan(mean_se([5.0])[1])
    with pytest.raises(ValueError, match="at least one value"):
        mean_se([])


@pytest.mark.parametrize(
    "mean, se, noise",
    [(2e-4, 1e-4, True), (2.01e-4, 1e-4, False), (-3e-4, 1e-4, True), (0.0, 0.0, True), (1e-3, float("nan"), False)],
)
def test_within_noise_is_at_most_two_standard_errors_above_zero(mean, se, noise):
    assert within_noise(mean, se) is noise


def _reference(dataset: str):
    seeds = itertools.count(500)
    return lambda m: make_dataset(dataset, m, seed=next(seeds))[0]


def test_a_curve_point_is_the_mean_of_independent_draws():
    torch.set_num_threads(1)
    model = load_preset("moons", "cpu")
    kw = {"solvers": ["ddim"], "nfes": (5, 10), "n": 200, "draws": 3, "seed": 1, "clip_x0": 4.0}
    c = quality_against_nfe(model, _reference("moons"), **kw)
    assert (c["n"], c["draws"]) == (200, 3) and [r["nfe"] for r in c["rows"]] == [5, 10]
    for r in c["rows"]:
        d = r["mmd2_draws"]
        assert len(d) == 3 and len(set(d)) == 3, "the draws are independent sample sets"
        assert r["mmd2"] == pytest.approx(sum(d) / 3) and r["mmd2_se"] == pytest.approx(torch.tensor(d).std() / 3**0.5)
    assert len(c["floor"]) == 3 and c["floor_mmd2"] == pytest.approx(sum(c["floor"]) / 3)
    # the same seed gives the same samples; the data draws are fresh, so only the sampling part is compared
    again = quality_against_nfe(model, lambda m: make_dataset("moons", m, seed=500)[0], **kw)
    x, _ = model.generate(600, seed=1, sampler="ddim", num_steps=5, clip_x0=4.0)
    first = mmd2(x[:200], make_dataset("moons", 200, seed=500)[0])
    assert again["rows"][0]["mmd2_draws"][0] == pytest.approx(first, rel=1e-5, abs=1e-9)


def test_a_per_sample_condition_is_repeated_for_every_draw():
    model = load_preset("8gaussians", "cpu")

    def of_class(k):
        x, y = make_dataset("8gaussians", 1000, seed=3 + k)
        return lambda m: x[y == k][:m]

    two = of_class(2)
    c = quality_against_nfe(model, two, ["ddim"], (10,), n=50, draws=2, condition=torch.full((50,), 2), clip_x0=4.0)
    far = quality_against_nfe(model, of_class(5), ["ddim"], (10,), n=50, draws=2, condition=2, clip_x0=4.0)
    assert max(c["rows"][0]["mmd2_draws"]) < 0.1 < min(far["rows"][0]["mmd2_draws"]), "every draw follows class 2"
    with pytest.raises(ValueError, match=r"condition must have one entry per sample \(50\), got shape \(49,\)"):
        quality_against_nfe(model, two, ["ddim"], (10,), n=50, draws=2, condition=torch.full((49,), 2))
    with pytest.raises(ValueError, match="draws must be an integer >= 1, got 0"):
        quality_against_nfe(model, two, ["ddim"], (10,), n=50, draws=0)


def _row(nfe, mean, se, solver="ddim"):
    return {"solver": solver, "steps": nfe, "nfe": nfe, "mmd2": mean, "mmd2_se": se, "mmd2_draws": [mean] * 5}


CURVE = {
    "source": "moons",
    "n": 1000,
    "rows": [_row(5, 1e-3, 1e-4), _row(10, 1.5e-4, 1e-4), _row(20, -5e-5, 4e-5), _row(5, 2e-3, 3e-4, "euler")],
    "floor": [1e-4, -2e-4, 0.5e-4, -1e-4, 0.0],  # the spread of one draw: 1.2e-4
}


def _traces(fig):
    return {t.name: t for t in fig.data}


def test_the_quality_figure_draws_error_bars_and_a_band_for_noise():
    fig = make_quality_figure([CURVE], [("A", "moons", "ddim", 12, -1e-4), ("B", "moons", "euler", 5, 3e-3)])
    go.Figure(fig.to_dict())  # valid plotly
    t = _traces(fig)
    assert set(t) == {BAND_NAME, FLOOR_NAME, "moons · ddim", "moons · euler", "A: moons · ddim", "B: moons · euler"}
    band_lo, band_hi = min(t[BAND_NAME].y), max(t[BAND_NAME].y)
    centre = math.sqrt(band_lo * band_hi)
    ddim = t["moons · ddim"]
    # resolved: at its mean with its SE; within 2 SE of 0 (1.5e-4 <= 2e-4, and the negative one): in the band
    assert ddim.y[0] == 1e-3 and ddim.y[1] == ddim.y[2] == pytest.approx(centre)
    assert list(ddim.error_y.array) == [1e-4, 0.0, 0.0] and ddim.error_y.visible
    assert list(ddim.marker.symbol) == ["circle", "circle-open", "circle-open"]
    assert "within noise of 0" in ddim.customdata[2][1] and "-5.0e-05 ± 4.0e-05" in ddim.customdata[2][1]
    # the band lies under every resolved error bar; the data-vs-data line (mean -3e-5 ± 5e-5) is in it
    assert band_hi < 1e-3 - 1e-4 and band_hi < 2e-3 - 3e-4
    assert list(t[FLOOR_NAME].y) == pytest.approx([centre, centre])
    # runs are single draws, judged against the spread of one floor draw (1.2e-4): -1e-4 is noise, 3e-3 is not
    assert t["A: moons · ddim"].y == (pytest.approx(centre),) and t["B: moons · euler"].y == (3e-3,)
    assert fig.layout.yaxis.ticktext[0] == "≈ 0" and fig.layout.yaxis.tickvals[0] == pytest.approx(centre)


def test_the_quality_figure_keeps_a_tall_plot_whatever_the_legend():
    many = {**CURVE, "rows": [_row(5, 1e-3, 1e-4, s) for s in ("ddpm", "ddim", "dpmpp_2m", "euler", "heun")]}
    flow = {**many, "source": "checkerboard-flow", "rows": many["rows"][2:]}
    for curves in ([many], [many, flow]):
        layout = make_quality_figure(curves, []).layout
        assert layout.height - layout.margin.t - layout.margin.b >= 300 and PLOT_PX >= 300
    small = make_quality_figure([many], []).layout.height
    assert make_quality_figure([many, flow], []).layout.height > small, "more legend rows, a taller figure"


def test_a_single_draw_curve_without_errors_still_draws():
    old = {"source": "moons", "rows": [_row(5, 1e-3, None), _row(10, -1e-4, None)], "floor": [1e-4]}
    ddim = _traces(make_quality_figure([old], []))["moons · ddim"]
    assert ddim.y[0] == 1e-3 and ddim.y[1] < 1e-3 and list(ddim.error_y.array) == [0.0, 0.0]
    assert "one draw" in ddim.customdata[0][1]


@pytest.mark.parametrize("name", [p for p in list_presets() if preset_spec(p).config["data_shape"] == [2]])
def test_shipped_curves_are_means_of_five_draws_at_the_opening_class(name):
    c = preset_curve(name)
    assert c is not None, f"{name}: run python -m adiff.cli.quality --preset {name}"
    assert c["draws"] >= 5 and 1000 <= c["n"] <= 2000 and c["label"] == "any" and len(c["floor"]) == c["draws"]
    assert {r["nfe"] for r in c["rows"] if r["solver"] != "heun"} == set(nfe_grid(name))
    for r in c["rows"]:
        assert len(r["mmd2_draws"]) == c["draws"] and r["mmd2"] == pytest.approx(sum(r["mmd2_draws"]) / c["draws"])
        assert r["mmd2_se"] > 0
