"""Several people at once, through gradio_client against the app launched in-process (module-scoped):

- two clients adapting at the same time with opposite rewards never see each other's buffer or model;
- 20 concurrent /generate calls (20 sessions) all succeed;
- for every endpoint, an invalid payload returns an error naming the field, and the next valid call still succeeds.
"""

import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from adiff import DiffusionModel
from components.adaptation.handlers import state_of as adaptation_state
from tests.app_helpers import live_app, plot_json, trace
from tests.configs import tiny


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with live_app(tmp_path_factory.mktemp("presets"), max_heavy_jobs=2) as served:
        yield served


def new_client(url) -> Client:
    return Client(url, verbose=False)


def result(client, *args, api_name):
    """Run a (possibly streaming) call to the end; return (number of updates, final output)."""
    job = client.submit(*args, api_name=api_name)
    n = sum(1 for _ in job)
    return n, job.result()


def app_error(call) -> str:
    with pytest.raises(AppError) as info:
        call()
    return str(info.value)


# --- two people adapting at once -------------------------------------------------------------------------------------

ADAPT = dict(params="", num_steps=3, lr=1e-3, batch_size=32, capacity=8, replay=0.5, guided=False, lam=2.0, seed=0)


def adapt_args(reward, expression):
    a = ADAPT
    return (
        "moons",
        reward,
        expression,
        a["params"],
        a["num_steps"],
        a["lr"],
        a["batch_size"],
        a["capacity"],
        a["replay"],
        a["guided"],
        a["lam"],
        a["seed"],
    )


def test_two_clients_adapting_at_once_stay_apart(app):
    demo, url = app
    right, left = new_client(url), new_client(url)
    barrier = threading.Barrier(2)

    def run(client, reward, expression):
        barrier.wait()  # both start together; the heavy queue has two slots, so they really overlap
        return result(client, *adapt_args(reward, expression), api_name="/adapt")

    with ThreadPoolExecutor(2) as pool:
        fr = pool.submit(run, right, "x_coordinate", "")
        fl = pool.submit(run, left, "expression", "-x")
        (nr, (curves_r, buffer_r, *_, status_r)), (nl, (curves_l, buffer_l, *_, status_l)) = fr.result(), fl.result()

    for status, n in ((status_r, nr), (status_l, nl)):
        assert status["status"] == "done" and status["step"] == ADAPT["num_steps"] and n >= 2, status
        assert 0 < status["buffer_size"] <= ADAPT["capacity"]
    # each buffer keeps the best samples under its own reward (the same seed draws the same first samples): the
    # right-most points for r = x, the left-most for r = -x, each ranked by its own reward
    xr, xl = trace(plot_json(buffer_r), "buffer")["x"], trace(plot_json(buffer_l), "buffer")["x"]
    assert len(xr) == status_r["buffer_size"] and len(xl) == status_l["buffer_size"]
    assert min(xr) > max(xl), (xr, xl)
    assert xr[0] == max(xr) and xl[0] == min(xl)
    # the rewards each client saw have opposite signs of the same kind of quantity
    assert status_r["base_mean_reward"] == pytest.approx(-status_l["base_mean_reward"], rel=1e-4, abs=1e-4)
    assert status_r["reward_max"] > 0 and status_l["reward_max"] > 0  # each is the max of its own reward
    r_curve = trace(plot_json(curves_r), "mean reward")["y"]
    l_curve = trace(plot_json(curves_l), "mean reward")["y"]
    assert r_curve != l_curve

    # server side: two sessions, each with its own model copy, buffer and reward
    store = demo.adiff_context.store
    sr, sl = store.peek(right.session_hash), store.peek(left.session_hash)
    assert sr is not None and sl is not None and sr is not sl
    run_r, run_l = adaptation_state(sr).run, adaptation_state(sl).run
    assert run_r.model is not run_l.model and run_r.adapter is not run_l.adapter
    assert run_r.adapter.buffer is not run_l.adapter.buffer
    pr, pl = dict(run_r.model.denoiser.named_parameters()), dict(run_l.model.denoiser.named_parameters())
    assert all(pr[k].data_ptr() != pl[k].data_ptr() for k in pr)  # no shared weight storage
    assert any(not torch.equal(pr[k], pl[k]) for k in pr)  # trained towards different rewards
    probe = torch.tensor([[1.5, 0.0], [-1.0, 0.5]])
    assert torch.allclose(run_r.reward(probe), probe[:, 0]) and torch.allclose(run_l.reward(probe), -probe[:, 0])
    # the shared preset was not touched by either
    base, _ = demo.adiff_context.model("moons", sr)
    assert base is not run_r.model and base is not run_l.model
    for client in (right, left):
        *_, reset = client.predict(api_name="/adapt_reset")
        assert reset["status"] == "reset" and reset["had_run"]


