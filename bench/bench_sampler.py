"""Sampler overhead, guidance cost and the physical limit, on the moons preset.

    python bench/bench_sampler.py [--quick] [--threads 1] [--device cuda] [--compile]

1. Overhead, for every solver: ``model.generate`` (trajectory kept every 10 steps) with DDPM-1000, DDIM-50,
   dpmpp_2m-20, euler-20, heun-10 (19 NFE) on the moons preset, and euler-20, heun-10, dpmpp_2m-20 on a flow twin of
   it (common.flow_twin: the same architecture and weights, read as a velocity network, never trained as a flow; no
   flow preset ships yet, and a network's cost does not depend on its weights), each at its default spacing, against
   bare EMA-denoiser forwards (no_grad, same batch) that replay exactly the calls the sampler makes: a spy module in
   place of the denoiser records the time input of every call in a generate run, so the baseline calls the network
   as often and at the same times (two per Heun step).  Target <= 1.05x (issue 11).  Whole runs interleaved, and
   step-paired: in generate's own loop the bare forwards of each step are timed beside it (alternately before and
   after), which is robust to the load of a shared machine changing between whole runs.  The step-paired figure is
   the median of the per-step ratios over every step of 1 (DDPM-1000) or 5 (--quick: 3) runs, with the ratio of the
   totals beside it (the totals also carry the once-per-run work: building the grid, finishing the trajectory).
2. Guidance: DDIM-50 generate with reward guidance ("dps", "cheap", "xt"; r = x-coordinate, lambda = 2) against
   unguided DDIM-50 generate: whole runs interleaved, and "lockstep": the four samplers advanced one step each in
   turn, every step timed, so all see the same load (the main figure on a shared machine).
3. Sampler loop cost per step with a trivial model (output 0.1 x, wrapped in a Predictor) for every solver on both
   processes: what the sampler adds around the network.
4. The physical limit: FLOPs of one denoiser forward (torch.utils.flop_counter) against the matmul throughput torch
   reaches here (a large square matmul, and the model's own FFN shape); the fraction of it that sampling achieves,
   and where the forward's time goes (profiler).
5. The shared timestep: every sample of a sampling step shares t, so the adaLN conditioning can take t as [1]
   (broadcast) with the same output.  Forward time t[1] vs t[B].  (Found by this script; adiff does it since 931ea8e.
   The bare baseline of 1. and the FLOP count of 4. shape t the way the library passes it, detected at run time.)

Every time is measured side by side with interleaved repeats; figures are medians (min-max) of per-round ratios.
DDPM-1000 overhead on --ddpm-points (default 1000: at 2000 points the script takes over 20 minutes on the shared
2-core machine).  --quick: DDPM overhead on 300 points, fewer repeats, guidance in lockstep only.
"""

from __future__ import annotations

import sys
import time

import torch  # noqa: E402
from common import (
    base_parser,
    flow_twin,
    fmt_stats,
    interleaved,
    load_model,
    lockstep,
    paired_ratio,
    print_footer,
    print_header,
    print_table,
    setup,
    stats,
    sync,
    verdict,
)
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from adiff.diffusion import Predictor  # noqa: E402
from adiff.samplers import SOLVERS, TrajectoryRecorder, sample, solvers_for  # noqa: E402
from adiff.steering.rewards import make_reward  # noqa: E402


def network_calls(model, n: int, kw: dict) -> list[list[torch.Tensor]]:
    """The time inputs the denoiser receives in a ``generate_progressive(n, **kw)`` run, grouped by sampler step:
    recorded by a spy module in place of the EMA denoiser (it returns zeros; the times a solver visits do not depend
    on the outputs).  The bare baseline replays exactly these calls, so it calls the network as often and at the same
    times (and with the time input shaped as the library passes it: one shared row since 931ea8e)."""
    real, seen = model.ema.module, []

    class Spy(torch.nn.Module):
        def forward(self, x, t, condition=None):
            seen.append(t.detach().clone())
            return torch.zeros_like(x)

    model.ema.module = Spy()
    steps = []
    try:
        for _ in model.generate_progressive(n, seed=0, **kw):
            steps.append(list(seen))
            seen.clear()
    finally:
        model.ema.module = real
    return steps


