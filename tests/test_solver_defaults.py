"""The solver contract's facts (one registry, one default-solver table, typed options) and the default grids: on the
exact 8-gaussians mixture every deterministic solver at about 10 network calls samples within 2x the MMD² of
DPM-Solver++(2M) at 10 steps (bench/bench_solvers.py --grids measures every grid)."""

import functools
import math

import pytest
import torch

from adiff.data import eight_gaussians_mixture
from adiff.diffusion import PROCESSES, Predictor, make_process
from adiff.eval.metrics import MMDReference
from adiff.samplers import DEFAULT_SOLVER, SOLVERS, default_solver, sample, sample_progressive, solvers_for
from adiff.samplers.ddim import DDIMOptions
from adiff.samplers.heun import HeunOptions

VP = make_process("vp", schedule="linear", num_steps=1000)
FLOW = make_process("flow")
GMM = eight_gaussians_mixture()


def exact(process):
    ptype = "epsilon" if process.name == "vp" else "velocity"
    return Predictor(GMM.model_fn(process, ptype), process, ptype)


# ------------------------------------------------------------------------------------------------ registry and options
def test_one_default_solver_table_serves_every_process_and_the_loop_reads_it():
    assert set(DEFAULT_SOLVER) == set(PROCESSES)
    for process in (VP, FLOW):
        name = default_solver(process)
        assert name == default_solver(process.name) and name in solvers_for(process)
        a = sample(exact(process), process, (64, 2), generator=torch.Generator().manual_seed(0))
        b = sample(exact(process), process, (64, 2), sampler=name, generator=torch.Generator().manual_seed(0))
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="process must be one of"):
        default_solver("ve")


@pytest.mark.parametrize("name", list(SOLVERS))
def test_nfe_and_facts_come_from_the_solver(name):
    solver = SOLVERS[name]
    process = VP if "vp" in solver.processes else FLOW
    recs = list(sample_progressive(exact(process), process, (8, 2), sampler=name, num_steps=6))
    assert recs[-1].nfe == solver.nfe(6) == solver.nfe_per_step * 6 - (solver.nfe_per_step - 1)
    assert f"order {solver.order}" in solver.facts and f"{solver.nfe_per_step} NFE/step" in solver.facts
    assert solver.option_names == tuple(solver.Options.__dataclass_fields__)


def test_options_are_typed_and_checked_when_the_run_starts():
    ddim, heun = SOLVERS["ddim"], SOLVERS["heun"]
    assert ddim.option_names == ("eta",) and heun.option_names == ("form",) and SOLVERS["euler"].option_names == ()
    assert ddim.make_options(eta=1) == DDIMOptions(eta=1.0) and ddim.make_options() == DDIMOptions()
    assert ddim.make_options({"eta": 0.3}, eta=None) == DDIMOptions(eta=0.3)
    assert heun.make_options(HeunOptions("karras")) == HeunOptions("karras")
    assert heun.make_options(eta=0.0) == HeunOptions(), "eta = 0 is no noise: every solver accepts it"
    bad = [
        (ddim, {"eta": 1.5}, "eta must be a number in"),
        (ddim, {"eta": True}, "eta must be a number in"),
        (heun, {"eta": 0.5}, "eta does not apply to sampler 'heun'"),
        (heun, {"options": {"form": "rk4"}}, "form must be one of"),
        (ddim, {"options": {"form": "karras"}}, "form does not apply to sampler 'ddim'"),
        (ddim, {"options": HeunOptions()}, "options must be DDIMOptions"),
        (heun, {"options": [("form", "karras")]}, "options must be a mapping"),
    ]
    for solver, kw, match in bad:
        with pytest.raises(ValueError, match=match):
            solver.make_options(**kw)
    with pytest.raises(ValueError, match="form must be one of"):  # the loop checks before the first network call
        calls = []
        sample(
            lambda x, t: calls.append(t) or exact(VP)(x, t), VP, (2, 2), sampler="heun", options={"form": "midpoint"}
        )
    assert calls == []


