"""Adaptation on the shipped 8gaussians preset: the fitted mixture is the tilted target however long the run,
a run stays on it, and the mechanics (events, buffer, hooks, stop/reset consistency); small models of every
process and prediction type (a rectified flow with its velocity among them) rise to the exact tilt of a Gaussian
mixture and stay there, where a compounding implementation overshoots.  The long-run figures are printed by
bench/bench_adaptation.py."""

import pytest
import torch

from adiff.data import eight_gaussians_mixture, make_dataset
from adiff.data.gmm import GaussianMixture
from adiff.eval.metrics import MMDReference
from adiff.model import DiffusionModel
from adiff.presets import load_preset
from adiff.steering.adaptation import AdaptationConfig, Adapter
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
    assert all(e.distance_to_data_se > 0 and e.distance_to_target_se > 0 for e in events)  # the distances' SEs


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
    adapter = Adapter(
        model,
        make_reward("x_coordinate"),
        {**FAST, "eval_samples": 400, "batch_size": 128, "guidance_scale": 2.0},
        data=data,
    )
    before = float(adapter.base_samples[:, 0].mean())
    last = None
    for last in adapter.run(40):
        pass
    assert last.reward_mean > before + 0.3, (before, last.reward_mean)


def test_adapt_facade_and_validation(model, data):
    metrics = model.adapt(data, 2, make_reward("x_coordinate"), FAST)
    assert len(metrics["reward_mean"]) == 2 and len(metrics["loss"]) == 2
    for bad, field in [
        ({"learning_rate": 0}, "learning_rate"),
        ({"replay_share": 0.8, "buffer_share": 0.5}, "replay_share"),
        ({"batch_size": 2}, "batch_size"),
        ({"guided_sampling": "yes"}, "guided_sampling"),
        ({"lr": 1}, "lr"),
    ]:
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


def test_the_fitted_mixture_is_the_tilted_target_however_long_the_run(model, data):
    """The weighted rows of every batch are what the loss is fitted to, so they must describe p exp(lambda r), from
    the first step to the last: a top-k buffer of the best rewards (or a reweighting that only holds early) drifts
    towards argmax r as rewards accumulate.  No training here: the fresh samples stay the base model's."""
    lam = 2.0
    tilt = eight_gaussians_mixture().tilted_linear([1.0, 0.0], lam)
    target_mean = float((tilt.weights * tilt.means[:, 0]).sum())  # 1.857; the data's mean x is 0
    exact, _ = tilt.sample(1000, torch.Generator().manual_seed(1))
    cfg = {
        "batch_size": 256,
        "sample_steps": 25,
        "eval_samples": 2,
        "replay_share": 0.2,
        "buffer_share": 0.6,
        "buffer_capacity": 100,
        "guidance_scale": lam,
    }
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


# Two modes at x = -1.5 and 1.5 (std 0.5): with r = x and lambda = 1 the exact tilt puts 95% of the mass on the
# right mode (weights proportional to w_k exp(lambda mu_k): GaussianMixture.tilted_linear), mean x 1.61.
TWO_MODES = GaussianMixture([0.5, 0.5], [[-1.5, 0.0], [1.5, 0.0]], (0.25 * torch.eye(2)).expand(2, 2, 2).clone())


def adapt_small_model(process: str, prediction_type: str, steps: int = 150, compounding: bool = False):
    """Train a small model of TWO_MODES (600 steps), adapt it with r = x, lambda = 1, and return its curve
    [(step, gain, MMD^2 to the exact tilt)] (gain: the reward gain as a share of the exact tilt's, every 10 steps).
    compounding=True draws the fresh samples from the model being adapted (weighted as before): retraining on its
    own reward-weighted samples, the collapse this module must not show."""
    torch.manual_seed(0)
    config = {
        "model_type": "unconditional",
        "embedding_dim": 32,
        "hidden_dim": 32,
        "num_layers": 1,
        "num_heads": 2,
        "data_shape": [2],
        "device": "cpu",
        "process": process,
        "prediction_type": prediction_type,
        "ema_decay": 0.99,
    }
    if process == "vp":
        config["num_diffusion_steps"] = 1000
    m = DiffusionModel(config)
    x, _ = TWO_MODES.sample(20_000, torch.Generator().manual_seed(0))
    m.setup_training({"learning_rate": 3e-3, "scheduler_steps": 600, "warmup_steps": 50})
    for _ in m.train_progressive(x, num_steps=600, batch_size=256):
        pass
    lam = 1.0
    tilt = TWO_MODES.tilted_linear([1.0, 0.0], lam)
    target_mean = float((tilt.weights * tilt.means[:, 0]).sum())
    exact = MMDReference(tilt.sample(1000, torch.Generator().manual_seed(1))[0])
    cfg = {
        "batch_size": 128,
        "eval_samples": 1000,
        "sample_steps": 20,
        "eval_every": 10,
        "learning_rate": 1e-3,
        "buffer_capacity": 200,
        "guidance_scale": lam,
    }
    adapter = Adapter(m, make_reward("x_coordinate"), cfg, data=(x[:4000], None))
    if compounding:
        adapter.base_net = m.ema.module
    base = float(adapter.base_samples[:, 0].mean())
    return [
        (ev.step, (ev.reward_mean - base) / (target_mean - base), exact(ev.samples))
        for ev in adapter.run(steps)
        if ev.step % 10 == 0
    ]


