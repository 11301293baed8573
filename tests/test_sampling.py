"""Solver correctness with the exact Gaussian-mixture denoiser (no learned error), for every process, prediction type
and solver, plus step-level identities, grids and bad input."""

import math

import pytest
import torch

from adiff.data.gmm import GaussianMixture
from adiff.diffusion import Predictor, make_process
from adiff.diffusion.parameterization import PROCESS_PREDICTION_TYPES, from_prediction, to_prediction
from adiff.diffusion.schedules import make_schedule
from adiff.samplers import SOLVERS, TrajectoryRecorder, sample, sample_progressive, sampling_timesteps, solvers_for
from adiff.samplers.ddim import DDIM
from adiff.samplers.ddpm import DDPM, posterior


def eight_gaussians():
    ang = torch.arange(8) * math.pi / 4
    means = torch.stack([2 * ang.cos(), 2 * ang.sin()], 1)
    return GaussianMixture(torch.full((8,), 1 / 8), means, 0.0625 * torch.eye(2).repeat(8, 1, 1))


def check_mixture(x, g, mean_tol, cov_rtol):
    n = x.shape[0]
    lab = torch.cdist(x.double(), g.means).argmin(1)
    w = torch.bincount(lab, minlength=g.num_components).double() / n
    se_w = (g.weights * (1 - g.weights) / n).sqrt()
    assert ((w - g.weights).abs() < 4.5 * se_w).all(), f"mode weights {w.tolist()}"
    for k in range(g.num_components):
        xk = x[lab == k].double()
        assert (xk.mean(0) - g.means[k]).norm() < mean_tol, f"mean of mode {k}: {xk.mean(0).tolist()}"
        cov = torch.cov(xk.T)
        assert torch.allclose(cov, g.covs[k], atol=cov_rtol * float(g.covs[k].diagonal().mean())), (
            f"cov of mode {k}: {cov.tolist()}"
        )


def exact(process, prediction_type="epsilon", g=None, clip_x0=None):
    g = g or eight_gaussians()
    return Predictor(g.model_fn(process, prediction_type), process, prediction_type, clip_x0)


VP = make_process("vp", schedule="linear", num_steps=1000)
FLOW = make_process("flow")
# Steps at which each solver reaches the mixture's means and covariances, with a margin over the fewest that pass
# (measured on their default grids: VP ddim 25, dpmpp_2m 25, euler 25, heun 20; flow euler 25, heun 8, dpmpp_2m 20).
# DDPM takes every step of T.  The flow needs fewer: its paths are straighter.
STEPS = {
    "vp": {"ddpm": None, "ddim": 40, "dpmpp_2m": 30, "euler": 40, "heun": 25},
    "flow": {"euler": 35, "heun": 12, "dpmpp_2m": 25},
}
CASES = [(p, pt, s) for p in (VP, FLOW) for pt in PROCESS_PREDICTION_TYPES[p.name] for s in solvers_for(p)]


@pytest.mark.slow
@pytest.mark.parametrize("process,prediction_type,sampler", CASES, ids=[f"{p.name}-{pt}-{s}" for p, pt, s in CASES])
def test_every_solver_and_prediction_type_reproduces_the_mixture(process, prediction_type, sampler):
    x = sample(
        exact(process, prediction_type),
        process,
        (4000, 2),
        sampler=sampler,
        num_steps=STEPS[process.name][sampler],
        generator=torch.Generator().manual_seed(0),
    )
    # sampling error of a mode's mean: 0.25 / sqrt(500) ~ 0.011 per coordinate; a few-step solver adds a
    # discretisation bias of up to about 0.02 towards the origin, so the bound is 0.06 for all.
    check_mixture(x, eight_gaussians(), mean_tol=0.06, cov_rtol=0.25)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("sampler,steps", [("ddpm", None), ("ddim", 50), ("dpmpp_2m", 30)])
def test_exact_denoiser_reproduces_the_mixture_on_each_schedule(schedule, sampler, steps):
    proc = make_process("vp", schedule=schedule, num_steps=1000)
    x = sample(
        exact(proc), proc, (4000, 2), sampler=sampler, num_steps=steps, generator=torch.Generator().manual_seed(0)
    )
    check_mixture(x, eight_gaussians(), mean_tol=0.06, cov_rtol=0.25)


