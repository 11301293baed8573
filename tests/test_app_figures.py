"""The pure figure builders: traces, colours, ranges, hover text, and plotly's own validation."""

import json
import math

import plotly.graph_objects as go
import pytest

from components import figures as F
from components.adaptation import view as AV
from components.figure_json import FigureJSON
from components.figures import COLORS, SCHEDULE_COLORS
from components.forward.view import make_forward_figure
from components.reward_figures import make_guidance_figure
from components.train import figures as TF


def valid(fig: FigureJSON) -> dict:
    """The builders skip plotly's (slow) validation and serialisation: re-validate here, check the JSON the page gets
    (orjson's, of the builder's dicts) is what plotly writes for the validated figure, and that it is list-based."""
    assert isinstance(fig, FigureJSON)
    spec = fig._spec  # the builder's dicts, before they are written (then dropped)
    plotly_text = go.Figure(spec["data"], spec["layout"], _validate=False).to_json()
    text = fig.to_json()
    assert "bdata" not in text
    d = json.loads(text)
    assert d == json.loads(plotly_text)
    go.Figure(d)  # raises on any invalid property
    return d


def pts(n=5, offset=0.0):
    return {"x": [offset + i * 0.1 for i in range(n)], "y": [-offset - i * 0.1 for i in range(n)]}


def curve(name="linear", T=10):
    t = list(range(1, T + 1))
    abar = [1 - k / (T + 1) for k in t]
    return {
        "name": name,
        "T": T,
        "t": t,
        "abar": abar,
        "noise": [math.sqrt(1 - a) for a in abar],
        "alpha": [math.sqrt(a) for a in abar],
        "u": [k / T for k in t],
        "beta": [0.01 * k for k in t],
        "log_snr": [math.log(a / (1 - a)) for a in abar],
    }


def test_one_colour_per_quantity_and_distinct():
    keys = ["data", "x_t", "x0_pred", "eps", "score", "velocity", "ideal", "base", "steered", "target"]
    assert len({COLORS[k] for k in keys}) == len(keys)
    assert len(set(SCHEDULE_COLORS.values())) == len(SCHEDULE_COLORS) == 5  # four VP schedules and the rectified flow
    assert not set(SCHEDULE_COLORS.values()) & {COLORS[k] for k in keys}


def test_message_figure_says_something():
    d = valid(F.make_message_figure("Press Generate"))
    assert d["layout"]["annotations"][0]["text"] == "Press Generate"
    assert d["data"] == []


def test_schedule_figure_overlays_schedules_in_their_colours():
    fig = F.make_schedule_figure([curve("linear"), curve("cosine")])
    d = valid(fig)
    assert len(d["data"]) == 8  # 4 quantities x 2 schedules
    for tr in d["data"]:
        assert tr["line"]["color"] == SCHEDULE_COLORS[tr["name"]]
        assert "t/T = %{x:.3f}" in tr["hovertemplate"] and "t = %{customdata}" in tr["hovertemplate"]
        assert tr["x"][0] == 0.1 and tr["x"][-1] == 1.0  # the shared normalised time axis
    assert sum(tr["showlegend"] for tr in d["data"]) == 2  # one legend entry per schedule
    titles = [a["text"] for a in d["layout"]["annotations"]]
    assert any("ᾱ_t" in s for s in titles) and any("log-SNR" in s for s in titles) and any("α" in s for s in titles)
    assert d["layout"]["yaxis3"]["type"] == "log"  # β spans decades
    assert d["layout"]["yaxis"]["range"] == [-0.03, 1.03]
    assert d["layout"]["font"]["size"] >= 16  # readable on a projector


def test_schedule_figure_draws_the_flow_beside_vp_on_the_shared_time_axis():
    from components.curves import flow_curve

    d = valid(F.make_schedule_figure([curve("linear"), {**flow_curve(1.0, 100), "key": "flow"}]))
    flow = [tr for tr in d["data"] if tr["name"] == "flow"]
    assert [tr["xaxis"] for tr in flow] == ["x", "x2", "x4"]  # α, σ, log-SNR: a flow has no β_t
    assert all(tr["line"]["color"] == SCHEDULE_COLORS["flow"] and tr["x"][0] == 0 and tr["x"][-1] == 1 for tr in flow)
    alpha, sigma, log_snr = flow
    assert alpha["y"][50] == 0.5 and sigma["y"][50] == 0.5 and log_snr["y"][50] == 0.0
    assert log_snr["y"][0] is None and log_snr["y"][-1] is None  # ±inf at t = 0 and 1: gaps, not fake numbers
    assert "t = %{x:.3f}" in alpha["hovertemplate"]
    shifted = valid(F.make_schedule_figure([{**flow_curve(3.0, 100, "flow, shift 3"), "key": "flow"}]))["data"]
    assert (
        shifted[0]["name"] == "flow, shift 3" and "u = %{x:.3f}, t = %{customdata:.3f}" in shifted[0]["hovertemplate"]
    )
    assert shifted[1]["customdata"][50] == 0.75  # u = 1/2 -> t = 3 * 0.5 / (1 + 2 * 0.5)