def rises_and_stays(curve, settle: int = 100) -> tuple[bool, str]:
    """80% of the gain by step 50; from step ``settle`` to the end (100-150; x0 models 150-250) a mean gain of 90-106%, every gain within 85-110% and MMD^2 to
    the exact tilt <= 5e-3 (the issue's bound; the data-vs-data floor at 1000 samples is ~1e-4).  Measured (steps
    100-150): flow velocity 100-102% at <= 2.4e-3, flow sample 92-96% at <= 4.4e-3 (x0-prediction rises more slowly),
    VP v 99-104% at <= 1.7e-3, VP sample (Min-SNR-100 loss, steps 150-250) 92-99% at <= 1.4e-3; compounding 111-115%
    at up to 8.0e-3."""
    first = next((s for s, g, _ in curve if g >= 0.8), None)
    late = [(g, d) for s, g, d in curve if s >= settle]
    mean = sum(g for g, _ in late) / len(late)
    lo, hi, worst = min(g for g, _ in late), max(g for g, _ in late), max(d for _, d in late)
    ok = first is not None and first <= 50 and 0.90 <= mean <= 1.06 and lo >= 0.85 and hi <= 1.10 and worst <= 5e-3
    return (
        ok,
        f"80% at step {first}; steps {settle}-{curve[-1][0]}: mean gain {mean:.0%}, {lo:.0%}..{hi:.0%}, worst MMD2 {worst:.1e}",
    )


@pytest.mark.parametrize(
    "process,prediction_type",
    [
        ("flow", "velocity"),
        pytest.param("flow", "sample", marks=pytest.mark.slow),
        pytest.param("vp", "v_prediction", marks=pytest.mark.slow),
        pytest.param("vp", "sample", marks=pytest.mark.slow),
        # Open (found here, not fixed): this small epsilon model samples 1.4% of its points beyond |x| = 4 (up to 51) with
        # unclipped DDIM-20; the weights cap such base-model errors at w_max but do not zero them, and the adapted model
        # runs off to 200-650% of the gain (MMD^2 0.1-0.2); with the presets' clip_x0 = 4, 105-112% at 1.5e-2..2.6e-2.
        pytest.param(
            "vp", "epsilon", marks=[pytest.mark.slow, pytest.mark.xfail(strict=True, reason="base-model outliers")]
        ),
    ],
)
def test_every_process_and_prediction_type_rises_to_the_tilt_and_stays(process, prediction_type):
    slow = prediction_type == "sample"  # an x0 model's reward rises more slowly: a longer run, a later window
    ok, summary = rises_and_stays(
        adapt_small_model(process, prediction_type, 250 if slow else 150), 150 if slow else 100
    )
    assert ok, f"{process}/{prediction_type}: {summary}"


@pytest.mark.slow
def test_retraining_on_its_own_weighted_samples_overshoots_and_the_check_sees_it():
    """The check above can fail: the same run with fresh samples from the adapted model compounds the tilt
    (Ferbach et al., NeurIPS 2024).  Measured (flow, velocity): 109-115% of the gain over steps 40-150, MMD^2 up
    to 9.4e-3; the real run 97-102% at <= 3.8e-3."""
    ok, summary = rises_and_stays(adapt_small_model("flow", "velocity", compounding=True))
    assert not ok, summary