@pytest.mark.parametrize("process,sampler", [(VP, "ddim"), (FLOW, "euler"), (FLOW, "heun"), (VP, "dpmpp_2m")])
def test_wrong_denoiser_is_caught(process, sampler):
    """The check above has teeth: sampling with a mis-scaled prediction fails it."""
    g = eight_gaussians()
    ptype = "epsilon" if process.name == "vp" else "velocity"
    fn = g.model_fn(process, ptype)
    wrong = Predictor(lambda x, t: 0.9 * fn(x, t), process, ptype)
    x = sample(
        wrong,
        process,
        (4000, 2),
        sampler=sampler,
        num_steps=STEPS[process.name][sampler],
        generator=torch.Generator().manual_seed(0),
    )
    with pytest.raises(AssertionError):
        check_mixture(x, g, mean_tol=0.06, cov_rtol=0.25)


@pytest.mark.parametrize("process", [VP, FLOW, make_process("vp", schedule="cosine", num_steps=1000)])
def test_exact_predictions_are_posterior_means(process):
    """x0* and eps* of the closed form agree with Tweedie's formula eps* = -sigma grad log p_t (autograd on the
    noised mixture's density) and with each other (x_t = alpha x0* + sigma eps*), at several times."""
    g = eight_gaussians()
    for t in [300, 700, 1000] if process.name == "vp" else [0.2, 0.5, 0.97]:
        a, s = process.coefficients(t)
        x = (torch.randn(64, 2, dtype=torch.float64) * 2).requires_grad_(True)
        noised = GaussianMixture(g.weights, a * g.means, a * a * g.covs + s * s * torch.eye(2, dtype=torch.float64))
        (score,) = torch.autograd.grad(noised.log_prob(x).sum(), x)
        x = x.detach()
        eps = g.model_fn(process, "epsilon")(x, t) if process.name == "vp" else None
        x0 = g.model_fn(process, "sample")(x, t)
        eps_from_x0 = (x - a * x0) / s
        assert torch.allclose(eps_from_x0, -s * score, atol=1e-9)
        if eps is not None:
            assert torch.allclose(eps, eps_from_x0, atol=1e-9)
    if process.name == "flow":  # at t = 1 (alpha = 0) x0* is the data mean, and the velocity is x_1 - mean
        x = torch.randn(8, 2, dtype=torch.float64)
        assert torch.allclose(g.model_fn(process, "sample")(x, 1.0), g.means.mean(0).expand(8, 2), atol=1e-12)
        assert torch.allclose(g.model_fn(process, "velocity")(x, 1.0), x - g.means.mean(0), atol=1e-12)


@pytest.mark.parametrize("ptype", ["epsilon", "sample", "v_prediction", "velocity"])
def test_prediction_conversions_invert(ptype):
    """to_prediction(from_prediction(x0, eps)) = (x0, eps) on the VP path (alpha^2 + sigma^2 = 1) and, for the types
    a flow takes, on the flow path (alpha + sigma = 1)."""
    x0, eps = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    paths = []
    if ptype != "velocity":
        phi = 0.7
        paths.append((math.cos(phi), math.sin(phi)))
    if ptype in PROCESS_PREDICTION_TYPES["flow"] or ptype == "v_prediction":
        paths.append((0.3, 0.7))
    for a, s in paths:
        x_t = a * x0 + s * eps
        out = from_prediction(x0, eps, a, s, ptype)
        x0b, epsb = to_prediction(out, x_t, a, s, ptype)
        assert torch.allclose(x0b, x0, atol=1e-12) and torch.allclose(epsb, eps, atol=1e-12)
    if ptype == "v_prediction":  # on the VP path v is the velocity dx/dphi of x = cos(phi) x0 + sin(phi) eps
        phi, h = 0.7, 1e-6
        dx = ((math.cos(phi + h) - math.cos(phi - h)) * x0 + (math.sin(phi + h) - math.sin(phi - h)) * eps) / (2 * h)
        assert torch.allclose(from_prediction(x0, eps, math.cos(phi), math.sin(phi), ptype), dx, atol=1e-6)


