"""The result cache through gradio_client against the app launched in-process: an identical request on a preset is
answered from the cache with the same data a fresh run gives (and a fresh run is deterministic given the seed, DDPM's
noise included); a different seed misses; "my model" is never cached; each session gets its own files."""

import json
from pathlib import Path

from gradio_client import Client

from components.reverse.requests import ReverseState
from tests.app_helpers import guided_inputs
from tests.test_app_api import app, client, stream  # noqa: F401  (the module's fixtures: one live app)

DEFAULTS = ("moons", "dpmpp_2m", 12, 0.0, 5, 200, "any", 1.0)  # preset, sampler, steps, eta, seed, n, label, cfg
VOLATILE = ("elapsed_s", "reused")


def generate(c, *args):
    _, (pointer, text, summary, gif, data) = stream(c, *args, api_name="/generate")
    player = json.loads(Path(data).read_text())
    assert gif is None  # made when asked for (/trajectory_gif)
    return {"pointer": pointer, "text": text, "summary": summary, "player": player}


def same_result(a, b):
    """Everything but the run id (each answer has its own) and the time taken."""
    pa, pb = dict(a["player"]), dict(b["player"])
    assert pa.pop("id") != pb.pop("id") and pa == pb
    assert {k: v for k, v in a["summary"].items() if k not in VOLATILE} == {
        k: v for k, v in b["summary"].items() if k not in VOLATILE
    }


def session_of(demo, c):
    return demo.adiff_context.store.peek(c.session_hash)


def test_identical_generate_is_a_hit_with_the_same_data_and_a_new_seed_misses(app):  # noqa: F811
    demo, url = app
    cache = demo.adiff_context.results
    cache.clear()
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    a = generate(first, *DEFAULTS)
    assert a["summary"]["reused"] is False and "reused" not in a["text"]
    hits = cache.hits
    b = generate(second, *DEFAULTS)
    assert cache.hits == hits + 1 and b["summary"]["reused"] is True and "♻ **reused**" in b["text"]
    same_result(a, b)
    assert b["pointer"]["id"] == b["player"]["id"] and b["pointer"]["count"] == a["pointer"]["count"]
    # the second session can scrub its own copy of the trajectory
    _, _, frame = second.predict(3, api_name="/frame")
    assert frame["frame"] == 3 and frame["num_frames"] == a["summary"]["num_frames"]
    # a different seed is a different request
    c = generate(second, *DEFAULTS[:4], 6, *DEFAULTS[5:])
    assert c["summary"]["reused"] is False and c["player"]["frames"]["data"] != a["player"]["frames"]["data"]


def test_a_fresh_run_is_deterministic_given_the_seed_ddpm_noise_included(app):  # noqa: F811
    demo, url = app
    cache = demo.adiff_context.results
    c = Client(url, verbose=False)
    args = ("moons", "ddpm", 20, 0.0, 11, 100, "any", 1.0)
    cache.clear()
    a = generate(c, *args)
    cache.clear()  # so the second run samples again instead of reusing the first
    b = generate(c, *args)
    assert a["summary"]["reused"] is False and b["summary"]["reused"] is False
    same_result(a, b)
    assert generate(c, *args)["summary"]["reused"] is True


def test_sessions_get_independent_files(app):  # noqa: F811
    demo, url = app
    demo.adiff_context.results.clear()
    one, two = Client(url, verbose=False), Client(url, verbose=False)
    generate(one, *DEFAULTS)
    generate(two, *DEFAULTS)  # a hit
    s1, s2 = session_of(demo, one), session_of(demo, two)
    f1, f2 = reverse_files(s1), reverse_files(s2)
    assert set(f1).isdisjoint(f2) and all(Path(f).is_file() for f in f1 + f2)
    assert Path(f1[0]).parent.parent == s1.workdir and Path(f2[0]).parent.parent == s2.workdir
    # the second session's next run deletes its own old files, never the first session's
    generate(two, *DEFAULTS[:4], 7, *DEFAULTS[5:])
    assert not any(Path(f).exists() for f in f2) and all(Path(f).is_file() for f in f1)
    generate(one, *DEFAULTS)  # a hit again: the first session's old files are replaced by new ones
    assert not any(Path(f).exists() for f in f1) and Path(reverse_files(session_of(demo, one))[0]).is_file()


def reverse_files(session) -> tuple[str]:
    """The server's copy of a session's last /generate file (the player JSON; the GIF is made when asked for)."""
    return (session.tab("reverse", ReverseState).files[1],)