def bare_forwards(model, n: int, calls: list[list[torch.Tensor]], device):
    """The baseline: the EMA denoiser called at the recorded times on a fixed batch, nothing else."""
    net = model.ema.module
    flat = [t for step in calls for t in step]
    x = torch.randn(n, *model.data_shape, device=device, generator=torch.Generator(device=device).manual_seed(1))

    def run():
        with torch.no_grad(), model.autocast():
            for tt in flat:
                net(x, tt)

    return run


def step_paired(model, n: int, kw: dict, calls: list[list[torch.Tensor]], device) -> tuple[list[float], list[float]]:
    """generate's own loop (generate_progressive + TrajectoryRecorder(10), as model.generate runs it), with the bare
    forwards of each step (the recorded calls: two for a Heun step) timed next to it, alternately before and after,
    so both see the same load at the same moment.  Returns per-step seconds (generate, bare); generate's first step
    includes creating the run, its last the recorder's finish."""
    net = model.ema.module
    x_bare = torch.randn(n, *model.data_shape, device=device, generator=torch.Generator(device=device).manual_seed(1))

    def bare(times):
        sync(device)
        t0 = time.perf_counter()
        with torch.no_grad(), model.autocast():
            for tt in times:
                net(x_bare, tt)
        sync(device)
        return time.perf_counter() - t0

    gen, bar = [], []
    t0 = time.perf_counter()
    rec = TrajectoryRecorder(10)
    it = model.generate_progressive(n, seed=0, **kw)
    setup_s = time.perf_counter() - t0
    for i in range(len(calls)):
        if i % 2 == 0:
            bar.append(bare(calls[i]))
        sync(device)
        t0 = time.perf_counter()
        step = next(it)
        rec.add(step)
        if i == len(calls) - 1:
            assert next(it, None) is None
            rec.finish()
        sync(device)
        gen.append(time.perf_counter() - t0 + (setup_s if i == 0 else 0.0))
        if i % 2 == 1:
            bar.append(bare(calls[i]))
    return gen, bar


def recorded(steps, keep_every: int = 10):
    """What model.generate does with generate_progressive's records, one step at a time."""
    rec = TrajectoryRecorder(keep_every)
    for step in steps:
        rec.add(step)
        yield step
    rec.finish()