def test_six_parallel_adapts_in_one_session_all_end_cleanly(app):
    """Six /adapt calls at once in one session (a script, or a page and a script sharing it) all end without an
    error: the call that is current at the end runs to its last step ("done"), each call a newer one took over ends
    "stopped" (never a stale "running"); whichever loop took a step, the run's curves hold every step once, as each
    step and its history entry happen under the session's lock."""
    demo, url = app
    client = new_client(url)
    seeds = [0, 0, 0, 1, 1, 1]  # identical calls continue one run; another seed starts a new run
    jobs = [client.submit(*adapt_args("x_coordinate", "")[:-1], s, api_name="/adapt") for s in seeds]
    finals = [job.result(timeout=300) for job in jobs]
    statuses = [f[-1] for f in finals]
    assert all(s["status"] in ("done", "stopped") for s in statuses), statuses
    for *_, text, status in finals:
        assert text.startswith("✓ **done**" if status["status"] == "done" else "■ **stopped**"), text
    run = adaptation_state(demo.adiff_context.store.peek(client.session_hash)).run
    h = run.history
    assert h["step"] == list(range(1, run.adapter.steps + 1)) and run.adapter.steps >= ADAPT["num_steps"]
    assert all(len(v) == len(h["step"]) for v in h.values())
    assert run.adapter.steps in [s["step"] for s in statuses if s["status"] == "done"], statuses
    *_, reset = client.predict(api_name="/adapt_reset")
    assert reset == {"status": "reset", "had_run": True}


def test_adapt_stop_from_the_api_ends_the_running_call(app):
    """/adapt_stop from a script (no browser to cancel the event): the running /adapt call ends at its next step with
    a "stopped" update that says where it got to, and the model takes no more steps."""
    demo, url = app
    client = new_client(url)
    job = client.submit(
        *adapt_args("x_coordinate", "")[:4], 200, *adapt_args("x_coordinate", "")[5:], api_name="/adapt"
    )
    for update in job:
        if update[-1].get("status") == "running":
            break
    text, stopped = client.predict(api_name="/adapt_stop")
    final = job.result(timeout=120)
    run = adaptation_state(demo.adiff_context.store.peek(client.session_hash)).run
    assert stopped["status"] == "stopped" and "stopped" in text
    assert final[-1]["status"] == "stopped" and final[-1]["step"] == run.adapter.steps < 200, final[-1]
    assert final[-2].startswith(f"■ **stopped** after step {run.adapter.steps} ")
    steps = run.adapter.steps
    time.sleep(1.0)
    assert run.adapter.steps == steps and len(run.history["step"]) == steps
    client.predict(api_name="/adapt_reset")


# --- a crowd generating at once ----------------------------------------------------------------------------------------