def test_process_marker_figure_marks_vp_and_flow_at_the_same_slider_position():
    from components.curves import flow_curve

    vp = {**curve(), "key": "linear", "alpha_at": 0.6, "noise_at": 0.8}
    fl = {**flow_curve(1.0, 10), "name": "flow", "key": "flow", "alpha_at": 0.6, "noise_at": 0.4}
    d = valid(F.make_process_marker_figure([vp, fl], 4, 10))
    names = [tr["name"] for tr in d["data"]]
    assert names[:2] == ["linear: α_t (signal)", "linear: σ_t (noise)"] and names[2] == "t = 4"
    flow_alpha = d["data"][3]
    assert (
        flow_alpha["x"][-1] == 10 and flow_alpha["line"]["color"] == SCHEDULE_COLORS["flow"]
    )  # t in [0, 1] drawn at t·T
    assert d["data"][-1]["y"] == [0.6, 0.8] and d["data"][-2]["y"] == [0.6, 0.4]  # VP's marker last
    assert d["data"][-1]["x"] == [4, 4] and "α=0.600" in d["data"][-1]["text"]


def test_schedule_figure_empty():
    assert valid(F.make_schedule_figure([]))["layout"]["annotations"][0]["text"].startswith("Pick")


def test_marker_figure_marks_t_in_the_x_t_colour():
    c = {**curve(), "abar_at": 0.5, "noise_at": math.sqrt(0.5)}
    d = valid(F.make_schedule_marker_figure(c, 4))
    marker = d["data"][-1]
    assert marker["x"] == [4, 4] and marker["y"] == [0.5, math.sqrt(0.5)]
    assert marker["marker"]["color"] == COLORS["x_t"]
    vline = d["data"][2]
    assert vline["x"] == [4, 4] and vline["line"]["color"] == COLORS["x_t"]
    assert d["data"][0]["line"]["color"] == SCHEDULE_COLORS["linear"]
    assert "t = 4 of 10" in d["layout"]["title"]["text"]


def test_forward_points_and_density():
    data = {
        "kind": "points",
        "t": 7,
        "T": 10,
        "abar": 0.3,
        "sigma": 0.83,
        "data": pts(),
        "x_t": pts(5, 1.0),
        "density": {"x": [0.0, 1.0], "y": [0.0, 1.0], "z": [[0.0, 1.0], [1.0, 2.0]]},
        "range": (-3.5, 3.5),
    }
    d = valid(make_forward_figure(data))
    kinds = [(t["type"], t["name"]) for t in d["data"]]
    assert kinds[0] == ("scatter", "data x₀") and kinds[1][0] == "contour" and kinds[2][1] == "x_t (t = 7)"
    assert d["data"][0]["marker"]["color"] == COLORS["data"]
    assert d["data"][2]["marker"]["color"] == COLORS["x_t"]
    assert d["data"][2]["xaxis"] == "x2"
    assert d["layout"]["xaxis"]["range"] == [-3.5, 3.5] and d["layout"]["yaxis2"]["scaleanchor"] == "x2"


def test_forward_images_highlights_the_chosen_t():
    cols = [{"t": s, "z": [[-1.0, 1.0], [None, 0.0]], "selected": s == 5} for s in (0, 5, 10)]
    d = valid(make_forward_figure({"kind": "images", "t": 5, "T": 10, "columns": cols}))
    assert [t["type"] for t in d["data"]] == ["heatmap"] * 3
    ann = d["layout"]["annotations"]
    assert ann[1]["font"]["color"] == COLORS["x_t"] and "<b>" in ann[1]["text"]
    assert d["layout"]["yaxis"]["autorange"] == "reversed"  # images are drawn top-down


