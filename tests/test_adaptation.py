"""Adaptation mechanics on the shipped 8gaussians preset: events, buffer, hooks, stop/reset consistency.
The quality figures (reward gain, MMD to the tilted target) are printed by bench/bench_adaptation.py."""
import pytest
import torch

from adiff.steering.adaptation import AdaptationConfig, Adapter
from adiff.data import make_dataset
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
    adapter = Adapter(model, make_reward("x_coordinate"), {**FAST, "guided_sampling": True, "replay_share": 0.0})
    ev = next(adapter.run(1))
    assert ev.fresh_reward_mean > 0.5, "DPS-guided fresh samples lean towards +x"
