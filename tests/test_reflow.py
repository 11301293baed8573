"""Reflow (adiff.steering.reflow): on data N(0, s^2 I) the 1-rectified flow's paths bend (straightness 1.211 at
s = 0.5, tests/test_compare.py) and one Euler step collapses onto the mean; after reflow on the exact couplings
the paths are straight and one Euler step samples the data."""

import pytest
import torch

from adiff import DiffusionModel
from adiff.data.gmm import GaussianMixture
from adiff.diffusion import Predictor, make_process
from adiff.eval.metrics import mmd2
from adiff.steering.reflow import couple, path_straightness_of, reflow_loss, reflow_progressive

S = 0.5
TINY_FLOW = {
    "model_type": "unconditional",
    "embedding_dim": 16,
    "hidden_dim": 16,
    "num_layers": 1,
    "num_heads": 4,
    "data_shape": [2],
    "process": "flow",
    "prediction_type": "velocity",
    "ema_decay": 0.99,
    "device": "cpu",
}


def _gaussian():
    return GaussianMixture(
        [1.0], torch.zeros(1, 2, dtype=torch.float64), (S * S * torch.eye(2, dtype=torch.float64))[None]
    )


def _exact_coupling(n=20_000):
    g = _gaussian()
    proc = make_process("flow")
    return g, couple(Predictor(g.model_fn(proc, "velocity"), proc, "velocity"), n, "heun", 50, data_shape=(2,))


def test_exact_coupling_is_the_radial_map():
    """The 1-rectified flow of N(0, s^2 I) maps x_1 to s x_1 (c(t)^2 = (1 - t)^2 s^2 + t^2 ends at s^2)."""
    _, c = _exact_coupling(2000)
    assert len(c) == 2000 and c.nfe == 99 and c.sampler == "heun"
    err = (c.x0 - S * c.x_T).norm(dim=1) / c.x_T.norm(dim=1)  # Heun's error grows with |x_1|: relative
    assert err.max() < 3e-3, f"relative error {err.max():.2e}"


def _one_step_mmd(model_or_predict, draws=3):
    """Mean over draws of MMD^2(one Euler step, data) - MMD^2(data, data), and its standard error."""
    g = _gaussian()
    diffs = []
    for d in range(draws):
        if isinstance(model_or_predict, DiffusionModel):
            x, _ = model_or_predict.generate(2000, seed=100 + d, sampler="euler", num_steps=1)
        else:
            from adiff.samplers import sample

            x = sample(
                model_or_predict,
                make_process("flow"),
                (2000, 2),
                sampler="euler",
                num_steps=1,
                generator=torch.Generator().manual_seed(100 + d),
            )
        ref = g.sample(2000, torch.Generator().manual_seed(200 + d))[0]
        other = g.sample(2000, torch.Generator().manual_seed(300 + d))[0]
        diffs.append(mmd2(x, ref) - mmd2(other, ref))
    v = torch.tensor(diffs, dtype=torch.float64)
    return float(v.mean()), float(v.std() / draws**0.5)


def test_reflow_on_exact_couplings_straightens_and_samples_in_one_step():
    g, c = _exact_coupling()
    proc = make_process("flow")
    teacher = Predictor(g.model_fn(proc, "velocity"), proc, "velocity")
    # the teacher: one Euler step lands on the mean (v(x_1, 1) = x_1), far from the data
    bad, bad_se = _one_step_mmd(teacher)
    assert bad > 0.1
    torch.manual_seed(0)
    student = DiffusionModel(TINY_FLOW)
    events = list(reflow_progressive(student, c, 500, learning_rate=2e-3, straightness_every=250))
    assert [e.step for e in events] == list(range(1, 501)) and events[-1].num_steps == 500
    assert [e.straightness is not None for e in events].count(True) == 2
    assert events[-1].loss < 0.1 * events[0].loss
    xT = torch.randn(2000, 2, generator=torch.Generator().manual_seed(5))
    assert path_straightness_of(student, xT, num_steps=100) <= 1.02
    gap, se = _one_step_mmd(student)
    assert gap <= 3 * max(se, 1e-4), (gap, se)


