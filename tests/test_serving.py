"""The sampling engine (adiff.serving): concurrent runs batched into shared network calls give the samples and
trajectories they give alone, whatever runs beside them, and one run's failure, NaN or cancellation reaches nobody
else.  Real (small, randomly initialised) denoisers; every run is a thread, as in the app."""

import math
import threading
import time

import pytest
import torch

from adiff import DiffusionModel
from adiff.samplers import sample
from adiff.serving import RunCancelled, SamplingEngine
from adiff.serving.batch import Graph, split_by_graph, split_requests
from adiff.steering.rewards import make_reward

TOL = 1e-5
N = 48  # samples per run
ARCH = {"embedding_dim": 32, "hidden_dim": 32, "num_layers": 2, "num_heads": 4, "data_shape": [2], "device": "cpu"}


def _model(seed: int, **config) -> DiffusionModel:
    """A small denoiser with non-trivial weights (the layers that start at zero get small random values, so the
    network is a smooth non-zero function of x, t and the class)."""
    torch.manual_seed(seed)
    m = DiffusionModel({**ARCH, **config})
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.denoiser.parameters():
            if not p.any():
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    m.ema.reset(m.denoiser)
    m.denoiser.eval()
    return m


@pytest.fixture(scope="module")
def vp():
    return _model(1, model_type="unconditional", num_diffusion_steps=100, prediction_type="sample")


@pytest.fixture(scope="module")
def cond():
    return _model(2, model_type="conditional", num_classes=3, num_diffusion_steps=100, prediction_type="v_prediction")


@pytest.fixture(scope="module")
def flow():
    return _model(3, model_type="unconditional", process="flow", prediction_type="velocity")


@pytest.fixture
def engine():
    eng = SamplingEngine(max_wait_ms=300)  # long enough that rounds wait for every run even on a loaded machine
    yield eng
    eng.close()


def _solo(model, kw):
    return model.generate(N, **kw)


def _together(engine, jobs):
    """Run (model, kwargs[, body]) jobs concurrently, each in its own thread with its own session; all sessions
    open before the first call (kwargs with use_ema=False: a session of the raw weights).  body(model, net, kw) ->
    result (default: model.generate with network=net).  Returns each job's result or the exception it raised."""
    results = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def work(i, model, kw, body):
        try:
            with engine.session(model, use_ema=kw.get("use_ema", True)) as net:
                barrier.wait()
                results[i] = body(model, net, kw) if body else model.generate(N, network=net, **kw)
        except Exception as e:  # the test inspects it
            results[i] = e

    threads = [
        threading.Thread(target=work, args=(i, job[0], job[1], job[2] if len(job) > 2 else None))
        for i, job in enumerate(jobs)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "a run hung"
    return results


def _assert_same(got, want, what=""):
    assert not isinstance(got, Exception), f"{what} raised {got!r}"
    (x, traj), (x_ref, traj_ref) = got, want
    assert traj.timesteps == traj_ref.timesteps and traj.nfe == traj_ref.nfe
    for a, b in (
        (x, x_ref),
        (traj.x, traj_ref.x),
        (traj.x0_pred, traj_ref.x0_pred),
        (traj.eps_pred, traj_ref.eps_pred),
    ):
        assert torch.isfinite(b).all()
        err = float((a - b).abs().max())
        assert err <= TOL, f"{what}: differs from the solo run by {err:.2e}"


def _assert_serves(engine, model):
    """The engine (its thread too) still answers a fresh run exactly as a solo run."""
    assert engine._thread.is_alive()
    kw = {"sampler": "euler", "num_steps": 8, "seed": 99}
    (got,) = _together(engine, [(model, kw)])
    _assert_same(got, _solo(model, kw), "a run after the others")


# ------------------------------------------------------------------------------------------------ the network hook
def test_per_row_time_equals_one_call_per_row(cond):
    """A time table [K] with a row index gives each row the output it gets alone at its own time (and a NaN row
    changes no other row: no batch statistics)."""
    net = cond.ema.module
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 2, generator=g)
    table = torch.tensor([0.9, 0.05, 0.5])
    index = torch.tensor([0, 1, 2, 2, 0, 1, 0])
    labels = torch.tensor([0, 1, 2, 3, 3, 0, 1])  # 3 = the null label
    with torch.no_grad():
        out = net(x, table, labels, t_index=index)
        alone = torch.cat([net(x[i : i + 1], table[index[i]].reshape(1), labels[i : i + 1]) for i in range(7)])
        assert float((out - alone).abs().max()) <= 1e-6
        x[3] = math.nan
        poisoned = net(x, table, labels, t_index=index)
    keep = torch.arange(7) != 3
    assert torch.isnan(poisoned[3]).all() and float((poisoned[keep] - out[keep]).abs().max()) <= 1e-6
    with pytest.raises(ValueError, match="t_index must be a LongTensor of shape \\[7\\]"):
        net(x, table, labels, t_index=index[:5])


