"""components.result_cache: the LRU is bounded in entries and bytes, thread-safe, keys are normalised, only presets
are keyed, and a cached /generate writes each answer its own files."""

import json
import threading
from pathlib import Path

import pytest
import torch

from components.result_cache import FinishedRun, ResultCache, preset_key, request_key


def test_lru_evicts_the_least_recently_used_beyond_max_entries():
    c = ResultCache(max_entries=2, max_bytes=1000)
    c.put("a", 1, 10)
    c.put("b", 2, 10)
    assert c.get("a") == 1  # "a" is now the most recently used
    c.put("c", 3, 10)
    assert c.get("b") is None and c.get("a") == 1 and c.get("c") == 3
    assert len(c) == 2 and c.nbytes == 20
    assert c.stats()["hits"] == 3 and c.stats()["misses"] == 1


def test_bytes_bound_evicts_and_refuses_what_cannot_fit():
    c = ResultCache(max_entries=10, max_bytes=100)
    c.put("a", "A", 60)
    c.put("b", "B", 30)
    c.put("c", "C", 30)  # 120 > 100: "a" goes
    assert c.get("a") is None and c.nbytes == 60
    assert c.put("huge", "H", 101) is False and c.get("huge") is None and c.nbytes == 60
    c.put("b", "B2", 50)  # replacing a key replaces its size
    assert c.get("b") == "B2" and c.nbytes == 80
    assert c.put(None, "x", 1) is False and c.get(None) is None


@pytest.mark.parametrize("kw, field", [({"max_entries": -1}, "max_entries"), ({"max_bytes": 1.5}, "max_bytes")])
def test_bad_bounds_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        ResultCache(**kw)
    with pytest.raises(ValueError, match="nbytes"):
        ResultCache().put("k", 1, -5)


def test_thread_safe_under_concurrent_puts_and_gets():
    c = ResultCache(max_entries=50, max_bytes=50 * 8)
    errors = []

    def worker(w):
        try:
            for i in range(2000):
                c.put((w, i % 80), i, 8)
                c.get((w, (i * 7) % 80))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(c) == 50 and c.nbytes == 50 * 8  # the bookkeeping survived the races


def test_keys_are_normalised_and_cover_every_input():
    assert request_key("g", seed=2, eta=0.0) == request_key("g", eta=0, seed=2.0)  # order and 2 vs 2.0 do not matter
    assert request_key("g", seed=2) != request_key("g", seed=3)
    assert request_key("g", label=1) != request_key("g", label=True)
    assert request_key("g", label=None) != request_key("g", label="any")
    assert request_key("a", seed=1) != request_key("b", seed=1)
    with pytest.raises(TypeError, match="plain value"):
        request_key("g", x=torch.zeros(2))


def test_only_presets_are_keyed():
    assert preset_key("moons", "generate", seed=0) is not None
    assert preset_key("my model", "generate", seed=0) is None
    assert preset_key("moons", "generate", seed=0) != preset_key("swissroll", "generate", seed=0)


def test_finished_run_writes_each_answer_its_own_files(tmp_path):
    from adiff.samplers import Trajectory

    K, B = 3, 4
    tr = Trajectory(
        [2, 1, 0], torch.randn(K, B, 2), torch.randn(K, B, 2), torch.randn(K, B, 2), torch.ones(K), [None] * K
    )
    payload = {"v": 1, "id": "run-1", "frames": {"count": K}}
    run = FinishedRun(tr, None, payload, len(json.dumps(payload)), {"status": "done"})
    assert run.nbytes() >= 3 * K * B * 2 * 4 + len(json.dumps(payload))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = run.write_file(tmp_path / "a", "run-2")
    b = run.write_file(tmp_path / "b", "run-3")
    assert a != b
    assert json.loads(Path(a).read_text())["id"] == "run-2" and json.loads(Path(b).read_text())["id"] == "run-3"
    assert payload["id"] == "run-1"  # the cached payload itself is never changed


def test_single_flight_computes_once_for_requests_that_arrive_together():
    """Ten identical requests at once: one computes, the nine others wait for it and get its value; a failed first
    run lets the next one compute; key None never waits."""
    import threading
    import time

    cache = ResultCache()
    computed, got = [], []
    barrier = threading.Barrier(10)

    def request():
        barrier.wait()
        with cache.single_flight(("generate", 1)) as hit:
            if hit is None:
                computed.append(1)
                time.sleep(0.2)
                cache.put(("generate", 1), "value", 10)
                hit = "value"
        got.append(hit)

    threads = [threading.Thread(target=request) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(computed) == 1 and got == ["value"] * 10
    with pytest.raises(RuntimeError):
        with cache.single_flight(("generate", 2)) as hit:
            assert hit is None
            raise RuntimeError("the first run failed")
    with cache.single_flight(("generate", 2)) as hit:
        assert hit is None  # computes: nothing was stored
    with cache.single_flight(None) as hit:
        assert hit is None


def test_a_figure_is_kept_as_its_json_and_comes_back_the_same():
    """A plotly figure in a stored value is kept as its JSON text (a figure object holds every number as a Python
    float, ~4.7x its JSON) and given out as that text: Gradio's own Plot sends it without rebuilding or serialising
    the figure again, and it reads like the figure it was (a new object for each answer)."""
    import json

    import gradio as gr
    import plotly.graph_objects as go

    from components.figure_json import FigureJSON

    fig = go.Figure(
        data=[go.Scatter(x=[1.5, 2, 3], y=[0.1, None, 3], mode="markers", name="a"), go.Heatmap(z=[[1, 2], [3, None]])],
        layout={"title": {"text": "t"}, "xaxis": {"range": [-3, 3]}},
    )
    c = ResultCache()
    assert c.put("k", (fig, "words", {"n": 1}), 100) and c.put("alone", fig, 100)
    stored = c._items["k"][0]
    assert isinstance(stored[0], FigureJSON) and stored[0].text == fig.to_json() and stored[1:] == ("words", {"n": 1})
    got, words, summary = c.get("k")
    assert isinstance(got, FigureJSON) and got is not stored[0] and (words, summary) == ("words", {"n": 1})
    assert got.to_json() is stored[0].text  # no serialisation on a hit
    assert json.loads(got.to_json()) == json.loads(fig.to_json())
    assert got.data[0].x == (1.5, 2, 3) and got.layout.xaxis.range == (-3, 3)  # read like the figure
    assert json.loads(c.get("alone").to_json()) == json.loads(fig.to_json()) and c.get("alone") is not c.get("alone")
    sent = gr.Plot().postprocess(got)  # what the page gets: the stored text, as plotly JSON
    assert sent.type == "plotly" and sent.plot == stored[0].text
    assert FigureJSON.of(got) is got and FigureJSON.of(fig).text == fig.to_json()
    lean = FigureJSON(spec={"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4]}], "layout": {}})
    assert c.put("lean", lean, 100) and c._items["lean"][0]._spec is None  # kept as its text, the dicts dropped
    assert json.loads(c.get("lean").to_json())["data"][0]["y"] == [3, 4]
    import copy

    twin = copy.deepcopy(got)
    assert isinstance(twin, FigureJSON) and twin.text is got.text
