"""Schedule invariants, parity with diffusers' DDPMScheduler, and no wrap-around at t = 1."""

import json
import math
from pathlib import Path

import pytest
import torch

from adiff import CosineNoiseSchedule, CustomNoiseSchedule, LinearNoiseSchedule, make_schedule
from adiff.diffusion.schedules import SigmoidNoiseSchedule

REF = json.loads((Path(__file__).parent / "fixtures" / "diffusers_schedules.json").read_text())
ALL = ["linear", "cosine", "sigmoid"]


def build(name, T=1000):
    return make_schedule(name, T) if name != "custom" else CustomNoiseSchedule([0.02, 0.3, 0.9, 0.995], T)


@pytest.mark.parametrize("name", ALL + ["custom"])
@pytest.mark.parametrize("T", [1, 7, 1000])
def test_invariants(name, T):
    s = build(name, T)
    assert s.betas.shape == s.alphas_cumprod.shape == s.noise_levels.shape == s.snr.shape == (T,)
    assert ((s.betas > 0) & (s.betas < 1)).all()
    assert torch.allclose(s.alphas, 1 - s.betas)
    abar = s._abar64[1:]
    assert (abar[1:] < abar[:-1]).all(), "alphas_cumprod must strictly decrease"
    assert torch.allclose(abar, torch.cumprod(1 - s._betas64[1:], 0))
    assert torch.allclose(s.noise_levels.double(), (1 - abar).sqrt(), atol=1e-7)
    assert torch.allclose(s.snr.double(), abar / (1 - abar), rtol=1e-5)
    assert (s.log_snr[1:] < s.log_snr[:-1]).all()


@pytest.mark.parametrize("name,key", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_parity_with_diffusers(name, key):
    s = make_schedule(name, 1000)
    ref = torch.tensor(REF[key], dtype=torch.float64)
    assert (s.alphas_cumprod.double() - ref).abs().max() < 1e-6
    assert (s.betas.double() - torch.tensor(REF[key + "_betas"], dtype=torch.float64)).abs().max() < 1e-6


def test_linear_betas_are_the_papers():
    s = LinearNoiseSchedule(1000)
    assert math.isclose(float(s.betas[0]), 1e-4, rel_tol=1e-6) and math.isclose(float(s.betas[-1]), 0.02, rel_tol=1e-6)


def test_cosine_matches_closed_form_and_clips():
    T, s_off = 1000, 0.008
    s = CosineNoiseSchedule(T)
    f = lambda t: math.cos((t / T + s_off) / (1 + s_off) * math.pi / 2) ** 2
    for t in (1, 10, 500, 900):  # off by one would fail here: abar(t) = f(t) / f(0), t = 1..T
        assert math.isclose(float(s._abar64[t]), f(t) / f(0), rel_tol=1e-9)
    assert float(s.betas.max()) == pytest.approx(0.999)  # the last beta hits Nichol & Dhariwal's clip
    assert any("clip" in w for w in s.warnings())


def test_sigmoid_matches_lucidrains():
    T, start, end, tau = 1000, -3.0, 3.0, 1.0
    t = torch.linspace(0, T, T + 1, dtype=torch.float64) / T
    vs, ve = torch.tensor(start / tau).double().sigmoid(), torch.tensor(end / tau).double().sigmoid()
    abar = (-((t * (end - start) + start) / tau).sigmoid() + ve) / (ve - vs)
    abar = abar / abar[0]
    betas = torch.clip(1 - abar[1:] / abar[:-1], 0, 0.999)
    assert torch.allclose(SigmoidNoiseSchedule(T).betas.double(), betas, atol=1e-7)


def test_no_wrap_at_t1():
    for name in ALL + ["custom"]:
        s = build(name)
        n1, nT = float(s.get_noise_level(1)), float(s.get_noise_level(s.num_steps))
        assert n1 < 0.2 < nT, f"{name}: t=1 must be the least noisy step"
        assert float(s.get_noise_level(0)) == 0.0
        assert torch.allclose(s.get_noise_level(torch.tensor([1, 2])), s.noise_levels[:2])
        with pytest.raises(ValueError, match="timestep"):
            s.get_noise_level(s.num_steps + 1)
        with pytest.raises(ValueError, match="timestep"):
            s.get_noise_level(-1)


def test_custom_interpolates_user_noise_levels():
    s = CustomNoiseSchedule([0.1, 0.5, 0.9], 5)
    assert torch.allclose(s.noise_levels, torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9]), atol=1e-6)
    assert torch.allclose(CustomNoiseSchedule([0.1, 0.9], 2).noise_levels, torch.tensor([0.1, 0.9]))


