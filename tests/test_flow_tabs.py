"""Rectified flow beside VP in the Schedules, Forward and Train tabs, through gradio_client against the app launched
in-process: the flow curves and their log-SNR, the flow path from the same x0 and noise as the VP path, a flow model
trained in the Train tab that then samples as "my model", and bad process / prediction-type pairs named by field."""

import math

import numpy as np
import pytest
from gradio_client import Client, handle_file

from adiff import DiffusionModel
from components.train import handlers as train_handlers
from components.train import view as train_view
from tests.app_helpers import plot_json, trace
from tests.test_app_api import app, app_error  # noqa: F401  (the module-scoped app fixture)


@pytest.fixture(scope="module")
def client(app):  # noqa: F811
    return Client(app[1], verbose=False)  # one session: the model trained here is its 'my model'


def panels(fig: dict, name: str) -> dict:
    """A schedule's traces by panel: {"alpha", "sigma", "beta", "log_snr"} -> (x, y) as float arrays (None -> nan)."""
    keys = {"x": "alpha", "x2": "sigma", "x3": "beta", "x4": "log_snr"}
    out = {}
    for tr in fig["data"]:
        if tr["name"] == name:
            out[keys[tr["xaxis"]]] = (np.array(tr["x"], float), np.array([np.nan if v is None else v for v in tr["y"]]))
    return out


# ---------------------------------------------------------------------------------------------- schedules
def test_schedule_curves_draw_the_flow_beside_vp_on_one_time_axis(client):
    fig, md, summary = client.predict(["linear", "cosine", "flow"], 1000, "", 1.0, api_name="/schedule_curves")
    d = plot_json(fig)
    flow, linear = panels(d, "flow"), panels(d, "linear")
    assert set(flow) == {"alpha", "sigma", "log_snr"}  # the flow has no β_t
    (u, a), (_, s) = flow["alpha"], flow["sigma"]
    assert u[0] == 0 and u[-1] == 1 and np.all(np.diff(u) > 0)
    assert np.allclose(a + s, 1.0, atol=1e-6)  # α + σ = 1 ...
    assert (a**2 + s**2).min() == pytest.approx(0.5, abs=1e-6)  # ... but α² + σ² is not 1: ½ at t = ½
    assert np.allclose(s, u, atol=1e-6)  # σ(t) = t
    x, lsnr = flow["log_snr"]
    for t in (0.1, 0.25, 0.5, 0.75, 0.9):
        i = int(np.argmin(abs(x - t)))
        assert x[i] == pytest.approx(t) and lsnr[i] == pytest.approx(2 * math.log((1 - t) / t), abs=1e-3)
    assert np.isnan(lsnr[0]) and np.isnan(lsnr[-1])  # ±∞ at t = 0 and 1 are gaps
    (vu, va), (_, vs) = linear["alpha"], linear["sigma"]
    assert vu[0] == pytest.approx(1e-3) and vu[-1] == 1.0  # t/T, the same axis
    assert np.allclose(va**2 + vs**2, 1.0, atol=2e-5)  # VP is variance preserving
    # The numbers in words and in the summary; the VP fields of before are still there.
    assert "α + σ = 1" in md
    assert summary["flow"]["snr_one_at"] == 0.5 and summary["flow"]["min_alpha2_plus_sigma2"] == pytest.approx(0.5)
    assert summary["flow"]["log_snr_at"]["0.1"] == pytest.approx(2 * math.log(9))
    assert summary["linear"]["abar_T"] < 1e-3 and 0.2 < summary["linear"]["snr_one_at"] < 0.3
    assert summary["cosine"]["snr_one_at"] == pytest.approx(0.5, abs=0.01)


def test_schedule_curves_flow_shift_and_the_old_three_argument_call(client):
    fig, md, summary = client.predict(["flow"], 1000, "", 3.0, api_name="/schedule_curves")
    flow = panels(plot_json(fig), "flow, shift 3")
    x, lsnr = flow["log_snr"]
    for u in (0.2, 0.5, 0.8):  # t = 3u / (1 + 2u): log-SNR = 2 log((1 - u) / u) - 2 log 3 (Esser et al. 2024)
        i = int(np.argmin(abs(x - u)))
        assert lsnr[i] == pytest.approx(2 * math.log((1 - u) / u) - 2 * math.log(3), abs=1e-3)
    assert summary["flow"]["shift"] == 3.0 and summary["flow"]["snr_one_at"] == pytest.approx(0.25)
    assert "shift 3" in md
    fig, _, summary = client.predict(["linear", "cosine"], 1000, "", api_name="/schedule_curves")  # as before
    assert len(plot_json(fig)["data"]) == 8 and "flow" not in summary
    msg = app_error(lambda: client.predict(["flow"], 1000, "", 50.0, api_name="/schedule_curves"))
    assert msg.startswith("flow_shift")