def test_ten_concurrent_runs_interleave_instead_of_queueing(app):
    """Sampling runs share the engine's batched calls: ten clients pressing Generate together all see their first
    frame before any of them is done (with slots, the tenth would wait for nine whole runs), and each gets the
    samples its seed gives alone."""
    demo, url = app
    demo.adiff_context.results.clear()
    clients = [new_client(url) for _ in range(10)]
    barrier = threading.Barrier(10)
    first, done, finals = [None] * 10, [None] * 10, [None] * 10

    def run(i):
        barrier.wait()
        job = clients[i].submit("moons", "ddim", 60, 0.0, 500 + i, 300, "any", 1.0, api_name="/generate")
        for _ in job:
            first[i] = first[i] or time.monotonic()
        done[i] = time.monotonic()
        finals[i] = json.loads(open(job.result()[4]).read())["frames"]["data"]["x_t"]

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(run, range(10)))
    assert all(first) and max(first) < min(done), (sorted(first), sorted(done))
    stats = demo.adiff_context.engine.stats()
    assert stats.max_rows_call >= 2 * 300  # at least two runs' rows in one network call
    _, (*_, alone) = result(new_client(url), "moons", "ddim", 60, 0.0, 503, 300, "any", 1.0, api_name="/generate")
    assert json.loads(open(alone).read())["frames"]["data"]["x_t"] == finals[3]  # load does not change the samples


def test_twenty_concurrent_generate_calls_all_succeed(app):
    demo, url = app
    clients = [new_client(url) for _ in range(20)]

    def gen(i):
        _, (_, _, status, gif, data) = result(
            clients[i], "moons", "ddim", 10, 0.0, i, 100, "any", 1.0, api_name="/generate"
        )
        return json.loads(open(data).read()), status, gif

    with ThreadPoolExecutor(20) as pool:
        outs = list(pool.map(gen, range(20)))
    assert len(outs) == 20
    for i, (player, status, gif) in enumerate(outs):
        assert status["status"] == "done" and status["num_frames"] == 11 and status["num_samples"] == 100, (i, status)
        assert player["frames"]["count"] == 11 and player["frames"]["t"][-1] == 0 and gif is None
    # every session kept its own trajectory: a different seed gave different samples
    assert len({o[0]["frames"]["data"]["x_t"] for o in outs}) == 20
    f, _, s = clients[7].predict(3, api_name="/frame")
    assert s["frame"] == 3


# --- invalid payloads, endpoint by endpoint ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, small_config_module):
    path = tmp_path_factory.mktemp("ckpt") / "small.safetensors"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DiffusionModel(small_config_module)
    model.save(path, extra={"dataset": "moons"}, ema_only=True)
    return path


@pytest.fixture(scope="module")
def small_config_module():
    return tiny()


GEN = ("moons", "ddim", 10, 0.0, 0, 50, "any", 1.0)
GUIDED = ("moons", "x_coordinate", "", "", 1.0, "dps", 1, "any", 1.0, "ddim", 5, 0, 30)
ADAPT_OK = ("moons", "x_coordinate", "", "", 1, 1e-3, 16, 32, 0.5, False, 1.0, 0)
TRAIN = ("moons", "linear", 20, "tiny", False, 3, 32, 2e-3, 0)
COMPLETE = ("digits", "top half", 3, 0, None, True, "ddim", 5, 1, 0, 2)

# endpoint -> (invalid args, the field its error must name, valid args)
INVALID = {
    "/schedule_curves": ((["linear"], 1, ""), "num_steps", (["linear"], 50, "")),
    "/forward": (("moons", "linear", 100, 150, 10, 0), "t", ("moons", "linear", 100, 50, 10, 0)),
    "/generate": (("moons", "ddim", 10, 2.0, 0, 50, "any", 1.0), "eta", GEN),
    "/frame": ((999,), "frame_index", (2,)),
    "/guided_generate": (GUIDED[:5] + ("magic",) + GUIDED[6:], "guidance_mode", GUIDED),
    "/adapt": (ADAPT_OK[:5] + (5.0,) + ADAPT_OK[6:], "learning_rate", ADAPT_OK),
    "/train": (TRAIN[:3] + ("huge",) + TRAIN[4:], "model_size", TRAIN),
    "/reflow": (("moons-flow", 200, 1, 3, 0), "reflow_ode_steps", ("moons-flow", 200, 4, 3, 0)),
    "/load_model": ("CORRUPT", "model_file", "VALID"),
    "/complete": (COMPLETE[:8] + (9,) + COMPLETE[9:], "recurrence", COMPLETE),
}
NO_INPUT = [
    "/generate_stop",
    "/guided_stop",
    "/complete_stop",
    "/adapt_stop",
    "/adapt_reset",
    "/train_stop",
    "/reflow_stop",
    "/save_model",
]