def test_heun_makes_both_of_its_network_calls_and_reports_the_first():
    calls = []

    def model(x, t):
        calls.append(t)
        return exact(FLOW)(x, t)

    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    out = SOLVERS["heun"].step(model, FLOW, x, 1.0, 0.5)
    assert calls == [1.0, 0.5]
    assert torch.equal(out.pred.x0, exact(FLOW)(x, 1.0).x0) and out.state == {}
    assert SOLVERS["heun"].step(model, FLOW, x, 0.25, 0).x_prev.shape == x.shape and calls[-1] == 0.25


# ------------------------------------------------------------------------------------------------ default grids
DRAWS, POINTS = 5, 2000
PROCESS = {"vp": VP, "flow": FLOW}


@functools.cache
def data_reference(d: int) -> MMDReference:
    """MMD² against draw d's fresh mixture data (its data-only term computed once)."""
    return MMDReference(GMM.sample(POINTS, torch.Generator().manual_seed(10_000 + d))[0])


@functools.cache
def mmd_per_draw(process: str, sampler: str, steps: int, spacing: str | None = None, form: str | None = None):
    """MMD² to fresh mixture data per draw [DRAWS]; draw d starts from the same x_T (seed d) and meets the same data
    for every configuration, so differences between configurations are paired."""
    out = []
    for d in range(DRAWS):
        x = sample(
            exact(PROCESS[process]),
            PROCESS[process],
            (POINTS, 2),
            sampler=sampler,
            num_steps=steps,
            spacing=spacing,
            options={"form": form} if form else None,
            generator=torch.Generator().manual_seed(d),
        )
        out.append(data_reference(d)(x))
    return torch.tensor(out, dtype=torch.float64)


def excess_over_twice(candidate: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of candidate - 2 reference over the paired draws."""
    d = candidate - 2 * reference
    return float(d.mean()), float(d.std() / math.sqrt(len(d)))


# (process, solver, steps) at about 10 network calls: Heun's 5 steps are 9.  Measured (x 1e-4, 5 draws, 2000 points,
# bench/results/bench_solvers_grids.txt): VP linear dpmpp_2m-10 8.67, ddim-10 and euler-10 9.78, heun-5 13.91; flow
# dpmpp_2m-10 4.55, heun-5 6.29.  Euler on the flow is left out: its mean is 2.28x (10.38; the excess over 2x,
# +1.3 ± 1.6, is within noise, but the mean is above the bar; no flow grid does better: 9.97 even in the noise angle).
# The bar is not universal: on the bench's 3-blob mixture heun-5 is 2.9x dpmpp_2m-10 (VP) and 3.5x (flow).
WITHIN = [("vp", "ddim", 10), ("vp", "euler", 10), ("vp", "heun", 5), ("flow", "heun", 5)]


@pytest.mark.slow
@pytest.mark.parametrize("process,sampler,steps", WITHIN, ids=[f"{p}-{s}" for p, s, _ in WITHIN])
def test_deterministic_solvers_at_10_nfe_sample_within_twice_dpmpp(process, sampler, steps):
    reference = mmd_per_draw(process, "dpmpp_2m", 10)
    excess, se = excess_over_twice(mmd_per_draw(process, sampler, steps), reference)
    assert excess < 2 * se, f"{sampler}: MMD² exceeds twice dpmpp_2m's by {excess:.2e} (SE {se:.1e})"


@pytest.mark.slow
def test_the_old_defaults_fail_that_bar():
    """The check has teeth: the grids and Heun form that were the defaults (and are diffusers') sample far worse."""
    reference = mmd_per_draw("vp", "dpmpp_2m", 10)
    for sampler, steps, kw in (("euler", 10, {"spacing": "karras"}), ("heun", 5, {"form": "karras"})):
        excess, se = excess_over_twice(mmd_per_draw("vp", sampler, steps, **kw), reference)
        assert excess > 3 * se and excess > 0, (sampler, excess, se)