def test_my_model_is_never_cached(app):  # noqa: F811
    demo, url = app
    cache = demo.adiff_context.results
    c = Client(url, verbose=False)
    _, (*_, status) = stream(c, "moons", "linear", 50, "tiny", False, 20, 64, 2e-3, 0, api_name="/train")
    assert status["status"] == "done"
    cache.clear()
    hits, misses = cache.hits, cache.misses
    args = ("my model", "ddim", 10, 0.0, 0, 50, "any", 1.0)
    a, b = generate(c, *args), generate(c, *args)
    assert a["summary"]["reused"] is False and b["summary"]["reused"] is False
    _, (_, _, g) = stream(
        c, *guided_inputs(preset="my model", num_steps=5, num_samples=50), api_name="/guided_generate"
    )
    assert (
        g["reused"] is False and len(cache) == 0 and (cache.hits, cache.misses) == (hits, misses)
    )  # not even looked up


def test_identical_guided_generate_is_a_hit(app):  # noqa: F811
    demo, url = app
    cache = demo.adiff_context.results
    cache.clear()
    args = ["moons", "distance_to_target", "", "", 2.0, "dps", 1, "any", 1.0, "ddim", 8, 3, 100]
    one, two = Client(url, verbose=False), Client(url, verbose=False)
    _, (fig_a, text_a, sum_a) = stream(one, *args, api_name="/guided_generate")
    _, (fig_b, text_b, sum_b) = stream(two, *args, api_name="/guided_generate")
    assert sum_a["reused"] is False and sum_b["reused"] is True and "♻ **reused**" in text_b
    # the cache keeps a figure as its JSON and rebuilds it: the same figure, its keys maybe in another order
    assert json.loads(fig_a["plot"]) == json.loads(fig_b["plot"]) and text_b.startswith(text_a)
    assert {k: v for k, v in sum_a.items() if k not in VOLATILE} == {
        k: v for k, v in sum_b.items() if k not in VOLATILE
    }
    for i, change in ((11, 4), (4, 2.5), (5, "cheap"), (3, '{"target": [0, 1]}')):  # seed, λ, mode, reward params
        other = list(args)
        other[i] = change
        _, (_, _, s) = stream(two, *other, api_name="/guided_generate")
        assert s["reused"] is False, (i, change)


def test_six_parallel_generates_in_one_session_all_succeed(app):  # noqa: F811
    """One session's parallel calls never read or delete each other's files (each run has its own folder; only a
    delivered run's older siblings are removed): six at once, half of them identical (cache hits), all succeed and
    each answer's files hold its own run."""
    demo, url = app
    demo.adiff_context.results.clear()
    c = Client(url, verbose=False)
    seeds = [21, 22, 23, 21, 22, 23]
    jobs = [c.submit(*DEFAULTS[:4], s, 60, "any", 1.0, api_name="/generate") for s in seeds]
    results = [j.result(timeout=300) for j in jobs]
    for s, (pointer, text, summary, gif, data) in zip(seeds, results):
        assert summary["status"] == "done" and summary["seed"] == s and "✓" in text
        player = json.loads(Path(data).read_text())
        assert player["id"] == pointer["id"] and gif is None
    # identical requests give identical samples, whichever ran and whichever was reused
    finals = {}
    for s, (_, _, _, _, data) in zip(seeds, results):
        frames = json.loads(Path(data).read_text())["frames"]["data"]["x_t"]
        assert finals.setdefault(s, frames) == frames


def test_six_parallel_guided_generates_in_one_session_all_succeed(app):  # noqa: F811
    """Six /guided_generate calls at once in one session, half of them identical: all succeed, each answers its own
    seed, identical requests give identical figures and numbers (whichever ran and whichever was reused), and the
    session's Stop still answers."""
    demo, url = app
    demo.adiff_context.results.clear()
    c = Client(url, verbose=False)
    seeds = [31, 32, 33, 31, 32, 33]
    args = ("moons", "distance_to_target", "", "", 2.0, "dps", 1, "any", 1.0, "ddim", 6)
    jobs = [c.submit(*args, s, 60, api_name="/guided_generate") for s in seeds]
    results = [j.result(timeout=300) for j in jobs]
    by_seed = {}
    for s, (fig, text, summary) in zip(seeds, results):
        assert summary["seed"] == s and summary["versus_target"] in ("over", "under", "on") and "tilted target" in text
        same = (json.loads(fig["plot"]), {k: v for k, v in summary.items() if k not in VOLATILE})  # keys in any order
        assert by_seed.setdefault(s, same) == same
    assert len({json.dumps(fig, sort_keys=True) for fig, _ in by_seed.values()}) == 3
    _, stopped = c.predict(api_name="/guided_stop")
    assert stopped == {"status": "stopped", "at": "after the last step"}