def test_ddpm_step_is_eq11():
    """For s = t - 1 the posterior mean equals Ho et al.'s eq. 11 and the variance is beta_tilde."""
    sch = make_schedule("linear", 1000)
    proc = make_process("vp", schedule="linear", num_steps=1000)
    x, eps, t = torch.randn(8, 2), torch.randn(8, 2), 600
    pred = Predictor(lambda x_, t_: eps, proc)
    g = torch.Generator().manual_seed(0)
    res = DDPM().step(pred, proc, x, t, t - 1, generator=g)
    out = res.x_prev
    assert torch.equal(res.pred.eps, eps) and res.state == {}, "the step reports the prediction it made at (x_t, t)"
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    beta, abar = sch.betas[t - 1].double(), sch.alphas_cumprod[t - 1].double()
    var = (1 - sch.alphas_cumprod[t - 2].double()) / (1 - abar) * beta
    eq11 = (x - beta / (1 - abar).sqrt() * eps) / (1 - beta).sqrt() + var.sqrt() * z
    assert torch.allclose(out, eq11.float(), atol=1e-5)
    assert posterior(proc, t, t - 1)[2] ** 2 == pytest.approx(float(var), rel=1e-6)
    assert posterior(proc, 1, 0)[2] == 0.0, "the last step adds no noise"


def test_ddim_eta1_full_steps_has_ddpm_variance():
    proc = make_process("vp", schedule="cosine", num_steps=100)
    x, eps = torch.randn(4, 2), torch.randn(4, 2)
    pred = Predictor(lambda x_, t_: eps, proc)
    opts = DDIM().make_options(eta=1.0)
    for t in (100, 50, 2):
        a = DDIM().step(pred, proc, x, t, t - 1, options=opts, generator=torch.Generator().manual_seed(1)).x_prev
        b = DDPM().step(pred, proc, x, t, t - 1, generator=torch.Generator().manual_seed(1)).x_prev
        assert torch.allclose(a, b, atol=1e-5)