def matmul_gflops(m: int, k: int, n: int, device, dtype, seconds: float = 0.5, repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of torch.mm [m, k] @ [k, n] (2 m k n FLOPs per product)."""
    a = torch.randn(m, k, device=device, dtype=dtype)
    b = torch.randn(k, n, device=device, dtype=dtype)
    out = torch.empty(m, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    best = 0.0
    for _ in range(repeats):
        iters, t0 = 0, time.perf_counter()
        sync(device)
        while True:
            for _ in range(4):
                torch.mm(a, b, out=out)
            iters += 4
            sync(device)
            dt = time.perf_counter() - t0
            if dt >= seconds:
                break
        best = max(best, 2.0 * m * k * n * iters / dt / 1e9)
    return best


def forward_flops(model, n: int, device, rows: int) -> int:
    x = torch.randn(n, 2, device=device)
    t = torch.full((1 if rows == 1 else n,), 0.5, device=device)
    net = getattr(model.ema.module, "_orig_mod", model.ema.module)  # count the eager module
    with FlopCounterMode(display=False) as fc, torch.no_grad(), model.autocast():
        net(x, t)
    return int(fc.get_total_flops())


def profile_forward(model, n: int, device, rows: int, top: int = 8) -> list[list]:
    x = torch.randn(n, 2, device=device)
    t = torch.full((1 if rows == 1 else n,), 0.5, device=device)
    net = getattr(model.ema.module, "_orig_mod", model.ema.module)
    with torch.no_grad(), model.autocast():
        for _ in range(3):
            net(x, t)
        acts = [torch.profiler.ProfilerActivity.CPU] + (
            [torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else []
        )
        with torch.profiler.profile(activities=acts) as prof:
            for _ in range(5):
                net(x, t)
            sync(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    ev = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)
    total = sum(getattr(e, key) for e in ev) or 1.0
    return [
        [e.key, f"{getattr(e, key) / 5 / 1e3:.2f}", f"{100 * getattr(e, key) / total:.1f}%", e.count // 5]
        for e in ev[:top]
    ]


def main() -> int:
    ap = base_parser(__doc__, results_name="bench_sampler")
    ap.add_argument("--points", type=int, default=2000, help="batch size (points sampled)")
    ap.add_argument(
        "--ddpm-points",
        type=int,
        default=1000,
        help="batch size for the DDPM-1000 overhead (default 1000: 2000 points take over 20 min on 2 shared cores)",
    )
    args = ap.parse_args()
    device = setup(args)
    quick = args.quick
    n = args.points
    n_ddpm = 300 if quick else args.ddpm_points
    reps_ddpm, reps = (3, 3) if quick else (3, 5)
    info = print_header(
        "bench_sampler: sampler overhead, guidance cost, FLOPs fraction (moons preset)",
        device,
        args,
        {"points": n, "ddpm_points": n_ddpm, "compile": args.compile},
    )
    model = load_model("moons", device, compile=args.compile)
    flow = flow_twin(model)  # no flow preset ships yet: a twin (the overhead does not depend on the weights)
    if args.compile:
        flow.ema.module = torch.compile(flow.ema.module)
    T = model.num_diffusion_steps
    reward = make_reward("x_coordinate")
    rows, results = [], {}
    t_rows = network_calls(model, 4, {"sampler": "ddim", "num_steps": 2})[0][0].shape[0]
    print(
        f"  the library passes the denoiser {'one shared timestep row' if t_rows == 1 else 'one timestep per sample'}; "
        "the bare baseline replays the calls a spy module recorded",
        flush=True,
    )

    if args.compile:
        t0 = time.perf_counter()
        for m in (model, flow):
            m.generate(n, sampler="euler", num_steps=2, seed=0)
        if n_ddpm != n:
            model.generate(n_ddpm, sampler="ddim", num_steps=2, seed=0)
        print(f"torch.compile warm-up (compile) took {time.perf_counter() - t0:.1f} s (excluded from every figure)")

    # 1. overhead: every solver against bare forwards at the same times ----------------------------------------
    overhead_cases = [
        ("DDPM-1000", model, n_ddpm, {"sampler": "ddpm"}, reps_ddpm),
        ("DDIM-50", model, n, {"sampler": "ddim", "num_steps": 50}, reps),
        ("dpmpp_2m-20", model, n, {"sampler": "dpmpp_2m", "num_steps": 20}, reps),
        ("euler-20", model, n, {"sampler": "euler", "num_steps": 20}, reps),
        ("heun-10", model, n, {"sampler": "heun", "num_steps": 10}, reps),
        ("flow euler-20", flow, n, {"sampler": "euler", "num_steps": 20}, reps),
        ("flow heun-10", flow, n, {"sampler": "heun", "num_steps": 10}, reps),
        ("flow dpmpp_2m-20", flow, n, {"sampler": "dpmpp_2m", "num_steps": 20}, reps),
    ]
    for label, m, npts, kw, r in overhead_cases:
        calls = network_calls(m, npts, kw)
        nfe, steps = sum(len(c) for c in calls), len(calls)
        spacing = SOLVERS[kw["sampler"]].default_spacing[m.process.name]
        print(
            f"\n[overhead] {label} ({spacing} spacing), {npts} points, keep_every=10: generate vs {nfe} bare forwards "
            f"at the recorded times",
            flush=True,
        )
        cases = {
            "generate": lambda kw=kw, npts=npts, m=m: m.generate(npts, seed=0, keep_every=10, **kw),
            "bare": bare_forwards(m, npts, calls, device),
        }
        if nfe > 100:  # warm up on something cheaper
            short = network_calls(m, npts, {"sampler": "ddim", "num_steps": 20})
            warm = {
                "generate": lambda npts=npts, m=m: m.generate(
                    npts, sampler="ddim", num_steps=20, seed=0, keep_every=10
                ),
                "bare": bare_forwards(m, npts, short, device),
            }
        else:
            warm = True
        tm = interleaved(cases, r, warmup=warm, device=device)
        ratio = paired_ratio(tm, "generate", "bare")
        per_nfe = stats([v / nfe for v in tm["generate"]])
        over_us = stats([(g - b) / steps * 1e6 for g, b in zip(tm["generate"], tm["bare"])])
        results[label] = {"ratio": ratio, "gen": stats(tm["generate"]), "bare": stats(tm["bare"]), "nfe": nfe}
        rows.append(
            [
                f"overhead {label}, {nfe} NFE ({npts} pts): generate / bare forwards, whole runs",
                fmt_stats(ratio, "x"),
                f"generate {fmt_stats(stats(tm['generate']), ' s', digits=2)}, bare {fmt_stats(stats(tm['bare']), ' s', digits=2)}; "
                f"{per_nfe[0] * 1e3:.2f} ms/NFE, sampler adds {over_us[0]:.0f} us/step ({r} rounds)",
                "<= 1.05x: " + verdict(ratio[0], 1.05),
            ]
        )
        gen, bar = [], []
        for _ in range(1 if nfe > 100 else r):
            g_, b_ = step_paired(m, npts, kw, calls, device)
            gen += g_
            bar += b_
        per = stats([g / b for g, b in zip(gen, bar)])
        results[label]["step_paired"] = per
        rows.append(
            [
                f"overhead {label}, step-paired",
                fmt_stats(per, "x"),
                f"median (min-max) over {len(gen)} steps ({len(gen) // steps} runs) of generate's step / the same network "
                f"calls timed beside it; totals {sum(gen):.2f} s / {sum(bar):.2f} s = {sum(gen) / sum(bar):.3f}x",
                "<= 1.05x: " + verdict(per[0], 1.05),
            ]
        )

    # 2. guidance cost -------------------------------------------------------------------------------------
    print(f"\n[guidance] DDIM-50, {n} points, r = x-coordinate, lambda = 2", flush=True)
    gk = {"sampler": "ddim", "num_steps": 50, "seed": 0, "keep_every": 10}
    cases = {"unguided": lambda: model.generate(n, **gk)}
    for mode in ("dps", "cheap", "xt"):
        cases[mode] = lambda mode=mode: model.generate(
            n, use_guidance=True, reward_fn=reward, guidance_scale=2.0, guidance_mode=mode, **gk
        )
    for f in cases.values() if args.compile else [cases["unguided"]]:  # warm-up (compiles dps' backward too)
        f()
    tm = interleaved(cases, reps, warmup=False, device=device) if not quick else None  # --quick: lockstep only
    gkw = {k: v for k, v in gk.items() if k != "keep_every"}
    makers = {"unguided": lambda: recorded(model.generate_progressive(n, **gkw))}
    for mode in ("dps", "cheap", "xt"):
        makers[mode] = lambda mode=mode: recorded(
            model.generate_progressive(
                n, use_guidance=True, reward_fn=reward, guidance_scale=2.0, guidance_mode=mode, **gkw
            )
        )
    ls = {k: [] for k in makers}
    for _ in range(reps):
        for k, v in lockstep(makers, device).items():
            ls[k].append(v)
    for mode in ("dps", "cheap", "xt"):
        ratio = paired_ratio(ls, mode, "unguided")
        whole = fmt_stats(paired_ratio(tm, mode, "unguided"), "x") if tm else "not run (--quick)"
        results[f"guidance_{mode}"] = ratio
        note = {
            "dps": "forward + backward through the denoiser",
            "cheap": "reward gradient at x0_hat only",
            "xt": "reward gradient at x_t only",
        }[mode]
        rows.append(
            [
                f"guidance '{mode}' / unguided (DDIM-50), lockstep",
                fmt_stats(ratio, "x"),
                f"whole runs interleaved: {whole}; {note}",
                "(no target)",
            ]
        )

    # 3. loop cost per step with a trivial model --------------------------------------------------------------
    print("\n[loop] sampler cost per step with a trivial model (output = 0.1 x)", flush=True)

    def trivial(x, t):
        return 0.1 * x

    def our_loop(m, sampler, steps):  # the library loop alone: Predictor + solver + records
        predict = Predictor(trivial, m.process, m.prediction_type)
        return lambda: sample(
            predict,
            m.process,
            (n, 2),
            sampler=sampler,
            num_steps=steps,
            generator=torch.Generator(device=device).manual_seed(0),
            device=device,
        )

    def gen_loop(m, sampler, steps):  # the same through model.generate (validation, EMA wrapper, trajectory recorder)
        net = m.ema.module

        class Zero(torch.nn.Module):
            def forward(self, x, t, condition=None):
                return 0.1 * x

        def run():
            m.ema.module = Zero()
            try:
                m.generate(n, sampler=sampler, num_steps=steps, seed=0, keep_every=10)
            finally:
                m.ema.module = net

        return run

    loop_steps = {"ddpm": T, "ddim": 200, "dpmpp_2m": 200, "euler": 200, "heun": 100}
    cases = {"generate ddpm-1000": gen_loop(model, "ddpm", None)}
    for name, k in loop_steps.items():
        cases[f"sample {name}-{k}"] = our_loop(model, name, k)
    for name in solvers_for(flow.process):
        cases[f"sample flow {name}-{loop_steps[name]}"] = our_loop(flow, name, loop_steps[name])
    tm = interleaved(cases, reps, device=device, verbose=False)
    for k in cases:
        name, steps = k.split(" ")[-1].split("-")
        nfe = SOLVERS[name].nfe(int(steps))
        s_ = stats([v / int(steps) * 1e6 for v in tm[k]])
        results[f"loop_{k}"] = s_
        spacing = SOLVERS[name].default_spacing["flow" if "flow" in k else "vp"]
        rows.append(
            [
                f"loop cost per step, {k} (trivial model)",
                fmt_stats(s_, " us", digits=0),
                f"{n} points; {spacing} spacing; {stats([v / nfe * 1e6 for v in tm[k]])[0]:.0f} us per NFE",
                "",
            ]
        )

    # 4. physical limit ------------------------------------------------------------------------------------
    print("\n[limit] FLOPs per forward and matmul throughput", flush=True)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    flops_n = forward_flops(model, n, device, t_rows)
    flops_ddpm = forward_flops(model, n_ddpm, device, t_rows)
    flops_per_sample_t = forward_flops(model, n, device, n)
    big = 4096 if device.type == "cuda" else 1024
    peak = matmul_gflops(big, big, big, device, dtype)
    ffn = matmul_gflops(2 * n, 64, 256, device, dtype)
    ref = matmul_gflops(2000, 128, 128, device, dtype)
    ach = {}
    for label, npts, fl in (("DDPM-1000", n_ddpm, flops_ddpm), ("DDIM-50", n, flops_n)):
        g = results[label]["gen"][0]
        steps = T if label == "DDPM-1000" else 50
        ach[label] = fl * steps / g / 1e9
    bare_gflops = flops_n * 50 / results["DDIM-50"]["bare"][0] / 1e9
    rows.append(
        [
            "denoiser FLOPs per forward, as sampling calls it",
            f"{flops_n / 1e9:.3f} GFLOP",
            f"{n} points, t as [{t_rows}] ({flops_n / n / 1e3:.0f} kFLOP/point; matmuls + attention, as FlopCounterMode "
            f"counts); with t per sample: {flops_per_sample_t / 1e9:.3f} GFLOP",
            "",
        ]
    )
    sq = peak
    peak = max(sq, ffn, ref)  # the best rate torch reached here, whichever shape gave it
    rows.append(
        [
            f"matmul {big}^3 {str(dtype)[6:]}",
            f"{sq:.1f} GFLOP/s",
            f"threads {torch.get_num_threads()}; "
            f"best of 5; 'peak' below = the best of the three shapes, {peak:.1f} GFLOP/s",
            "",
        ]
    )
    rows.append([f"matmul [{2 * n}x64]@[64x256] (the FFN's shape)", f"{ffn:.1f} GFLOP/s", "", ""])
    rows.append(["matmul [2000x128]@[128x128] (STACK.md's shape)", f"{ref:.1f} GFLOP/s", "", ""])
    for label, v in ach.items():
        rows.append(
            [
                f"sampling {label}: achieved / matmul peak",
                f"{v / peak:.1%}",
                f"{v:.1f} GFLOP/s achieved; {v / ffn:.1%} of the FFN-shape matmul rate",
                "(report)",
            ]
        )
    rows.append(
        [
            "bare forwards (DDIM-50 batch): achieved / peak",
            f"{bare_gflops / peak:.1%}",
            f"{bare_gflops:.1f} GFLOP/s",
            "",
        ]
    )
    results["limit"] = {"flops": flops_n, "peak": peak, "ffn": ffn, "achieved": ach}
    prof = profile_forward(model, n, device, t_rows)

    # 5. prototype: shared timestep ----------------------------------------------------------------------
    print(
        "\n[shared t] denoiser forward with t [B] vs t [1] (broadcast; all samples share t while sampling)", flush=True
    )
    net = model.ema.module
    x = torch.randn(n, 2, device=device)
    tb = torch.full((n,), 0.5, device=device)
    with torch.no_grad(), model.autocast():
        diff = (net(x, tb).float() - net(x, tb[:1]).float()).abs().max().item()
    calls = 10 if quick else 20

    def fwd(t):
        def run():
            with torch.no_grad(), model.autocast():
                for _ in range(calls):
                    net(x, t)

        return run

    tm = interleaved({"t[B]": fwd(tb), "t[1]": fwd(tb[:1])}, reps, device=device, verbose=False)
    ratio = paired_ratio(tm, "t[1]", "t[B]")
    results["prototype_shared_t"] = ratio
    rows.append(
        [
            "shared timestep: forward with t[1] / t[B]",
            fmt_stats(ratio, "x"),
            f"max |diff| {diff:.1e}; t[B] {stats(tm['t[B]'])[0] / calls * 1e3:.2f} ms/forward",
            "(in adiff: sampling uses t[1])" if t_rows == 1 else "(fix proposal)",
        ]
    )

    if args.compile:  # compiled against eager, side by side
        eager = model.ema.module._orig_mod

        def fwd_with(m):
            def run():
                with torch.no_grad(), model.autocast():
                    for _ in range(calls):
                        m(x, tb if t_rows != 1 else tb[:1])

            return run

        tm = interleaved({"compiled": fwd_with(net), "eager": fwd_with(eager)}, reps, device=device, verbose=False)
        ratio = paired_ratio(tm, "compiled", "eager")
        rows.append(
            [
                "torch.compile: compiled / eager forward",
                fmt_stats(ratio, "x"),
                f"eager {stats(tm['eager'])[0] / calls * 1e3:.2f} ms/forward, {n} points",
                "(report)",
            ]
        )

    print_table(
        [f"op (one forward, {n} points, t as [{t_rows}])", "ms", "share", "calls"],
        prof,
        "Where one forward's time goes (profiler)",
    )
    print_table(
        ["figure", "value: median (min-max)", "details", "target"],
        rows,
        f"bench_sampler results on {info['processor']}, {info['cpu_count']} cores, torch {info['torch']}, "
        f"threads {info['threads']}, device {info['device']}{', compiled' if args.compile else ''}",
    )
    print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
