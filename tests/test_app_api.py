"""The public API through gradio_client against the app launched in-process: every endpoint with valid and invalid
input, streaming endpoints deliver several updates before the last, sessions are isolated, the server survives."""

import json
import time

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from components.player import decode_field, decode_images, decode_points
from tests.app_helpers import guided_inputs, live_app, plot_json, trace

ENDPOINTS = [
    "/schedule_curves",
    "/forward",
    "/generate",
    "/generate_stop",
    "/frame",
    "/compare",
    "/compare_stop",
    "/density",
    "/density_stop",
    "/guided_generate",
    "/guided_stop",
    "/complete",
    "/complete_stop",
    "/adapt",
    "/adapt_stop",
    "/adapt_reset",
    "/train",
    "/train_stop",
    "/reflow",
    "/reflow_stop",
    "/save_model",
    "/load_model",
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with live_app(tmp_path_factory.mktemp("presets"), max_heavy_jobs=2) as served:
        yield served


@pytest.fixture(scope="module")
def client(app):
    return Client(app[1], verbose=False)


def stream(client, *args, api_name):
    """Submit a streaming call; return (every update, the final output)."""
    job = client.submit(*args, api_name=api_name)
    updates = list(job)
    return updates, job.result()


def app_error(call) -> str:
    with pytest.raises(AppError) as info:
        call()
    return str(info.value)


def test_endpoints_are_named_and_documented(client):
    info = client.view_api(print_info=False, return_format="dict")
    names = set(info["named_endpoints"])
    assert set(ENDPOINTS) <= names
    params = [p["parameter_name"] for p in info["named_endpoints"]["/generate"]["parameters"]]
    assert params == ["preset", "sampler", "num_steps", "eta", "seed", "num_samples", "class_label", "cfg_scale"]
    guided = {
        p["parameter_name"]: p.get("parameter_default")
        for p in info["named_endpoints"]["/guided_generate"]["parameters"]
    }
    expected = {  # the names, their order and the defaults the tab opens with (moons)
        "preset": "moons",
        "reward": "distance_to_target",
        "expression": "-((x-1)**2 + (y+0.5)**2)",
        "reward_params": "",
        "guidance_scale": 2.0,
        "guidance_mode": "dps",
        "recurrence": 1,
        "class_label": "any",
        "cfg_scale": 1.0,
        "sampler": "ddim",
        "num_steps": 20,
        "seed": 0,
        "num_samples": 300,
    }
    assert list(guided) == list(expected) and guided == expected


def test_heavy_events_share_one_limited_queue_and_sampling_runs_share_the_engine(app):
    """Training, adaptation and the density map hold one of ``max_heavy_jobs`` slots; sampling runs run many at once (they wait on the
    engine's batched calls, components/context.py ``sampling``)."""
    from components.limits import LIMITS

    demo, _ = app
    fns = {f.api_name: f for f in demo.fns.values()}
    for name in ("adapt", "train", "density"):
        assert fns[name].concurrency_id == "heavy" and fns[name].concurrency_limit == 2
    for name in ("generate", "compare", "guided_generate"):
        assert fns[name].concurrency_id == "sampling" and fns[name].concurrency_limit == LIMITS.sampling_runs
    assert fns["schedule_curves"].concurrency_id == "light"


def test_the_queue_keeps_no_monitoring_table(app, client):
    """Gradio's queue would rebuild a pandas table of its past events after every event (for a monitoring page the
    app does not enable): app.py turns that off, so an event costs the shared CPU only its own work."""
    demo, _ = app
    client.predict(["linear"], 1000, "", api_name="/schedule_curves")
    client.predict(["linear"], 1000, "", api_name="/schedule_curves")
    queue = demo._queue
    assert queue.events_recorded >= 2 and queue.event_count_at_last_cache == 0
    assert queue.cached_event_analytics_summary == {"functions": {}}


def test_schedule_curves(client):
    fig, md, summary = client.predict(["linear", "cosine"], 1000, "", api_name="/schedule_curves")
    d = plot_json(fig)
    assert len(d["data"]) == 8
    assert "0.999 clip" in md and summary["cosine"]["max_beta"] == pytest.approx(0.999)
    assert summary["linear"]["abar_T"] < 1e-3
    _, md, summary = client.predict(["custom"], 100, "0.01, 0.5, 0.8", api_name="/schedule_curves")
    assert "terminal SNR" in md and summary["custom"]["sigma_T"] == pytest.approx(0.8, abs=1e-6)


@pytest.mark.parametrize(
    "args, field",
    [
        ((["linear", "custom"], 100, "0.1, 0.5, 0.3"), "custom_values[2]"),
        ((["linear"], 1, ""), "num_steps"),
        ((["linear"], 20000, ""), "num_steps"),
        ((["quadratic"], 100, ""), "schedules"),
        (([], 100, ""), "schedules"),
    ],
)
def test_schedule_curves_invalid(client, args, field):
    assert app_error(lambda: client.predict(*args, api_name="/schedule_curves")).startswith(field)


def test_forward(client):
    fig, curve, summary, text = client.predict("moons", "linear", 1000, 500, 400, 0, api_name="/forward")
    d = plot_json(fig)
    assert [t["name"] for t in d["data"]] == ["data x₀", "x_t (t = 500)", "flow x_t (t = 0.5)"]  # flow beside VP
    assert len(trace(d, "x_t (t = 500)")["x"]) == 400
    c = plot_json(curve)
    assert c["data"][-1]["x"] == [500, 500]
    assert summary["t"] == 500 and 0 < summary["abar_t"] < 1
    assert text.startswith("At t = 500 of 1000 (linear)") and "mostly noise" in text
    fig, _, summary, _ = client.predict("glyphs", "cosine", 100, 30, 2, 0, api_name="/forward")
    assert all(t["type"] == "heatmap" for t in plot_json(fig)["data"])


@pytest.mark.parametrize(
    "args, field",
    [
        (("moons", "linear", 100, 150, 10, 0), "t"),
        (("swirls", "linear", 100, 10, 10, 0), "dataset"),
        (("moons", "linear", 100, 10, 0, 0), "num_points"),
        (("moons", "quadratic", 100, 10, 10, 0), "schedule"),
        (("moons", "linear", 100, 10, 10, -1), "seed"),
    ],
)
def test_forward_invalid(client, args, field):
    assert app_error(lambda: client.predict(*args, api_name="/forward")).startswith(field)


def test_generate_streams_light_messages_then_the_whole_trajectory(client):
    t0 = time.time()
    job = client.submit("moons", "ddim", 40, 0.0, 3, 200, "any", 1.0, api_name="/generate")
    first = None
    updates = []
    for u in job:
        first = first if first is not None else time.time() - t0
        updates.append(u)
    pointer, text, status, gif, data = job.result()
    assert first < 10  # generous on a loaded CI machine; about 0.2 s here
    live = [u[0] for u in updates if isinstance(u[0], dict) and u[0].get("live")]
    assert live, "no streamed frame"
    # a live message is one frame; only the first carries the static part (panels, layer styles, schedule)
    assert live[0]["seq"] == 0 and "static" in live[0] and all("static" not in m for m in live[1:])
    assert all(m["frames"]["count"] == 1 and m["id"] == pointer["id"] for m in live)
    # the last message points the player at the whole trajectory, sent as a JSON file
    assert pointer == {"v": 1, "id": pointer["id"], "live": False, "file": "trajectory", "count": 41}
    player = json.loads(open(data).read())
    assert player["id"] == pointer["id"]
    assert set(live[0]["frames"]["data"]) == {"x_t", "x0_pred", "eps", "score"}
    assert text.startswith("✓ **done**") and "MMD²" in text and status["status"] == "done"
    # the whole trajectory: 41 frames of 200 points, decodable, ending at t = 0 with the samples
    F = player["frames"]
    assert player["live"] is False and F["count"] == status["num_frames"] == 41 and F["t"][-1] == 0
    x = decode_points(F["data"]["x_t"], (41, 200, 2))
    assert abs(x[-1].mean(0) - status["sample_mean"][:2]).max() < 2e-3
    field = decode_field(F["data"]["score"], F["scale"]["score"], (41, 17 * 17, 2))
    assert abs(field[0]).max() > 0 and abs(field[-1]).max() == 0  # no score at t = 0
    assert "frame 41 of 41" in F["labels"][-1] and "max |s|" in F["labels"][0]
    assert gif is None and "mmd2_to_data" in status  # the GIF is made when asked for:
    (path,) = [client.predict(api_name="/trajectory_gif")]
    from PIL import Image

    with Image.open(path) as im:
        assert path.endswith(".gif") and im.n_frames == 41
    # /frame still draws any stored frame as a plotly figure, for API users
    f, c, s = client.predict(10, api_name="/frame")
    assert s["frame"] == 10 and s["t"] == plot_json(c)["data"][-1]["x"][0] > 0
    assert any(t.get("name") == "score −ε̂/σ_t" for t in plot_json(f)["data"])
    assert app_error(lambda: client.predict(41, api_name="/frame")).startswith("frame_index")


def test_generate_8gaussians_has_the_ideal_model(client):
    _, (_, _, status, _, data) = stream(client, "8gaussians", "ddim", 10, 0.0, 0, 100, "3", 2.0, api_name="/generate")
    player = json.loads(open(data).read())
    assert status["class_label"] == 3 and status["cfg_scale"] == 2.0
    assert {"ideal_x0", "ideal_eps", "ideal_score"} <= set(player["frames"]["data"])
    f, _, _ = client.predict(3, api_name="/frame")
    names = {t.get("name") for t in plot_json(f)["data"]}
    assert {"exact score", "ideal predicted x₀", "ideal ε*"} <= names


def test_generate_glyphs(client):
    updates, (_, _, status, gif, data) = stream(
        client, "glyphs", "ddpm", 12, 0.0, 0, 4, "each", 2.0, api_name="/generate"
    )
    player = json.loads(open(data).read())
    assert len(updates) >= 2 and status["num_samples"] == 4
    spec = player["static"]["layers"]["x_t"]
    assert player["kind"] == "images" and (spec["h"], spec["w"]) == (33, 33)  # 2 x 2 glyphs of 16 with a 1-pixel gap
    x = decode_images(player["frames"]["data"]["x_t"], -1.0, 1.0, (player["frames"]["count"], 33, 33))
    assert np.isnan(x[:, 16, :]).all() and np.nanmax(np.abs(x[-1])) <= 1.0 + 1e-6


@pytest.mark.parametrize(
    "args, field",
    [
        (("moons", "ddim", 40, 0.0, 0, 5000, "any", 1.0), "num_samples"),
        (("moons", "lms", 40, 0.0, 0, 10, "any", 1.0), "sampler"),
        (("moons", "ddim", 40, 1.5, 0, 10, "any", 1.0), "eta"),
        (("moons", "ddim", 4000, 0.0, 0, 10, "any", 1.0), "num_steps"),
        (("moons", "ddim", 40, 0.0, 0, 10, "3", 1.0), "class_label"),
        (("glyphs", "ddim", 10, 0.0, 0, 100, "any", 1.0), "num_samples"),
        (("unicorns", "ddim", 10, 0.0, 0, 10, "any", 1.0), "preset"),
        (("my model", "ddim", 10, 0.0, 0, 10, "any", 1.0), "preset"),
    ],
)
def test_generate_invalid(app, args, field):
    fresh = Client(app[1], verbose=False)  # a session with no trained model
    assert app_error(lambda: fresh.predict(*args, api_name="/generate")).startswith(field)


def test_sessions_are_isolated(app, client):
    demo, url = app
    other = Client(url, verbose=False)
    assert app_error(lambda: other.predict(0, api_name="/frame")).startswith("frame_index: no trajectory yet")
    client.predict(0, api_name="/frame")  # the first client's trajectory is still there
    assert len(demo.adiff_context.store) >= 2


def test_guided_generate(client):
    updates, (fig, text, summary) = stream(client, *guided_inputs(num_samples=150), api_name="/guided_generate")
    assert len(updates) >= 2
    assert summary["guided_mean_reward"] > summary["unguided_mean_reward"]
    assert "target_mean_reward" in summary and summary["versus_target"] in ("over", "under", "on")
    assert "tilted target" in text and ("over-shoots" in text) == (summary["versus_target"] == "over")
    d = plot_json(fig)
    assert sum(t["type"] == "heatmap" for t in d["data"]) == 3  # the reward under all three panels
    _, (_, _, summary) = stream(
        client,
        "moons",
        "expression",
        "-abs(y)",
        "",
        1.0,
        "cheap",
        2,
        "any",
        1.0,
        "ddim",
        10,
        0,
        50,
        api_name="/guided_generate",
    )
    assert summary["formula"] == "r(x, y) = -abs(y)" and summary["recurrence"] == 2
    _, (fig, _, summary) = stream(
        client, "glyphs", "none", "", "", 0.0, "dps", 1, "7", 3.0, "ddim", 8, 0, 4, api_name="/guided_generate"
    )
    assert summary["cfg_scale"] == 3.0 and "CFG w = 3" in plot_json(fig)["layout"]["annotations"][1]["text"]


@pytest.mark.parametrize(
    "args, field",
    [
        (("moons", "expression", "os.system('ls')", "", 1.0, "dps", 1, "any", 1.0, "ddim", 10, 0, 10), "expression"),
        (("moons", "brightness", "", "", 1.0, "dps", 1, "any", 1.0, "ddim", 10, 0, 10), "reward"),
        (("moons", "mode", "", '{"k": 12}', 1.0, "dps", 1, "any", 1.0, "ddim", 10, 0, 10), "reward_params"),
        (("moons", "x_coordinate", "", "", 1e6, "dps", 1, "any", 1.0, "ddim", 10, 0, 10), "guidance_scale"),
        (("moons", "x_coordinate", "", "", 1.0, "magic", 1, "any", 1.0, "ddim", 10, 0, 10), "guidance_mode"),
        (("moons", "x_coordinate", "", "", 1.0, "dps", 50, "any", 1.0, "ddim", 10, 0, 10), "recurrence"),
        (("glyphs", "none", "", "", 1.0, "dps", 1, "any", 1.0, "ddim", 10, 0, 4), "class_label"),
    ],
)
def test_guided_generate_invalid(client, args, field):
    assert app_error(lambda: client.predict(*args, api_name="/guided_generate")).startswith(field)


def test_adapt_streams_and_resets(client):
    updates, (curves, buffer, gallery, before_after, text, status) = stream(
        client, "moons", "x_coordinate", "", "", 3, 1e-3, 32, 100, 0.5, False, 2.0, 0, api_name="/adapt"
    )
    assert len(updates) >= 2  # "preparing", then at most a few updates a second, and the last step
    assert status["status"] == "done" and status["step"] == 3 and status["buffer_size"] > 0
    assert text.startswith("✓ **done**: step 3") and "Mean reward" in text
    d = plot_json(curves)
    assert [t["name"] for t in d["data"]][:2] == ["mean reward", "max reward"] and len(d["data"][0]["x"]) == 3
    b = plot_json(buffer)
    assert b["data"][-1]["marker"]["colorscale"] and gallery == []
    assert "before (base model)" in plot_json(before_after)["layout"]["annotations"][0]["text"]
    # Start again with the same settings continues the same run
    _, (*_, status) = stream(
        client, "moons", "x_coordinate", "", "", 1, 1e-3, 32, 100, 0.5, False, 2.0, 0, api_name="/adapt"
    )
    assert status["step"] == 4
    *_, reset = client.predict(api_name="/adapt_reset")
    assert reset == {"status": "reset", "had_run": True}


def test_adapt_images_fill_the_gallery(client):
    _, (_, _, gallery, _, _, status) = stream(
        client, "glyphs", "brightness", "", "", 1, 1e-3, 8, 50, 0.5, False, 1.0, 0, api_name="/adapt"
    )
    assert status["step"] == 1 and len(gallery) > 0
    assert "r=" in gallery[0]["caption"] and "p=" in gallery[0]["caption"]
    client.predict(api_name="/adapt_reset")


@pytest.mark.parametrize(
    "args, field",
    [
        (("moons", "x_coordinate", "", "", 0, 1e-3, 32, 100, 0.5, False, 2.0, 0), "num_steps"),
        (("moons", "x_coordinate", "", "", 1, 5.0, 32, 100, 0.5, False, 2.0, 0), "learning_rate"),
        (("moons", "x_coordinate", "", "", 1, 1e-3, 32, 100, 0.0, True, 2.0, 0), "replay_share"),
        (("moons", "x_coordinate", "", "", 1, 1e-3, 2, 100, 0.5, False, 2.0, 0), "batch_size"),
        (("moons", "x_coordinate", "", "", 1, 1e-3, 32, 10**6, 0.5, False, 2.0, 0), "buffer_capacity"),
        (("moons", "x_coordinate", "", "", 1, 1e-3, 32, 100, 1.5, False, 2.0, 0), "replay_share"),
        (("moons", "symmetry", "", "", 1, 1e-3, 32, 100, 0.5, False, 2.0, 0), "reward"),
    ],
)
def test_adapt_invalid(client, args, field):
    assert app_error(lambda: client.predict(*args, api_name="/adapt")).startswith(field)


def test_train_save_load(client, tmp_path):
    updates, (loss, samples, film, status) = stream(
        client, "moons", "cosine", 50, "tiny", False, 30, 64, 2e-3, 0, api_name="/train"
    )
    assert len(updates) >= 5 and status["status"] == "done" and status["step"] == 30
    assert trace(plot_json(loss), "batch loss") and trace(plot_json(samples), "model samples")
    # the film: a frame per snapshot (the untrained network, then every step of this 30-step run), steps increasing
    F = film["frames"]
    assert F["t"] == list(range(31)) and F["count"] == 31 == status["film_frames"] and not film["live"]
    assert F["labels"][-1].startswith("step 30 of 30") and film["static"]["schedule"] is None
    field = decode_field(F["data"]["field"], F["scale"]["field"], (31, 17 * 17, 2))
    assert np.abs(field[-1]).max() > 0 and decode_points(F["data"]["samples"], (31, 400, 2)).shape == (31, 400, 2)
    path, info = client.predict(api_name="/save_model")
    assert path.endswith(".safetensors") and info["bytes"] > 1000
    fig, loaded = client.predict(handle_file(path), api_name="/load_model")
    assert loaded["dataset"] == "moons" and loaded["config"]["num_diffusion_steps"] == 50
    _, (_, _, gen_status, *_) = stream(client, "my model", "ddim", 10, 0.0, 0, 20, "any", 1.0, api_name="/generate")
    assert gen_status["status"] == "done" and gen_status["T"] == 50
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    assert app_error(lambda: client.predict(handle_file(str(bad)), api_name="/load_model")).startswith("model_file")
    good = bytearray(open(path, "rb").read())
    good[-5] ^= 0xFF  # one flipped byte in the tensor data
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(bytes(good))
    msg = app_error(lambda: client.predict(handle_file(str(corrupt)), api_name="/load_model"))
    assert msg.startswith("model_file") and "checksum" in msg


def test_six_parallel_trains_and_saves_in_one_session_all_succeed(app):
    """One session's parallel calls: six /train at once each end with a status (a run that a newer one took over
    says "replaced" at the step it got to; the last one adopted is "my model" and finishes), and six /save_model at
    once each get a whole checkpoint from a folder of its own (only the newest delivered folder stays)."""
    from adiff import DiffusionModel

    demo, url = app
    c = Client(url, verbose=False)
    steps = 40
    jobs = [c.submit("moons", "linear", 20, "tiny", False, steps, 32, 2e-3, s, api_name="/train") for s in range(6)]
    statuses = [j.result(timeout=300)[3] for j in jobs]
    assert all(s["status"] in ("done", "replaced") for s in statuses), statuses
    assert any(s["status"] == "done" and s["step"] == steps for s in statuses), statuses
    assert all(s["step"] < steps for s in statuses if s["status"] == "replaced"), statuses
    session = demo.adiff_context.store.peek(c.session_hash)
    assert session.trained.training_step == steps and session.trained_info["steps"] == steps
    saves = [c.submit(api_name="/save_model") for _ in range(6)]
    for job in saves:
        path, info = job.result(timeout=120)
        assert info["bytes"] > 1000 and info["saved"] == f"adiff-moons-{steps}steps.safetensors"
        assert DiffusionModel.load(path, device="cpu").training_step == steps
    folders = [p for p in session.workdir.iterdir() if p.name.startswith("train-")]
    assert len(folders) == 1 and len(list(folders[0].iterdir())) == 1, folders


@pytest.mark.parametrize(
    "args, field",
    [
        (("moons", "linear", 5, "tiny", False, 10, 64, 2e-3, 0), "num_diffusion_steps"),
        (("moons", "linear", 50, "huge", False, 10, 64, 2e-3, 0), "model_size"),
        (("swissroll", "linear", 50, "tiny", True, 10, 64, 2e-3, 0), "conditional"),
        (("moons", "linear", 50, "tiny", False, 10**6, 64, 2e-3, 0), "num_steps"),
        (("moons", "linear", 50, "tiny", False, 10, 64, 1.0, 0), "learning_rate"),
    ],
)
def test_train_invalid(client, args, field):
    assert app_error(lambda: client.predict(*args, api_name="/train")).startswith(field)


def test_reflow_makes_my_model_that_compare_takes_beside_its_source(app):
    """/reflow streams the coupling, then the training; the student is "my model" with moons-flow's data, so Compare
    takes the pair; its one-step MMD² and straightness fall (tiny settings: 400 pairs, 120 steps)."""
    c = Client(app[1], verbose=False)
    updates, (text, loss, status) = stream(c, "moons-flow", 400, 10, 120, 0, api_name="/reflow")
    states = [u[2]["status"] for u in updates]
    assert states[0] == "coupling" and "training" in states and status["status"] == "done", states
    assert "done" in text and trace(plot_json(loss), "batch loss")
    before, after = status["before"], status["after"]
    assert after["straightness"] < before["straightness"] and after["mmd2_1step"][0] < before["mmd2_1step"][0] / 10
    session = app[0].adiff_context.store.peek(c.session_hash)
    assert session.trained_info["data"] == "moons" and session.trained.training_step > 0
    _, (_, _, summary, *_) = stream(
        c, "moons-flow", "euler", 1, "my model", "euler", 1, 0, 200, "any", api_name="/compare"
    )
    assert summary["same_x_T"] is True and summary["b"]["nfe"] == 1, summary


def test_reflow_stop_and_field_named_errors(app):
    c = Client(app[1], verbose=False)
    job = c.submit("moons-flow", 400, 10, 5000, 0, api_name="/reflow")
    while not any(u[2]["status"] == "training" for u in job.outputs()):
        time.sleep(0.2)
    text, stopped = c.predict(api_name="/reflow_stop")
    assert stopped["status"] == "stopped" and "stopped" in text
    final = job.result(timeout=120)[2]
    assert final["status"] == "stopped" and 0 < final["step"] < 5000, final
    for args, field in [
        (("moons", 400, 10, 50, 0), "reflow_source"),  # a VP model: nothing to straighten
        (("glyphs", 400, 10, 50, 0), "reflow_source"),
        (("moons-flow", 10**9, 10, 50, 0), "reflow_pairs"),
        (("moons-flow", 400, 1, 50, 0), "reflow_ode_steps"),
        (("moons-flow", 400, 10, 0, 0), "reflow_steps"),
    ]:
        assert app_error(lambda a=args: c.predict(*a, api_name="/reflow")).startswith(field), args
    fresh = Client(app[1], verbose=False)
    assert app_error(lambda: fresh.predict("my model", 400, 10, 50, 0, api_name="/reflow")).startswith("reflow_source")


def test_save_without_a_model_and_the_server_survives(app):
    fresh = Client(app[1], verbose=False)
    assert app_error(lambda: fresh.predict(api_name="/save_model")).startswith("model")
    fig, _, _ = fresh.predict(["sigmoid"], 50, "", api_name="/schedule_curves")  # still serving
    assert plot_json(fig)["data"]