def test_euler_is_the_ddim_update_on_the_same_grid():
    """Euler in (x / alpha, sigma / alpha) is x_s = alpha_s x0_hat + sigma_s eps_hat: DDIM with eta = 0."""
    g = eight_gaussians()
    for grid in ("angle", "karras"):
        ts = sampling_timesteps(VP, 12, grid, "euler")
        a = sample(exact(VP), VP, (256, 2), sampler="euler", timesteps=ts, generator=torch.Generator().manual_seed(0))
        b = sample(exact(VP), VP, (256, 2), sampler="ddim", timesteps=ts, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(a, b, atol=1e-4), grid
    del g


def test_vp_grids():
    lin = make_process("vp", schedule="linear", num_steps=1000)
    assert (
        sampling_timesteps(lin, 50, "uniform")[:3] == [1000, 980, 960]
        and sampling_timesteps(lin, 50, "uniform")[-1] == 20
    )
    ten = make_process("vp", schedule="linear", num_steps=10)
    assert sampling_timesteps(ten, None, "uniform", "ddpm") == list(range(10, 0, -1))
    assert sampling_timesteps(ten, 10, "angle") == list(range(10, 0, -1))
    for T, S in [(1000, 7), (37, 36), (5, 5), (1000, 1), (1000, 999), (1000, 500), (10, 9)]:
        for name in ("linear", "cosine"):
            proc = make_process("vp", schedule=name, num_steps=T)
            for spacing in ("uniform", "angle", "karras"):
                ts = sampling_timesteps(proc, S, spacing)
                assert len(ts) == S and ts[0] == T and all(a > b for a, b in zip(ts, ts[1:])) and ts[-1] >= 1, (
                    T,
                    S,
                    spacing,
                )
    for bad in (0, 1001, 2.5, True):
        with pytest.raises(ValueError, match="num_steps"):
            sampling_timesteps(lin, bad)
    with pytest.raises(ValueError, match="spacing must be one of"):
        sampling_timesteps(lin, 50, "log")


def test_karras_grid_is_the_rho7_sigma_ramp_at_fractional_t():
    """Karras et al. 2022, eq. 5: sigma_i = (smax^(1/7) + i/(N-1) (smin^(1/7) - smax^(1/7)))^7 with sigma = sqrt(1 - abar)
    / sqrt(abar); the fractional times reproduce those sigmas (log sigma interpolated between integer steps)."""
    proc = make_process("vp", schedule="linear", num_steps=1000)
    ts = sampling_timesteps(proc, 10, "karras")
    smax, smin = proc.sigma_ve(1000), proc.sigma_ve(1)
    want = [(smax ** (1 / 7) + i / 9 * (smin ** (1 / 7) - smax ** (1 / 7))) ** 7 for i in range(10)]
    assert [proc.sigma_ve(t) for t in ts] == pytest.approx(want, rel=1e-9)
    assert ts[0] == 1000 and ts[-1] == pytest.approx(1.0)
    assert any(t != round(t) for t in ts), "Karras times fall between integer steps"
    a, s = proc.coefficients(torch.tensor(ts, dtype=torch.float64))
    assert torch.allclose(a**2 + s**2, torch.ones_like(a), atol=1e-12), "fractional times stay variance preserving"


def test_flow_grid_and_shift():
    assert FLOW.timesteps(4) == [1.0, 0.75, 0.5, 0.25]
    shifted = make_process("flow", shift=3.0).timesteps(4)
    assert shifted[0] == 1.0 and shifted[1] == pytest.approx(3 * 0.75 / (1 + 2 * 0.75))  # Esser et al. 2024, eq. 23
    assert all(a > b for a, b in zip(shifted, shifted[1:])) and shifted[-1] > 0.25, (
        "shift spends the steps at high noise"
    )
    with pytest.raises(ValueError, match="flow_shift"):
        make_process("flow", shift=0.0)


def test_angle_spacing_is_even_in_the_noise_angle():
    """ "angle" steps are equal steps of phi = arctan(sigma_t / sqrt(abar_t)), so they bunch at low t for the linear
    schedule and are close to even in t for the cosine schedule (whose phi is almost linear in t)."""
    for name in ("linear", "cosine"):
        sch = make_schedule(name, 1000)
        ts = torch.tensor(sampling_timesteps(sch, 50, "angle") + [0])
        a = sch._abar64[ts]
        dphi = -torch.diff(torch.atan(((1 - a) / a).sqrt()))
        assert (dphi / dphi.mean() - 1).abs().max() < (0.05 if name == "cosine" else 0.35), (name, dphi)
    lin = sampling_timesteps(make_schedule("linear", 1000), 50, "angle")
    assert (
        lin[:2] == [1000, 805] and lin[-1] == 6
    )  # one big step through the nearly pure-noise end, fine ones at the data end
    cos = sampling_timesteps(make_schedule("cosine", 1000), 50, "angle")
    assert max(abs(a - b) for a, b in zip(cos, sampling_timesteps(make_schedule("cosine", 1000), 50, "uniform"))) <= 16


def test_angle_spacing_shrinks_ddim_less_on_gaussian_data():
    """For data N(0, I) the exact eps is linear, so DDIM is a linear map and its shrinkage of the standard deviation
    is exact: DDIM-50 on the linear schedule keeps 96.4% of it with steps even in t and 97.6% with steps even in phi
    (the exact flow keeps 100%; DDIM-1000 keeps 99.8%)."""
    g = GaussianMixture(torch.ones(1), torch.zeros(1, 2), torch.eye(2).unsqueeze(0))
    proc = make_process("vp", schedule="linear", num_steps=1000)
    x_T = torch.ones(1, 2)  # x_T has std sqrt(abar_T * 1 + 1 - abar_T) = 1: the map's factor is the ratio of stds
    kept = {}
    for spacing, steps in (("uniform", 50), ("angle", 50), ("uniform", 1000)):
        x = sample(exact(proc, g=g), proc, (1, 2), sampler="ddim", num_steps=steps, spacing=spacing, x_T=x_T)
        kept[spacing, steps] = float(x[0, 0])
    assert kept["uniform", 50] == pytest.approx(0.9636, abs=2e-3)
    assert kept["angle", 50] == pytest.approx(0.9758, abs=2e-3)
    assert kept["uniform", 1000] == pytest.approx(0.9981, abs=2e-3)


def test_progressive_records_and_seed_reproducibility():
    proc = make_process("vp", schedule="linear", num_steps=100)
    recs = list(
        sample_progressive(exact(proc), proc, (16, 2), sampler="ddpm", generator=torch.Generator().manual_seed(3))
    )
    assert [r.t for r in recs] == list(range(100, 0, -1)) and recs[-1].t_prev == 0, "DDPM visits every step"
    for a, b in zip(recs, recs[1:]):
        assert torch.equal(a.x_prev, b.x_t)
    assert recs[0].noise_level == pytest.approx(float(proc.schedule.noise_levels[-1]))
    assert [r.nfe for r in recs] == list(range(1, 101))
    a, s = proc.coefficients(100)
    assert torch.allclose(recs[0].v_pred, a * recs[0].eps_pred - s * recs[0].x0_pred), (
        "VP velocity: alpha eps - sigma x0"
    )
    again = sample(exact(proc), proc, (16, 2), sampler="ddpm", generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, recs[-1].x_prev)
    other = sample(exact(proc), proc, (16, 2), sampler="ddpm", generator=torch.Generator().manual_seed(4))
    assert not torch.equal(again, other)
    rec = TrajectoryRecorder(keep_every=30)
    for r in recs:
        rec.add(r)
    traj = rec.finish()
    assert traj.timesteps == [100, 70, 40, 10, 1, 0] and traj.x.shape == (6, 16, 2) and traj.v_pred.shape == (6, 16, 2)
    assert torch.equal(traj.final, recs[-1].x_prev) and traj.x.device.type == "cpu" and traj.nfe == 100


def test_flow_records_velocity_and_heun_costs_2n_minus_1():
    recs = list(
        sample_progressive(
            exact(FLOW, "velocity"),
            FLOW,
            (32, 2),
            sampler="heun",
            num_steps=8,
            generator=torch.Generator().manual_seed(0),
        )
    )
    assert [r.t for r in recs] == [1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]
    assert recs[-1].nfe == 2 * 8 - 1 == SOLVERS["heun"].nfe(8)
    r = recs[3]
    assert torch.allclose(r.v_pred, r.eps_pred - r.x0_pred) and torch.allclose(
        r.x_t, (1 - r.t) * r.x0_pred + r.t * r.eps_pred, atol=1e-5
    )


def test_recurrence_restarts_the_multistep_history():
    """A repeated step starts from a re-noised x_t: DPM-Solver++ then takes a first-order step (its history belongs to
    another trajectory), and the result still reproduces the mixture.  (Each repeat adds its own discretisation
    error, so recurrence needs more steps than a plain run: 60 here.)"""
    x = sample(
        exact(VP),
        VP,
        (4000, 2),
        sampler="dpmpp_2m",
        num_steps=60,
        recurrence=3,
        generator=torch.Generator().manual_seed(0),
    )
    check_mixture(x, eight_gaussians(), mean_tol=0.06, cov_rtol=0.25)
    solver = SOLVERS["dpmpp_2m"]
    assert solver.restart({"x0": torch.ones(1), "lambda": 1.0}) == {"x0": None, "lambda": None}


@pytest.mark.parametrize(
    "process,kw,match",
    [
        (VP, {"sampler": "lms"}, "sampler must be one of"),
        (FLOW, {"sampler": "ddpm"}, "sampler 'ddpm' does not serve the flow process"),
        (VP, {"sampler": "ddim", "eta": 2.0}, "eta"),
        (VP, {"sampler": "heun", "eta": 0.5}, "eta does not apply to sampler 'heun'"),
        (VP, {"num_steps": 0}, "num_steps"),
        (FLOW, {"sampler": "euler", "num_steps": 1001}, "num_steps"),
        (VP, {"sampler": "ddim", "spacing": "log"}, "spacing"),
        (FLOW, {"sampler": "euler", "spacing": "karras"}, "spacing"),
        (VP, {"recurrence": 0}, "recurrence"),
        (VP, {"timesteps": [5, 7]}, "strictly decreasing"),
        (VP, {"timesteps": [0.5]}, "fractional time"),
        (FLOW, {"timesteps": [1.5, 0.5]}, "timesteps must lie in"),
    ],
)
def test_bad_sampler_arguments(process, kw, match):
    with pytest.raises(ValueError, match=match):
        sample(Predictor(lambda x, t: torch.zeros_like(x), process, "sample"), process, (2, 2), **kw)


@pytest.mark.parametrize(
    "process,ptype,match",
    [
        (VP, "velocity", "does not serve the vp process"),
        (FLOW, "epsilon", "does not serve the flow process"),
        (VP, "score", "prediction_type must be one of"),
    ],
)
def test_bad_prediction_types(process, ptype, match):
    with pytest.raises(ValueError, match=match):
        Predictor(lambda x, t: x, process, ptype)


def test_timesteps_given_explicitly():
    g = eight_gaussians()
    recs = list(
        sample_progressive(
            exact(VP, g=g),
            VP,
            (8, 2),
            sampler="ddim",
            timesteps=[1000, 500, 10.5],
            generator=torch.Generator().manual_seed(0),
        )
    )
    assert [(r.t, r.t_prev) for r in recs] == [(1000, 500), (500, 10.5), (10.5, 0)]