@pytest.mark.parametrize(
    "values,match",
    [
        ([0.1, 0.5, 1.0], r"\[2\] = 1.0 is outside \(0, 1\)"),
        ([0.0, 0.5], r"\[0\] = 0.0 is outside"),
        ([0.5, 0.4], r"\[1\] = 0.4 is not greater"),
        ([0.5, 0.5], "not greater"),
        ([0.5], "at least 2"),
        ([0.1, float("nan")], "outside"),
        ([0.1, "a"], "must be a number"),
        ("0.1,0.2", "must be a list"),
    ],
)
def test_custom_validation(values, match):
    with pytest.raises(ValueError, match=match):
        CustomNoiseSchedule(values, 10)


def test_warnings():
    # DDPM's range 1e-4..0.02 kept at T = 100 leaves sqrt(abar_T) = 0.6: x_T is not noise
    fixed = make_schedule("linear", 100, beta_start=1e-4, beta_end=0.02)
    assert any("terminal SNR" in w for w in fixed.warnings()) and float(fixed.alphas_cumprod[-1]) ** 0.5 > 0.5
    assert any("steps" in w for w in make_schedule("cosine", 20).warnings())
    assert make_schedule("linear", 1000).warnings() == []


@pytest.mark.parametrize("T", [50, 100, 250, 1000, 4000])
def test_linear_range_rescales_with_T(T):
    """Without an explicit range the linear schedule scales DDPM's betas by 1000 / T (improved-diffusion), so
    abar_T stays within a factor of 10 of its T = 1000 value (4.0e-5) and x_T is noise at every T."""
    s = make_schedule("linear", T)
    assert s.beta_start == pytest.approx(1e-4 * 1000 / T) and s.beta_end == pytest.approx(0.02 * 1000 / T)
    assert 4e-6 < float(s.alphas_cumprod[-1]) < 4e-4
    assert not any("terminal SNR" in w for w in s.warnings())
    assert any("steps" in w for w in make_schedule("cosine", 20).warnings())
    assert make_schedule("linear", 1000).warnings() == []


def test_q_sample_matches_closed_form():
    s = make_schedule("linear", 1000)
    x0, eps = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    t = torch.tensor([1, 10, 500, 1000])
    xt = s.q_sample(x0, t, eps)
    a = s.alphas_cumprod[t - 1].reshape(4, 1, 1, 1)
    assert torch.allclose(xt, a.sqrt() * x0 + (1 - a).sqrt() * eps, atol=1e-6)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_vp_coefficients_fast_path_equals_the_tensor_path(schedule):
    """The samplers call coefficients(t) with a Python number (the Karras grid's t are fractional): that path uses
    Python floats and must give what the float64 tensor path gives, at integer and fractional t."""
    from adiff.diffusion import make_process

    p = make_process(name="vp", schedule=schedule, num_steps=1000)
    ts = [0, 1, 1.5, 2.25, 17, 499.999, 500.5, 999.01, 999.99, 1000]
    a64, s64 = p._coefficients64(torch.tensor(ts, dtype=torch.float64))
    for i, t in enumerate(ts):
        a, s = p.coefficients(t)
        assert isinstance(a, float) and abs(a - float(a64[i])) < 1e-15 and abs(s - float(s64[i])) < 1e-15, t
    with pytest.raises(ValueError, match="fractional"):
        p.coefficients(0.5)
