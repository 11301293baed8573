"""The compare view through gradio_client against the real app: two choices from the same x_T, both rows streamed,
per-side NFE / MMD² / straightness, the quality-against-NFE figure, and every invalid input named; the reverse tab's
solver menu per process (a flow model samples with its own solvers and shows its velocity field)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import Client

import adiff.presets as presets
from adiff.eval.metrics import StraightnessMeter, path_straightness
from adiff.eval.quality import steps_for_nfe
from components.choices import default_solver, solver_choices, steps_for
from components.context import ModelInfo
from components.player import decode_field, decode_points
from components.summaries import fmt
from tests.app_helpers import plot_json
from tests.test_app_api import app, app_error, client, stream  # noqa: F401  (fixtures)

FLOW = "moons-flow"


def test_compare_same_noise_two_solvers(client):  # noqa: F811
    updates, (pointer, text, summary, data, curve) = stream(
        client, "moons", "ddim", 40, "moons", "dpmpp_2m", 8, 5, 300, "any", api_name="/compare"
    )
    live = [u[0] for u in updates if isinstance(u[0], dict) and u[0].get("live")]
    assert live and "static" in live[0] and all(m["frames"]["count"] == 1 for m in live)
    # both rows stream together: every live message carries both sides' states
    assert all({"a_x_t", "a_x0", "b_x_t", "b_x0"} == set(m["frames"]["data"]) for m in live)
    assert summary["same_x_T"] is True and summary["a"]["nfe"] == 40 and summary["b"]["nfe"] == 8
    player = json.loads(open(data).read())
    F = player["frames"]
    K = F["count"]
    assert pointer["file"] == "compare" and pointer["count"] == K == summary["num_frames"]
    a = decode_points(F["data"]["a_x_t"], (K, 300, 2))
    b = decode_points(F["data"]["b_x_t"], (K, 300, 2))
    assert np.array_equal(a[0], b[0])  # the same x_T on both rows
    assert not np.allclose(a[-1], b[-1], atol=1e-2)  # but different solvers end in different places
    # the straightness reported is that of every step's state (>= 1; a subsampled path can only be shorter)
    for side in ("a", "b"):
        s = summary[side]
        assert s["straightness"] >= 1.0 and s["finite"] and s["mmd2_to_data"] is not None and s["mmd2_se"] > 0
        assert f"{fmt(s['mmd2_to_data'], 2)} ± {fmt(s['mmd2_se'], 2)}" in text  # the table and the words show the SE
    # the frames the player shows are a subsample: by the triangle inequality their path is no longer than every step's
    assert path_straightness(torch.tensor(a)) <= summary["a"]["straightness"] + 1e-3
    assert "straightness" in text and "| **A** | moons | ddim | 40 | 40 |" in text
    fig = plot_json(curve)
    runs = [t for t in fig["data"] if t.get("name", "").startswith(("A:", "B:"))]
    assert len(runs) == 2 and {t["x"][0] for t in runs} == {40, 8}


def test_six_parallel_compares_in_one_session_all_succeed(app):  # noqa: F811
    """One session's parallel compares never read or delete each other's files (each run writes into its own folder;
    only a delivered run's older siblings are removed): six at once, two per seed, all succeed, each answer's file
    holds its own run, and the same seed gives the same pair whichever ran first."""
    c = Client(app[1], verbose=False)
    seeds = [21, 22, 23, 21, 22, 23]
    jobs = [c.submit("moons", "ddim", 10, "moons", "dpmpp_2m", 5, s, 120, "any", api_name="/compare") for s in seeds]
    results = [j.result(timeout=300) for j in jobs]
    finals, ids = {}, set()
    for s, (pointer, text, summary, data, _) in zip(seeds, results):
        assert summary["status"] == "done" and summary["seed"] == s and summary["same_x_T"] is True
        player = json.loads(Path(data).read_text())
        assert player["id"] == pointer["id"] and player["frames"]["count"] == pointer["count"]
        ids.add(pointer["id"])
        frames = {k: player["frames"]["data"][k] for k in ("a_x_t", "b_x_t")}
        assert finals.setdefault(s, frames) == frames
    assert len(ids) == 6  # every run has its own id (and folder)
    assert finals[21] != finals[22]


def test_straightness_meter_equals_path_straightness():
    g = torch.Generator().manual_seed(0)
    path = torch.randn(7, 50, 2, generator=g).cumsum(0)
    m = StraightnessMeter()
    for x in path:
        m.add(x)
    assert m.value == pytest.approx(path_straightness(path), rel=1e-12)
    line = torch.linspace(0, 1, 5)[:, None, None] * torch.ones(5, 3, 2)  # straight lines: exactly 1
    m = StraightnessMeter()
    for x in line:
        m.add(x)
    assert m.value == pytest.approx(1.0)


def test_heun_nfe_budget():
    assert steps_for_nfe("heun", 19, 1000) == 10 and steps_for_nfe("heun", 20, 1000) == 10
    assert steps_for_nfe("ddim", 50, 1000) == 50 and steps_for_nfe("ddpm", 5000, 1000) == 1000


def test_compare_vp_and_flow_models(client):  # noqa: F811
    _, (_, text, summary, data, curve) = stream(
        client, "moons", "euler", 10, FLOW, "euler", 10, 2, 400, "any", api_name="/compare"
    )
    assert summary["same_x_T"] is True
    assert summary["a"]["process"] == "vp" and summary["b"]["process"] == "flow"
    assert summary["b"]["prediction_type"] == "velocity"
    a, b = summary["a"]["straightness"], summary["b"]["straightness"]
    assert a >= 1 and b >= 1 and f"**{'A' if a < b else 'B'}**'s paths are straighter" in text
    labels = json.loads(open(data).read())["frames"]["labels"]
    assert labels[0].startswith("A: t = 1000") and "B: t = 1" in labels[0]


@pytest.mark.parametrize(
    "args, field",
    [
        (("unicorns", "ddim", 10, "moons", "ddim", 10, 0, 10, "any"), "model_a"),
        (("moons", "ddim", 10, "glyphs", "ddim", 10, 0, 10, "any"), "model_b"),
        (("moons", "ddim", 10, "8gaussians", "ddim", 10, 0, 10, "any"), "model_b"),
        (("moons", "lms", 10, "moons", "ddim", 10, 0, 10, "any"), "solver_a"),
        (("moons", "ddim", 10, FLOW, "ddim", 10, 0, 10, "any"), "solver_b"),  # DDIM does not serve a flow
        (("moons", "ddim", 0, "moons", "ddim", 10, 0, 10, "any"), "steps_a"),
        (("moons", "ddim", 10, "moons", "ddpm", 1001, 0, 10, "any"), "steps_b"),
        (("moons", "ddim", 10, "moons", "ddim", 10, -1, 10, "any"), "seed"),
        (("moons", "ddim", 10, "moons", "ddim", 10, 0, 0, "any"), "num_samples"),
        (("moons", "ddim", 10, "moons", "ddim", 10, 0, 10, "3"), "class_label"),
        (("my model", "ddim", 10, "moons", "ddim", 10, 0, 10, "any"), "model_a"),
    ],
)
def test_compare_invalid(app, args, field):  # noqa: F811
    fresh = Client(app[1], verbose=False)
    assert app_error(lambda: fresh.predict(*args, api_name="/compare")).startswith(field)


def test_shipped_curves_cover_every_solver():
    for name, spec in presets.PRESETS.items():
        if spec.config.get("data_shape") != [2] or not presets.preset_path(name).is_file():
            continue
        c = presets.preset_curve(name)
        assert c is not None, f"{name}: run python -m adiff.cli.quality --preset {name}"
        model = presets.load_preset(name, "cpu")
        assert {r["solver"] for r in c["rows"]} == {n for _, n in solver_choices(model)}
        assert c["process"] == model.process.name and all(np.isfinite(r["mmd2"]) for r in c["rows"])


def test_solver_menu_follows_the_process():
    vp, flow = presets.load_preset("moons", "cpu"), presets.load_preset(FLOW, "cpu")
    assert [n for _, n in solver_choices(vp)] == ["ddpm", "ddim", "dpmpp_2m", "euler", "heun"]
    assert [n for _, n in solver_choices(flow)] == ["dpmpp_2m", "euler", "heun"]
    mine = ModelInfo("my model", "moons", "points", False, None, {}, "")
    for model in (vp, flow):
        name, steps = default_solver(model, mine)  # no preset choice: a few-step solver, <= 20 NFE
        assert name != "ddpm" and steps <= 20 and steps <= model.max_sampling_steps
        for _, n in solver_choices(model):
            assert 1 <= steps_for(model, n) <= model.max_sampling_steps


def test_generate_flow_preset_shows_its_velocity(client):  # noqa: F811
    _, (pointer, text, status, gif, data) = stream(
        client, FLOW, "heun", 6, 0.0, 1, 150, "any", 1.0, api_name="/generate"
    )
    assert status["process"] == "flow" and status["nfe"] == 11
    player = json.loads(open(data).read())
    F, static = player["frames"], player["static"]
    K = F["count"]
    assert static["schedule"]["name"] == "rectified flow" and static["schedule"]["T"] == 1
    assert F["t"][0] == 1 and F["t"][-1] == 0 and 0 < F["t"][1] < 1  # a flow's continuous time
    assert F["a"] == pytest.approx([1 - t for t in F["t"]], abs=1e-3)  # the schedule strip's α_t = 1 − t
    v = decode_field(F["data"]["velocity"], F["scale"]["velocity"], (K, 17 * 17, 2))
    assert abs(v[0]).max() > 0 and abs(v[-1]).max() == 0
    assert any("velocity" in p["title"] for row in static["panels"] for p in row)
    assert app_error(lambda: client.predict(FLOW, "ddim", 10, 0.0, 0, 10, "any", 1.0, api_name="/generate")).startswith(
        "sampler"
    )


@pytest.mark.parametrize("process, solver, expected", [("vp", "ddim", 1.0), ("flow", "euler", None)])
def test_straightness_of_exact_gaussian_paths(process, solver, expected):
    """Data N(0, s² I): every probability-flow path is radial, x_t = c(t) x_T with c² = α² s² + σ².  VP: c falls
    monotonically from 1 to s, a straight run (straightness 1).  The flow: c² = (1 − t)² s² + t² dips to s² / (1 + s²)
    at t = s² / (1 + s²) before it ends at s, so the path overshoots inwards: straightness ((1 − m) + (s − m)) / (1 − s)
    with m = s / √(1 + s²), 1.211 for s = 0.5.  (The flow's training paths are straight; its sampled paths are not.)"""
    from adiff.data.gmm import GaussianMixture
    from adiff.diffusion import Predictor, make_process
    from adiff.samplers import sample_progressive

    s = 0.5
    g = GaussianMixture(
        [1.0], torch.zeros(1, 2, dtype=torch.float64), (s * s * torch.eye(2, dtype=torch.float64))[None]
    )
    proc = make_process(name=process, **({"schedule": "cosine", "num_steps": 1000} if process == "vp" else {}))
    pred = Predictor(g.model_fn(proc, "sample"), proc, "sample")
    recs = list(
        sample_progressive(
            pred, proc, (500, 2), sampler=solver, num_steps=400, generator=torch.Generator().manual_seed(0)
        )
    )
    path = torch.stack([r.x_t for r in recs] + [recs[-1].x_prev]).double()
    m = s / (1 + s * s) ** 0.5
    want = expected if expected is not None else ((1 - m) + (s - m)) / (1 - s)
    assert path_straightness(path) == pytest.approx(want, abs=5e-3)