def _files(args, tmp_path, checkpoint):
    out = []
    for a in args if isinstance(args, tuple) else (args,):
        if a == "CORRUPT":
            bad = tmp_path / "corrupt.safetensors"
            bad.write_bytes(b"\x00\xff" * 300)
            a = handle_file(str(bad))
        elif a == "VALID":
            a = handle_file(str(checkpoint))
        out.append(a)
    return tuple(out)


@pytest.mark.parametrize("endpoint", list(INVALID))
def test_invalid_payload_then_a_valid_call(app, endpoint, tmp_path, checkpoint):
    _, url = app
    client = new_client(url)
    if endpoint == "/frame":  # scrubbing needs this session's trajectory first
        result(client, *GEN, api_name="/generate")
    bad, field, good = INVALID[endpoint]
    msg = app_error(lambda: result(client, *_files(bad, tmp_path, checkpoint), api_name=endpoint))
    assert msg.startswith(field), msg
    _, out = result(client, *_files(good, tmp_path, checkpoint), api_name=endpoint)
    outs = out if isinstance(out, tuple) else (out,)
    empty = {"/generate": {3}}.get(endpoint, set())  # /generate's GIF is made when asked for (/trajectory_gif)
    assert out is not None and all(o is not None for i, o in enumerate(outs) if i not in empty)


def raw_call(url: str, endpoint: str, data: list) -> tuple[str, str]:
    """POST a raw payload to /gradio_api/call/<name> and read the SSE answer: (last event, its data)."""
    req = urllib.request.Request(
        f"{url.rstrip('/')}/gradio_api/call{endpoint}",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            event_id = json.loads(r.read())["event_id"]
    except urllib.error.HTTPError as e:
        return "http_error", f"{e.code} {e.read().decode(errors='replace')}"
    event, payload = "", ""
    with urllib.request.urlopen(f"{url.rstrip('/')}/gradio_api/call{endpoint}/{event_id}", timeout=60) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                payload = line.split(":", 1)[1].strip()
    return event, payload


@pytest.mark.parametrize("endpoint", NO_INPUT)
def test_no_input_endpoints_reject_or_ignore_a_payload_and_keep_serving(app, endpoint):
    """These take no inputs, so there is no field to get wrong: Gradio drops extra values (through gradio_client or
    a raw payload) and the call means what it means without them; the server keeps serving and the next call works."""
    _, url = app
    client = new_client(url)
    if endpoint != "/save_model":
        out = client.predict("junk", api_name=endpoint)
        assert (out[-1] if isinstance(out, tuple) else out)["status"] in ("stopped", "reset")
    event, payload = raw_call(url, endpoint, ["junk", {"evil": True}])
    assert event in ("error", "complete"), (event, payload)
    if endpoint == "/save_model":
        assert event == "error" and json.loads(payload)["error"].startswith("model"), payload
    if endpoint == "/save_model":  # needs this session's model: without one the error names it, with one it saves
        assert app_error(lambda: client.predict(api_name=endpoint)).startswith("model")
        result(client, *TRAIN, api_name="/train")
        path, info = client.predict(api_name=endpoint)
        assert path.endswith(".safetensors") and info["bytes"] > 1000
    else:
        out = client.predict(api_name=endpoint)
        status = out[-1] if isinstance(out, tuple) else out
        assert status["status"] in ("stopped", "reset"), status


@pytest.mark.parametrize("endpoint", list(INVALID))
def test_malformed_raw_payload_is_an_error_and_the_server_keeps_serving(app, endpoint, tmp_path, checkpoint):
    """A payload with the wrong number of values (not even gradio_client would send it) is refused with an error
    event, and a valid call right after succeeds."""
    _, url = app
    event, payload = raw_call(url, endpoint, ["junk"] * 20)
    assert event == "error", (event, payload)
    client = new_client(url)
    if endpoint == "/frame":
        result(client, *GEN, api_name="/generate")
    _, out = result(client, *_files(INVALID[endpoint][2], tmp_path, checkpoint), api_name=endpoint)
    assert out is not None