# ---------------------------------------------------------------------------------------------- forward
def test_forward_shows_the_flow_path_from_the_same_x0_and_noise(client):
    fig, curve, summary, text = client.predict("moons", "linear", 1000, 300, 400, 0, api_name="/forward")
    d = plot_json(fig)
    assert [t["name"] for t in d["data"]] == ["data x₀", "x_t (t = 300)", "flow x_t (t = 0.3)"]
    x0, x_vp, x_flow = (
        np.array([trace(d, name)["x"], trace(d, name)["y"]]).T
        for name in ("data x₀", "x_t (t = 300)", "flow x_t (t = 0.3)")
    )
    a, s = math.sqrt(summary["abar_t"]), summary["sigma_t"]
    assert summary["alpha_t"] == pytest.approx(a)
    eps = (x_vp - a * x0) / s  # the noise the VP cloud used
    assert abs(eps.std() - 1) < 0.1
    assert np.allclose(x_flow, 0.7 * x0 + 0.3 * eps, atol=2e-3)  # x_t = (1 - t) x0 + t eps, the same x0 and eps
    f = summary["flow"]
    assert f["t"] == 0.3 and f["alpha_t"] == pytest.approx(0.7) and f["sigma_t"] == pytest.approx(0.3)
    assert "Rectified flow at t = 0.3" in text
    c = plot_json(curve)
    markers = [t for t in c["data"] if t["mode"] == "markers+text"]
    assert [m["name"] for m in markers] == ["flow at t", "linear at t"]  # VP's marker last, as before
    assert markers[0]["x"] == [300, 300] and markers[0]["y"] == pytest.approx([0.7, 0.3])
    assert markers[1]["x"] == [300, 300] and markers[1]["y"] == pytest.approx([a, s], abs=1e-6)
    fig, _, summary, _ = client.predict("moons", "linear", 1000, 300, 400, 0, False, api_name="/forward")
    assert len(plot_json(fig)["data"]) == 2 and "flow" not in summary
    fig, _, summary, _ = client.predict("8gaussians", "cosine", 100, 50, 300, 1, True, api_name="/forward")
    names = [t["name"] for t in plot_json(fig)["data"]]
    assert names.count("exact log q(x_t)") == 2  # the flow's marginal is a mixture too, drawn exactly
    fig, _, summary, _ = client.predict("glyphs", "linear", 100, 30, 2, 0, True, api_name="/forward")
    assert "flow" not in summary  # 2-D sets only


# ---------------------------------------------------------------------------------------------- train
def test_schedule_note_and_prediction_choices():
    from adiff.diffusion.schedules import make_schedule

    note = train_view.schedule_note("vp", "linear", 50)
    root = math.sqrt(float(make_schedule("linear", 50).alphas_cumprod[-1]))  # β from 0.002 to 0.4 at T = 50
    assert root < 0.01 and f"√ᾱ_T = {root:.2g}" in note and "practically pure noise" in note
    assert "from 0.002 to 0.4" in note and "rescaled by 1000/T" in note and "would be 0.78" in note  # Ho et al.'s range
    assert "rescaled by 1000/T." in train_view.schedule_note("vp", "linear", 1000)  # no 'unscaled' aside at T = 1000
    assert "only T = 20 steps" in train_view.schedule_note("vp", "cosine", 20)
    assert train_view.schedule_note("vp", "linear", 5).startswith("✗ num_diffusion_steps")
    assert "no T and no schedule" in train_view.schedule_note("flow", "linear", 5)
    up = train_view.prediction_choices("flow", "epsilon")
    assert [v for _, v in up["choices"]] == ["velocity", "sample"] and up["value"] == "velocity"
    up = train_view.prediction_choices("vp", "v_prediction")
    assert [v for _, v in up["choices"]] == ["epsilon", "sample", "v_prediction"] and up["value"] == "v_prediction"
    cfg = train_handlers.model_config(
        "moons", "linear", None, "tiny", False, "cpu", process="flow", prediction_type="sample"
    )
    model = DiffusionModel(cfg)
    assert model.process.name == "flow" and model.cfg.diffusion.prediction_type == "sample"
    assert model.num_diffusion_steps is None


def test_a_flow_model_trained_in_the_train_tab_samples_as_my_model(client, tmp_path):
    job = client.submit("moons", "linear", 1000, "tiny", False, 40, 64, 2e-3, 0, "flow", "velocity", api_name="/train")
    updates = list(job)
    loss, samples, film, status = job.result()
    assert len(updates) >= 3 and status["status"] == "done" and status["process"] == "flow"
    assert "velocity" in film["static"]["panels"][0][0]["title"]  # the film draws a flow's velocity field
    assert status["prediction_type"] == "velocity"
    d = plot_json(loss)
    assert d["layout"]["yaxis"]["title"]["text"] == "velocity MSE" and "(ε − x₀)" in d["layout"]["title"]["text"]
    assert "(dpmpp_2m 25, seed 1234)" in plot_json(samples)["layout"]["title"]["text"]
    job = client.submit("my model", "euler", 10, 0.0, 0, 200, "any", 1.0, api_name="/generate")
    list(job)
    _, _, gen = job.result()[:3]
    assert gen["status"] == "done" and gen["sampler"] == "euler" and gen["num_frames"] == 11
    assert 0.3 < gen["sample_std"] < 3 and gen["mmd2_to_data"] is not None
    path, _ = client.predict(api_name="/save_model")
    _, loaded = client.predict(handle_file(path), api_name="/load_model")
    assert loaded["config"]["process"] == "flow" and loaded["config"]["num_diffusion_steps"] is None


@pytest.mark.parametrize(
    "process, prediction, field",
    [
        ("vp", "velocity", "prediction_type"),
        ("flow", "epsilon", "prediction_type"),
        ("flow", "v_prediction", "prediction_type"),
        ("flow", "banana", "prediction_type"),
        ("sde", "epsilon", "process"),
    ],
)
def test_a_prediction_type_the_process_cannot_take_names_the_field(client, process, prediction, field):
    args = ("moons", "linear", 50, "tiny", False, 5, 32, 2e-3, 0, process, prediction)
    msg = app_error(lambda: client.predict(*args, api_name="/train"))
    assert msg.startswith(field), msg
    if field == "prediction_type" and prediction != "banana":
        assert f"{process} process" in msg and repr(prediction) in msg