def frame_points(ideal=True, score=True):
    field = {
        "x": [0.0, 1.0, 0.0, 1.0],
        "y": [0.0, 0.0, 1.0, 1.0],
        "u": [1.0, 0.0, -1.0, 0.0],
        "v": [0.0, 1.0, 0.0, None],
    }
    f = {
        "kind": "points",
        "t": 500,
        "index": 3,
        "num_frames": 10,
        "x_t": pts(),
        "x0_pred": pts(),
        "eps": pts(),
        "paths": [pts(3)],
        "range": (-3.5, 3.5),
    }
    if score:
        f["score"] = field
    if ideal:
        f["ideal"] = {"x0_pred": pts(), "eps": pts(), "score": field}
    return f


def test_frame_figure_learned_and_ideal_rows():
    d = valid(F.make_frame_figure(frame_points()))
    axes = {t["xaxis"] for t in d["data"]}
    assert axes == {"x", "x2", "x3", "x4", "x5", "x6"}  # 2 rows x 3 panels
    by_name = {t["name"]: t for t in d["data"]}
    assert by_name["x_t"]["marker"]["color"] == COLORS["x_t"]
    assert by_name["predicted x₀"]["marker"]["color"] == COLORS["x0_pred"]
    assert by_name["predicted noise ε̂"]["marker"]["color"] == COLORS["eps"]
    assert by_name["ideal predicted x₀"]["marker"]["color"] == COLORS["ideal"]
    field = next(t for t in d["data"] if t["name"] == "score −ε̂/σ_t" and t["mode"] == "lines")
    assert field["line"]["color"] == COLORS["score"] and field["xaxis"] == "x"
    assert None in field["x"]  # segments separated by gaps
    # 3 arrows (the 4th vector is not finite): 7 entries each (shaft, gap, head, gap)
    assert len(field["x"]) == 3 * 7
    assert "t = 500" in d["layout"]["title"]["text"] and "frame 4 of 10" in d["layout"]["title"]["text"]
    assert d["layout"]["height"] > 900


def test_frame_figure_without_ideal_or_field():
    d = valid(F.make_frame_figure(frame_points(ideal=False, score=False)))
    assert {t["xaxis"] for t in d["data"]} == {"x", "x2", "x3"}
    assert any(t["name"] == "particle paths" for t in d["data"])


def test_frame_figure_images():
    z = [[-1.0, 0.5], [1.0, None]]
    d = valid(
        F.make_frame_figure({"kind": "images", "t": 10, "index": 0, "num_frames": 2, "x_t": z, "x0_pred": z, "eps": z})
    )
    assert [t["type"] for t in d["data"]] == ["heatmap"] * 3
    assert d["data"][2]["colorscale"] == F.EPS_COLORSCALE or d["data"][2]["zmin"] == -3.0
    assert [a["font"]["color"] for a in d["layout"]["annotations"]] == [COLORS["x_t"], COLORS["x0_pred"], COLORS["eps"]]


def test_guidance_figure_points_reward_heatmap_and_outside_count():
    grid = {"x": [0.0, 1.0], "y": [0.0, 1.0], "z": [[0.0, 1.0], [1.0, 2.0]]}
    far = {"x": [0.0, 10.0], "y": [0.0, 0.0]}
    data = {
        "kind": "points",
        "reward": grid,
        "range": (-3.5, 3.5),
        "title": "t",
        "panels": [
            {"key": "base", "title": "unguided", "points": pts(), "mean_reward": 0.25},
            {"key": "steered", "title": "guided", "points": far, "mean_reward": 1.5},
            {"key": "target", "title": "target", "points": pts(), "mean_reward": 1.0},
        ],
    }
    d = valid(make_guidance_figure(data))
    heat = [t for t in d["data"] if t["type"] == "heatmap"]
    assert len(heat) == 3 and heat[0]["colorscale"] == [list(c) for c in F.REWARD_COLORSCALE]
    assert sum(bool(t["showscale"]) for t in heat) == 1
    sc = [t for t in d["data"] if t["type"] == "scatter"]
    assert [t["marker"]["color"] for t in sc] == [COLORS["base"], COLORS["steered"], COLORS["target"]]
    titles = [a["text"] for a in d["layout"]["annotations"]]
    assert "mean reward 0.25" in titles[0] and "mean reward 1.5" in titles[1]
    assert "1 of 2 outside the view" in titles[1] and "outside" not in titles[0]


def test_guidance_figure_images():
    z = [[-1.0, 1.0]]
    data = {
        "kind": "images",
        "panels": [
            {"key": "base", "title": "a", "z": z, "mean_reward": None},
            {"key": "steered", "title": "b", "z": z, "mean_reward": -0.5},
        ],
    }
    d = valid(make_guidance_figure(data))
    assert len(d["data"]) == 2 and "mean reward -0.5" in d["layout"]["annotations"][1]["text"]