# ------------------------------------------------------------------------------------------------ equal to solo
def test_solo_run_through_the_engine_is_the_run_without_it(engine, vp):
    kw = {"sampler": "dpmpp_2m", "num_steps": 12, "seed": 4, "clip_x0": 3.0}
    (got,) = _together(engine, [(vp, kw)])
    want = _solo(vp, kw)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1].x, want[1].x)


def test_solvers_at_different_steps_share_calls_and_match_solo(engine, vp):
    jobs = [
        (vp, {"sampler": "ddpm", "seed": 1}),  # all 100 steps
        (vp, {"sampler": "ddim", "num_steps": 20, "eta": 0.5, "seed": 2}),
        (vp, {"sampler": "dpmpp_2m", "num_steps": 15, "seed": 3, "clip_x0": 2.0}),
        (vp, {"sampler": "euler", "num_steps": 10, "seed": 4}),
        (vp, {"sampler": "heun", "num_steps": 9, "seed": 5}),  # 17 calls, every second at the next step's time
        (vp, {"sampler": "ddim", "num_steps": 30, "seed": 6, "recurrence": 2}),
    ]
    got = _together(engine, jobs)
    for (m, kw), res in zip(jobs, got):
        _assert_same(res, _solo(m, kw), kw["sampler"])
    s = engine.stats()
    calls = sum(r[1].nfe for r in got)
    assert s.rows == calls * N and s.rounds < calls / 2, "the runs' calls were not batched"
    assert s.max_rows_call == len(jobs) * N  # one call held a row block of every run, at six different times
    _assert_serves(engine, vp)