def test_reflow_checks_its_inputs():
    _, c = _exact_coupling(100)
    vp = DiffusionModel({**TINY_FLOW, "process": "vp", "prediction_type": "epsilon", "num_diffusion_steps": 100})
    with pytest.raises(ValueError, match="student must be a flow model"):
        next(reflow_progressive(vp, c, 10))
    with pytest.raises(ValueError, match="reflow trains a flow model"):
        reflow_loss(vp, c.x_T, c.x0)
    with pytest.raises(ValueError, match=r"sampler must be one of .* \(a deterministic ODE solver\), got 'ddpm'"):
        couple(vp, 10, "ddpm", 10)
    with pytest.raises(ValueError, match="num_steps must be an integer in 1..1000000, got 0"):
        next(reflow_progressive(DiffusionModel(TINY_FLOW), c, 0))
    with pytest.raises(ValueError, match="data_shape must be given"):
        couple(Predictor(lambda x, t: x, make_process("flow"), "velocity"), 10)


def test_a_reflow_preset_trains_on_its_teachers_pairs_from_its_weights():
    """The training command's data for a reflow recipe: the teacher's weights in the student, and pairs that are the
    teacher's ODE map of their own noise; train_loop then trains on those pairs (one step moves the weights)."""
    from adiff.cli.distributed import init_distributed, train_loop
    from adiff.cli.reflow import training_data
    from adiff.presets import PresetSpec, ReflowRecipe, load_preset, preset_spec

    base = preset_spec("moons-reflow")
    spec = PresetSpec(
        "tiny-reflow",
        "moons",
        base.config,
        "",
        "euler",
        2,
        sample_kwargs=base.sample_kwargs,
        reflow=ReflowRecipe("moons-flow", pairs=64, num_steps=5),
    )
    student = DiffusionModel({**spec.config, "device": "cpu"})
    data = training_data(spec, student, seed=0, quiet=True)
    teacher = load_preset("moons-flow", "cpu")
    for a, b in zip(student.ema.module.parameters(), teacher.ema.module.parameters()):
        assert torch.equal(a, b)
    x0, _ = teacher.generate(64, seed=None, x_T=data.noise, sampler="dpmpp_2m", num_steps=5, clip_x0=4.0)
    assert torch.allclose(data.x, x0, atol=1e-5) and data.labels is None
    assert data.card["reflow"]["teacher"] == "moons-flow" and data.card["reflow"]["nfe_per_pair"] == 5
    student.setup_training({"learning_rate": 1e-3, "scheduler_steps": 1, "warmup_steps": 0})
    before = [p.detach().clone() for p in student.denoiser.parameters()]
    (ev,) = train_loop(
        student, data.x, None, steps=1, batch_size=32, seed=0, info=init_distributed("cpu"), noise=data.noise
    )
    assert ev.loss < 1.0 and any(not torch.equal(p, q) for p, q in zip(student.denoiser.parameters(), before))


def test_a_conditional_model_couples_and_reflows_with_its_labels():
    cond = {**TINY_FLOW, "model_type": "conditional", "num_classes": 3}
    torch.manual_seed(0)
    teacher = DiffusionModel(cond)
    with torch.no_grad():  # a fresh model outputs 0 (its output layers start at zero): give it a field
        for p in [*teacher.ema.module.parameters(), *teacher.denoiser.parameters()]:
            p.add_(0.1 * torch.randn_like(p))
    c = couple(teacher, 30, "euler", 4, condition=torch.arange(30) % 3, batch_size=7)
    assert c.labels.tolist() == (torch.arange(30) % 3).tolist() and c.x0.shape == (30, 2)
    x0, _ = teacher.generate(30, torch.arange(30) % 3, x_T=c.x_T, sampler="euler", num_steps=4)
    assert torch.allclose(c.x0, x0, atol=1e-6)  # chunks of 7 keep each pair's own label
    assert couple(teacher, 4, "euler", 2).labels.tolist() == [3, 3, 3, 3]  # no condition: the null class
    (ev,) = reflow_progressive(teacher.clone(), c, 1)
    assert ev.loss > 0 and ev.straightness is not None
    with pytest.raises(ValueError, match="both be conditional or both unconditional"):
        next(reflow_progressive(DiffusionModel(TINY_FLOW), c, 1))