def test_adaptation_curves():
    assert valid(AV.make_adaptation_figure({}))["data"] == []
    h = {
        "step": [1, 2],
        "reward_mean": [0.1, 0.2],
        "reward_max": [1.0, 1.2],
        "loss": [0.3, 0.2],
        "distance_to_data": [0.0, 0.01],
        "distance_to_target": [0.2, 0.1],
    }
    d = valid(AV.make_adaptation_figure(h))
    by = {t["name"]: t for t in d["data"]}
    assert by["mean reward"]["y"] == [0.1, 0.2] and by["mean reward"]["line"]["color"] == COLORS["reward"]
    assert by["max reward"]["line"]["dash"] == "dot"
    assert by["loss"]["xaxis"] == "x2" and by["to the data"]["xaxis"] == "x3"


def test_buffer_figure_colours_by_priority():
    assert valid(AV.make_buffer_figure({"points": {"x": [], "y": []}, "priority": [], "reward": []}))["data"] == []
    d = valid(
        AV.make_buffer_figure(
            {
                "points": pts(3),
                "priority": [0.5, 0.3, 0.2],
                "reward": [3.0, 2.0, 1.0],
                "range": (-3.5, 3.5),
                "capacity": 10,
                "size": 5,
            }
        )
    )
    tr = d["data"][-1]
    assert tr["marker"]["color"] == [0.5, 0.3, 0.2] and tr["marker"]["colorscale"]
    assert tr["customdata"][0] == [3.0, 0.5] and "priority" in tr["hovertemplate"]
    assert "3 best of 5" in d["layout"]["title"]["text"] and "capacity 10" in d["layout"]["title"]["text"]


def test_loss_and_samples():
    d = valid(TF.make_loss_figure({"step": [1, 2], "loss": [1.0, 0.5], "loss_smooth": [1.0, 0.8]}))
    assert [t["name"] for t in d["data"]] == ["batch loss", "smoothed"]
    assert all(t["line"]["color"] == COLORS["loss"] for t in d["data"])
    d = valid(TF.make_samples_figure({"kind": "points", "points": pts(), "data": pts(), "title": "s"}))
    assert [t["marker"]["color"] for t in d["data"]] == [COLORS["data"], COLORS["base"]]
    d = valid(TF.make_samples_figure({"kind": "images", "z": [[0.0]], "title": "s"}))
    assert d["data"][0]["type"] == "heatmap"


@pytest.mark.parametrize("n", [1, 17])
def test_arrows_fit_the_grid(n):
    xs = [i * 0.4 for i in range(n * n)]
    field = {"x": xs, "y": xs, "u": [3.0] * (n * n), "v": [4.0] * (n * n)}
    lx, ly, mags = F._arrows(field, (-3.5, 3.5))
    assert mags[0] == 5.0
    spacing = 7.0 / max(2, n)
    assert abs((lx[1] - lx[0]) ** 2 + (ly[1] - ly[0]) ** 2 - (0.9 * spacing) ** 2) < 1e-3


def test_figure_json_read_while_another_thread_writes_it():
    """A figure shared by sessions (a placeholder) is written on first use, maybe by two threads at once.  The
    interleaving that matters, made to happen here: this reader finds no text yet, and before it looks at the dicts
    the other thread has set the text and dropped them; the reader must return that text, not write "null"."""
    written = FigureJSON(spec={"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4]}], "layout": {}}).to_json()

    class Interleaved(FigureJSON):
        def __init__(self):
            self.__dict__.update(first=True, text=None)
            super().__init__(spec={"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4]}], "layout": {}})

        @property
        def _text(self):
            if self.__dict__["first"]:  # the first look finds nothing written ...
                self.__dict__["first"] = False
                self.__dict__["text"], self._spec = written, None  # ... and the other thread finishes meanwhile
                return None
            return self.__dict__["text"]

        @_text.setter
        def _text(self, value):
            self.__dict__["text"] = value

    assert Interleaved().to_json() == written


def test_figure_json_falls_back_to_plotly_for_what_orjson_cannot_write():
    from decimal import Decimal

    spec = {"data": [{"type": "scatter", "x": [Decimal("1.5"), 2], "y": [float("nan"), 1.0]}], "layout": {}}
    plotly_text = go.Figure(spec["data"], spec["layout"], _validate=False).to_json()
    assert json.loads(FigureJSON(spec=spec).to_json()) == json.loads(plotly_text)
    assert json.loads(plotly_text)["data"][0]["x"] == [1.5, 2] and json.loads(plotly_text)["data"][0]["y"][0] is None
