"""Adaptation on the shipped 8gaussians preset: the fitted mixture is the tilted target however long the run,
a run stays on it, and the mechanics (events, buffer, hooks, stop/reset consistency).  The long-run figures are
printed by bench/bench_adaptation.py."""
import pytest
import torch

from adiff.steering.adaptation import AdaptationConfig, Adapter
from adiff.data import eight_gaussians_mixture, make_dataset
from adiff.eval.metrics import MMDReference
from adiff.presets import load_preset
from adiff.steering.rewards import make_reward

FAST = {"batch_size": 64, "eval_samples": 64, "sample_steps": 10, "buffer_capacity": 50, "learning_rate": 1e-3}


@pytest.fixture
def model():
    return load_preset("8gaussians", device="cpu").clone(device="cpu")


@pytest.fixture(scope="module")
def data():
    return make_dataset("8gaussians", 4000, seed=0)


def weights(m):
    return [p.detach().clone() for p in m.ema.module.parameters()]


def test_events_buffer_hooks_and_counters(model, data):
    seen = []
    model.register_adaptation_hook(lambda m, ev: seen.append((m, ev.step)))
    adapter = Adapter(model, make_reward("x_coordinate"), FAST, data=data)
    events = list(adapter.run(4))
    assert [e.step for e in events] == [1, 2, 3, 4] and [s for _, s in seen] == [1, 2, 3, 4] and seen[0][0] is model
    assert model.adaptation_step == 4
    q = [e.reward_queries for e in events]
    assert all(b > a for a, b in zip(q, q[1:]))
    assert 0 < events[-1].buffer.samples.shape[0] <= 50 and events[-1].buffer.samples.shape[1:] == (2,)
    r = events[-1].buffer.rewards
    assert torch.all(r[:-1] >= r[1:]), "the snapshot is sorted best first"
    assert events[-1].samples.shape == (64, 2) and torch.isfinite(events[-1].samples).all()
    assert all(torch.isfinite(torch.tensor([e.loss, e.reward_mean, e.distance_to_data])).all() for e in events)


def test_stop_midway_leaves_a_consistent_model_and_reset_restores_it(model, data):
    base = weights(model)
    adapter = Adapter(model, make_reward("x_coordinate"), FAST, data=data)
    for ev in adapter.run(100):
        if ev.step == 3:
            break  # the user pressed Stop
    after = weights(model)
    assert any(not torch.equal(a, b) for a, b in zip(base, after))
    x, _ = model.generate(32, seed=0, sampler="ddim", num_steps=10)
    assert torch.isfinite(x).all()
    adapter.reset()
    assert all(torch.equal(a, b) for a, b in zip(base, weights(model)))
    assert adapter.buffer.size() == 0 and model.adaptation_step == 0


def test_adaptation_moves_reward_towards_the_tilt(model, data):
    adapter = Adapter(model, make_reward("x_coordinate"), {**FAST, "eval_samples": 400, "batch_size": 128, "guidance_scale": 2.0}, data=data)
    before = float(adapter.base_samples[:, 0].mean())
    last = None
    for last in adapter.run(40):
        pass
    assert last.reward_mean > before + 0.3, (before, last.reward_mean)


def test_adapt_facade_and_validation(model, data):
    metrics = model.adapt(data, 2, make_reward("x_coordinate"), FAST)
    assert len(metrics["reward_mean"]) == 2 and len(metrics["loss"]) == 2
    for bad, field in [({"learning_rate": 0}, "learning_rate"), ({"replay_share": 0.8, "buffer_share": 0.5}, "replay_share"),
                       ({"batch_size": 2}, "batch_size"), ({"guided_sampling": "yes"}, "guided_sampling"), ({"lr": 1}, "lr")]:
        with pytest.raises(ValueError, match=field):
            AdaptationConfig.from_dict(bad)
    with pytest.raises(ValueError, match="num_steps"):
        next(Adapter(model, make_reward("x_coordinate"), FAST, data=data).run(0))


def test_guided_sampling_and_no_data(model):
    """Without data a pool of base samples is the replay pool; DPS-guided fresh samples are shown, never trained on."""
    with pytest.raises(ValueError, match="replay_share"):
        AdaptationConfig.from_dict({"guided_sampling": True, "replay_share": 0.0})
    adapter = Adapter(model, make_reward("x_coordinate"), {**FAST, "guided_sampling": True, "replay_share": 0.5})
    ev = next(adapter.run(1))
    assert ev.fresh_reward_mean > 0.5, "DPS-guided fresh samples lean towards +x"
    assert len(ev.buffer.rewards) > 0 and len(adapter.reservoir) == 0
    x, _, w, _ = adapter._batch()
    assert len(x) == 32 and torch.all(w == 1), "the batch is the replay rows alone"


@pytest.mark.slow
def test_the_fitted_mixture_is_the_tilted_target_however_long_the_run(model, data):
    """The weighted rows of every batch are what the loss is fitted to, so they must describe p exp(lambda r), from
    the first step to the last: a top-k buffer of the best rewards (or a reweighting that only holds early) drifts
    towards argmax r as rewards accumulate.  No training here: the fresh samples stay the base model's."""
    lam = 2.0
    tilt = eight_gaussians_mixture().tilted_linear([1.0, 0.0], lam)
    target_mean = float((tilt.weights * tilt.means[:, 0]).sum())  # 1.857; the data's mean x is 0
    exact, _ = tilt.sample(1000, torch.Generator().manual_seed(1))
    cfg = {"batch_size": 256, "sample_steps": 25, "eval_samples": 2, "replay_share": 0.2, "buffer_share": 0.6,
           "buffer_capacity": 100, "guidance_scale": lam}
    adapter = Adapter(model, make_reward("x_coordinate"), cfg, data=data)
    windows = {}
    for step in range(1, 201):
        x, _, w, _ = adapter._batch()
        if step <= 40 or step > 160:
            xs, ws = windows.setdefault("early" if step <= 40 else "late", ([], []))
            xs.append(x), ws.append(w.double())
    for name, (xs, ws) in windows.items():
        x, w = torch.cat(xs), torch.cat(ws)
        gain = float((w * x[:, 0].double()).sum() / w.sum()) / target_mean
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:2000]  # a uniform subsample
        dist = MMDReference(x[keep], w[keep])(exact)
        # measured: this code 93-98% of the gain at MMD^2 4.5e-3..5.8e-3 (the base model's DDIM-25 samples, tilted);
        # the top-k buffer it replaces 101% at 1.5e-2 (steps 1-40), 107% at 2.5e-2, then 400% at 0.19 (steps 161-200)
        assert 0.85 <= gain <= 1.15 and dist < 1e-2, (name, gain, dist)