def test_cfg_classes_and_unconditional_runs_of_a_conditional_model(engine, cond):
    jobs = [
        (cond, {"condition": 1, "cfg_scale": 2.5, "sampler": "dpmpp_2m", "num_steps": 10, "seed": 1}),
        (cond, {"condition": 2, "sampler": "ddim", "num_steps": 12, "seed": 2}),  # plain conditional (w = 1)
        (cond, {"condition": None, "sampler": "ddim", "num_steps": 12, "seed": 3}),  # the null label
        (cond, {"condition": list(range(3)) * (N // 3), "cfg_scale": 0.5, "sampler": "euler", "seed": 4}),
    ]
    got = _together(engine, jobs)
    for (m, kw), res in zip(jobs, got):
        _assert_same(res, _solo(m, kw), f"condition {kw['condition']!r:.12}")
    assert engine.stats().max_rows_call == 6 * N  # two CFG runs (2N rows each) and two plain ones, one call
    _assert_serves(engine, cond)


def test_two_models_and_raw_weights_at_once(engine, vp, flow, cond):
    """Runs of different models, and of one model's EMA and raw weights, in one engine: one call per network."""
    twin = _model(5, model_type="unconditional", num_diffusion_steps=100, prediction_type="sample")
    with torch.no_grad():
        for p in twin.denoiser.parameters():
            p.mul_(1.05)  # the raw weights differ from the EMA weights

    def raw(model, net, kw):  # its session serves the raw weights (use_ema=False in the job's kwargs)
        return _raw_run(model, kw, network=net)

    kw_raw = {"sampler": "ddim", "num_steps": 10, "seed": 6}
    jobs = [
        (vp, {"sampler": "dpmpp_2m", "num_steps": 10, "seed": 1}),
        (flow, {"sampler": "heun", "num_steps": 6, "seed": 2}),
        (flow, {"sampler": "euler", "num_steps": 12, "seed": 3}),
        (cond, {"condition": 0, "cfg_scale": 3.0, "sampler": "ddim", "num_steps": 8, "seed": 4}),
        (twin, kw_raw),
        (twin, {**kw_raw, "use_ema": False}, raw),
    ]
    got = _together(engine, jobs)
    for (m, kw, *_), res in zip(jobs[:5], got):
        _assert_same(res, _solo(m, kw), f"{m.process.name} {kw['sampler']}")
    want = _raw_run(twin, kw_raw)
    assert float((got[5] - want).abs().max()) <= TOL and float((got[5] - got[4][0]).abs().max()) > 1e-3
    assert engine.stats().max_rows_call <= 3 * N  # vp's, flow's, cond's (CFG: 2N) and twin's rows never share a call
    _assert_serves(engine, flow)


def test_cancelled_and_stopped_runs_leave_and_others_finish(engine, vp):
    ref = {"sampler": "ddim", "num_steps": 20, "seed": 7}
    stopped_after = []

    def stop_early(model, net, kw):  # Stop: the run's loop ends after 5 steps and its session closes
        for rec in model.generate_progressive(N, network=net, **kw):
            if rec.index == 4:
                stopped_after.append(rec.index)
                break
        return "stopped"

    def cancelled(model, net, kw):  # a closed tab: cancel() from the run's own step; its next call raises
        for rec in model.generate_progressive(N, network=net, **kw):
            if rec.index == 2:
                net.cancel()
        return "not reached"

    jobs = [(vp, {**ref, "seed": 8}, stop_early), (vp, ref), (vp, {**ref, "seed": 9}, cancelled), (vp, ref)]
    got = _together(engine, jobs)
    assert got[0] == "stopped" and stopped_after == [4]
    assert isinstance(got[2], RunCancelled)
    _assert_same(got[1], _solo(vp, ref), "run beside a stopped one")
    _assert_same(got[3], _solo(vp, ref), "second run beside a stopped one")
    _assert_serves(engine, vp)


def test_cancel_from_another_thread_while_queued(vp):
    """A queued call leaves the queue when its run is cancelled (the tab closed), and raises in the run's thread."""
    with SamplingEngine(max_wait_ms=1000) as engine, engine.session(vp) as idle:
        errors = []

        def waiting_run():
            with engine.session(vp) as net:
                try:
                    net(torch.zeros(5, 2), 50)
                except RunCancelled as e:
                    errors.append(e)

        th = threading.Thread(target=waiting_run)
        th.start()
        _until(lambda: engine.stats().queued_rows == 5)  # the open `idle` session holds the round back
        s = engine.stats()
        assert (s.open_runs, s.waiting_runs, s.queued_calls) == (2, 1, 1)
        next(iter(engine._sessions - {idle})).cancel()
        th.join(timeout=30)
        assert len(errors) == 1 and engine.stats().queued_rows == 0 and engine.stats().rounds == 0
        idle.cancel()
    _assert_serves_new(vp)


def test_raising_and_nan_runs_affect_nobody_else(engine, vp, cond):
    ref = {"sampler": "dpmpp_2m", "num_steps": 15, "seed": 5}
    ref_cond = {**ref, "condition": 2, "cfg_scale": 2.0}

    def bad_labels(model, net, kw):  # a call that only the network's value checks reject: it fails inside a round
        x = torch.randn(N, 2)
        for _ in range(3):
            net(x, 90)
        net(x, 90, torch.full((N,), 7))

    def raises(model, net, kw):  # the run's own code raises between steps
        for rec in model.generate_progressive(N, network=net, **kw):
            if rec.index == 3:
                raise KeyError("boom")

    nan_start = torch.full((N, 2), math.nan)
    jobs = [
        (vp, ref),
        (vp, {"sampler": "ddim", "num_steps": 15, "seed": 6, "x_T": nan_start}),
        (cond, ref, bad_labels),
        (vp, {**ref, "seed": 11}, raises),
        (vp, {"sampler": "ddim", "num_steps": 15, "seed": 6}),
        (cond, ref_cond),  # shares its calls with the bad one
    ]
    got = _together(engine, jobs)
    _assert_same(got[0], _solo(vp, ref), "run beside a NaN run")
    _assert_same(got[4], _solo(vp, jobs[4][1]), "run beside a NaN run")
    _assert_same(got[5], _solo(cond, ref_cond), "run whose call was batched with a bad one")
    assert torch.isnan(got[1][0]).all()
    assert isinstance(got[2], ValueError) and "condition labels must be in 0..2" in str(got[2])
    assert isinstance(got[3], KeyError)
    assert engine.stats().failed_calls == 1
    _assert_serves(engine, cond)
    _assert_serves(engine, vp)


def test_guided_runs_batch_their_gradients_and_match_solo_guided(engine, vp):
    base = {"sampler": "ddim", "num_steps": 12, "clip_x0": 3.0}
    g1 = {**base, "seed": 1, "use_guidance": True, "reward_fn": make_reward("x_coordinate"), "guidance_scale": 2.0}
    g2 = {**base, "seed": 2, "use_guidance": True, "reward_fn": make_reward("inside_ring"), "guidance_scale": 4.0}
    g3 = {**g1, "seed": 3, "sampler": "heun", "num_steps": 5, "guidance_mode": "dps"}  # guided second evaluations
    cheap = {**g1, "seed": 4, "guidance_mode": "cheap"}  # no gradient through the network: ordinary calls
    calls = {"n": 0}

    def failing(x):
        calls["n"] += 1
        if calls["n"] == 4:
            raise ArithmeticError("reward failed")
        return x[:, 0]

    broken = {**g1, "seed": 5, "reward_fn": failing}
    jobs = [(vp, g1), (vp, {**base, "seed": 6}), (vp, g2), (vp, g3), (vp, cheap), (vp, broken)]
    got = _together(engine, jobs)
    for (m, kw), res in zip(jobs[:5], got):
        _assert_same(res, _solo(m, kw), f"{kw.get('guidance_mode', 'unguided')} seed {kw['seed']}")
    assert isinstance(got[5], ArithmeticError)
    vjp_calls = 12 + 12 + 9  # the dps runs' network calls (heun: 2 * 5 - 1)
    s = engine.stats()
    assert 0 < s.vjp_rounds < vjp_calls, "the guided runs' gradients were not batched"
    _assert_serves(engine, vp)


def test_vjps_from_a_shared_graph_and_of_a_late_run(vp):
    """Two runs' forwards with autograd share one graph; the first run's VJP takes its backward (the other run's
    rows get a zero cotangent), the second's comes after it and gets a recomputed forward.  Both equal autograd
    through the network alone."""
    gen = torch.Generator().manual_seed(3)
    xs = [torch.randn(N, 2, generator=gen) for _ in range(2)]
    want = []
    for x in xs:
        xg = x.clone().requires_grad_(True)
        want.append(torch.autograd.grad((vp.net_fn()(xg, 40) ** 2).sum(), xg)[0])
    got, first_done, both_called = [None, None], threading.Event(), threading.Barrier(2)

    def run(i, net):
        xg = xs[i].clone().requires_grad_(True)
        out = net(xg, 40)
        both_called.wait()
        if i == 1:
            first_done.wait(30)
        got[i] = torch.autograd.grad((out**2).sum(), xg)[0]
        first_done.set()

    with SamplingEngine(max_wait_ms=20) as engine:
        _together(engine, [(vp, {}, lambda m, net, kw, i=i: run(i, net)) for i in range(2)])
        s = engine.stats()
    assert (s.rounds, s.vjp_rounds, s.max_rows_call) == (1, 2, 2 * N)  # one forward with a graph for both
    for g, w in zip(got, want):
        assert float((g - w).abs().max()) <= 1e-6


# ------------------------------------------------------------------------------------------------ limits, stats
def test_max_rows_bounds_a_call(vp):
    with SamplingEngine(max_wait_ms=300, max_rows=2 * N) as engine:
        jobs = [(vp, {"sampler": "ddim", "num_steps": 6, "seed": s}) for s in range(3)]
        got = _together(engine, jobs)
        for (m, kw), res in zip(jobs, got):
            _assert_same(res, _solo(m, kw), "bounded call")
        assert engine.stats().max_rows_call == 2 * N
        _one_call(engine, vp, 3 * N)  # a call larger than max_rows runs alone
        assert engine.stats().rows_last_call == 3 * N


def test_workers_compute_shares_of_a_round_in_parallel(vp):
    n = 160
    jobs = [(vp, {"sampler": "dpmpp_2m", "num_steps": 8, "seed": s}, _generate(n)) for s in range(4)]
    with SamplingEngine(max_wait_ms=300, workers=2) as engine:
        got = _together(engine, jobs)
        for (m, kw, _), res in zip(jobs, got):
            _assert_same(res, m.generate(n, **kw), "a run computed in a worker's share")
        assert engine.stats().max_rows_call == 4 * n  # one call (two shares) per round
    shares = split_requests([_Rows(b) for b in (100, 300, 50, 400, 150)], 4)
    assert [[r.x.shape[0] for r in share] for share in shares] == [[100, 300], [50, 400], [150]]
    assert len(split_requests([_Rows(200), _Rows(200)], 2)) == 1  # shares of at least MIN_SHARE_ROWS rows


def test_guided_runs_in_workers_shares_match_solo_guided(vp):
    """With two workers a round of forwards with autograd is cut in two shares, each with its own graph, and the
    VJP round computes each graph's backward in its own thread: every run still gets its solo guided result."""
    n = 160
    base = {"sampler": "ddim", "num_steps": 6, "clip_x0": 3.0, "use_guidance": True, "guidance_scale": 2.0}
    jobs = [
        (vp, {**base, "seed": s, "reward_fn": make_reward("x_coordinate" if s % 2 else "inside_ring")}, _generate(n))
        for s in range(4)
    ]
    with SamplingEngine(max_wait_ms=300, vjp_wait_ms=300, workers=2) as engine:
        got = _together(engine, jobs)
        for (m, kw, _), res in zip(jobs, got):
            _assert_same(res, m.generate(n, **kw), f"guided seed {kw['seed']} in a worker's share")
        s = engine.stats()
    assert s.max_rows_call == 4 * n and 0 < s.vjp_rounds <= 6  # every run's forward in one round, its VJP in one

    class _Vjp:  # what split_by_graph reads of a request
        def __init__(self, rows, graph):
            self.x, self.graph = torch.zeros(rows, 2), graph

    g1, g2, used = Graph(None, None, [1]), Graph(None, None, [1]), Graph(None, None, [1], used=True)
    reqs = [_Vjp(300, g1), _Vjp(300, g2), _Vjp(100, g1), _Vjp(300, used), _Vjp(300, None)]
    shares = split_by_graph(reqs, 2)
    assert len(shares) == 2 and sorted(map(len, shares)) == [2, 3]
    one = next(sh for sh in shares if reqs[0] in sh)  # a graph's requests stay together (one backward answers them)
    assert reqs[2] in one and reqs[1] not in one  # and the two graphs' backwards go to different threads
    assert split_by_graph(reqs[:1], 2) == [reqs[:1]]


def test_stats_and_the_wait_estimate(vp):
    with SamplingEngine(max_wait_ms=1000) as engine:
        assert engine.estimate_wait(100, vp) is None
        _together(engine, [(vp, {"sampler": "ddim", "num_steps": 4, "seed": 0})])
        s = engine.stats()
        assert (s.rounds, s.rows, s.rows_last_call, s.open_runs, s.queued_rows) == (4, 4 * N, N, 0, 0)
        assert s.seconds_per_row > 0 and s.mean_rows_per_call == N
        assert engine.estimate_wait(100, vp) == pytest.approx(100 * s.seconds_per_row)
        with engine.session(vp):  # an open run that does not call holds a round back for max_wait
            th = threading.Thread(target=_one_call, args=(engine, vp, 30))
            th.start()
            _until(lambda: engine.stats().queued_rows == 30)
            assert engine.estimate_wait(10, vp) == pytest.approx(40 * s.seconds_per_row)
            assert engine.estimate_wait(10, vp, calls=3) == pytest.approx(120 * s.seconds_per_row)
            th.join(timeout=30)
        assert engine.stats().rounds == 5
        with pytest.raises(ValueError, match="calls must be a positive integer, got 0"):
            engine.estimate_wait(10, vp, calls=0)


def test_bad_calls_fail_in_their_own_thread(engine, vp, cond):
    with engine.session(vp) as net:
        with pytest.raises(ValueError, match=r"x must have shape \[B, 2\], got \[4, 3\]"):
            net(torch.zeros(4, 3), 10)
        with pytest.raises(ValueError, match="labels must be None"):
            net(torch.zeros(4, 2), 10, torch.zeros(4, dtype=torch.long))
        with pytest.raises(ValueError, match="t must be a number or a real tensor of 1 or 4 values"):
            net(torch.zeros(4, 2), torch.ones(3))
        with pytest.raises(ValueError, match="network serves another model"):
            cond.generate(4, network=net)
    with engine.session(cond) as net:
        with pytest.raises(ValueError, match=r"labels must be an integer tensor of shape \[4\]"):
            net(torch.zeros(4, 2), 10, torch.zeros(4))
    with pytest.raises(RunCancelled):
        net(torch.zeros(4, 2), 10)  # the session has closed
    for bad, match in (
        ({"max_wait_ms": -1}, "max_wait_ms"),
        ({"vjp_wait_ms": 5000}, "vjp_wait_ms"),
        ({"max_rows": 0}, "max_rows"),
        ({"workers": 0}, "workers"),
    ):
        with pytest.raises(ValueError, match=match):
            SamplingEngine(**bad)
    _assert_serves(engine, vp)


def test_a_closed_engine_refuses(vp):
    engine = SamplingEngine()
    engine.close()
    with pytest.raises(RuntimeError, match="closed"), engine.session(vp):
        pass


# ------------------------------------------------------------------------------------------------ helpers
def _raw_run(model, kw, network=None):
    """Samples of the model's raw weights (generate uses the EMA weights)."""
    predict = model.predictor(None, N, use_ema=False, network=network)
    gen = model.make_generator(kw["seed"])
    return sample(predict, model.process, (N, 2), sampler=kw["sampler"], num_steps=kw["num_steps"], generator=gen)


class _Rows:
    def __init__(self, b):
        self.x = torch.zeros(b, 2)


def _generate(n):
    return lambda model, net, kw: model.generate(n, network=net, **kw)


def _one_call(engine, model, rows):
    with engine.session(model) as net:
        net(torch.zeros(rows, 2), 10)


def _until(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def _assert_serves_new(model):
    with SamplingEngine() as engine:
        _assert_serves(engine, model)


def test_the_engine_counts_its_open_runs(vp):
    """open_runs (what the app's stream throttle shares its rate by) follows the sessions as they open and close."""
    with SamplingEngine() as engine:
        assert engine.open_runs() == 0
        with engine.session(vp), engine.session(vp):
            assert engine.open_runs() == 2
            with engine.session(vp):
                assert engine.open_runs() == 3
            assert engine.open_runs() == 2
        assert engine.open_runs() == 0


def test_a_round_answers_its_plain_forwards_before_those_kept_with_autograd(vp, monkeypatch):
    """A round holding a guided forward (kept with autograd) and a plain one computes the plain one first: its run
    is answered and goes on while the guided rows are computed.  The guided call is queued first; a third open run
    that never calls makes the engine's own thread start the round (after max_wait).  The guided group's compute
    waits (up to 10 s) for the plain caller to have its answer: in the other order it would wait in vain."""
    from adiff.serving import engine as engine_module

    plain_answered, waited = threading.Event(), []
    real = engine_module.forward_rows_graph

    def guided_compute(*args, **kwargs):
        waited.append(plain_answered.wait(10.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "forward_rows_graph", guided_compute)
    with SamplingEngine(max_wait_ms=200) as engine, engine.session(vp) as guided, engine.session(vp) as plain:
        with engine.session(vp):  # open, never calls: the round starts when max_wait has passed
            first = threading.Thread(target=lambda: engine.call(guided, torch.randn(64, 2), 0.5, grad=True))
            first.start()
            while engine.stats().queued_calls < 1:
                time.sleep(0.001)

            def plain_call():
                engine.call(plain, torch.randn(50, 2), 0.5)
                plain_answered.set()

            second = threading.Thread(target=plain_call)
            second.start()
            first.join()
            second.join()
    assert waited == [True]  # one guided compute, and the plain answer came before it ran
